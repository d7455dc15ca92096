"""``portal load``: many customers using Billing details at once, then proof that nothing was lost.

Each simulated user has an account of their own (a subscription, 3 cards, 20 invoices, most of them paid
through payment attempts, some credit) and a browser of their own (one aiohttp session with its cookie
jar). For ``duration`` seconds every user logs in and clicks around the way a customer does: page views,
Show more invoices, set a default card, edit an expiry date, add a card with a sandbox test number, delete
a card that is not the default, download PDFs and "Email me a copy". The HTMX actions are sent the way
htmx sends them (``HX-Request``, the CSRF token of the page). Meanwhile a ``portal worker`` process renews
the half of the subscriptions that are due, charging whichever card is the default at that moment.

The point is correctness under concurrency, not throughput: users pause between clicks (``think``
seconds on average), so 50 users make a few dozen requests per second. At the end, with the server and
the worker stopped, the database is compared with what the users were told:

* no 5xx answers and no requests left without an answer;
* no lost writes: each account's cards are exactly those the user's successful adds and deletes imply,
  its default card is the last one the user successfully made default, each edited card carries the
  last expiry date that was saved, and the outbox holds one copy per successful "Email me a copy";
* read-your-writes: every page a user loaded showed the cards and default of their own earlier writes;
* the ledger adds up for every account: amount paid never above the total, totals equal subtotal minus
  credit plus tax, each paid invoice's amount paid equals its succeeded payment attempts (where it has
  attempts), the credit balance equals the sum of credit entries and never goes negative, and the
  sandbox took exactly one charge per succeeded attempt made during the run.
"""
from __future__ import annotations

import asyncio
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from .bench import (CSRF_RE, PASSWORD, _account, _sandbox_card, _stop_process, bench_database, gunicorn_server,
                    portal_env, write_report)

CARD_RE = re.compile(r'<li class="card( is-default)?" id="card-(\d+)"')
EXPIRES_RE = re.compile(r'id="card-(\d+)">.*?Expires (\d\d)/(\d{4})', re.S)
INVOICE_RE = re.compile(r'<tr id="invoice-(\d+)">')
MORE_RE = re.compile(r'hx-get="(/billing/invoices\?cursor=[^"]+)"')

# Sandbox numbers that save and charge successfully (README's test card table), with their CVC length.
TEST_CARDS = [("4242424242424242", "123"), ("5555555555554444", "123"), ("378282246310005", "1234"),
              ("6011111111111117", "123")]

# What users do, and how often (weights). Page views dominate, as on the real page.
ACTIONS = {"view": 28, "more": 10, "set_default": 14, "edit": 10, "add": 8, "delete": 7, "pdf": 12, "email": 11}

INVOICES_PER_ACCOUNT = 20
MAX_CARDS = 6
EMAIL_LIMITED = 429  # "Email me a copy" is limited per user and hour: a refusal, not an error


@dataclass
class User:
    """One simulated customer, and what the portal has told them so far."""

    index: int
    email: str
    account_id: int
    token: str = ""
    cards: set[int] = field(default_factory=set)       # what the user's successful actions imply
    default: int | None = None
    expiry: dict[int, tuple[int, int]] = field(default_factory=dict)  # last successfully saved expiry
    invoice_ids: list[int] = field(default_factory=list)
    more_url: str | None = None
    email_copies: int = 0
    uncertain: list[str] = field(default_factory=list)  # writes whose answer never came


@dataclass
class Tally:
    """Requests by kind and status, latencies, and everything that went wrong."""

    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    transport_errors: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    stale_reads: list[str] = field(default_factory=list)

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.statuses[kind][status] += 1
        self.latencies[kind].append(seconds * 1000)


# --- seeding --------------------------------------------------------------------------------------

