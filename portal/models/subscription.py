"""What is sold (Plan) and an Account's running plan (Subscription)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..dates import format_date
from .base import Base, UTCDateTime, utcnow

STATUS_LABELS = {"active": "Active", "past_due": "Past due", "suspended": "Suspended", "canceled": "Canceled"}

# Statuses in which the account still owes for its plan, so its default card is in use.
BILLABLE_STATUSES = ("active", "past_due")


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    interval: Mapped[str] = mapped_column(String(10))  # month | year
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Whether customers may pick this plan themselves on Manage plan (the product may keep some for sales).
    self_serve: Mapped[bool] = mapped_column(Boolean, default=True)


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), active_history=True)
    # active | past_due | suspended | canceled
    status: Mapped[str] = mapped_column(String(12), default="active", active_history=True)
    current_period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    current_period_end: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A trial: no invoice until it ends; the first period starts then.
    trial_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Cancel at period end: the customer keeps the plan until current_period_end, then it ends.
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False, active_history=True)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    # A plan change that takes effect at the next renewal (a downgrade), instead of at once.
    scheduled_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), active_history=True)

    plan: Mapped[Plan] = relationship(lazy="joined", foreign_keys=[plan_id])
    scheduled_plan: Mapped[Plan | None] = relationship(foreign_keys=[scheduled_plan_id])

    @property
    def in_trial(self) -> bool:
        """The trial is the current period until the first renewal moves the period past its end."""
        return (self.status == "active" and self.trial_end is not None
                and self.current_period_end is not None and self.current_period_end <= self.trial_end)

    @property
    def status_label(self) -> str:
        """The status in words: "Trial until 15 Dec 2026" while in a trial, never a raw code."""
        if self.in_trial:
            return f"Trial until {format_date(self.trial_end)}"
        return STATUS_LABELS.get(self.status, self.status.replace("_", " ").capitalize())
