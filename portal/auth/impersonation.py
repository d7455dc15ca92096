"""Support staff viewing the portal as a customer of one account ("View as customer").

The rules, each a guard clause below:

- only staff start it, with a reason, and only within 15 minutes of entering their password;
- only a customer user of an existing account can be viewed (staff have no account to view);
- it does not nest;
- the session rotates when it starts and when it ends (new token, old one revoked), without extending the
  staff member's own session;
- it lasts 30 minutes at most, and it is read-only (the web layer refuses every change, see
  ``portal/web/impersonation.py``);
- every start, end, expiry and refused change is an AuditEvent naming the staff member, the account, the
  reason, the time and the address.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..audit import Actor
from ..errors import InvalidInput, NestedImpersonation, NoCustomerToView, NotFound, ReauthenticationRequired
from ..models import Account, LoginSession, User
from ..models.account import Impersonation
from . import sessions
from .ending import close, details as _details

DURATION = timedelta(minutes=30)
REAUTH_WINDOW = timedelta(minutes=15)
MAX_REASON = 500

READ_ONLY_MESSAGE = "You are viewing this account as support staff; changes are made from the console."


@dataclass(frozen=True)
class Switched:
    """Where starting or ending a view leaves the browser: the impersonation, and the token of the session it
    carries from now on (the view's once it starts, the staff member's own, rotated, once it ends)."""

    impersonation: Impersonation
    token: str


def customers_of(session: Session, account_id: int) -> list[User]:
    """The users who can be viewed as for an account: its customers, oldest first."""
    return list(session.scalars(select(User).where(User.account_id == account_id, User.role == "customer")
                                .order_by(User.id)))


def start(session: Session, token: str, *, account_id: int, reason: str, user_id: int | None = None,
          ip: str = "", user_agent: str = "", now: datetime) -> Switched:
    """Start viewing ``account_id`` as its customer from the staff session behind ``token``."""
    parent = sessions.live_session(session, token, now=now)
    if parent is None or not parent.user.is_staff:
        raise NotFound("No such page.")
    if parent.impersonation_id is not None:
        raise NestedImpersonation("You are already viewing an account as a customer. End that first.")
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    customers = customers_of(session, account.id)
    if user_id is not None:
        target = next((u for u in customers if u.id == user_id), None)
        if target is None:
            # A staff member, or a user of another account: there is nothing of theirs to view here.
            raise NotFound("That user is not a customer of this account.")
    elif customers:
        target = customers[0]
    else:
        raise NoCustomerToView("This account has no customer users, so there is nothing to view as a customer.")
    reason = " ".join((reason or "").replace("\x00", "").split())
    if not reason:
        raise InvalidInput({"reason": "Say why you need to view this account as the customer."})
    if len(reason) > MAX_REASON:
        raise InvalidInput({"reason": f"Keep the reason under {MAX_REASON} characters."})
    if parent.logged_in_at + REAUTH_WINDOW < now:
        raise ReauthenticationRequired("For your security, log in again to view an account as a customer: "
                                       "your last login was more than 15 minutes ago.")

    staff = parent.user
    impersonation = Impersonation(staff_user_id=staff.id, account_id=account.id, user_id=target.id, reason=reason,
                                  started_at=now, expires_at=min(now + DURATION, parent.expires_at),
                                  parent_session_hash=parent.token_hash, ip=ip[:64])
    session.add(impersonation)
    session.flush()
    new_token = sessions.rotate_session(session, parent, impersonation_id=impersonation.id, ip=ip,
                                        user_agent=user_agent, now=now)
    audit.record(session, Actor(user_id=staff.id, ip=ip), "impersonation.started", now=now, account_id=account.id,
                 **_details(impersonation))
    session.commit()
    return Switched(impersonation, new_token)


def stop(session: Session, token: str, *, ip: str = "", expired: bool = False, now: datetime) -> Switched:
    """End the impersonation behind ``token`` and rotate back to the staff member's own session."""
    row = sessions.live_session(session, token, now=now)
    if row is None or row.impersonation is None or row.impersonation.ended_at is not None:
        raise NotFound("You are not viewing an account as a customer.")
    close(session, row.impersonation, how="expired" if expired else "stopped", ip=ip, now=now)
    new_token = sessions.rotate_session(session, row, impersonation_id=None, ip=ip, now=now)
    session.commit()
    return Switched(row.impersonation, new_token)


def is_expired(impersonation: Impersonation, now: datetime) -> bool:
    return impersonation.expires_at <= now


def record_refusal(session: Session, impersonation: Impersonation, *, endpoint: str, method: str, path: str,
                   ip: str = "", now: datetime) -> None:
    """Audit a change refused because it was attempted while viewing as a customer."""
    audit.record(session, Actor(user_id=impersonation.user_id, impersonator_id=impersonation.staff_user_id, ip=ip),
                 "impersonation.refused", now=now, account_id=impersonation.account_id, endpoint=endpoint,
                 method=method, path=path.replace("\x00", "")[:300], **_details(impersonation))
    session.commit()


def effective_user(row: LoginSession, user: User) -> User | None:
    """Who a loaded session acts as: the staff member, or while impersonating the customer being viewed."""
    impersonation = row.impersonation
    if impersonation is None:
        user.impersonation = None
        return user
    if impersonation.ended_at is not None:
        return None
    customer = impersonation.user
    customer.session_token = user.session_token
    customer.impersonation = impersonation
    return customer
