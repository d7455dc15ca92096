"""Ending a view-as-customer (an Impersonation): stopping it, letting it expire, or logging out while in it.

Its own module because both ``sessions`` (logging out) and ``impersonation`` (stopping) end one; with the
code in either of them, the two would import each other.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from .. import audit
from ..audit import Actor
from ..models.account import Impersonation


def close(session: Session, impersonation: Impersonation, *, how: str, now: datetime, ip: str = "") -> None:
    """Mark it ended (``stopped``, ``expired`` or ``logout``) and audit it; the caller commits."""
    impersonation.ended_at = now
    impersonation.end_reason = how
    action = "impersonation.expired" if how == "expired" else "impersonation.stopped"
    audit.record(session, Actor(user_id=impersonation.staff_user_id, ip=ip), action,
                 now=now, account_id=impersonation.account_id, how=how, **details(impersonation))


def details(impersonation: Impersonation) -> dict:
    return {"impersonation_id": impersonation.id, "staff_user_id": impersonation.staff_user_id,
            "customer_user_id": impersonation.user_id, "reason": impersonation.reason,
            "expires_at": impersonation.expires_at.isoformat()}
