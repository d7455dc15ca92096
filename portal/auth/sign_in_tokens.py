"""Single-use ways in: portal sessions the product makes for its users ("Manage plan"), and sign-in links
e-mailed from the login page.

The token travels in the URL only; the database keeps its SHA-256, so a copy of the table opens nothing.
Redeeming marks the row used with one ``UPDATE ... WHERE used_at IS NULL``: of two browsers racing with the
same link, the database lets exactly one through. A refused redemption of a token that exists (used,
expired, its user removed or staff) is audited on the account; a token that never existed is not, because
there is nothing to tie it to and anyone could fill the log with guesses.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import audit
from ..audit import Actor
from ..config import Settings
from ..errors import InvalidInput, NotFound
from ..models import Account, SignInToken, User
from ..notifications.outbox import enqueue
from . import sessions

FLOWS = ("billing", "payment_method", "plan", "cancel")
# Deliberately loose: the address is the product's to vouch for; this only keeps out what can't be one.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/portal/session/{token}"


def return_url_error(url: str, settings: Settings) -> str | None:
    """Why ``url`` may not be a return address (None when it may): only the listed origins, so the portal is
    never an open redirect."""
    if not url or len(url) > 500 or any(c in url for c in "\\\r\n\t\x00 "):
        return "Enter a full URL on one of the product's allowed origins."
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return "Enter a full URL on one of the product's allowed origins."
    if f"{parts.scheme}://{parts.netloc.lower()}" not in settings.allowed_return_origins:
        return "This URL is not on an origin listed in PORTAL_ALLOWED_RETURN_ORIGINS."
    return None


def _issue(session: Session, user: User, *, kind: str, flow: str, return_url: str, ttl: int,
           api_key_id: int | None, now: datetime) -> tuple[str, SignInToken]:
    token = secrets.token_urlsafe(32)
    row = SignInToken(token_hash=_digest(token), kind=kind, user_id=user.id, flow=flow, return_url=return_url,
                      api_key_id=api_key_id, created_at=now, expires_at=now + timedelta(seconds=ttl))
    session.add(row)
    return token, row


def create_portal_session(session: Session, *, account_external_id: str, email: str, return_url: str,
                          flow: str = "billing", api_key_id: int | None, settings: Settings,
                          now: datetime, actor: Actor | None = None) -> tuple[str, datetime]:
    """A single-use URL that logs the product's user into its account's billing pages, and when it expires.

    The user is found by e-mail on that account, or added to it (without a password: portal sessions and
    e-mailed links are their way in). An address that already belongs to another account's user, or to
    staff, is refused rather than moved: the product cannot hand out someone else's login."""
    account = session.scalar(select(Account).where(Account.external_id == account_external_id))
    if account is None:
        raise NotFound("No account has this id.", field="account")
    email = (email or "").strip().lower()
    errors = {}
    user = None
    if not _EMAIL.match(email) or len(email) > 254:
        errors["email"] = "Enter an e-mail address."
    else:
        user = session.scalar(select(User).where(func.lower(User.email) == email))
        if user is not None and user.account_id != account.id:
            errors["email"] = "This e-mail address belongs to a user of another account."
    if (problem := return_url_error(return_url or "", settings)) is not None:
        errors["return_url"] = problem
    if flow not in FLOWS:
        errors["flow"] = "Choose one of: " + ", ".join(FLOWS) + "."
    if errors:
        raise InvalidInput(errors)
    actor = actor or Actor.system()
    if user is None:
        user = User(account_id=account.id, email=email, password_hash="", created_at=now)
        session.add(user)
        session.flush()
        audit.record(session, actor, "user.added", now=now, account_id=account.id, email=email,
                     via="portal_session", api_key_id=api_key_id)
    token, row = _issue(session, user, kind="portal_session", flow=flow, return_url=return_url,
                        ttl=settings.portal_session_ttl, api_key_id=api_key_id, now=now)
    audit.record(session, actor, "portal_session.created", now=now, account_id=account.id,
                 user_id=user.id, flow=flow, api_key_id=api_key_id)
    session.commit()
    return sign_in_url(settings, token), row.expires_at


@dataclass(frozen=True)
class Redemption:
    """What a token opened, or why it opened nothing: ``refused`` is ``unknown``, ``used``, ``expired``,
    ``user_removed`` (no longer on an account) or ``staff`` (links never sign staff in). The page says the
    same for each; the audit row keeps the reason."""

    user: User | None = None
    flow: str = "billing"
    return_url: str = ""
    refused: str | None = None


def redeem(session: Session, token: str, *, now: datetime, ip: str = "") -> Redemption:
    """Spend the token (in the caller's transaction) and say whom it signs in; refusals are audited and
    committed here, since no login follows them."""
    digest = _digest(token or "")
    claimed = session.execute(update(SignInToken)
                              .where(SignInToken.token_hash == digest, SignInToken.used_at.is_(None),
                                     SignInToken.expires_at > now)
                              .values(used_at=now)).rowcount == 1
    row = session.get(SignInToken, digest)
    if row is None:
        return Redemption(refused="unknown")
    session.refresh(row)
    user = row.user
    if not claimed:
        reason = "used" if row.used_at is not None else "expired"
    elif user.is_staff:
        reason = "staff"
    elif user.account_id is None:
        reason = "user_removed"
    else:
        return Redemption(user=user, flow=row.flow, return_url=row.return_url)
    audit.record(session, Actor(user_id=user.id, ip=ip), "auth.sign_in_refused", now=now,
                 account_id=user.account_id, reason=reason, kind=row.kind)
    session.commit()
    return Redemption(refused=reason)


def sign_in_with_token(session: Session, token: str, *, previous_session_token: str | None = None, ip: str = "",
                       user_agent: str = "", now: datetime) -> tuple[Redemption, str | None]:
    """Redeem the token and, if it is good, open a fresh login session (as a password login does) that
    remembers where "Back to the product" leads. Returns the redemption and the new session's token.

    A browser that was logged in as someone else is logged out of that session first: one browser, one
    person."""
    redemption = redeem(session, token, now=now, ip=ip)
    if redemption.refused:
        return redemption, None
    if previous_session_token:
        sessions.end_session(session, previous_session_token, ip=ip, now=now, commit=False)
    new_token = sessions.start_session(session, redemption.user, ip=ip, user_agent=user_agent, now=now,
                                       return_url=redemption.return_url)
    return redemption, new_token


def email_sign_in_link(session: Session, email: str, *, settings: Settings, now: datetime, ip: str = "") -> None:
    """E-mail a single-use sign-in link to the customer with this address, through the outbox.

    Says nothing back either way: the login page answers the same whether or not the address is known.
    Staff are left out on purpose; their accounts open every customer's data and keep to passwords."""
    address = (email or "").strip().lower()
    user = session.scalar(select(User).where(func.lower(User.email) == address)) if address else None
    if user is None or user.account_id is None or user.is_staff:
        return
    token, row = _issue(session, user, kind="email_link", flow="billing", return_url="",
                        ttl=settings.sign_in_link_ttl, api_key_id=None, now=now)
    enqueue(session, dedupe_key=f"sign-in-link-{row.token_hash}", kind="sign_in_link", to=user.email,
            subject="Your sign-in link", template="sign_in_link", account_id=user.account_id, now=now,
            context={"url": sign_in_url(settings, token), "minutes": max(1, settings.sign_in_link_ttl // 60)})
    audit.record(session, Actor(user_id=user.id, ip=ip), "auth.sign_in_link_sent", now=now,
                 account_id=user.account_id)
    session.commit()
