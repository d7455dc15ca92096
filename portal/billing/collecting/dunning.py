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

This module decides what a failure means; it never charges. Charging (renewals, retries, Retry payment)
is ``collection``'s, which calls ``after_failure`` here with the policy from the settings.
"""
from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...db import Database
from ...models import Account, Invoice, PaymentAttempt, PaymentMethod, Subscription
from ...notifications import outbox
from ..payment_methods.cards import default_cards

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
    "debit_failed": "your bank returned the debit",
}


def reason_text(code: str | None) -> str:
    return REASONS.get(code or "", "the payment did not go through")


@dataclass(frozen=True)
class RetryPolicy:
    """Days after the first failure on which to retry automatically (``Settings.retry_schedule``, which
    validates them; built by whoever runs the services and passed in, never held in a global)."""

    days: tuple[int, ...] = (3, 7)


def _failures(session: Session, invoice: Invoice) -> list[PaymentAttempt]:
    return list(session.scalars(select(PaymentAttempt).where(
        PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.trigger.in_(AUTOMATIC),
        PaymentAttempt.status.in_(("failed", "requires_action"))).order_by(PaymentAttempt.attempt_number)))


def backup_tried_note(backup: PaymentAttempt | None) -> str | None:
    """The notice's sentence when the backup method was tried after the default and did not pay either."""
    if backup is None:
        return None
    return (f"We also tried your backup payment method, {backup.payment_method_label}, and it did not go through "
            f"either: {reason_text(backup.failure_code)}.")


def after_failure(session: Session, attempt: PaymentAttempt, invoice: Invoice, subscription: Subscription | None,
                  *, now: datetime, policy: RetryPolicy, backup: PaymentAttempt | None = None) -> None:
    """Decide what a failed attempt means for the subscription, schedule the next retry, and tell the customer.
    ``backup``: the backup method's attempt that followed ``attempt`` and failed too, named in the notice."""
    if subscription is None or invoice.status != "open":
        return
    account = session.get(Account, invoice.account_id)
    if attempt.trigger not in AUTOMATIC:
        return  # the customer tried and saw the answer on the page; the schedule stays as it was
    if attempt.status == "requires_action":
        invoice.auto_retry, invoice.next_retry_at = False, None
        if subscription.status == "active":
            subscription.status = "past_due"
        outbox.action_required(session, invoice, account, now=now)
        return
    failures = _failures(session, invoice)
    first = failures[0].completed_at or now if failures else now
    retries_done = len(failures) - 1
    days = policy.days
    if retries_done < len(days):
        invoice.next_retry_at = first + timedelta(days=days[retries_done])
        if subscription.status == "active":
            subscription.status = "past_due"
        outbox.payment_failed(session, invoice, account, attempt, reason=reason_text(attempt.failure_code),
                              next_retry=invoice.next_retry_at, final=retries_done + 1 == len(days), now=now,
                              backup_note=backup_tried_note(backup))
    else:
        invoice.next_retry_at = None
        subscription.status = "suspended"
        outbox.subscription_suspended(session, invoice, account, reason=reason_text(attempt.failure_code),
                                      now=now, backup_note=backup_tried_note(backup))


def outstanding_invoices(session: Session, account_id: int) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(Invoice.account_id == account_id, Invoice.status == "open")
                                .order_by(Invoice.issued_at, Invoice.id)))


def card_expiry(card: PaymentMethod) -> date:
    """The last day a card works: the end of its expiry month."""
    return date(card.exp_year, card.exp_month, calendar.monthrange(card.exp_year, card.exp_month)[1])


def send_card_expiry_reminders(database: Database, *, now: datetime, days_before: int = 30) -> int:
    """Remind the billing e-mail when the default card expires within ``days_before`` days; once per card
    and expiry (a card updated to a new expiry gets a new reminder when that one nears)."""
    today = now.date()
    sent = 0
    with database.session() as session:
        for card in default_cards(session):
            if not card.is_card:
                continue  # PayPal and bank accounts do not expire (their expiry is stored as 0/0)
            expires = card_expiry(card)
            if today <= expires <= today + timedelta(days=days_before):
                account = session.get(Account, card.account_id)
                if outbox.card_expiring(session, card, account, expires=expires, now=now) is not None:
                    sent += 1
        session.commit()
    return sent