def seed_users(database, seller, count: int, *, now: datetime) -> list[User]:
    """Accounts for the users. Even-numbered accounts are due for renewal now (the worker renews them
    during the run), odd ones next month; every account has 300 cents of credit, which a renewal uses."""
    from .auth.passwords import hash_password
    from .billing.invoices import build_subscription_invoice, issue_invoice, mark_paid
    from .models import CreditEntry, PaymentAttempt, Plan, Subscription

    password = hash_password(PASSWORD)
    users = []
    with database.session() as session:
        plan = Plan(code="load-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
        session.add(plan)
        session.flush()
        for i in range(count):
            email = f"load{i}@load.example"
            account = _account(session, f"Load Customer {i}", email, password)
            cards = [_sandbox_card(session, account, n, default=n == 0) for n in range(3)]
            due = now - timedelta(hours=1) if i % 2 == 0 else now + timedelta(days=30)
            start = due - timedelta(days=30) * (INVOICES_PER_ACCOUNT + 1)
            sub = Subscription(account_id=account.id, plan=plan, status="active", current_period_start=start,
                               current_period_end=start + timedelta(days=30))
            session.add(sub)
            session.flush()
            for n in range(INVOICES_PER_ACCOUNT):
                period_start = start + timedelta(days=30) * n
                invoice = build_subscription_invoice(session, account, sub, plan, period_start=period_start,
                                                     period_end=period_start + timedelta(days=30), seller=seller,
                                                     now=period_start)
                issue_invoice(session, invoice, account, seller, now=period_start)
                session.flush()
                label = "Visa •••• " + cards[0].last4
                session.add(PaymentAttempt(invoice_id=invoice.id, attempt_number=1, trigger="renewal",
                                           idempotency_key=f"load-seed-{invoice.id}", status="succeeded",
                                           amount_cents=invoice.total_cents, currency=invoice.currency,
                                           payment_method_id=cards[0].id, payment_method_label=label,
                                           processor_payment_id=f"ch_load_seed_{invoice.id}",
                                           created_at=period_start, completed_at=period_start))
                mark_paid(invoice, amount_cents=invoice.total_cents, now=period_start, payment_method_label=label,
                          transaction_id=f"ch_load_seed_{invoice.id}")
            sub.current_period_start, sub.current_period_end = due - timedelta(days=30), due
            session.add(CreditEntry(account_id=account.id, amount_cents=300, currency="USD", kind="grant",
                                    reason="Load test goodwill credit"))
            session.flush()
            users.append(User(index=i, email=email, account_id=account.id, cards={c.id for c in cards},
                              default=cards[0].id))
        session.commit()
    return users


# --- one user -------------------------------------------------------------------------------------

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

    def check_cards(self, html: str, where: str) -> None:
        """Read-your-writes: this user alone changes this account, so every answer must show exactly the
        cards and default their earlier successful actions left (unless one of them got no answer)."""
        ids, default = _parse_cards(html)
        if self.user.uncertain:
            return
        if set(ids) != self.user.cards or default != self.user.default:
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
            self.check_cards(body.decode(), "set-default answer")
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


# --- the checks -----------------------------------------------------------------------------------

def check_writes(database, users: list[User]) -> list[str]:
    """Compare every account with what its user was told."""
    from sqlalchemy import func, select

    from .models import OutboxMessage, PaymentMethod

    problems = []
    with database.session() as session:
        for user in users:
            if user.uncertain:
                continue  # counted as transport errors; the run fails on those anyway
            cards = {c.id: c for c in session.scalars(select(PaymentMethod).where(
                PaymentMethod.account_id == user.account_id, PaymentMethod.detached_at.is_(None)))}
            if set(cards) != user.cards:
                problems.append(f"{user.email}: cards {sorted(cards)} in the database, "
                                f"{sorted(user.cards)} after the user's successful actions")
            defaults = [c.id for c in cards.values() if c.is_default]
            if defaults != [user.default]:
                problems.append(f"{user.email}: default card {defaults}, last set successfully {user.default}")
            for card_id, (month, year) in user.expiry.items():
                card = cards.get(card_id)
                if card is not None and (card.exp_month, card.exp_year) != (month, year):
                    problems.append(f"{user.email}: card {card_id} expires {card.exp_month}/{card.exp_year}, "
                                    f"saved {month}/{year}")
            copies = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.account_id == user.account_id, OutboxMessage.kind == "invoice_copy"))
            if copies != user.email_copies:
                problems.append(f"{user.email}: {copies} invoice copies in the outbox, "
                                f"{user.email_copies} successful requests")
    return problems


