"""Issued bills. Once issued, an invoice's amounts, lines and billing snapshot never change; only its
status (forward) and payment facts move. Enforced below for everything written through the ORM, and on
PostgreSQL also by triggers (migration 0006) for everything else."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, event,
                        inspect, select)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE

from .base import Base, UTCDateTime, utcnow

STATUS_LABELS = {"draft": "Draft", "open": "Open", "paid": "Paid", "void": "Void"}

# The only columns that may still change once an invoice is issued: its status and the facts of its payment.
# Everything else -- every other column, columns added later, the lines and tax lines -- is frozen at issue.
# To let a new column move after issue, add it here AND, in a migration, replace the database function
# invoice_mutable_after_issue() (migration 0006) with the longer list; a PostgreSQL test compares the two.
MUTABLE_AFTER_ISSUE = frozenset({
    "status", "status_version", "amount_paid_cents", "paid_at", "voided_at", "void_reason",
    "payment_method_label", "processor_transaction_id", "amount_refunded_cents", "checkout_session_id",
    "auto_retry", "next_retry_at", "transfer_reference", "awaiting_transfer_at",
})

# Where each status may go; a status never moves back, and never to draft. Issuing opens a draft, or pays it
# when credit covers it all; an open invoice is paid or voided. A paid invoice is refunded, never voided.
STATUS_MOVES = {"draft": frozenset({"open", "paid"}), "open": frozenset({"paid", "void"}),
                "paid": frozenset(), "void": frozenset()}


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
    # A plan change's proration invoice: the plan its subscription moves to once this is paid in full.
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    number: Mapped[str | None] = mapped_column(String(32), unique=True)  # assigned when issued
    # draft | open | paid | void. active_history: the guard below needs the stored status even when the
    # attribute was expired before it was set.
    status: Mapped[str] = mapped_column(String(8), default="draft", active_history=True)
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
    # Pay by bank transfer (annual plans): the reference the customer quotes, and since when we wait for it.
    # While it waits there are no automatic retries; the due date still counts.
    transfer_reference: Mapped[str | None] = mapped_column(String(40), unique=True)
    awaiting_transfer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

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
    def short_description(self) -> str:
        """What the invoice is for in a few words, for the list: its first line, and how many more."""
        if not self.lines:
            return ""
        more = len(self.lines) - 1
        return self.lines[0].description + (f" and {more} more" if more else "")

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


def _statuses(invoice: Invoice) -> set[str]:
    """The invoice's status in the database and the one this flush writes (one value when unchanged)."""
    history = inspect(invoice).get_history("status", PASSIVE_NO_INITIALIZE)
    return {*history.deleted, *history.unchanged, *history.added} or {invoice.status}


def _number(invoice: Invoice) -> str:
    """The number the invoice is known by (the stored one, not a forged replacement), for messages."""
    history = inspect(invoice).get_history("number", PASSIVE_NO_INITIALIZE)
    if history.added and not history.deleted:  # set while unloaded: the stored number is not known here
        return f"#{invoice.id}"
    return (history.deleted or history.unchanged or [invoice.number])[0] or f"#{invoice.id}"


def _stored_status(invoice: Invoice) -> str | None:
    """The status the database holds now (None for an invoice not inserted yet)."""
    state = inspect(invoice)
    if state.pending or state.transient:
        return None
    history = state.get_history("status", PASSIVE_NO_INITIALIZE)
    return (history.deleted or history.unchanged or [invoice.status])[0]


@event.listens_for(Invoice, "before_update")
def _guard_issued_invoice(mapper, connection, target: Invoice):
    was, now = _stored_status(target), target.status
    if now != was and now not in STATUS_MOVES.get(was, ()):
        raise InvoiceImmutable(f"invoice {_number(target)} cannot go from {was} to {now}")
    if was == "draft":
        return  # a draft is still being written, and may be issued in this very flush
    # Every attribute, relationships included, unless named mutable: lines appended to an issued invoice
    # and columns added to the model later are refused without anyone having to list them.
    # (View-only relationships, such as refunds, write nothing and are no part of what the invoice says.)
    state = inspect(target)
    # Only attributes set since the row was loaded can have changes (each set records itself in
    # ``committed_state``); asking every attribute of the mapper for its history costs more than the update.
    changed = {key for key in state.committed_state if key in mapper.attrs
               and not getattr(mapper.attrs[key], "viewonly", False)
               and state.get_history(key, PASSIVE_NO_INITIALIZE).has_changes()}
    forbidden = changed - MUTABLE_AFTER_ISSUE
    if forbidden:
        raise InvoiceImmutable(f"invoice {_number(target)} is issued; cannot change {', '.join(sorted(forbidden))}")


@event.listens_for(Invoice, "before_delete")
def _guard_issued_invoice_delete(mapper, connection, target: Invoice):
    if _stored_status(target) != "draft":
        raise InvoiceImmutable(f"invoice {_number(target)} is issued; it cannot be deleted (void it instead)")


def _guard_invoice_content(mapper, connection, target):
    """A line or tax line is written only while its invoice is a draft, before and after this flush.

    The invoice is saved before its lines in a flush, so a line written in the flush that issues its invoice
    would reach the database after the invoice became open; issue_invoice therefore flushes the draft with
    its lines first, and anything still added in the issuing flush is refused here as the trigger would.
    """
    state = inspect(target)
    statuses, seen = set(), set()
    # ``get_history`` is what ``state.attrs.<key>.history`` answers, without building a view of every
    # attribute per call (these listeners run for every invoice, line and tax line of a flush).
    parent = state.get_history("invoice", PASSIVE_NO_INITIALIZE)
    for invoice in (*parent.deleted, *parent.unchanged, *parent.added):
        if invoice is not None:
            statuses |= _statuses(invoice)
            seen.add(invoice.id)
    # Parents known only by id (a line built with invoice_id=, or moved from one invoice to another).
    ids = {*state.get_history("invoice_id", PASSIVE_NO_INITIALIZE).deleted, target.invoice_id} - seen - {None}
    if ids:
        statuses |= set(connection.scalars(select(Invoice.status).where(Invoice.id.in_(ids))))
    if statuses - {"draft"}:
        what = type(target).__tablename__.replace("_", " ")
        raise InvoiceImmutable(f"invoice {target.invoice_id} is issued; its {what} cannot change")


# Everything an invoice consists of besides its own columns; a test checks that this covers every
# collection the Invoice model has.
INVOICE_CONTENT = (InvoiceLine, InvoiceTaxLine)

for _cls in INVOICE_CONTENT:
    for _event in ("before_insert", "before_update", "before_delete"):
        event.listen(_cls, _event, _guard_invoice_content)
