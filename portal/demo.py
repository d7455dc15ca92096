"""Deterministic demo data: the same accounts, cards and subscription every time, dated from today."""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from .auth.passwords import hash_password
from .billing import cards
from .billing.audit import Actor
from .models import Account, Plan, Subscription, User
from .payments.gateway import CardDetails, PaymentGateway

DEMO_PASSWORD = "demo"
DEMO_LOGINS = [("customer@example.com", "customer"), ("support@example.com", "support staff")]


def add_months(day: date, months: int) -> date:
    """Same day of month ``months`` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    import calendar

    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def seed(session: Session, gateway: PaymentGateway, *, today: date) -> bool:
    """Create the demo accounts unless they exist. Returns False when there was nothing to do."""
    if session.scalar(select(User).where(User.email == "customer@example.com")):
        return False
    password = hash_password(DEMO_PASSWORD)
    monthly = Plan(code="pro-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
    annual = Plan(code="pro-annual", name="Pro", interval="year", price_cents=20000, currency="USD")
    session.add_all([monthly, annual])

    acme = Account(name="Acme Analytics Inc.", billing_email="billing@acme.example", address_line1="100 Main Street",
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

    system = Actor.system()
    demo_cards = [
        # (number, month, year, name, default)
        ("4242424242424242", 8, today.year + 3, "Ada Lovelace", True),
        ("5555555555554444", 11, today.year + 2, "Ada Lovelace", False),
        # Expires at the end of this month, so the page shows "Expires soon".
        ("378282246310005", today.month, today.year, "A. Lovelace", False),
    ]
    for i, (number, month, year, name, default) in enumerate(demo_cards):
        card = CardDetails(number=number, exp_month=month, exp_year=year,
                           cvc="1234" if number.startswith("3") else "123", cardholder_name=name)
        intent = cards.start_card_setup(session, gateway, acme.id, card=card, save_as_default=default,
                                        idempotency_key=f"demo-setup-{acme.id}-{i}")
        cards.complete_card_setup(session, gateway, acme.id, intent.id, actor=system)
    return True