def check_ledger(database) -> tuple[list[str], dict]:
    """The ledger's invariants for every account in the database."""
    from sqlalchemy import select

    from .billing.invoices import credit_balance
    from .models import Account, CreditEntry, Invoice, PaymentAttempt
    from .payments.sandbox_gateway import SandboxGateway

    problems: list[str] = []
    figures = Counter()
    with database.session() as session:
        attempts = defaultdict(list)
        for attempt in session.scalars(select(PaymentAttempt)):
            attempts[attempt.invoice_id].append(attempt)
        entries = defaultdict(list)
        for entry in session.scalars(select(CreditEntry)):
            entries[entry.account_id].append(entry)
        invoices = defaultdict(list)
        for invoice in session.scalars(select(Invoice).where(Invoice.status != "draft")):
            invoices[invoice.account_id].append(invoice)
        for account_id in session.scalars(select(Account.id)):
            paid_with_attempts = succeeded = applied = 0
            for invoice in invoices[account_id]:
                figures["invoices"] += 1
                if invoice.amount_paid_cents > invoice.total_cents:
                    problems.append(f"{invoice.number}: paid {invoice.amount_paid_cents} > total {invoice.total_cents}")
                if invoice.subtotal_cents - invoice.credit_applied_cents + invoice.tax_cents != invoice.total_cents:
                    problems.append(f"{invoice.number}: subtotal - credit + tax != total")
                applied += invoice.credit_applied_cents
                tried = attempts.get(invoice.id, [])
                if tried:
                    done = sum(a.amount_cents for a in tried if a.status == "succeeded")
                    if invoice.status == "paid":
                        paid_with_attempts += invoice.amount_paid_cents
                    succeeded += done
                    if done != invoice.amount_paid_cents:
                        problems.append(f"{invoice.number}: amount paid {invoice.amount_paid_cents}, "
                                        f"succeeded attempts {done}")
                figures[f"invoices_{invoice.status}"] += 1
            if paid_with_attempts != succeeded:
                problems.append(f"account {account_id}: paid invoices {paid_with_attempts} != succeeded attempts "
                                f"{succeeded}")
            ledger = sum(e.amount_cents for e in entries[account_id])
            balance = credit_balance(session, account_id)
            if balance != ledger or balance < 0:
                problems.append(f"account {account_id}: credit balance {balance}, entries sum to {ledger}")
            used = -sum(e.amount_cents for e in entries[account_id] if e.kind == "applied")
            if used != applied:
                problems.append(f"account {account_id}: credit applied on invoices {applied}, ledger says {used}")
        new_attempts = [a for tried in attempts.values() for a in tried if not a.idempotency_key.startswith("load-seed-")]
        figures["payment_attempts_during_run"] = len(new_attempts)
        figures["succeeded_attempts_during_run"] = sum(1 for a in new_attempts if a.status == "succeeded")
    charges = SandboxGateway(database).count_charges()
    figures["sandbox_charges"] = charges
    if charges != figures["succeeded_attempts_during_run"]:
        problems.append(f"the sandbox took {charges} charges for {figures['succeeded_attempts_during_run']} "
                        "succeeded attempts")
    return problems, dict(figures)


# --- the run --------------------------------------------------------------------------------------

def _percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))], 1)


