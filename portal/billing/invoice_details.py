"""One invoice as its details show it: lines, credits and tax, what was paid and is still due, each payment
attempt and each refund. A read model at the top of ``billing`` because it reads both what is owed
(``invoicing``) and how it was collected (``collecting``)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Invoice, PaymentAttempt, Refund
from .collecting.bank_transfer import TransferTerms, plan_intervals
from .collecting.collection import BACKUP, failed_words
from .collecting.dunning import reason_text
from .collecting.refunds import refunds_by_invoice
from .invoicing.invoices import get_invoice

ATTEMPT_OUTCOMES = {"succeeded": "Succeeded", "failed": "Failed", "requires_action": "Needs your confirmation",
                    "processing": "Processing", "pending": "In progress"}


@dataclass(frozen=True)
class AttemptRow:
    """One try to collect the invoice, as the customer reads it."""

    attempt: PaymentAttempt

    @property
    def when(self):
        return self.attempt.completed_at or self.attempt.created_at

    @property
    def outcome(self) -> str:
        return ATTEMPT_OUTCOMES.get(self.attempt.status, self.attempt.status.replace("_", " ").capitalize())

    @property
    def reason(self) -> str:
        """Why it failed, in the words the failed-payment banner uses; empty when it did not fail."""
        return reason_text(self.attempt.failure_code) if self.attempt.status == "failed" else ""


@dataclass(frozen=True)
class InvoiceDetails:
    invoice: Invoice
    attempts: list[AttemptRow]
    refunds: list[Refund]
    terms: TransferTerms | None = None
    transfer_offered: bool = False  # Pay by bank transfer is offered (or already chosen)
    # A payment (a bank debit) is on its way: the invoice shows Processing and offers no second one.
    processing: bool = False


    @property
    def paid_with(self) -> str | None:
        """Which method paid, as the details say it: "Paid with Mastercard •••• 4444 (your backup method) after
        Visa •••• 0341 was declined" when the backup paid, "Paid with Visa •••• 4242" otherwise."""
        if self.invoice.status != "paid" or not self.invoice.payment_method_label:
            return None
        paid = next((r.attempt for r in reversed(self.attempts) if r.attempt.status == "succeeded"), None)
        if paid is None or paid.trigger != BACKUP:
            return f"Paid with {self.invoice.payment_method_label}"
        declined = next((r.attempt for r in self.attempts
                         if r.attempt.attempt_number == paid.attempt_number - 1), None)
        after = f" after {declined.payment_method_label} {failed_words(declined)}" if declined is not None else ""
        return f"Paid with {paid.payment_method_label} (your backup method){after}"


def invoice_details(session: Session, account_id: int, invoice_id: int,
                    terms: TransferTerms | None = None) -> InvoiceDetails:
    """Everything the details of one of the account's issued invoices show (three queries); anyone else's
    invoice is not found."""
    invoice = get_invoice(session, account_id, invoice_id)
    attempts = session.scalars(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id)
                               .order_by(PaymentAttempt.created_at, PaymentAttempt.id))
    rows = [AttemptRow(a) for a in attempts]
    processing = invoice.status == "open" and any(r.attempt.status == "processing" for r in rows)
    offered = terms is not None and invoice.status == "open" and not processing and (
        invoice.awaiting_transfer_at is not None or terms.allows(invoice, plan_intervals(session, [invoice]).get(invoice.id)))
    return InvoiceDetails(invoice=invoice, attempts=rows,
                          refunds=refunds_by_invoice(session, [invoice.id]).get(invoice.id, []), terms=terms,
                          transfer_offered=offered, processing=processing)
