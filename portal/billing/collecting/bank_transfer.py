"""Pay by bank transfer: for invoices of annual plans from a minimum total (both settings), as sales sells them.

Choosing it gives the invoice a unique payment reference for the customer to quote, marks it awaiting the
transfer (automatic retries skip it meanwhile; its due date still counts) and e-mails the seller's bank
details. Staff record the money when it arrives with the console's wire action
(``collection.record_wire_payment``), which makes the invoice Paid the one usual way.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from ... import audit
from ...audit import Actor
from ...errors import InvoiceNotOpen, InvoiceNotPayable, PaymentInProgress
from ...models import Account, Invoice, Plan, Subscription
from ...money import format_money
from ...notifications import outbox
from ..outcome import Done
from .collection import claim, in_flight_message

# No 0/O or 1/I: the reference is read off a screen and typed into a banking app.
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class TransferTerms:
    """The settings' rules and details for bank transfers, built once by whoever runs the services."""

    min_cents: int = 10_000
    intervals: tuple[str, ...] = ("year",)
    bank_details: tuple[tuple[str, str], ...] = ()
    sales_contact: str = "sales@example.com"

    @classmethod
    def from_settings(cls, settings) -> "TransferTerms":
        return cls(min_cents=settings.bank_transfer_min_cents, intervals=settings.bank_transfer_intervals,
                   bank_details=settings.seller_bank_details, sales_contact=settings.sales_contact)

    def allows(self, invoice: Invoice, interval: str | None) -> bool:
        """The seed's rule: an Open invoice of an annual plan (the intervals setting) of at least the minimum."""
        return (invoice.status == "open" and interval in self.intervals and invoice.total_cents >= self.min_cents
                and invoice.amount_due_cents > 0)

    def refusal(self, currency: str) -> str:
        return (f"Bank transfer is offered for annual plans of at least {format_money(self.min_cents, currency)}. "
                f"For wire transfers or invoicing, contact {self.sales_contact}.")


def plan_intervals(session: Session, invoices: list[Invoice]) -> dict[int, str]:
    """Each invoice's plan interval (the plan it was issued for, else its subscription's), in one query."""
    ids = [i.id for i in invoices]
    if not ids:
        return {}
    own, current = aliased(Plan), aliased(Plan)
    rows = session.execute(
        select(Invoice.id, func.coalesce(own.interval, current.interval))
        .outerjoin(own, own.id == Invoice.plan_id)
        .outerjoin(Subscription, Subscription.id == Invoice.subscription_id)
        .outerjoin(current, current.id == Subscription.plan_id)
        .where(Invoice.id.in_(ids)))
    return {invoice_id: interval for invoice_id, interval in rows if interval is not None}


def transfer_offers(session: Session, invoices: list[Invoice], terms: TransferTerms | None) -> frozenset[int]:
    """Of these invoices, those that may be paid by bank transfer."""
    candidates = [i for i in invoices if i.status == "open"]
    if terms is None or not candidates:
        return frozenset()
    intervals = plan_intervals(session, candidates)
    return frozenset(i.id for i in candidates if terms.allows(i, intervals.get(i.id)))


def choose_bank_transfer(session: Session, account_id: int, invoice_id: int, *, terms: TransferTerms,
                         actor: Actor, now: datetime) -> Done[Invoice]:
    """The customer chose to pay an Open annual invoice by bank transfer: a reference, the invoice awaiting
    it, and the details e-mailed. Choosing again answers with the same reference and sends nothing twice."""
    found = claim(session, invoice_id, now=now, account_id=account_id)
    invoice = found.invoice
    if invoice.status != "open":
        raise InvoiceNotOpen(f"{invoice.number} is {invoice.status_label.lower()}: there is nothing to pay.")
    if invoice.awaiting_transfer_at is not None:
        session.commit()
        return Done(invoice, f"{invoice.number} is waiting for your bank transfer with reference "
                             f"{invoice.transfer_reference}.")
    if found.in_flight is not None:
        raise PaymentInProgress(in_flight_message(invoice, found.in_flight))
    if not terms.allows(invoice, plan_intervals(session, [invoice]).get(invoice.id)):
        raise InvoiceNotPayable(terms.refusal(invoice.currency))
    invoice.transfer_reference = f"{invoice.number}-{''.join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(4))}"
    invoice.awaiting_transfer_at = now
    account = session.get(Account, account_id)
    outbox.bank_transfer_details(session, invoice, account, bank_details=terms.bank_details, now=now)
    audit.record(session, actor, "invoice.bank_transfer_chosen", now=now, account_id=account_id,
                 invoice_id=invoice.id, invoice_number=invoice.number, reference=invoice.transfer_reference)
    session.commit()
    return Done(invoice, f"Pay {format_money(invoice.amount_due_cents, invoice.currency)} by bank transfer with "
                         f"reference {invoice.transfer_reference}. We've e-mailed you the details.")
