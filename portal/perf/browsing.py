"""One simulated customer clicking through Billing details: an aiohttp session of its own, HTMX requests
sent the way htmx sends them, and bookkeeping of what the portal answered."""
from __future__ import annotations

import asyncio
import random
import re
import secrets
import time

from .client import CSRF_RE
from .customers import Tally, User
from .seed import PASSWORD

CARD_RE = re.compile(r'<li class="card( is-default)?" id="card-(\d+)"')
EXPIRES_RE = re.compile(r'id="card-(\d+)">.*?Expires (\d\d)/(\d{4})', re.S)
INVOICE_RE = re.compile(r'<tr id="invoice-(\d+)">')
MORE_RE = re.compile(r'hx-get="(/billing/invoices\?cursor=[^"]+)"')

# Sandbox numbers that save and charge successfully (README's test card table), with their CVC length.
TEST_CARDS = [("4242424242424242", "123"), ("5555555555554444", "123"), ("378282246310005", "1234"),
              ("6011111111111117", "123")]

# What users do, and how often (weights). Page views dominate, as on the real page.
ACTIONS = {"view": 28, "more": 10, "set_default": 14, "edit": 10, "add": 8, "delete": 7, "pdf": 12, "email": 11}

MAX_CARDS = 6
EMAIL_LIMITED = 429  # "Email me a copy" is limited per user and hour: a refusal, not an error


def _parse_cards(html: str) -> tuple[list[int], int | None]:
    ids, default = [], None
    for is_default, card_id in CARD_RE.findall(html):
        ids.append(int(card_id))
        if is_default:
            default = int(card_id)
    return ids, default


