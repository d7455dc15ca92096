"""Bench and load-test data, written through the production services (invoices through build/issue) except
for the sandbox's saved cards, which go straight into its books: thousands of cards through the setup-intent
flow would measure seeding, not the portal."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..auth.passwords import hash_password
from ..billing.invoicing.invoices import build_subscription_invoice, issue_invoice, mark_paid
from ..billing.invoicing.seller import Seller
from ..db import Database
from ..models import Account, CreditEntry, PaymentAttempt, Plan, SandboxObject, Subscription, User
from ..models import PaymentMethod as Card
from .customers import User as LoadUser

PASSWORD = "bench-password"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
INVOICES_PER_ACCOUNT = 20  # each load-test account's history


def add_account(session, name: str, email: str, password_hash: str) -> Account:
    account = Account(name=name, billing_email=f"billing+{email}", address_line1="1 Main St", city="Boston",
                      postal_code="02101", region="MA", country="US")
    session.add(account)
    session.flush()
    session.add(User(account_id=account.id, email=email, password_hash=password_hash))
    return account


def add_sandbox_card(session, account: Account, n: int, *, default: bool) -> Card:
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
                                             period_end=start + timedelta(days=30), seller=seller, now=start)
        issue_invoice(session, invoice, account, seller, now=start)
        mark_paid(invoice, amount_cents=invoice.total_cents, now=start, payment_method_label="Visa •••• 4242",
                  transaction_id=f"ch_bench_{i}")
    session.commit()


def seed_due_subscriptions(database: Database, plan: Plan, count: int, *, tag: str, end: datetime) -> None:
    password = hash_password(PASSWORD)
    with database.session() as session:
        plan = session.merge(plan)
        for i in range(count):
            account = add_account(session, f"Renewal {tag} {i}", f"renew-{tag}-{i}@bench.example", password)
            add_sandbox_card(session, account, 0, default=True)
            session.add(Subscription(account_id=account.id, plan=plan, status="active",
                                     current_period_start=end - timedelta(days=30), current_period_end=end))
        session.commit()



def seed_users(database, seller, count: int, *, now: datetime) -> list[LoadUser]:
    """Accounts for the users. Even-numbered accounts are due for renewal now (the worker renews them
    during the run), odd ones next month; every account has 300 cents of credit, which a renewal uses."""
    password = hash_password(PASSWORD)
    users = []
    with database.session() as session:
        plan = Plan(code="load-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
        session.add(plan)
        session.flush()
        for i in range(count):
            email = f"load{i}@load.example"
            account = add_account(session, f"Load Customer {i}", email, password)
            cards = [add_sandbox_card(session, account, n, default=n == 0) for n in range(3)]
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
            users.append(LoadUser(index=i, email=email, account_id=account.id, cards={c.id for c in cards},
                              default=cards[0].id))
        session.commit()
    return users

