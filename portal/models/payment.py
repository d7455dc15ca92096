"""Attempts to collect an invoice. Each is written (with its idempotency key) before the processor is
called, and its outcome recorded after: a crash in between is settled by asking again with the same key."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow
from .invoice import Invoice


class PaymentAttempt(Base):
    __tablename__ = "payment_attempts"
    __table_args__ = (UniqueConstraint("invoice_id", "attempt_number", name="uq_payment_attempts_invoice_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    attempt_number: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    # renewal | retry | customer | staff | checkout
    trigger: Mapped[str] = mapped_column(String(12), default="renewal")
    # pending | succeeded | failed | requires_action | processing
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)  # what was asked for
    currency: Mapped[str] = mapped_column(String(3))
    # What the processor says it actually collected (in ``currency`` of its own answer); set on success.
    amount_received_cents: Mapped[int | None] = mapped_column(Integer)
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    payment_method_label: Mapped[str] = mapped_column(String(60), default="")
    processor_payment_id: Mapped[str] = mapped_column(String(80), default="")
    failure_code: Mapped[str] = mapped_column(String(60), default="")
    failure_message: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Pay now: the Checkout Session this attempt is, where the customer pays, and until when.
    checkout_session_id: Mapped[str | None] = mapped_column(String(120), unique=True)
    checkout_url: Mapped[str] = mapped_column(String(500), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice] = relationship()


class ProcessorEvent(Base):
    """A processor event (Stripe webhook or sandbox) that has been applied. Written in the same
    transaction as its effects, so a redelivery finds it and does nothing."""

    __tablename__ = "processor_events"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(10), default="stripe")  # stripe | sandbox
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(200), default="")
