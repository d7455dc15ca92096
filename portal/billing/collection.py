"""Collecting an open invoice with the account's default card.

Three steps, never one: (1) commit a PaymentAttempt with its idempotency key, (2) ask the processor,
(3) commit the outcome. A crash after (2) leaves a pending attempt; ``settle_pending_attempts`` asks the
processor again with the same key, which answers with the first outcome instead of charging again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import Database
from ..models import Account, Invoice, PaymentAttempt, PaymentMethod, Subscription
from ..notifications import outbox
from ..payments.gateway import PaymentDetails, PaymentGateway, PaymentResult, ProcessorError, ProcessorUnavailable
from .invoices import mark_paid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptOutcome:
    attempt_id: int
    invoice_id: int
    status: str  # succeeded | failed | requires_action | processing | pending (outcome unknown)


def next_attempt_number(session: Session, invoice_id: int) -> int:
    """Attempts are numbered per invoice; the number is part of the idempotency key."""
    return (session.scalar(select(func.max(PaymentAttempt.attempt_number))
                           .where(PaymentAttempt.invoice_id == invoice_id)) or 0) + 1


def open_attempt(session: Session, invoice: Invoice, *, trigger: str, now: datetime) -> PaymentAttempt | None:
    """Write the intent to charge (in the caller's transaction). None when there is no default card."""
    card = session.scalar(select(PaymentMethod).where(
        PaymentMethod.account_id == invoice.account_id, PaymentMethod.is_default.is_(True),
        PaymentMethod.detached_at.is_(None)))
    if card is None:
        return None
    number = next_attempt_number(session, invoice.id)
    attempt = PaymentAttempt(invoice_id=invoice.id, attempt_number=number, trigger=trigger, status="pending",
                             idempotency_key=f"invoice-{invoice.id}-attempt-{number}",
                             amount_cents=invoice.amount_due_cents, currency=invoice.currency,
                             payment_method_id=card.id, payment_method_label=card.label, created_at=now)
    session.add(attempt)
    return attempt


def execute_attempt(database: Database, gateway: PaymentGateway, attempt_id: int, *, now: datetime) -> AttemptOutcome:
    """Steps (2) and (3) for a committed attempt: charge, then record what happened."""
    with database.session() as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        card = session.get(PaymentMethod, attempt.payment_method_id)
        account = session.get(Account, attempt.invoice.account_id)
        request = dict(customer_id=account.processor_customer_id, payment_method_id=card.processor_id,
                       amount_cents=attempt.amount_cents, currency=attempt.currency,
                       idempotency_key=attempt.idempotency_key,
                       metadata={"invoice_id": attempt.invoice_id, "invoice_number": attempt.invoice.number,
                                 "attempt": attempt.attempt_number})
        invoice_id = attempt.invoice_id
    try:
        result = gateway.charge(**request)
    except ProcessorUnavailable:
        log.warning("outcome of attempt %s unknown; it stays pending and will be settled later", attempt_id)
        return AttemptOutcome(attempt_id, invoice_id, "pending")
    except ProcessorError as exc:
        # The processor refused the request itself (e.g. the card was removed there): a failed attempt.
        result = PaymentResult(payment_id="", status="failed", amount_cents=request["amount_cents"],
                               currency=request["currency"], failure_code=exc.code, failure_message=exc.message)
    with database.session() as session:
        status = record_outcome(session, attempt_id, result, now=now)
        session.commit()
    return AttemptOutcome(attempt_id, invoice_id, status)


OPEN_ATTEMPT_STATUSES = ("pending", "processing", "requires_action")


def record_outcome(session: Session, attempt_id: int, result: PaymentResult, *, now: datetime,
                   details: PaymentDetails | None = None) -> str:
    """Apply a processor's answer to an attempt, its invoice and its subscription. Idempotent, and state
    only moves forward: an attempt that has an outcome keeps it, a paid invoice stays paid."""
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.id == attempt_id).with_for_update())
    if attempt.status not in OPEN_ATTEMPT_STATUSES:
        return attempt.status  # already recorded (a redelivered webhook, a re-run)
    attempt.status = result.status
    attempt.processor_payment_id = result.payment_id or attempt.processor_payment_id
    attempt.failure_code = result.failure_code or ""
    attempt.failure_message = (result.failure_message or "")[:300]
    if result.status in ("succeeded", "failed"):
        attempt.completed_at = now
    invoice = session.get(Invoice, attempt.invoice_id)
    subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if result.succeeded:
        if details is not None:
            attempt.payment_method_label = details.label[:60]
        settle_paid_invoice(session, invoice, subscription, amount_cents=result.amount_cents, now=now,
                            label=attempt.payment_method_label,
                            transaction_id=(details.transaction_id if details else None) or result.charge_id
                            or result.payment_id)
    elif result.status in ("failed", "requires_action"):
        from .dunning import after_failure

        after_failure(session, attempt, invoice, subscription, now=now)
    return attempt.status


def settle_paid_invoice(session: Session, invoice: Invoice, subscription: Subscription | None, *, amount_cents: int,
                        now: datetime, label: str, transaction_id: str) -> bool:
    """The one place an invoice becomes Paid: access comes back at once and the billing e-mail gets a
    confirmation. Returns False when the invoice was already paid (nothing happens twice)."""
    if invoice.status == "void":
        log.warning("payment received for void invoice %s; recorded on the attempt only", invoice.number)
        return False
    was = subscription.status if subscription is not None else None
    if not mark_paid(invoice, amount_cents=amount_cents, now=now, payment_method_label=label,
                     transaction_id=transaction_id):
        return False
    if subscription is not None:
        advance_after_payment(subscription, invoice, now=now)
    account = session.get(Account, invoice.account_id)
    outbox.payment_received(session, invoice, account, restored=was in ("past_due", "suspended"))
    return True


def advance_after_payment(subscription: Subscription, invoice: Invoice, *, now: datetime) -> None:
    """A paid renewal invoice moves the subscription into the period it paid for and restores access.

    The rule for a Suspended subscription: it was off for a while, so the period it pays for starts on the
    day it is paid (and runs one interval from there) rather than on the long-past renewal date. A Past due
    one keeps its renewal date: the customer paid for the period that started then.
    """
    from .renewals import add_interval

    if subscription.status == "suspended":
        start = now.replace(microsecond=0)
        subscription.current_period_start = start
        subscription.current_period_end = add_interval(start, subscription.plan.interval)
    elif invoice.period_start and invoice.period_end and subscription.current_period_end <= invoice.period_start:
        subscription.current_period_start = invoice.period_start
        subscription.current_period_end = invoice.period_end
    if subscription.status in ("past_due", "suspended"):
        subscription.status = "active"


def settle_pending_attempts(database: Database, gateway: PaymentGateway, *, now: datetime,
                            older_than: timedelta = timedelta(minutes=5)) -> int:
    """Finish attempts whose outcome was never recorded (a crash, a timeout) by asking again with the same
    idempotency key. Never charges twice; returns how many were settled."""
    with database.session() as session:
        # Card charges only: a Pay-now attempt has no card and is settled from its checkout session.
        ids = list(session.scalars(select(PaymentAttempt.id).where(
            PaymentAttempt.status == "pending", PaymentAttempt.created_at <= now - older_than,
            PaymentAttempt.payment_method_id.is_not(None)).order_by(PaymentAttempt.id)))
    settled = 0
    for attempt_id in ids:
        if execute_attempt(database, gateway, attempt_id, now=now).status != "pending":
            settled += 1
    return settled
