"""Test helpers: factories that go through the real services, and a client that behaves like a browser
(it carries the CSRF token of the last page, as a form would), and a runner for concurrency tests that
collects every thread's outcome, and a local HTTP stand-in for an outside service."""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import time
from dataclasses import dataclass, replace
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from portal.auth.passwords import hash_password
from portal.billing.payment_methods import cards
from portal.audit import Actor
from portal.billing.collecting.dunning import RetryPolicy
from portal.models import Account, Plan, Subscription, User, utcnow
from portal.payments.gateway import CardDetails

PASSWORD = "correct horse battery staple"
# Tests that start several processes of their own (gunicorn workers, renewal workers, wrk) and keep the cores
# busy: under pytest-xdist (`--dist loadgroup`) they all run on one worker, one after another, and while one
# runs the other workers wait (tests/conftest.py, `_own_processes_run_alone`), so a short load test is never
# starved of CPU by the rest of the suite.
OWN_PROCESSES_GROUP = "own-processes"
OWN_PROCESSES = pytest.mark.xdist_group(OWN_PROCESSES_GROUP)
# The default retry schedule (days 3 and 7), passed to services the way the app passes its settings' one.
POLICY = RetryPolicy()
_HASH = None


def password_hash() -> str:
    # argon2id is deliberately slow; hash once per test run.
    global _HASH
    if _HASH is None:
        _HASH = hash_password(PASSWORD)
    return _HASH


def make_customer(session, *, email="ada@example.com", name="Acme Analytics Inc.", billing_email="billing@acme.example",
                  country="US", **account_fields) -> tuple[Account, User]:
    account = Account(name=name, billing_email=billing_email, country=country, **account_fields)
    session.add(account)
    session.flush()
    user = User(account_id=account.id, email=email, name="Ada Lovelace", password_hash=password_hash())
    session.add(user)
    session.commit()
    return account, user


