"""Writing notices to the outbox. Each is rendered now (its text is frozen with the change that caused it)
and carries a dedupe key, so the same notice can never be queued, or sent, twice."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from ..documents.rendering import render
from ..models import Account, Invoice, OutboxMessage, User


PREFETCH = "outbox.prefetch"  # session.info key: what a batch looked up once for all its notices
BATCH = "outbox.batch"  # session.info key: the rows of notices a batch queued, written together at its end


@dataclass
class Prefetch:
    """The two lookups every notice makes (is it queued already? whom does it greet?), made once for a batch
    of notices about to be queued in one transaction (a renewal batch), instead of twice per e-mail."""

    keys: set[str] = field(default_factory=set)  # dedupe keys looked up
    existing: set[str] = field(default_factory=set)  # ... of which these are queued already
    addresses: set[str] = field(default_factory=set)  # lower-cased addresses looked up
    names: dict[str, str | None] = field(default_factory=dict)


def prefetch(session: Session, *, dedupe_keys: list[str], addresses: list[str]) -> None:
    """Look up, in two statements, what ``enqueue`` would look up for each of these notices; it lasts until
    the transaction ends (a notice outside the lists is looked up as usual)."""
    found = session.info.setdefault(PREFETCH, Prefetch())
    keys = [k for k in set(dedupe_keys) if k not in found.keys]
    if keys:
        found.existing.update(session.scalars(select(OutboxMessage.dedupe_key)
                                              .where(OutboxMessage.dedupe_key.in_(keys))))
        found.keys.update(keys)
    wanted = {a.lower() for a in addresses if a} - found.addresses
    if wanted:
        # Ordered so that, as with the single lookup's first row, one name wins when two users share an address.
        for email, name in session.execute(select(func.lower(User.email), User.name)
                                           .where(func.lower(User.email).in_(wanted)).order_by(User.id.desc())):
            found.names[email] = name
        found.addresses.update(wanted)


@event.listens_for(Session, "after_transaction_end")
def _forget_prefetch(session: Session, transaction) -> None:
    # What was looked up is true for this transaction only.
    if transaction.parent is None:
        session.info.pop(PREFETCH, None)


def _queued_before(session: Session, dedupe_key: str) -> bool:
    if dedupe_key in session.info.get(BATCH, ()):
        return True  # queued in this batch, not written yet
    found = session.info.get(PREFETCH)
    if found is not None and dedupe_key in found.keys:
        return dedupe_key in found.existing
    return bool(session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)))


def _recipient_name(session: Session, to: str) -> str | None:
    found = session.info.get(PREFETCH)
    if found is not None and to.lower() in found.addresses:
        return found.names.get(to.lower())
    return session.scalar(select(User.name).where(func.lower(User.email) == to.lower()))


def enqueue(session: Session, *, dedupe_key: str, kind: str, to: str, subject: str, template: str,
            context: dict, now: datetime, account_id: int | None = None,
            attachments: list | None = None) -> OutboxMessage | None:
    """Queue an e-mail in the caller's transaction, due at once; returns None when this notice was queued
    before. ``now`` is the caller's clock: a worker pass run for another moment queues it at that moment."""
    if _queued_before(session, dedupe_key):
        return None
    # Greet the reader by name when the address is one of our users' (often the billing e-mail is a
    # shared inbox such as billing@, and then "Hello," is right).
    context = {"recipient_name": _recipient_name(session, to), **context}
    message = OutboxMessage(dedupe_key=dedupe_key, kind=kind, to_address=to, subject=subject, account_id=account_id,
                            text_body=render(f"email/{template}.txt", **context),
                            html_body=render(f"email/{template}.html", **context),
                            attachments=attachments or [], created_at=now, next_attempt_at=now)
    rows = session.info.get(BATCH)
    if rows is None:
        session.add(message)
    else:
        rows[dedupe_key] = message
    found = session.info.get(PREFETCH)
    if found is not None and dedupe_key in found.keys:
        found.existing.add(dedupe_key)  # queued now: a second enqueue in this transaction finds it
    return message


@contextmanager
def batched(session: Session) -> Iterator[None]:
    """The notices queued inside are written in one INSERT at the end (a renewal batch's receipts), not one
    statement per row as the unit of work writes them on SQLite. The unique dedupe key still refuses a
    notice queued twice: then the whole INSERT fails, as the flush would have. The objects ``enqueue``
    returns inside are not added to the session (they have no id); nothing is written if the block fails."""
    if BATCH in session.info:  # already inside a batch: its end writes these too
        yield
        return
    rows: dict[str, OutboxMessage] = {}  # by dedupe key
    session.info[BATCH] = rows
    try:
        yield
    finally:
        session.info.pop(BATCH, None)
    if rows:
        session.execute(insert(OutboxMessage.__table__), [_row(m) for m in rows.values()])


def _row(message: OutboxMessage) -> dict:
    """The message's columns; an unset one gets its column's default, as the flush would give it (one INSERT
    for many rows needs every row to name the same columns)."""
    row = {}
    for column in OutboxMessage.__table__.columns:
        if column.key == "id":
            continue
        value = getattr(message, column.key)
        if value is None and column.default is not None:
            value = column.default.arg(None) if column.default.is_callable else column.default.arg
        row[column.key] = value
    return row


