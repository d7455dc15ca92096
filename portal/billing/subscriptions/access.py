"""Whether an account has paid access right now: the one answer the SaaS product in front asks for."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ...models import Subscription


@dataclass(frozen=True)
class Access:
    paid_access: bool
    status: str  # active | past_due | suspended | canceled | none
    reason: str
    plan: str | None = None
    current_period_end: datetime | None = None

    def as_json(self) -> dict:
        return {"paid_access": self.paid_access, "status": self.status, "reason": self.reason, "plan": self.plan,
                "current_period_end": self.current_period_end.isoformat() if self.current_period_end else None}


def current_subscription(session: Session, account_id: int) -> Subscription | None:
    """The account's live subscription, or its most recent one when none is live."""
    return session.scalar(_current_subscription(), {"account_id": account_id})


@functools.cache
def _current_subscription():
    """Built once per process: every page and most HTMX answers run it, and building it cost more than
    running it."""
    return (select(Subscription).where(Subscription.account_id == bindparam("account_id"))
            .order_by((Subscription.status == "canceled").asc(), Subscription.created_at.desc()).limit(1))


REASONS = {
    "active": "The subscription is active and paid.",
    "past_due": "A payment failed; paid features are paused until the open invoice is paid.",
    "suspended": "Payment failed repeatedly, so the subscription is suspended until the open invoice is paid.",
    "canceled": "The subscription was canceled.",
    "none": "The account has no subscription.",
}


def paid_access(session: Session, account_id: int) -> Access:
    """True only while the subscription is Active: Past due and Suspended lose paid features at once."""
    subscription = current_subscription(session, account_id)
    if subscription is None:
        return Access(False, "none", REASONS["none"])
    status = subscription.status
    return Access(paid_access=status == "active", status=status, reason=REASONS.get(status, status),
                  plan=subscription.plan.code, current_period_end=subscription.current_period_end)
