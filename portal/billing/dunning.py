"""Failed payments: Past due, automatic retries, suspension, Retry payment, and the notices that go with them.

The rules, as customers read them in the docs:
- A failed renewal charge leaves the invoice Open, makes the subscription Past due (paid features off) and
  e-mails the billing address at once, saying why, how much, and when we retry.
- Retries follow ``PORTAL_RETRY_SCHEDULE`` (default ``3,7``: 3 and 7 days after the first failure), each
  charging the *current* default card as a new attempt with its own idempotency key.
- After the last retry fails the subscription is Suspended (the invoice stays Open) and we say how to
  reactivate.
- A charge that needs the customer (3-D Secure) stops automatic retries for that invoice and e-mails a link
  to pay on the portal, where the bank's check happens in the browser.
- Any successful payment ends all of this at once (``collection.settle_paid_invoice``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import Database
from ..models import Account, Invoice, PaymentAttempt, PaymentMethod, Subscription
from ..notifications import outbox
from ..payments.gateway import PaymentGateway
from .errors import DomainError

log = logging.getLogger(__name__)

AUTOMATIC = ("renewal", "retry")

# Failure codes in plain words, for e-mails and the banner.
REASONS = {
    "card_declined": "your bank declined the charge",
    "insufficient_funds": "the card has insufficient funds",
    "expired_card": "the card has expired",
    "incorrect_cvc": "the card's security code was not accepted",
    "authentication_required": "your bank needs you to confirm the payment",
    "no_card": "there is no card on file to charge",
    "processing_error": "the payment processor had a problem",
    "payment_failed": "the payment did not go through",
}


def reason_text(code: str | None) -> str:
    return REASONS.get(code or "", "the payment did not go through")


@dataclass(frozen=True)
class RetryPolicy:
    """Days after the first failure on which to retry automatically."""

    days: tuple[int, ...] = (3, 7)

    @classmethod
    def parse(cls, text: str | None) -> "RetryPolicy":
        if not text:
            return cls()
        try:
            days = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
        except ValueError as exc:
            raise ValueError(f"PORTAL_RETRY_SCHEDULE must be whole days separated by commas, not {text!r}") from exc
        if any(d <= 0 for d in days) or list(days) != sorted(set(days)):
            raise ValueError("PORTAL_RETRY_SCHEDULE must be increasing positive days, like 3,7")
        return cls(days)


_policy = RetryPolicy()


def configure(policy: RetryPolicy) -> None:
    """Set this process's retry schedule (done once at start-up from the settings)."""
    global _policy
    _policy = policy


def policy() -> RetryPolicy:
    return _policy


def _failures(session: Session, invoice: Invoice) -> list[PaymentAttempt]:
    return list(session.scalars(select(PaymentAttempt).where(
        PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.trigger.in_(AUTOMATIC),
        PaymentAttempt.status.in_(("failed", "requires_action"))).order_by(PaymentAttempt.attempt_number)))


def after_failure(session: Session, attempt: PaymentAttempt, invoice: Invoice, subscription: Subscription | None,
                  *, now: datetime) -> None:
    """Decide what a failed attempt means for the subscription, schedule the next retry, and tell the customer."""
    if subscription is None or invoice.status != "open":
        return
    account = session.get(Account, invoice.account_id)
    if attempt.trigger not in AUTOMATIC:
        return  # the customer tried and saw the answer on the page; the schedule stays as it was
    if attempt.status == "requires_action":
        invoice.auto_retry, invoice.next_retry_at = False, None
        if subscription.status == "active":
            subscription.status = "past_due"
        outbox.action_required(session, invoice, account)
        return
    failures = _failures(session, invoice)
    first = failures[0].completed_at or now if failures else now
    retries_done = len(failures) - 1
    days = policy().days
    if retries_done < len(days):
        invoice.next_retry_at = first + timedelta(days=days[retries_done])
        if subscription.status == "active":
            subscription.status = "past_due"
        outbox.payment_failed(session, invoice, account, attempt, reason=reason_text(attempt.failure_code),
                              next_retry=invoice.next_retry_at, final=retries_done + 1 == len(days))
    else:
        invoice.next_retry_at = None
        subscription.status = "suspended"
        outbox.subscription_suspended(session, invoice, account, reason=reason_text(attempt.failure_code))


def record_failure_without_card(session: Session, invoice: Invoice, *, trigger: str, now: datetime) -> PaymentAttempt:
    """No default card to charge: an attempt that failed before reaching the processor, so the schedule and
    the notices run exactly as for a decline."""
    from .collection import next_attempt_number

    number = next_attempt_number(session, invoice.id)
    attempt = PaymentAttempt(invoice_id=invoice.id, attempt_number=number, trigger=trigger, status="failed",
                             idempotency_key=f"invoice-{invoice.id}-attempt-{number}", amount_cents=invoice.amount_due_cents,
                             currency=invoice.currency, failure_code="no_card",
                             failure_message="There is no default card to charge.", created_at=now, completed_at=now)
    session.add(attempt)
    session.flush()
    subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    after_failure(session, attempt, invoice, subscription, now=now)
    return attempt