def invoice_issued(session: Session, invoice: Invoice, account: Account, *, now: datetime) -> OutboxMessage | None:
    """The new invoice, with its PDF, to the billing e-mail (never a user's profile e-mail)."""
    return enqueue(session, now=now, dedupe_key=invoice_issued_key(invoice), kind="invoice_issued",
                   to=account.billing_email, account_id=account.id,
                   subject=f"Invoice {invoice.number} from {invoice.seller_snapshot.get('name', '')}".strip(),
                   template="invoice_issued", context={"invoice": invoice, "account": account},
                   attachments=[{"type": "invoice_pdf", "invoice_id": invoice.id}])


def invoice_copy(session: Session, invoice: Invoice, account: Account, *, to: str, request_key: str,
                 now: datetime) -> OutboxMessage | None:
    """A copy the customer asked for, to their own login e-mail. The request key makes a double click
    queue one e-mail, while asking again later queues another."""
    return enqueue(session, now=now, dedupe_key=f"invoice-copy-{invoice.id}-{request_key}", kind="invoice_copy",
                   to=to, account_id=account.id, subject=f"Copy of invoice {invoice.number}", template="invoice_copy",
                   context={"invoice": invoice, "account": account, "own_copy": True},
                   attachments=[{"type": "invoice_pdf", "invoice_id": invoice.id}])


def payment_received(session: Session, invoice: Invoice, account: Account, *, restored: bool,
                     partial_key: object = None, now: datetime,
                     backup_note: str | None = None) -> OutboxMessage | None:
    """A receipt; when the payment ended a Past due or Suspended spell, it says access is back. A partial
    payment (``partial_key`` names the payment) gets a receipt of its own that says what is still due."""
    if partial_key is not None:
        return enqueue(session, now=now, dedupe_key=f"payment-partial-{invoice.id}-{partial_key}",
                       kind="payment_partial",
                       to=account.billing_email, account_id=account.id,
                       subject=f"Partial payment received for invoice {invoice.number}",
                       template="payment_received", context={"invoice": invoice, "account": account,
                                                             "restored": False, "partial": True})
    return enqueue(session, now=now, dedupe_key=payment_received_key(invoice), kind="payment_received",
                   to=account.billing_email, account_id=account.id,
                   subject=("Payment received: your subscription is active again" if restored
                            else f"Payment received for invoice {invoice.number}"),
                   template="payment_received", context={"invoice": invoice, "account": account, "restored": restored,
                                                         "partial": False, "backup_note": backup_note})


def payment_received_key(invoice: Invoice) -> str:
    return f"payment-received-{invoice.id}"


def invoice_issued_key(invoice: Invoice) -> str:
    return f"invoice-issued-{invoice.id}"


def bank_transfer_details(session: Session, invoice: Invoice, account: Account, *, bank_details, now: datetime
                          ) -> OutboxMessage | None:
    """The seller's bank details and the invoice's payment reference, once per invoice."""
    return enqueue(session, now=now, dedupe_key=f"bank-transfer-{invoice.id}", kind="bank_transfer_details",
                   to=account.billing_email, account_id=account.id,
                   subject=f"How to pay invoice {invoice.number} by bank transfer", template="bank_transfer_details",
                   context={"invoice": invoice, "account": account, "bank_details": bank_details})


def _money(invoice: Invoice) -> str:
    from ..money import format_money

    return format_money(invoice.amount_due_cents, invoice.currency)


def payment_failed(session: Session, invoice: Invoice, account: Account, attempt, *, reason: str, next_retry,
                   final: bool, now: datetime, backup_note: str | None = None) -> OutboxMessage | None:
    return enqueue(session, now=now, dedupe_key=f"payment-failed-{attempt.id}", kind="payment_failed",
                   to=account.billing_email, account_id=account.id,
                   subject=f"Payment failed: {_money(invoice)} for invoice {invoice.number}",
                   template="payment_failed",
                   context={"invoice": invoice, "account": account, "reason": reason, "next_retry": next_retry,
                            "final": final, "backup_note": backup_note})


def action_required(session: Session, invoice: Invoice, account: Account, *, now: datetime) -> OutboxMessage | None:
    return enqueue(session, now=now, dedupe_key=f"action-required-{invoice.id}", kind="payment_action_required",
                   to=account.billing_email, account_id=account.id,
                   subject=f"Please confirm your payment of {_money(invoice)} with your bank",
                   template="payment_action_required", context={"invoice": invoice, "account": account})


def subscription_suspended(session: Session, invoice: Invoice, account: Account, *, reason: str,
                           now: datetime, backup_note: str | None = None) -> OutboxMessage | None:
    return enqueue(session, now=now, dedupe_key=f"suspended-{invoice.id}", kind="subscription_suspended",
                   to=account.billing_email, account_id=account.id,
                   subject="Your subscription is suspended: payment failed", template="subscription_suspended",
                   context={"invoice": invoice, "account": account, "reason": reason, "backup_note": backup_note})


def card_expiring(session: Session, card, account: Account, *, expires, now: datetime) -> OutboxMessage | None:
    return enqueue(session, now=now, dedupe_key=f"card-expiring-{card.id}-{card.exp_year}-{card.exp_month:02d}",
                   kind="card_expiring", to=account.billing_email, account_id=account.id,
                   subject=f"Your {card.label} expires soon", template="card_expiring",
                   context={"card": card, "account": account, "expires": expires})


def subscription_ended(session: Session, subscription, account: Account, *, now: datetime) -> OutboxMessage | None:
    """The subscription has ended (a cancel took effect): once per subscription."""
    return enqueue(session, now=now, dedupe_key=f"subscription-ended-{subscription.id}", kind="subscription_ended",
                   to=account.billing_email, account_id=account.id,
                   subject=f"Your {subscription.plan.name} subscription has ended", template="subscription_ended",
                   context={"subscription": subscription, "account": account})