def make_api_key(session, *, name="backend") -> str:
    """A live API key for the server-to-server API, made by the service the CLI uses; returns the key."""
    from portal.auth import api_keys
    from portal.models import utcnow

    return api_keys.create(session, name=name, now=utcnow())[1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_staff(session, *, email="sam@support.example") -> User:
    user = User(account_id=None, email=email, name="Sam Support", password_hash=password_hash(), role="staff")
    session.add(user)
    session.commit()
    return user


def with_product_in_front(settings):
    """The settings of a portal in front of which runs the product "Acme App" at https://app.example.com, the
    one origin its users may be sent back to."""
    return replace(settings, allowed_return_origins=("https://app.example.com",), product_name="Acme App")


def make_plan(session, *, code="pro-monthly", price_cents=2000, interval="month", currency="USD") -> Plan:
    plan = session.query(Plan).filter_by(code=code).one_or_none()
    if plan is None:
        plan = Plan(code=code, name="Pro", interval=interval, price_cents=price_cents, currency=currency)
        session.add(plan)
        session.commit()
    return plan


def make_subscription(session, account: Account, *, status="active", plan: Plan | None = None,
                      period_end: datetime | None = None) -> Subscription:
    plan = plan or make_plan(session)
    end = period_end or datetime(2026, 12, 1, tzinfo=timezone.utc)
    sub = Subscription(account_id=account.id, plan=plan, status=status, current_period_start=end - timedelta(days=30),
                       current_period_end=end)
    session.add(sub)
    session.commit()
    return sub


def subscription_section(body: str) -> str:
    """The Current subscription section of Billing details, from the page or its HTMX partial (the section
    holds sections of its own, so it ends where the next top-level one begins)."""
    return re.search(r'<section id="subscription".*?</section>\s*(?=<section|</main|$)', body, re.S).group(0)


def reload_subscription(session, sub: Subscription) -> Subscription:
    """The subscription as the database holds it now, not as this session last read it."""
    session.expire_all()
    return session.get(Subscription, sub.id)


def add_card(session, gateway, account: Account, *, number="4242424242424242", exp_month=12, exp_year=2030,
             name="Ada Lovelace", default=False, key=None):
    """Save a test card through the same services the page uses (the sandbox confirms at once)."""
    import secrets

    intent = cards.start_card_setup(session, gateway, account.id, save_as_default=default,
                                    idempotency_key=key or f"test-{secrets.token_hex(8)}",
                                    card=CardDetails(number=number, exp_month=exp_month, exp_year=exp_year,
                                                     cvc="1234" if number.startswith("3") else "123",
                                                     cardholder_name=name))
    if intent.status == "requires_action":
        gateway.authenticate_setup_intent(intent.id, approve=True)
    return cards.complete_card_setup(session, gateway, account.id, intent.id, actor=Actor.system(), now=utcnow())


def add_sandbox_method(session, account: Account, *, type="us_bank_account", charge=None, default=False,
                       backup=False, verification="verified", last4=None):
    """A saved method of another type, written straight into the sandbox's books and our table, the way the
    sandbox describes one (``type``, and ``charge``: ``debit_succeeds`` / ``debit_fails`` for bank accounts,
    a card's test outcome such as ``ok`` or ``card_declined`` otherwise)."""
    import secrets

    from portal.models import PaymentMethod, SandboxObject

    if account.processor_customer_id is None:
        account.processor_customer_id = f"cus_sbx_test{secrets.token_hex(6)}"
        session.add(SandboxObject(id=account.processor_customer_id, kind="customer",
                                  data={"email": account.billing_email, "name": account.name,
                                        "account_id": account.id, "default_payment_method": None}))
    bank = type in ("us_bank_account", "sepa_debit")
    last4 = last4 or {"us_bank_account": "6789", "sepa_debit": "3000", "card": "0341"}.get(type, "")
    fields = {"type": type, "brand": "bank" if bank else ("paypal" if type == "paypal" else "visa"), "last4": last4,
              "exp_month": 0 if type != "card" else 12, "exp_year": 0 if type != "card" else 2030,
              "name": "Ada Lovelace", "email": "ada@example.com" if type == "paypal" else "",
              "bank_name": {"us_bank_account": "STRIPE TEST BANK", "sepa_debit": "Test Bank AG"}.get(type, ""),
              "country": {"us_bank_account": "US", "sepa_debit": "DE"}.get(type, "")}
    pm_id = f"pm_sbx_test{secrets.token_hex(8)}"
    session.add(SandboxObject(id=pm_id, kind="payment_method", data={
        **fields, "customer": account.processor_customer_id, "detached": False,
        "charge": charge or ("debit_succeeds" if bank else "ok")}))
    if default:
        session.query(PaymentMethod).filter_by(account_id=account.id, is_default=True).update({"is_default": False})
    method = PaymentMethod(account_id=account.id, processor_id=pm_id, type=type, brand=fields["brand"],
                           last4=last4, exp_month=fields["exp_month"], exp_year=fields["exp_year"],
                           cardholder_name="Ada Lovelace", email=fields["email"], bank_name=fields["bank_name"],
                           country=fields["country"], verification=verification, is_default=default,
                           is_backup=backup, mandate_reference="MANDATE-TEST-1" if type == "sepa_debit" else "")
    session.add(method)
    session.commit()
    return method


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


class Browser:
    """Wraps Flask's test client: remembers the CSRF token of the last HTML page, like a real form."""

    def __init__(self, client):
        self.client = client
        self.token: str | None = None

    def _remember(self, response):
        if response.mimetype == "text/html":
            match = CSRF_RE.search(response.get_data(as_text=True))
            if match:
                self.token = match.group(1) or match.group(2)
        return response

    def get(self, url, *, htmx=False, **kwargs):
        headers = kwargs.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        return self._remember(self.client.get(url, headers=headers, **kwargs))

    def post(self, url, data=None, *, htmx=False, csrf=True, **kwargs):
        data = dict(data or {})
        if csrf:
            if self.token is None:
                self.get("/login")
            data.setdefault("csrf_token", self.token)
        headers = kwargs.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        return self._remember(self.client.post(url, data=data, headers=headers, **kwargs))

    def login(self, email="ada@example.com", password=PASSWORD):
        self.get("/login")
        response = self.post("/login", {"email": email, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)
        self.get("/billing")
        return response


def make_invoice(session, account, *, issued_at=None, status="open", amount_cents=2000, seller=None,
                 subscription=None, period_start=None):
    """An issued invoice for one line (a subscription period when ``subscription`` is given)."""
    from portal.billing.invoicing.invoices import apply_totals, issue_invoice, mark_paid
    from portal.billing.invoicing.seller import Seller
    from portal.config import load_settings
    from portal.models import Invoice, InvoiceLine

    seller = seller or Seller.from_settings(load_settings(demo=True))
    issued_at = issued_at or datetime(2026, 11, 1, tzinfo=timezone.utc)
    start = period_start or issued_at
    invoice = Invoice(account_id=account.id, subscription_id=subscription.id if subscription else None,
                      currency="USD", period_start=start, period_end=start + timedelta(days=30), status="draft")
    invoice.lines.append(InvoiceLine(position=0, description="Pro plan (monthly)", period_start=start,
                                     period_end=start + timedelta(days=30), quantity=1,
                                     unit_amount_cents=amount_cents, amount_cents=amount_cents))
    apply_totals(session, invoice, account, seller)
    session.add(invoice)
    issue_invoice(session, invoice, account, seller, now=issued_at)
    if status == "paid":
        mark_paid(invoice, amount_cents=invoice.total_cents, now=issued_at, payment_method_label="Visa •••• 4242",
                  transaction_id="ch_test_123")
    elif status == "void":
        session.flush()  # written as open first: a draft never goes straight to void
        invoice.status, invoice.voided_at = "void", issued_at
        invoice.status_version += 1
    session.commit()
    return invoice


def staff_browser_on(app, page: str) -> Browser:
    """A browser of its own, logged in as the staff member ``make_staff`` makes, that has opened ``page``
    (so its forms carry that page's CSRF token)."""
    browser = Browser(app.test_client())
    browser.login("sam@support.example")
    browser.get(page)
    return browser


def browser_at(app, address: str, *, forwarded_for: str | None = None) -> Browser:
    """A browser whose requests arrive from ``address``; with ``forwarded_for``, as a proxy at ``address``
    forwarding them with that X-Forwarded-For header."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return Browser(client)


@dataclass(frozen=True, eq=False)  # compared by identity: two threads may return equal values
class Outcome:
    """How one thread of ``run_concurrently`` ended: the value it returned, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        return f"Outcome(value={self.value!r})" if self.ok else f"Outcome(error={self.error!r})"


def run_concurrently(fn: Callable[[int], Any], n: int, *, timeout: float = 120) -> list[Outcome]:
    """Call ``fn(0)`` ... ``fn(n - 1)`` in ``n`` threads released together by a barrier, and return every
    thread's outcome in that order.

    A thread's exception is its outcome, never lost in the thread: the caller asserts on all of them, so an
    unexpected error fails the test instead of hiding behind the threads that succeeded. ``timeout`` only
    stops a deadlock from hanging the run; a thread still running by then fails the test.
    """
    barrier = threading.Barrier(n)
    outcomes: list[Outcome | None] = [None] * n

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            outcomes[index] = Outcome(value=fn(index))
        except BaseException as exc:  # noqa: BLE001 - every exception is an outcome to assert on
            outcomes[index] = Outcome(error=exc)

    threads = [threading.Thread(target=run, args=(i,), name=f"concurrent-{i}", daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [thread.name for thread in threads if thread.is_alive()]
    if alive:
        pytest.fail(f"{len(alive)} of {n} threads still running after {timeout} s (deadlocked?): {alive}")
    return outcomes  # type: ignore[return-value] - every thread that ended set its slot


PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class StandIn:
    """A local HTTP server standing in for an outside service (a processor, VIES). Each POST is answered by
    ``respond(path, body)`` in the server's thread: ``(status, payload)`` (``payload`` bytes of JSON, or None
    for none), or None to close without answering. A ``respond`` that waits on ``release`` makes the service
    slow; ``stop`` sets it, so stopping never waits for a late answer."""

    def __init__(self, respond: Callable[[str, bytes], tuple[int, bytes | None] | None], monkeypatch):
        for name in PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)  # the stand-in is local; never reach it through a proxy
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                answer = respond(self.path, self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if answer is None:
                    return
                status, payload = answer
                try:
                    self.send_response(status)
                    if payload is not None:
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if payload is not None:
                        self.wfile.write(payload)
                except OSError:  # a client that timed out has gone, as it should have; nobody to answer
                    pass

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_webhook_verifier():
    """The webhook verification snippet exactly as the README shows it: the README's one Python block that
    defines ``verify``, run as it is, so the text a product's developers copy is the code the tests check."""
    blocks = [block for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
              if "def verify(" in block]
    assert len(blocks) == 1, "the README shows one webhook verification snippet"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    return namespace["verify"]


class StatementLog(list):
    """The SQL statements sent while it is open (``with statements(database) as log:``)."""

    def on(self, table: str) -> list[str]:
        """The SELECTs that read ``table``."""
        pattern = re.compile(rf"\bFROM\s+{table}\b|\bJOIN\s+{table}\b", re.I)
        return [s for s in self if s.lstrip().upper().startswith("SELECT") and pattern.search(s)]


class statements:
    """Counts what reaches the database (SQLAlchemy's ``before_cursor_execute``): a count, never a time."""

    def __init__(self, database):
        self.engine = database.engine
        self.log = StatementLog()

    def _record(self, conn, cursor, statement, *args):
        self.log.append(statement)

    def __enter__(self) -> StatementLog:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.log

    def __exit__(self, *exc):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._record)
