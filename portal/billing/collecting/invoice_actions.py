"""What staff do to an issued invoice that is neither collecting nor refunding it: void it, e-mail it again.

Kept apart from ``invoices`` (building, issuing and reading invoices), which ``collection`` builds on: a void
closes the invoice's payment pages through ``collection``, and ``invoices`` importing that would be a circle.
Each action is audited with the staff member as the actor and runs in a transaction of its own.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...db import Database
from ...models import Account, Invoice, Subscription
from ...notifications import outbox
from ...payments.gateway import PaymentGateway
from ... import audit
from ...audit import Actor
from .collection import advance_after_payment, claim_open, close_payment_pages
from .dunning import outstanding_invoices
from ..outcome import Done
from ...errors import InvalidInput, NotFound

VOID_PAID_MESSAGE = "{number} is paid, so it can't be voided. Refund it instead."


def void_invoice(database: Database, gateway: PaymentGateway, account_id: int, invoice_id: int, *, reason: str,
                 actor: Actor, now: datetime) -> Done[Invoice]:
    """Void an Open invoice: nothing is owed any more, automatic retries stop, and a subscription that was
    Past due or Suspended only for it is active again. A paid invoice can't be voided (refund it instead).

    Its open payment pages are expired at the processor first, so none can take money for a void invoice;
    a payment in flight refuses the void until its outcome is known.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput({"reason": "Enter the reason for voiding this invoice."})
    if len(reason) > 300:
        raise InvalidInput({"reason": "Use at most 300 characters."})
    close_payment_pages(database, gateway, invoice_id, account_id, now=now, paid_message=VOID_PAID_MESSAGE,
                        why="Closed: the invoice was voided.")
    with database.session() as session:
        invoice = claim_open(session, invoice_id, account_id, now=now, paid_message=VOID_PAID_MESSAGE,
                             verb="voiding the invoice")
        invoice.status, invoice.voided_at, invoice.void_reason = "void", now, reason
        invoice.auto_retry, invoice.next_retry_at = False, None
        invoice.status_version = invoice.status_version + 1
        subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
        if subscription is not None and subscription.status in ("past_due", "suspended"):
            session.flush()
            if not outstanding_invoices(session, invoice.account_id):
                advance_after_payment(subscription, invoice, now=now)
        audit.record(session, actor, "invoice.voided", now=now, account_id=invoice.account_id, invoice_id=invoice.id,
                     invoice_number=invoice.number, amount_cents=invoice.total_cents, currency=invoice.currency,
                     reason=reason)
        session.commit()
        return Done(invoice, f"{invoice.number} is void.")


def resend_invoice(session: Session, account_id: int, invoice_id: int, *, actor: Actor,
                   request_key: str, now: datetime) -> Done[Invoice]:
    """E-mail the invoice (with its PDF) to the billing e-mail again: a new message per request, one per
    ``request_key`` (a double click sends one)."""
    invoice = session.scalar(select(Invoice).where(Invoice.id == invoice_id, Invoice.account_id == account_id,
                                                   Invoice.status != "draft"))
    if invoice is None:
        raise NotFound("That invoice does not exist.")
    account = session.get(Account, account_id)
    outbox.enqueue(session, dedupe_key=f"invoice-resent-{invoice.id}-{request_key}", kind="invoice_resent",
                   to=account.billing_email, account_id=account.id,
                   subject=f"Invoice {invoice.number} from {invoice.seller_snapshot.get('name', '')}".strip(),
                   template="invoice_copy", context={"invoice": invoice, "account": account},
                   attachments=[{"type": "invoice_pdf", "invoice_id": invoice.id}], now=now)
    audit.record(session, actor, "invoice.resent", now=now, account_id=account.id, invoice_id=invoice.id,
                 invoice_number=invoice.number, to=account.billing_email)
    session.commit()
    return Done(invoice, f"{invoice.number} is on its way to {account.billing_email}.")