def run(*, database_url: str | None = None, postgres_url: str | None = None, users: int = 50,
        duration: float = 120, web_workers: int = 4, think: float = 1.0, worker: bool = True,
        seed: int = 1) -> dict:
    from .billing.seller import Seller
    from .config import load_settings
    from .db import Database
    from .models import utcnow

    workdir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    try:
        with bench_database(database_url, postgres_url, workdir) as url:
            settings = load_settings(demo=True, overrides={"instance_path": workdir, "secret_key": "load",
                                                           "database_url": url})
            database = Database(url)
            try:
                database.upgrade()
                seed_started = time.perf_counter()
                accounts = seed_users(database, Seller.from_settings(settings), users, now=utcnow())
                seed_seconds = time.perf_counter() - seed_started
                tally = Tally()
                worker_log = workdir / "worker.log"
                with gunicorn_server(url, workdir, workers=web_workers) as base_url:
                    worker_process = None
                    if worker:
                        with open(worker_log, "wb") as log:
                            worker_process = subprocess.Popen(
                                [sys.executable, "-m", "portal.cli", "worker", "--interval", "5"],
                                env=portal_env(url, workdir), cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
                    try:
                        started = time.monotonic()
                        _run_in_own_loop(_drive(base_url, accounts, tally, started=started, duration=duration,
                                                think=think, seed=seed))
                        elapsed = time.monotonic() - started
                    finally:
                        if worker_process is not None:
                            _stop_process(worker_process, timeout=30)
                worker_failed = worker_process is not None and worker_process.returncode not in (0, -15)
                write_problems = check_writes(database, accounts)
                ledger_problems, ledger_figures = check_ledger(database)
                return _summary(tally, accounts, database=database.engine.dialect.name, users=users,
                                duration=duration, elapsed=elapsed, think=think, web_workers=web_workers,
                                seed_seconds=seed_seconds, write_problems=write_problems,
                                ledger_problems=ledger_problems, ledger_figures=ledger_figures,
                                worker_log=worker_log.read_text(errors="replace") if worker else None,
                                worker_failed=worker_failed)
            finally:
                database.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _drive(base_url: str, accounts: list[User], tally: Tally, *, started: float, duration: float,
                 think: float, seed: int) -> None:
    # Logins are spread over the first seconds (argon2 is deliberately slow); everyone stops together.
    ramp = min(5.0, duration / 4)
    await asyncio.gather(*(run_user(base_url, user, tally, start_at=started + ramp * i / max(1, len(accounts)),
                                    stop_at=started + duration, think=think, rng_seed=seed * 100_003 + i)
                           for i, user in enumerate(accounts)))


def _summary(tally: Tally, accounts: list[User], *, database: str, users: int, duration: float, elapsed: float,
             think: float, web_workers: int, seed_seconds: float, write_problems: list[str],
             ledger_problems: list[str], ledger_figures: dict, worker_log: str | None, worker_failed: bool) -> dict:
    requests = {}
    for kind in sorted(tally.statuses):
        statuses = tally.statuses[kind]
        requests[kind] = {"total": sum(statuses.values()),
                          "by_status": {str(code): n for code, n in sorted(statuses.items())},
                          "p50_ms": _percentile(tally.latencies[kind], 50),
                          "p99_ms": _percentile(tally.latencies[kind], 99)}
    total = sum(r["total"] for r in requests.values())
    status_5xx = sum(n for s in tally.statuses.values() for code, n in s.items() if code >= 500)
    renewals = [line for line in (worker_log or "").splitlines() if "renewals:" in line]
    invoiced = sum(int(m) for m in re.findall(r"renewals: (\d+) invoiced", "\n".join(renewals)))
    checks = {
        "no_5xx": status_5xx == 0,
        "every_request_answered": not tally.transport_errors,
        "no_unexpected_answers": not tally.unexpected,
        "no_lost_writes": not write_problems,
        "read_your_writes": not tally.stale_reads,
        "ledger_adds_up": not ledger_problems,
        "worker_ran_cleanly": not worker_failed and "Traceback" not in (worker_log or ""),
    }
    return {
        "database": database,
        "users": users,
        "duration_s": duration,
        "elapsed_s": round(elapsed, 1),
        "think_s": think,
        "server": f"gunicorn -w {web_workers} (sync workers), 127.0.0.1",
        "seed_s": round(seed_seconds, 1),
        "requests_total": total,
        "requests_per_s": round(total / elapsed, 1) if elapsed else None,
        "requests": requests,
        "status_5xx": status_5xx,
        "transport_errors": dict(tally.transport_errors),
        "email_copies_queued": sum(u.email_copies for u in accounts),
        "cards_at_end": sum(len(u.cards) for u in accounts),
        "worker": {"passes": len(renewals), "renewals_invoiced": invoiced} if worker_log is not None else None,
        "ledger": ledger_figures,
        "checks": checks,
        "passed": all(checks.values()),
        "problems": {"server_errors": tally.server_errors[:20], "unexpected": tally.unexpected[:20],
                     "lost_writes": write_problems[:20], "stale_reads": tally.stale_reads[:20],
                     "ledger": ledger_problems[:20],
                     "worker": [l for l in (worker_log or "").splitlines() if "Error" in l or "Traceback" in l][:20]},
    }


def format_table(summary: dict) -> str:
    lines = [f"{summary['users']} users for {summary['duration_s']:g}s on {summary['database']} "
             f"({summary['server']}): {summary['requests_total']} requests, {summary['requests_per_s']} req/s"]
    for kind, figures in summary["requests"].items():
        lines.append(f"  {kind:<12} {figures['total']:>6}  p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms  "
                     f"{figures['by_status']}")
    for name, ok in summary["checks"].items():
        lines.append(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return "\n".join(lines)


def main(*, json_path: str | None = None, **options) -> bool:
    summary = run(**options)
    write_report(summary, format_table(summary), json_path)
    return summary["passed"]


def _run_in_own_loop(coroutine) -> None:
    """Run the users' event loop in a thread of its own: the caller may already have a loop running in this
    thread (a test run that also drives a browser), and asyncio allows one per thread."""
    import threading

    failure: list[BaseException] = []

    def main():
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # handed back to the caller below
            failure.append(exc)

    thread = threading.Thread(target=main, name="load-users")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
