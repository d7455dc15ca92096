"""A user's own login details: profile e-mail and password. Never the account's billing e-mail."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import audit
from ..audit import Actor
from ..errors import InvalidInput, NotFound, WrongPassword
from ..models import LoginSession, User
from .passwords import hash_password, verify_password
from .sessions import _digest

MIN_PASSWORD_LENGTH = 12


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def change_email(session: Session, user_id: int, *, new_email: str, current_password: str, actor: Actor,
                 now: datetime) -> User:
    """Change the e-mail this person logs in with; asks for the password so a borrowed session can't."""
    user = _user(session, user_id)
    new_email = new_email.strip()
    if not verify_password(user.password_hash, current_password):
        raise WrongPassword()
    taken = session.scalar(select(User.id).where(func.lower(User.email) == new_email.lower(), User.id != user.id))
    if taken:
        raise InvalidInput({"email": "Another user already logs in with that e-mail address."})
    old = user.email
    if old == new_email:
        return user
    user.email = new_email
    audit.record(session, actor, "profile.email_changed", now=now, account_id=user.account_id, old=old, new=new_email)
    session.commit()
    return user


def change_password(session: Session, user_id: int, *, current_password: str, new_password: str,
                    keep_session_token: str | None, actor: Actor, now: datetime) -> User:
    """Set a new password and sign out every other browser, so a leaked old password is worthless."""
    user = _user(session, user_id)
    if not verify_password(user.password_hash, current_password):
        raise WrongPassword()
    if len(new_password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput({"new_password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})
    if new_password == current_password:
        raise InvalidInput({"new_password": "Choose a password different from your current one."})
    user.password_hash = hash_password(new_password)
    keep = _digest(keep_session_token) if keep_session_token else None
    session.execute(update(LoginSession)
                    .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None),
                           LoginSession.token_hash != (keep or ""))
                    .values(revoked_at=now))
    audit.record(session, actor, "profile.password_changed", now=now, account_id=user.account_id)
    session.commit()
    return user
