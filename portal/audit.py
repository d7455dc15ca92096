"""Recording who did what: every service that changes an account writes an AuditEvent in its own
transaction, so the record and the change commit or roll back together."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from .models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who is acting: the user, the staff member behind them when impersonating, and their address; for the
    product's servers calling the API, the name of the API key they used (no user acts then)."""

    user_id: int | None
    impersonator_id: int | None = None
    ip: str = ""
    api_key: str = ""

    @classmethod
    def system(cls) -> "Actor":
        return cls(user_id=None)

    @classmethod
    def for_api_key(cls, name: str, *, ip: str = "") -> "Actor":
        return cls(user_id=None, ip=ip, api_key=name)


def record(session: Session, actor: Actor, action: str, *, now: datetime, account_id: int | None,
           **details) -> AuditEvent:
    """Add the event to the caller's transaction. ``now`` is the caller's clock (a worker pass's time, or the
    request's), so a pass run for another moment records that moment. A call through the API keeps the key's
    name in the details: it is the only "who" such a change has."""
    if actor.api_key:
        details = {**details, "api_key": actor.api_key}
    event = AuditEvent(occurred_at=now, account_id=account_id, actor_user_id=actor.user_id,
                       on_behalf_of_user_id=actor.impersonator_id, action=action, details=details, ip=actor.ip)
    session.add(event)
    return event
