"""State of the built-in sandbox processor.

The sandbox behaves like an outside processor that happens to keep its books in our database: its rows
are written in their own transactions, never in the caller's, so the written-first rule is exercised
the same way in sandbox mode as against Stripe.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class SandboxObject(Base):
    __tablename__ = "sandbox_objects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), index=True)  # customer | payment_method | setup_intent | ...
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SandboxIdempotencyKey(Base):
    """A replayed request with the same key gets the first answer, as Stripe's idempotency does."""

    __tablename__ = "sandbox_idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    result: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
