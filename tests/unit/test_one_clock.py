"""One clock: a worker pass told what time it is (``portal worker --now``) stamps every row it writes with
that time, never with the machine's.

The pass runs far from today, so any column filled from the real clock (a forgotten ``now``, a column
default doing the stamping) shows up as a value close to the real current time.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import DateTime, select, update
from sqlalchemy.types import TypeDecorator

from portal.audit import Actor
from portal.billing.collecting import credits
from portal.models import (Base, CreditEntry, Invoice, InvoicePdf, OutboxMessage, PaymentAttempt, WebhookDelivery,
                           WebhookEvent)
from portal.notifications.webhook_endpoints import create_endpoint
from portal.payments import build_gateway
from portal.worker import run_once

from ..helpers import add_card, make_customer, make_subscription

NOW = datetime(2031, 3, 4, 12, 0, tzinfo=timezone.utc)
SEEDED = datetime(2031, 2, 1, 9, 0, tzinfo=timezone.utc)
# The sandbox processor's own tables (sandbox_objects, sandbox_idempotency_keys) stand for the processor's
# servers, which keep their own time; they are not the portal's rows.
PROCESSOR_TABLES = {"sandbox_objects", "sandbox_idempotency_keys"}


def _is_datetime(column) -> bool:
    kind = column.type
    return isinstance(kind, DateTime) or (isinstance(kind, TypeDecorator) and isinstance(kind.impl, DateTime))


def datetime_columns():
    """Every date-time column of every table the models declare (not a hand-kept list)."""
    return [(table, column) for table in Base.metadata.sorted_tables if table.name not in PROCESSOR_TABLES
            for column in table.columns if _is_datetime(column)]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def backdate_everything(session) -> None:
    """The seeding went through the services of a request, at real time; make it look a month old so that
    only what the pass writes can be near the real clock."""
    for table, column in datetime_columns():
        session.execute(update(table).where(column.isnot(None)).values({column.name: SEEDED}))
    session.commit()


def seed(session, gateway):
    # A product whose receiver is down: every change writes an event, and each pass tries to deliver it.
    create_endpoint(session, url="http://127.0.0.1:9/hooks", event_types=None, now=SEEDED)
    # Pays at renewal with a card that expires this month (an expiry reminder), and has a credit to use up.
    payer, _ = make_customer(session, email="ada@example.com", billing_email="billing@acme.example",
                             region="MA", postal_code="01101")
    add_card(session, gateway, payer, number="4242424242424242", exp_month=3, exp_year=2031, default=True)
    credits.grant_credit(session, payer.id, amount_cents=500, reason="Outage in January", actor=Actor.system(),
                         now=SEEDED)
    make_subscription(session, payer, period_end=NOW - timedelta(hours=2))
    # Declines every charge: a failed renewal, a notice, a retry scheduled.
    decliner, _ = make_customer(session, email="bob@example.com", name="Late Payers Ltd",
                                billing_email="accounts@latepayers.example", region="MA", postal_code="01101")
    add_card(session, gateway, decliner, number="4000000000000341", default=True)
    make_subscription(session, decliner, period_end=NOW - timedelta(hours=2))
    session.commit()


def test_a_worker_pass_stamps_only_the_time_it_is_given(settings, database, session, seller):
    gateway = build_gateway(settings, database)  # as the CLI builds it
    seed(session, gateway)
    backdate_everything(session)

    run_once(settings, database, gateway, seller, now=NOW)
    run_once(settings, database, gateway, seller, now=NOW + timedelta(days=3))  # the first retry is due

    # The passes did what the scan below relies on: every kind of row a pass writes is there.
    session.expire_all()
    assert session.scalar(select(Invoice).where(Invoice.status == "paid")) is not None
    assert len(session.scalars(select(PaymentAttempt).where(PaymentAttempt.status == "failed")).all()) == 2
    assert session.scalar(select(CreditEntry).where(CreditEntry.amount_cents < 0)) is not None  # credit used
    assert {m.kind for m in session.scalars(select(OutboxMessage)) if m.status == "sent"} >= {
        "invoice_issued", "payment_received", "payment_failed", "card_expiring"}
    assert session.scalar(select(InvoicePdf)) is not None  # rendered to attach it
    assert {"invoice.paid", "invoice.payment_failed", "entitlements.updated"} <= set(
        session.scalars(select(WebhookEvent.type).where(WebhookEvent.created_at >= NOW)))
    assert session.scalar(select(WebhookDelivery).where(WebhookDelivery.attempts > 0)) is not None

    scanned = {f"{table.name}.{column.name}" for table, column in datetime_columns()}
    assert {"audit_events.occurred_at", "outbox_messages.next_attempt_at", "invoices.created_at",
            "credit_entries.created_at", "processor_events.created_at", "webhook_events.created_at",
            "webhook_deliveries.next_attempt_at"} <= scanned

    real_now = datetime.now(timezone.utc)
    stamped, near_real_clock = 0, []
    for table, column in datetime_columns():
        rows = session.execute(select(*table.primary_key.columns, column).where(column.isnot(None))).all()
        for *key, value in rows:
            if abs(_aware(value) - real_now) < timedelta(days=1):
                near_real_clock.append(f"{table.name}.{column.name} {key}: {value.isoformat()}")
            if NOW <= _aware(value) <= NOW + timedelta(days=40):
                stamped += 1
    assert near_real_clock == [], "\n".join(near_real_clock)
    assert stamped > 20  # the pass's own times were found: the scan reads the rows it should
