"""Deterministic demo data: the same accounts, cards and subscription every time, dated from today."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..auth.passwords import hash_password
from ..billing.payment_methods import cards
from ..audit import Actor
from ..billing.collecting.collection import open_attempt
from ..billing.invoicing.invoices import apply_totals, build_subscription_invoice, issue_invoice, mark_paid
from ..billing.invoicing.seller import Seller
from ..models import Account, Invoice, InvoiceLine, Plan, Subscription, User, utcnow
from ..payments.gateway import CardDetails, PaymentGateway

DEMO_PASSWORD = "demo"
DEMO_LOGINS = [("customer@example.com", "customer, US, 14 months of invoices"),
               ("germany@example.com", "customer in Germany with a valid VAT number (reverse charge)"),
               ("france@example.com", "customer in France without a VAT number (French VAT)"),
               ("pastdue@example.com", "customer whose renewal failed: Past due, a retry scheduled"),
               ("annual@example.com", "customer on an annual plan: may add a US bank account"),
               ("support@example.com", "support staff")]


DEMO_KEY_NAME = "portal demo"


def demo_api_key(session: Session, *, now: datetime) -> str:
    """A fresh API key for trying the API against the demo, printed at start-up. Only hashes are kept, so
    each start makes a new one and revokes the one it printed last time."""
    from ..auth import api_keys
    from ..models import ApiKey

    for old in session.scalars(select(ApiKey).where(ApiKey.name == DEMO_KEY_NAME, ApiKey.revoked_at.is_(None))):
        api_keys.revoke(session, old.id, now=now)
    return api_keys.create(session, name=DEMO_KEY_NAME, now=now)[1]


def add_months(day: date, months: int) -> date:
    """Same day of month ``months`` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    import calendar

    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def seed(session: Session, gateway: PaymentGateway, *, today: date, settings=None, database=None) -> bool:
    """Create the demo accounts unless they exist. Returns False when there was nothing to do."""
    if session.scalar(select(User).where(User.email == "customer@example.com")):
        return False
    password = hash_password(DEMO_PASSWORD)
    monthly = Plan(code="pro-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
    annual = Plan(code="pro-annual", name="Pro", interval="year", price_cents=20000, currency="USD")
    # A cheaper and a dearer plan beside Pro, so Manage plan shows a downgrade (at the period end) and an
    # upgrade (prorated, charged now); Enterprise is sold by the sales team only, so customers don't see it.
    session.add_all([monthly, annual,
                     Plan(code="basic-monthly", name="Basic", interval="month", price_cents=900, currency="USD"),
                     Plan(code="business-monthly", name="Business", interval="month", price_cents=4900,
                          currency="USD"),
                     Plan(code="enterprise-annual", name="Enterprise", interval="year", price_cents=240000,
                          currency="USD", self_serve=False)])

    # external_id: the id the demo's product would know it by, so the API walkthrough can read its invoices.
    acme = Account(external_id="acme", name="Acme Analytics Inc.", billing_email="billing@acme.example",
                   address_line1="100 Main Street",
                   city="Springfield", postal_code="01101", region="MA", country="US")
    session.add(acme)
    session.flush()
    session.add(User(account_id=acme.id, email="customer@example.com", name="Ada Lovelace", password_hash=password))
    session.add(User(account_id=None, email="support@example.com", name="Sam Support", password_hash=password,
                     role="staff"))
    period_start = today.replace(day=1)
    session.add(Subscription(account_id=acme.id, plan_id=None, plan=monthly, status="active",
                             current_period_start=_midnight(period_start),
                             current_period_end=_midnight(add_months(period_start, 1))))
    session.commit()

    demo_cards = [
        # (number, month, year, name, default)
        ("4242424242424242", 8, today.year + 3, "Ada Lovelace", True),
        ("5555555555554444", 11, today.year + 2, "Ada Lovelace", False),
        # Expires at the end of this month, so the page shows "Expires soon".
        ("378282246310005", today.month, today.year, "A. Lovelace", False),
    ]
    for i, (number, month, year, name, default) in enumerate(demo_cards):
        _save_card(session, gateway, acme.id, number, month, year, name, default, key=f"demo-setup-{acme.id}-{i}")
    seller = Seller.from_settings(settings) if settings else None
    if seller is None:
        return True
    # Each account's invoices are written as steps and issued together in date order below, so invoice
    # numbers follow their dates across accounts as they would have in real life.
    steps = _history(session, gateway, acme, monthly, seller, months=14, today=today, void_month=5,
                     open_extra="Onboarding workshop (2 hours)")

    berlin = _customer(session, password, email="germany@example.com", person="Jonas Becker",
                       name="Berliner Datenwerk GmbH", billing_email="rechnung@datenwerk.example",
                       address_line1="Friedrichstraße 68", city="Berlin", postal_code="10117", country="DE",
                       vat_number="DE136695976", vat_status="valid")
    _save_card(session, gateway, berlin.id, "5555555555554444", 5, today.year + 2, "Jonas Becker", True,
               key=f"demo-setup-{berlin.id}")
    _subscribe(session, berlin, monthly, today)
    steps += _history(session, gateway, berlin, monthly, seller, months=3, today=today)

    paris = _customer(session, password, email="france@example.com", person="Camille Dupont",
                      name="Atelier Dupont", billing_email="compta@atelier-dupont.example",
                      address_line1="12 rue de Rivoli", city="Paris", postal_code="75004", country="FR")
    _save_card(session, gateway, paris.id, "4242424242424242", 9, today.year + 1, "Camille Dupont", True,
               key=f"demo-setup-{paris.id}")
    _subscribe(session, paris, monthly, today)
    steps += _history(session, gateway, paris, monthly, seller, months=3, today=today)

    # On an annual plan, the only kind that may save a bank account (PORTAL_BANK_ACCOUNT_INTERVALS): US
    # dollars, so Add payment method → Bank account offers a US account (ACH) with the sandbox's test numbers.
    hopper = _customer(session, password, email="annual@example.com", person="Grace Hopper", name="Hopper Labs LLC",
                       billing_email="ap@hopperlabs.example", address_line1="350 Fifth Avenue", city="New York",
                       region="NY", postal_code="10118", country="US")
    _save_card(session, gateway, hopper.id, "4242424242424242", 4, today.year + 3, "Grace Hopper", True,
               key=f"demo-setup-{hopper.id}")
    _subscribe(session, hopper, annual, today)

    if database is not None:
        steps.append(_past_due_customer(session, database, gateway, password, monthly, seller, today=today,
                                        settings=settings))
    for _, step in sorted(steps, key=lambda item: item[0]):
        step()
    return True


def _past_due_customer(session: Session, database, gateway: PaymentGateway, password: str, plan: Plan,
                       seller: Seller, *, today: date, settings=None):
    """A renewal two days ago failed on a card that saves fine but declines charges (…0341): the
    subscription is Past due, the invoice Open, and the first automatic retry is tomorrow."""
    from ..billing.collecting.dunning import RetryPolicy
    from ..billing.subscriptions.renewals import run_renewals

    # The demo's own schedule, so "the first automatic retry is tomorrow" matches what its worker will do.
    policy = RetryPolicy(settings.retry_schedule) if settings is not None else RetryPolicy()
    account = _customer(session, password, email="pastdue@example.com", person="Pat Doe", name="Late Payers Ltd",
                        billing_email="accounts@latepayers.example", address_line1="5 Harbour Road",
                        city="Cork", postal_code="", country="IE")
    _save_card(session, gateway, account.id, "4000000000000341", 3, today.year + 2, "Pat Doe", True,
               key=f"demo-setup-{account.id}")
    renewal_day = _midnight(today) - timedelta(days=2)
    session.add(Subscription(account_id=account.id, plan=plan, status="active",
                             current_period_start=_midnight(add_months(renewal_day.date(), -1)),
                             current_period_end=renewal_day))
    session.commit()
    at = renewal_day + timedelta(minutes=5)
    return at, lambda: run_renewals(database, gateway, seller, now=at, policy=policy)


def _customer(session: Session, password: str, *, email: str, person: str, **fields) -> Account:
    account = Account(**fields)
    session.add(account)
    session.flush()
    session.add(User(account_id=account.id, email=email, name=person, password_hash=password))
    session.commit()
    return account


def _subscribe(session: Session, account: Account, plan: Plan, today: date) -> Subscription:
    start = today.replace(day=1)
    sub = Subscription(account_id=account.id, plan=plan, status="active", current_period_start=_midnight(start),
                       current_period_end=_midnight(add_months(start, 12 if plan.interval == "year" else 1)))
    session.add(sub)
    session.commit()
    return sub


def _save_card(session: Session, gateway: PaymentGateway, account_id, number, month, year, name, default, *, key):
    card = CardDetails(number=number, exp_month=month, exp_year=year,
                       cvc="1234" if number.startswith("3") else "123", cardholder_name=name)
    intent = cards.start_card_setup(session, gateway, account_id, card=card, save_as_default=default,
                                    idempotency_key=key)
    cards.complete_card_setup(session, gateway, account_id, intent.id, actor=Actor.system(), now=utcnow())


def _history(session: Session, gateway: PaymentGateway, account: Account, plan: Plan, seller: Seller, *, months: int,
             today: date, void_month: int | None = None, open_extra: str | None = None) -> list:
    """Monthly invoices for the last ``months`` periods up to the current one, paid by the default card;
    optionally one voided (and re-issued) and one open one-off invoice. Returned as (moment, step) pairs for
    the caller to run in date order."""
    subscription = session.query(Subscription).filter_by(account_id=account.id).one()
    card = cards.default_card(session, account.id)
    first = add_months(today.replace(day=1), -(months - 1))

    def month(start: date, voided: bool) -> None:
        issued = _midnight(start)
        invoice = build_subscription_invoice(session, account, subscription, plan, period_start=issued,
                                             period_end=_midnight(add_months(start, 1)), seller=seller, now=issued)
        if voided:
            # Issued with a mistake, voided, and replaced by a one-off invoice for the same period.
            invoice.subscription_id = None
            issue_invoice(session, invoice, account, seller, now=issued)
            session.flush()  # written as open first: a draft never goes straight to void
            invoice.status, invoice.voided_at, invoice.void_reason = "void", issued, "Issued twice by mistake"
            invoice.status_version += 1
            session.commit()
            invoice = build_subscription_invoice(session, account, subscription, plan, period_start=issued,
                                                 period_end=_midnight(add_months(start, 1)), seller=seller, now=issued)
        issue_invoice(session, invoice, account, seller, now=issued)
        # Written first, as a renewal does; recorded by hand so the history sends no receipts today.
        attempt = open_attempt(session, invoice, trigger="renewal", now=issued)
        session.commit()
        result = gateway.charge(customer_id=account.processor_customer_id, payment_method_id=card.processor_id,
                                amount_cents=invoice.total_cents, currency=invoice.currency,
                                idempotency_key=attempt.idempotency_key,
                                metadata={"invoice_id": invoice.id, "invoice_number": invoice.number,
                                          "attempt": attempt.attempt_number})
        paid_at = issued + timedelta(minutes=3)
        attempt.status, attempt.processor_payment_id, attempt.completed_at = result.status, result.payment_id, paid_at
        mark_paid(invoice, amount_cents=result.amount_cents, now=paid_at, payment_method_label=card.label,
                  transaction_id=result.charge_id or result.payment_id)
        session.commit()

    def one_off(issued: datetime) -> None:
        invoice = Invoice(account_id=account.id, currency=plan.currency, status="draft")
        invoice.lines.append(InvoiceLine(position=0, description=open_extra, quantity=1, unit_amount_cents=15000,
                                         amount_cents=15000))
        apply_totals(session, invoice, account, seller)
        session.add(invoice)
        issue_invoice(session, invoice, account, seller, now=issued)
        invoice.due_at = issued + timedelta(days=14)
        session.commit()

    steps = []
    for i in range(months):
        start = add_months(first, i)
        steps.append((_midnight(start), lambda start=start, voided=i == void_month: month(start, voided)))
    if open_extra:
        issued = _midnight(today) - timedelta(days=3)
        steps.append((issued, lambda: one_off(issued)))
    return steps