"""Server-side login sessions.

The session cookie carries a random token; the database keeps only its SHA-256. Logging in always
creates a new row (the session is rotated: a token planted before login is worthless after it) and
logging out revokes the row, so a copied cookie stops working at once. Starting and ending an
impersonation rotates the session too (``rotate_session``): a new row and token, the old one revoked, the
same absolute expiry and the same time of the last password entry.
"""
from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, joinedload

from .. import audit, models
from ..audit import Actor
from ..models import LoginSession, User
from .ending import close
from .passwords import hash_password, needs_rehash, verify_password

SESSION_LIFETIME = timedelta(hours=12)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> datetime:
    """The clock for the login routes to pass in, looked up on ``portal.models`` at each call so tests can
    move it."""
    return models.utcnow()


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user with this e-mail and password, or None; upgrades an outdated hash on the way."""
    if "\x00" in email:
        return None  # no address has a NUL byte, and PostgreSQL refuses one in a query parameter outright
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if not verify_password(user.password_hash if user else None, password):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.commit()
    return user


def start_session(session: Session, user: User, *, ip: str = "", user_agent: str = "",
                  now: datetime, return_url: str = "") -> str:
    """Open a new login session for ``user`` and return its token (for the cookie only). ``return_url`` is
    where "Back to the product" leads, when the login came from the product's portal session."""
    token = secrets.token_urlsafe(32)
    session.add(LoginSession(token_hash=_digest(token), user_id=user.id, created_at=now, authenticated_at=now,
                             expires_at=now + SESSION_LIFETIME, ip=ip[:64], user_agent=user_agent[:300],
                             return_url=return_url))
    audit.record(session, Actor(user_id=user.id, ip=ip), "auth.login", now=now, account_id=user.account_id)
    session.commit()
    user.session_token = token
    return token


@functools.cache
def _session_by_token():
    """The statement ``load_session`` runs, built once per process: it runs before every logged-in request,
    and building it (the comparison, the two joined loads) cost more than SQLAlchemy's cached compile of it."""
    return (select(LoginSession).where(LoginSession.token_hash == bindparam("token_hash"))
            .options(joinedload(LoginSession.user).joinedload(User.account)))


def load_session(session: Session, token: str, *, now: datetime) -> tuple[LoginSession, User] | None:
    """The live session and its user for a cookie token, or None if revoked, expired or unknown."""
    # One statement before every request: the session, its user and the user's account together (the
    # account lands in the identity map, so the page's own lookup of it costs nothing).
    row = session.scalar(_session_by_token(), {"token_hash": _digest(token)})
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = row.user
    user.session_token = token
    user.return_url = row.return_url
    return row, user


def live_session(session: Session, token: str | None, *, now: datetime) -> LoginSession | None:
    """The session row behind a cookie token, if it is neither revoked nor expired."""
    if not token:
        return None
    found = load_session(session, token, now=now)
    return found[0] if found else None


def rotate_session(session: Session, old: LoginSession, *, impersonation_id: int | None, ip: str = "",
                   user_agent: str = "", now: datetime) -> str:
    """Replace ``old`` by a new row and token for the same person (the caller commits).

    The old token stops working at once. The absolute expiry and the time the password was entered carry
    over unchanged, so rotating never extends a session or refreshes a recent login.
    """
    token = secrets.token_urlsafe(32)
    old.revoked_at = now
    session.add(LoginSession(token_hash=_digest(token), user_id=old.user_id, created_at=now,
                             authenticated_at=old.logged_in_at, expires_at=old.expires_at,
                             impersonation_id=impersonation_id, ip=(ip or old.ip)[:64],
                             user_agent=(user_agent or old.user_agent)[:300]))
    session.flush()
    return token


def end_session(session: Session, token: str, *, ip: str = "", now: datetime,
                commit: bool = True) -> None:
    """Revoke the session behind ``token``; ``commit=False`` leaves that to a caller who logs in next."""
    row = session.get(LoginSession, _digest(token))
    if row is None or row.revoked_at is not None:
        return
    row.revoked_at = now
    if row.impersonation is not None and row.impersonation.ended_at is None:
        # Logging out while viewing an account ends that view too, and says so in the account's log.
        close(session, row.impersonation, how="logout", ip=ip, now=now)
    audit.record(session, Actor(user_id=row.user_id, ip=ip), "auth.logout", now=now, account_id=row.user.account_id)
    if commit:
        session.commit()