class Session:
    """A user's browser: one aiohttp ClientSession (its own cookie jar) plus bookkeeping of answers."""

    def __init__(self, http, base_url: str, user: User, tally: Tally, rng: random.Random):
        self.http, self.base_url, self.user, self.tally, self.rng = http, base_url, user, tally, rng

    async def request(self, kind: str, method: str, path: str, *, htmx: bool = False, data: dict | None = None,
                      write: bool = False) -> tuple[int | None, bytes]:
        headers = {"HX-Request": "true", "HX-Current-URL": f"{self.base_url}/billing"} if htmx else {}
        started = time.perf_counter()
        try:
            async with self.http.request(method, self.base_url + path, data=data, headers=headers) as response:
                body = await response.read()
                status = response.status
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer is counted, not raised
            self.tally.transport_errors[f"{kind}: {type(exc).__name__}"] += 1
            if write:
                self.user.uncertain.append(f"{kind} {path}: no answer ({type(exc).__name__})")
            return None, b""
        self.tally.record(kind, status, time.perf_counter() - started)
        if status >= 500:
            self.tally.server_errors.append(f"{self.user.email} {method} {path} -> {status}: {body[:300]!r}")
        return status, body

    def unexpected(self, what: str) -> None:
        self.tally.unexpected.append(f"{self.user.email}: {what}")

    async def login(self) -> None:
        status, body = await self.request("login_form", "GET", "/login")
        token = CSRF_RE.search(body.decode()).group(1)
        status, body = await self.request("login", "POST", "/login",
                                          data={"email": self.user.email, "password": PASSWORD, "csrf_token": token})
        if status != 200 or b"Billing details" not in body:  # aiohttp followed the 303 to /billing
            raise RuntimeError(f"{self.user.email} could not log in: {status}")
        self.absorb_page(body.decode())

    def absorb_page(self, html: str) -> None:
        """Take the CSRF token and invoice links from a full page, and check it shows our own writes."""
        self.user.token = CSRF_RE.search(html).group(1)
        self.user.invoice_ids = [int(i) for i in INVOICE_RE.findall(html)]
        more = MORE_RE.search(html)
        self.user.more_url = more.group(1).replace("&amp;", "&") if more else None
        self.check_cards(html, "page")

    def check_cards(self, html: str, where: str, *, only_changed: bool = False) -> None:
        """Read-your-writes: this user alone changes this account, so every answer must show exactly the
        cards and default their earlier successful actions left (unless one of them got no answer).

        ``only_changed``: a set-default answer over HTMX carries just the rows that changed (the old and the
        new default), so it must show the new default and no card the account no longer has."""
        ids, default = _parse_cards(html)
        if self.user.uncertain:
            return
        shown = set(ids) <= self.user.cards if only_changed else set(ids) == self.user.cards
        if not shown or default != self.user.default:
            self.tally.stale_reads.append(
                f"{self.user.email} {where}: shows cards {sorted(ids)} default {default}, expected "
                f"{sorted(self.user.cards)} default {self.user.default}")

    # The actions -------------------------------------------------------------------------------

    async def view(self) -> None:
        status, body = await self.request("view", "GET", "/billing")
        if status == 200:
            self.absorb_page(body.decode())

    async def more(self) -> None:
        if not self.user.more_url:
            return await self.view()
        status, body = await self.request("more", "GET", self.user.more_url, htmx=True)
        if status == 200:
            rows = INVOICE_RE.findall(body.decode())
            if not rows:
                self.unexpected(f"Show more answered no rows for {self.user.more_url}")
            self.user.invoice_ids += [int(i) for i in rows]
            more = MORE_RE.search(body.decode())
            self.user.more_url = more.group(1).replace("&amp;", "&") if more else None

    async def set_default(self) -> None:
        choices = sorted(self.user.cards - {self.user.default})
        if not choices:
            return await self.view()
        card_id = self.rng.choice(choices)
        status, body = await self.request("set_default", "POST", f"/billing/cards/{card_id}/default", htmx=True,
                                          data={"csrf_token": self.user.token}, write=True)
        if status == 200:
            self.user.default = card_id
            answer = body.decode()
            self.check_cards(answer, "set-default answer", only_changed="hx-swap-oob" in answer)
        elif status is not None and status < 500:
            self.unexpected(f"set default {card_id} answered {status}")

    async def edit(self) -> None:
        card_id = self.rng.choice(sorted(self.user.cards))
        month, year = self.rng.randint(1, 12), self.rng.randint(2028, 2036)
        status, body = await self.request("edit", "POST", f"/billing/cards/{card_id}", htmx=True, write=True,
                                          data={"csrf_token": self.user.token, "cardholder_name": f"Load User {self.user.index}",
                                                "expiry": f"{month:02d} / {year % 100:02d}"})
        if status == 200:
            self.user.expiry[card_id] = (month, year)
            shown = {int(c): (int(m), int(y)) for c, m, y in EXPIRES_RE.findall(body.decode())}
            if shown.get(card_id) != (month, year) and not self.user.uncertain:
                self.tally.stale_reads.append(f"{self.user.email} edit answer shows {shown.get(card_id)} for card "
                                              f"{card_id}, saved {(month, year)}")
        elif status is not None and status < 500:
            self.unexpected(f"edit {card_id} answered {status}")

    async def add(self) -> None:
        if len(self.user.cards) >= MAX_CARDS:
            return await self.delete()
        number, cvc = self.rng.choice(TEST_CARDS)
        as_default = self.rng.random() < 0.3
        data = {"csrf_token": self.user.token, "cardholder_name": f"Load User {self.user.index}", "number": number,
                "expiry": f"{self.rng.randint(1, 12):02d} / {self.rng.randint(28, 36)}", "cvc": cvc,
                "idempotency_key": secrets.token_hex(16)}
        if as_default:
            data["save_as_default"] = "y"
        status, body = await self.request("add", "POST", "/billing/cards", htmx=True, data=data, write=True)
        if status == 200:
            ids, _ = _parse_cards(body.decode())
            new = set(ids) - self.user.cards
            if len(new) != 1:
                self.unexpected(f"add answered 200 with {len(new)} new cards ({sorted(new)})")
                self.user.uncertain.append("add: could not tell which card was added")
                return
            card_id = new.pop()
            self.user.cards.add(card_id)
            if as_default:
                self.user.default = card_id
            self.check_cards(body.decode(), "add answer")
        elif status is not None and status < 500:
            self.unexpected(f"add card answered {status}: {body[:200]!r}")

    async def delete(self) -> None:
        choices = sorted(self.user.cards - {self.user.default})
        if len(self.user.cards) <= 2 or not choices:
            return await self.add()
        card_id = self.rng.choice(choices)
        status, body = await self.request("delete", "POST", f"/billing/cards/{card_id}/delete", htmx=True,
                                          data={"csrf_token": self.user.token}, write=True)
        if status == 200:
            self.user.cards.discard(card_id)
            self.user.expiry.pop(card_id, None)
            self.check_cards(body.decode(), "delete answer")
        elif status is not None and status < 500:
            self.unexpected(f"delete {card_id} answered {status}")

    async def pdf(self) -> None:
        invoice_id = self.rng.choice(self.user.invoice_ids)
        status, body = await self.request("pdf", "GET", f"/billing/invoices/{invoice_id}.pdf")
        if status == 200 and not body.startswith(b"%PDF"):
            self.unexpected(f"invoice {invoice_id} PDF does not start with %PDF")
        elif status is not None and status != 200 and status < 500:
            self.unexpected(f"PDF of {invoice_id} answered {status}")

    async def email(self) -> None:
        invoice_id = self.rng.choice(self.user.invoice_ids)
        # A fresh request key per click, as a freshly rendered row carries; a double click would share one.
        status, body = await self.request("email", "POST", f"/billing/invoices/{invoice_id}/email", htmx=True,
                                          data={"csrf_token": self.user.token, "request_key": secrets.token_hex(16)},
                                          write=True)
        if status == 200:
            self.user.email_copies += 1
        elif status is not None and status not in (EMAIL_LIMITED,) and status < 500:
            self.unexpected(f"email copy of {invoice_id} answered {status}")


async def run_user(base_url: str, user: User, tally: Tally, *, start_at: float, stop_at: float, think: float,
                   rng_seed: int) -> None:
    import aiohttp

    rng = random.Random(rng_seed)  # one generator per user: the same seed gives the same click sequence
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    # unsafe=True: aiohttp's jar otherwise refuses cookies from an IP address such as 127.0.0.1.
    jar = aiohttp.CookieJar(unsafe=True)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as http:
        session = Session(http, base_url, user, tally, rng)
        try:
            await session.login()
        except Exception as exc:  # noqa: BLE001 - reported, and the run fails on it
            tally.unexpected.append(f"{user.email}: login failed: {exc}")
            return
        kinds, weights = list(ACTIONS), list(ACTIONS.values())
        while time.monotonic() < stop_at:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
            if time.monotonic() >= stop_at:
                break
            action = rng.choices(kinds, weights)[0]
            await getattr(session, action)()

