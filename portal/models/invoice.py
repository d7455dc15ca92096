"""Issued bills. Once issued, an invoice's amounts, lines and billing snapshot never change; only its
status and payment facts move (enforced below, not just by convention)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow

STATUS_LABELS = {"draft": "Draft", "open": "Open", "paid": "Paid", "void": "Void"}

# What may still change after an invoice is issued: its status and the facts of its payment.
MUTABLE_AFTER_ISSUE = frozenset({
    "status", "status_version", "amount_paid_cents", "paid_at", "voided_at", "void_reason",
    "payment_method_label", "processor_transaction_id", "amount_refunded_cents", "checkout_session_id",
    "auto_retry", "next_retry_at", "updated_at",
})


class InvoiceImmutable(RuntimeError):
    """Raised when code tries to change what an issued invoice says."""


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        # Renewals never bill one period twice, however many workers race for it.
        UniqueConstraint("subscription_id", "period_start", name="uq_invoices_subscription_period"),
        Index("ix_invoices_account_issued", "account_id", "issued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    number: Mapped[str | None] = mapped_column(String(32), unique=True)  # assigned when issued
    status: Mapped[str] = mapped_column(String(8), default="draft")  # draft | open | paid | void
    # Bumped on every status or payment change; the PDF cache is keyed by it.
    status_version: Mapped[int] = mapped_column(Integer, default=1)
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)

    subtotal_cents: Mapped[int] = mapped_column(Integer, default=0)
    credit_applied_cents: Mapped[int] = mapped_column(Integer, default=0)
    tax_cents: Mapped[int] = mapped_column(Integer, default=0)
    total_cents: Mapped[int] = mapped_column(Integer, default=0)
    amount_paid_cents: Mapped[int] = mapped_column(Integer, default=0)
    amount_refunded_cents: Mapped[int] = mapped_column(Integer, default=0)

    # Snapshots taken at issue: later changes to the account or the seller don't reach this invoice.
    billing_snapshot: Mapped[dict] = mapped_column(JSON, default=dict)
    seller_snapshot: Mapped[dict] = mapped_column(JSON, default=dict)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_reason: Mapped[str] = mapped_column(String(300), default="")
    payment_method_label: Mapped[str] = mapped_column(String(60), default="")
    processor_transaction_id: Mapped[str] = mapped_column(String(80), default="")
    checkout_session_id: Mapped[str | None] = mapped_column(String(80))
    # Dunning: whether the worker still retries this invoice, and when next.
    auto_retry: Mapped[bool] = mapped_column(Boolean, default=True)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    lines: Mapped[list[InvoiceLine]] = relationship(back_populates="invoice", order_by="InvoiceLine.position",
                                                    cascade="all, delete-orphan")
    tax_lines: Mapped[list[InvoiceTaxLine]] = relationship(back_populates="invoice", order_by="InvoiceTaxLine.id",
                                                           cascade="all, delete-orphan")

    @property
    def amount_due_cents(self) -> int:
        if self.status in ("void", "paid"):
            return 0
        return max(0, self.total_cents - self.amount_paid_cents)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status.title())

    @property
    def is_issued(self) -> bool:
        return self.status != "draft"

    @property
    def filename(self) -> str:
        return f"{self.number or f'draft-{self.id}'}.pdf"


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(String(300))
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_amount_cents: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class InvoiceTaxLine(Base):
    __tablename__ = "invoice_tax_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    label: Mapped[str] = mapped_column(String(80))
    rate: Mapped[str] = mapped_column(String(10))  # decimal percent as text ("19", "6.25"): exact, no floats
    taxable_cents: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    reverse_charge: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(300), default="")

    invoice: Mapped[Invoice] = relationship(back_populates="tax_lines")


class InvoiceNumberSequence(Base):
    """The next number per prefix ("INV-2026"). Taken in the issuing transaction, so numbers have no gaps:
    a rolled-back issue gives its number back."""

    __tablename__ = "invoice_number_sequences"

    prefix: Mapped[str] = mapped_column(String(20), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer, default=1)


class InvoicePdf(Base):
    """A rendered PDF per invoice and status version: rendered once, then served from here."""

    __tablename__ = "invoice_pdfs"

    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    status_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@event.listens_for(Invoice, "before_update")
def _guard_issued_invoice(mapper, connection, target: Invoice):
    from sqlalchemy import inspect

    history = inspect(target).attrs.status.history
    was = history.deleted[0] if history.deleted else target.status
    if was == "draft":
        return
    changed = {a.key for a in inspect(target).attrs if a.history.has_changes()} - {"lines", "tax_lines"}
    forbidden = changed - MUTABLE_AFTER_ISSUE
    if forbidden:
        raise InvoiceImmutable(f"invoice {target.number} is issued; cannot change {', '.join(sorted(forbidden))}")


def _guard_line(mapper, connection, target):
    invoice = target.invoice
    if invoice is not None and invoice.is_issued:
        from sqlalchemy import inspect

        status_history = inspect(invoice).attrs.status.history
        if status_history.deleted and status_history.deleted[0] == "draft":
            return  # being issued in this very flush
        raise InvoiceImmutable(f"invoice {invoice.number} is issued; its lines cannot change")


for _cls in (InvoiceLine, InvoiceTaxLine):
    event.listen(_cls, "before_update", _guard_line)
    event.listen(_cls, "before_delete", _guard_line)
