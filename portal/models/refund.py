"""Money sent back for a paid invoice: to the original payment (a processor refund) or as account credit.

A refund row is written, with its idempotency key, before the processor is called, and its outcome is
recorded after; pending and succeeded refunds both count against what is still refundable, so two staff
members refunding at once can never send back more than was paid.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow
from .invoice import Invoice
from .payment import PaymentAttempt

REFUND_STATUS_LABELS = {"pending": "Pending", "succeeded": "Refunded", "failed": "Failed"}


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(300), default="")
    # pending | succeeded | failed
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    # card (back to the original payment) | credit (to the account's credit balance)
    destination: Mapped[str] = mapped_column(String(6), default="card")
    # refund (staff or the processor's dashboard gave paid money back) | surplus (money the invoice could not
    # take: a second payment, a payment for a void invoice, too much or another currency; sent back by itself)
    kind: Mapped[str] = mapped_column(String(8), default="refund")
    # The payment a surplus refund sends money back to (refunds of paid invoices go to the invoice's payment).
    payment_attempt_id: Mapped[int | None] = mapped_column(ForeignKey("payment_attempts.id"))
    # portal (made by staff here) | processor (made in the processor's dashboard, learnt from its events)
    origin: Mapped[str] = mapped_column(String(10), default="portal")
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    # Unique: a refund the processor reports twice (our call's answer and its webhook) is recorded once.
    processor_refund_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    failure_message: Mapped[str] = mapped_column(String(300), default="")
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    payment_attempt: Mapped["PaymentAttempt | None"] = relationship(foreign_keys=[payment_attempt_id])

    @property
    def status_label(self) -> str:
        return REFUND_STATUS_LABELS.get(self.status, self.status.title())

    @property
    def counts(self) -> bool:
        """Whether it uses up refundable money: a failed refund gives its amount back."""
        return self.kind == "refund" and self.status in ("pending", "succeeded")


# Read-only: an invoice's refunds for its PDF and pages. View-only, so adding a refund never counts as a
# change to the (immutable) invoice itself.
Invoice.refunds = relationship(Refund, viewonly=True, order_by=(Refund.created_at, Refund.id),
                               primaryjoin=Invoice.id == Refund.invoice_id, foreign_keys=[Refund.invoice_id])
