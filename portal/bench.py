"""``portal bench``: the project's performance figures, measured on a fresh database.

Seeding goes through the same services as production (cards through the sandbox processor, invoices
through build/issue), so the figures describe the code that runs, not a shortcut.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import event

from .auth.passwords import hash_password
from .billing.invoices import build_subscription_invoice, issue_invoice, mark_paid
from .billing.renewals import run_renewals
from .billing.seller import Seller
from .config import load_settings
from .db import Database
from .models import Account, Invoice, Plan, SandboxObject, Subscription, User
from .models import PaymentMethod as Card
from .payments.sandbox_gateway import SandboxGateway

PASSWORD = "bench-password"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _account(session, name: str, email: str, password_hash: str) -> Account:
    account = Account(name=name, billing_email=f"billing+{email}", address_line1="1 Main St", city="Boston",
                      postal_code="02101", region="MA", country="US")
    session.add(account)
    session.flush()
    session.add(User(account_id=account.id, email=email, password_hash=password_hash))
    return account


def _sandbox_card(session, account: Account, n: int, *, default: bool) -> Card:
    """A saved test card written straight into the sandbox's books (bench seeding only: thousands of
    cards through the setup-intent flow would measure seeding, not the portal)."""
    customer_id, pm_id = f"cus_sbx_bench{account.id}", f"pm_sbx_bench{account.id}_{n}"
    if account.processor_customer_id is None:
        session.add(SandboxObject(id=customer_id, kind="customer",
                                  data={"email": account.billing_email, "name": account.name,
                                        "account_id": account.id, "default_payment_method": pm_id}))
        account.processor_customer_id = customer_id
    session.add(SandboxObject(id=pm_id, kind="payment_method",
                              data={"customer": customer_id, "brand": "visa", "last4": f"{4242 + n:04d}"[-4:],
                                    "exp_month": 12, "exp_year": 2031, "name": "Bench", "charge": "ok",
                                    "detached": False}))
    card = Card(account_id=account.id, processor_id=pm_id, brand="visa", last4=f"{4242 + n:04d}"[-4:], exp_month=12,
                exp_year=2031, cardholder_name="Bench", is_default=default)
    session.add(card)
    return card


def seed_invoices(session, seller: Seller, account: Account, plan: Plan, count: int) -> None:
    # The history is in the past; the live period ends far ahead so the renewal figure counts only its own.
    sub = Subscription(account_id=account.id, plan=plan, status="active", current_period_start=T0,
                       current_period_end=datetime(2099, 1, 1, tzinfo=timezone.utc))
    session.add(sub)
    session.flush()
    for i in range(count):
        start = T0 + timedelta(days=i)
        invoice = build_subscription_invoice(session, account, sub, plan, period_start=start,
                                             period_end=start + timedelta(days=30), seller=seller)
        issue_invoice(session, invoice, account, seller, now=start)
        mark_paid(invoice, amount_cents=invoice.total_cents, now=start, payment_method_label="Visa •••• 4242",
                  transaction_id=f"ch_bench_{i}")
    session.commit()


def count_page_queries(app, database: Database, email: str) -> tuple[int, int]:
    """SQL statements and bytes for one logged-in GET /billing."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    client.get("/billing")  # warm caches (templates, seller)
    statements: list[str] = []
    listener = lambda conn, cursor, statement, *a: statements.append(statement)  # noqa: E731
    event.listen(database.engine, "before_cursor_execute", listener)
    try:
        response = client.get("/billing")
    finally:
        event.remove(database.engine, "before_cursor_execute", listener)
    assert response.status_code == 200, response.status_code
    return len(statements), len(response.get_data())


def measure_pdf(database: Database, invoice_ids: list[int]) -> tuple[float, float]:
    from .billing.pdf import invoice_pdf, render_invoice_pdf

    cold, cached = [], []
    with database.session() as session:
        for invoice_id in invoice_ids:
            invoice = session.get(Invoice, invoice_id)
            started = time.perf_counter()
            render_invoice_pdf(invoice)
            cold.append((time.perf_counter() - started) * 1000)
        for invoice_id in invoice_ids:
            invoice_pdf(session, session.get(Invoice, invoice_id))  # fill the cache
        session.commit()
        for invoice_id in invoice_ids:
            started = time.perf_counter()
            invoice_pdf(session, session.get(Invoice, invoice_id))
            cached.append((time.perf_counter() - started) * 1000)
    return statistics.median(cold), statistics.median(cached)


def measure_renewals(database: Database, seller: Seller, plan: Plan, count: int) -> float:
    gateway = SandboxGateway(database)
    password = hash_password(PASSWORD)
    end = datetime(2026, 12, 1, tzinfo=timezone.utc)
    with database.session() as session:
        plan = session.merge(plan)
        for i in range(count):
            account = _account(session, f"Renewal {i}", f"renew{i}@bench.example", password)
            _sandbox_card(session, account, 0, default=True)
            session.add(Subscription(account_id=account.id, plan=plan, status="active",
                                     current_period_start=end - timedelta(days=30), current_period_end=end))
        session.commit()
    stats = run_renewals(database, gateway, seller, now=end + timedelta(hours=1))
    if stats.invoiced != count or stats.paid != count:
        raise RuntimeError(f"expected {count} paid renewals, got {stats}")
    return stats.invoiced / stats.seconds


def run(*, database_url: str | None = None, renewals: int = 1000, pdf_samples: int = 15) -> dict:
    from . import create_app

    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    settings = load_settings(demo=True, overrides={"instance_path": workdir, "secret_key": "bench",
                                                   "database_url": database_url or f"sqlite:///{workdir / 'bench.db'}"})
    database = Database(settings.database_url)
    database.upgrade()
    seller = Seller.from_settings(settings)
    app = create_app(replace(settings, testing=True), database=database)
    password = hash_password(PASSWORD)
    with database.session() as session:
        plan = Plan(code="bench-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
        session.add(plan)
        small = _account(session, "Five Invoices Inc.", "five@bench.example", password)
        large = _account(session, "Two Thousand Invoices Inc.", "many@bench.example", password)
        for n in range(10):
            _sandbox_card(session, large, n, default=n == 0)
        _sandbox_card(session, small, 0, default=True)
        session.commit()
        seed_invoices(session, seller, small, plan, 5)
        seed_invoices(session, seller, large, plan, 2000)
        sample_ids = [i.id for i in session.query(Invoice).filter_by(account_id=small.id)]
        sample_ids += [i.id for i in session.query(Invoice).filter_by(account_id=large.id).limit(pdf_samples - 5)]
        session.expunge(plan)
    q5, bytes5 = count_page_queries(app, database, "five@bench.example")
    q2000, bytes2000 = count_page_queries(app, database, "many@bench.example")
    pdf_cold, pdf_cached = measure_pdf(database, sample_ids)
    rate = measure_renewals(database, seller, plan, renewals)
    return {
        "database": database.engine.dialect.name,
        "queries_billing_page_5": q5,
        "queries_billing_page_2000": q2000,
        "billing_page_bytes_2000": bytes2000,
        "pdf_ms_p50": round(pdf_cold, 1),
        "pdf_cached_ms_p50": round(pdf_cached, 2),
        "renewals_per_s": round(rate, 1),
        "renewals_measured": renewals,
    }


def main(database_url: str | None = None, renewals: int = 1000) -> None:
    print(json.dumps(run(database_url=database_url, renewals=renewals), indent=2))