def run_retries(database: Database, gateway: PaymentGateway, *, now: datetime) -> dict[str, int]:
    """Charge every invoice whose next automatic retry is due, with the account's current default card."""
    from .collection import execute_attempt, open_attempt

    counts = {"retried": 0, "paid": 0, "failed": 0}
    with database.session() as session:
        ids = list(session.scalars(select(Invoice.id).join(Subscription, Subscription.id == Invoice.subscription_id)
                                   .where(Invoice.status == "open", Invoice.auto_retry.is_(True),
                                          Invoice.next_retry_at <= now, Subscription.status == "past_due")
                                   .order_by(Invoice.next_retry_at)))
    for invoice_id in ids:
        with database.session() as session:
            query = select(Invoice).where(Invoice.id == invoice_id)
            if not database.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            invoice = session.scalar(query)
            if invoice is None or invoice.status != "open" or not invoice.next_retry_at or invoice.next_retry_at > now:
                continue  # another worker took it, or it was paid meanwhile
            if _has_open_attempt(session, invoice):
                continue
            invoice.next_retry_at = None  # claimed: the outcome schedules the next one
            attempt = open_attempt(session, invoice, trigger="retry", now=now)
            if attempt is None:
                record_failure_without_card(session, invoice, trigger="retry", now=now)
                session.commit()
                counts["retried"] += 1
                counts["failed"] += 1
                continue
            session.commit()
            attempt_id = attempt.id
        outcome = execute_attempt(database, gateway, attempt_id, now=now)
        counts["retried"] += 1
        counts["paid" if outcome.status == "succeeded" else "failed"] += 1
    return counts


class PaymentInProgress(DomainError):
    code = "payment_in_progress"
    status = 409


class NothingToPay(DomainError):
    code = "nothing_to_pay"
    status = 409


@dataclass
class RetryResult:
    paid: list[str]
    failed: list[tuple[str, str]]  # (invoice number, reason)


def outstanding_invoices(session: Session, account_id: int) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(Invoice.account_id == account_id, Invoice.status == "open")
                                .order_by(Invoice.issued_at, Invoice.id)))


def retry_now(database: Database, gateway: PaymentGateway, account_id: int, *, now: datetime) -> RetryResult:
    """Retry payment, asked for by the customer: each open invoice, now, with the default card.

    The invoice row is locked while the attempt is written, and an attempt still in flight refuses a
    second one, so a double click or two tabs charge once.
    """
    from .collection import execute_attempt, open_attempt

    with database.session() as session:
        ids = [i.id for i in outstanding_invoices(session, account_id)]
    if not ids:
        raise NothingToPay("There is nothing to pay: every invoice is paid.")
    result = RetryResult(paid=[], failed=[])
    for invoice_id in ids:
        with database.session() as session:
            query = select(Invoice).where(Invoice.id == invoice_id, Invoice.account_id == account_id)
            if not database.is_sqlite:
                query = query.with_for_update()
            invoice = session.scalar(query)
            if invoice is None or invoice.status != "open":
                continue
            if _has_open_attempt(session, invoice):
                raise PaymentInProgress(f"A payment for {invoice.number} is already in progress. "
                                        "Please wait a moment; nothing more is needed.")
            attempt = open_attempt(session, invoice, trigger="customer", now=now)
            if attempt is None:
                raise NothingToPay("Add a card and set it as default first, then retry the payment.")
            number = invoice.number
            session.commit()
            attempt_id = attempt.id
        outcome = execute_attempt(database, gateway, attempt_id, now=now)
        if outcome.status == "succeeded":
            result.paid.append(number)
        else:
            with database.session() as session:
                failed = session.get(PaymentAttempt, attempt_id)
                result.failed.append((number, failed.failure_message or reason_text(failed.failure_code)))
    return result


def _has_open_attempt(session: Session, invoice: Invoice) -> bool:
    return session.scalar(select(PaymentAttempt.id).where(
        PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.status.in_(("pending", "processing")),
        PaymentAttempt.checkout_session_id.is_(None)).limit(1)) is not None


def card_expiry(card: PaymentMethod) -> date:
    """The last day a card works: the end of its expiry month."""
    import calendar

    return date(card.exp_year, card.exp_month, calendar.monthrange(card.exp_year, card.exp_month)[1])


def send_card_expiry_reminders(database: Database, *, now: datetime, days_before: int = 30) -> int:
    """Remind the billing e-mail when the default card expires within ``days_before`` days; once per card
    and expiry (a card updated to a new expiry gets a new reminder when that one nears)."""
    today = now.date()
    sent = 0
    with database.session() as session:
        cards = session.scalars(select(PaymentMethod).where(PaymentMethod.is_default.is_(True),
                                                            PaymentMethod.detached_at.is_(None))).all()
        for card in cards:
            expires = card_expiry(card)
            if today <= expires <= today + timedelta(days=days_before):
                account = session.get(Account, card.account_id)
                if outbox.card_expiring(session, card, account, expires=expires) is not None:
                    sent += 1
        session.commit()
    return sent
