"""Saved cards. The processor keeps the card; we keep what a customer needs to recognise it."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow

BRAND_NAMES = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "China UnionPay",
}


class PaymentMethod(Base):
    __tablename__ = "payment_methods"
    __table_args__ = (
        # At most one default card per account, enforced by the database rather than by hope.
        Index("uq_payment_methods_one_default", "account_id", unique=True,
              sqlite_where=text("is_default AND detached_at IS NULL"),
              postgresql_where=text("is_default AND detached_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    processor_id: Mapped[str] = mapped_column(String(64), unique=True)
    brand: Mapped[str] = mapped_column(String(20))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    cardholder_name: Mapped[str] = mapped_column(String(200), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleted cards are detached at the processor and kept here, so past invoices and attempts that
    # name them stay readable.
    detached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def brand_name(self) -> str:
        return BRAND_NAMES.get(self.brand, self.brand.title())

    @property
    def label(self) -> str:
        return f"{self.brand_name} •••• {self.last4}"

    def expiry_state(self, today: date) -> str:
        """``expired``, ``expiring`` (this month or next) or ``ok``.

        A card is valid through the last day of its expiry month.
        """
        months_left = (self.exp_year - today.year) * 12 + (self.exp_month - today.month)
        if months_left < 0:
            return "expired"
        if months_left <= 1:
            return "expiring"
        return "ok"
