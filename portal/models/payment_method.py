"""Saved payment methods: cards, PayPal and bank accounts (US ACH and SEPA debits). The processor keeps the
credentials; we keep what a customer needs to recognise each one."""
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

# The kinds of saved method, by Stripe's payment method type names.
METHOD_TYPES = ("card", "paypal", "us_bank_account", "sepa_debit")
BANK_TYPES = ("us_bank_account", "sepa_debit")


class PaymentMethod(Base):
    __tablename__ = "payment_methods"
    __table_args__ = (
        # At most one default card per account, enforced by the database rather than by hope.
        Index("uq_payment_methods_one_default", "account_id", unique=True,
              sqlite_where=text("is_default AND detached_at IS NULL"),
              postgresql_where=text("is_default AND detached_at IS NULL")),
        # And at most one backup, tried once when a charge on the default is declined.
        Index("uq_payment_methods_one_backup", "account_id", unique=True,
              sqlite_where=text("is_backup AND detached_at IS NULL"),
              postgresql_where=text("is_backup AND detached_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    processor_id: Mapped[str] = mapped_column(String(64), unique=True)
    # card | paypal | us_bank_account | sepa_debit (METHOD_TYPES)
    type: Mapped[str] = mapped_column(String(20), default="card")
    # Cards: the brand and expiry. PayPal and banks keep brand "paypal"/"bank" and expiry 0/0: they do not expire.
    brand: Mapped[str] = mapped_column(String(20))
    last4: Mapped[str] = mapped_column(String(4))  # card or bank account number's last four; "" for PayPal
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    cardholder_name: Mapped[str] = mapped_column(String(200), default="")  # or the account holder's name
    email: Mapped[str] = mapped_column(String(254), default="")  # PayPal: the payer's e-mail address
    bank_name: Mapped[str] = mapped_column(String(80), default="")
    country: Mapped[str] = mapped_column(String(2), default="")  # the bank's country (US, DE, ...)
    # SEPA: the mandate the customer accepted, kept and shown; ACH: the authorization's reference.
    mandate_reference: Mapped[str] = mapped_column(String(80), default="")
    mandate_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # verified | pending (an ACH account waiting for its micro-deposits). Only verified methods are charged.
    verification: Mapped[str] = mapped_column(String(12), default="verified")
    # The processor's SetupIntent that saved the method: a pending ACH account is verified through it.
    setup_intent_id: Mapped[str | None] = mapped_column(String(64))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_backup: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleted cards are detached at the processor and kept here, so past invoices and attempts that
    # name them stay readable.
    detached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def brand_name(self) -> str:
        return BRAND_NAMES.get(self.brand, self.brand.title())

    @property
    def is_card(self) -> bool:
        return self.type == "card"

    @property
    def is_bank(self) -> bool:
        return self.type in BANK_TYPES

    @property
    def label(self) -> str:
        """How the method is named everywhere (page, invoices, e-mails, audit): "Visa •••• 4242",
        "PayPal · name@example.com", "STRIPE TEST BANK •••• 6789"."""
        if self.type == "paypal":
            return f"PayPal · {self.email}" if self.email else "PayPal"
        if self.is_bank:
            return f"{self.bank_name or 'Bank account'} •••• {self.last4}"
        return f"{self.brand_name} •••• {self.last4}"

    def expiry_state(self, today: date) -> str:
        """``expired``, ``expiring`` (this month or next) or ``ok``.

        A card is valid through the last day of its expiry month. PayPal and bank accounts do not expire.
        """
        if not self.is_card:
            return "ok"
        months_left = (self.exp_year - today.year) * 12 + (self.exp_month - today.month)
        if months_left < 0:
            return "expired"
        if months_left <= 1:
            return "expiring"
        return "ok"
