"""Customer users added by the product in front (through the API, or when it hands a user over to the
portal): known by e-mail, with no password. An empty ``password_hash`` means "no password login"
(``passwords.verify_password`` never accepts one); such users arrive through portal sessions or e-mailed
sign-in links, and may set a password later like anyone else."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import audit
from ..audit import Actor
from ..errors import EmailTaken, InvalidInput
from ..models import User

NO_PASSWORD = ""
NAME_LENGTH = 200


@dataclass(frozen=True)
class UserAdded:
    user: User
    created: bool


def normalise_email(email: str) -> str:
    """The address as it will log in, or InvalidInput naming ``email``."""
    email = (email or "").strip()
    try:
        if "\x00" in email or len(email) > 254:
            raise EmailNotValidError("bad")
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidInput({"email": "Enter a valid e-mail address, like ada@example.com."}) from None


def add_customer_user(session: Session, account_id: int, email: str, *, name: str = "", actor: Actor,
                      now: datetime) -> UserAdded:
    """The account's user with this e-mail, created without a password if new (idempotent: the same call
    again finds the same user). An address that already belongs to another account is refused."""
    email = normalise_email(email)
    name = (name or "").strip()
    if len(name) > NAME_LENGTH or "\x00" in name:
        raise InvalidInput({"name": f"Use at most {NAME_LENGTH} characters."})
    existing = session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    if existing is not None:
        if existing.account_id != account_id:
            raise EmailTaken("That e-mail address already logs in to another account.", field="email")
        return UserAdded(user=existing, created=False)
    user = User(account_id=account_id, email=email, name=name, password_hash=NO_PASSWORD, role="customer",
                created_at=now)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        # The same address added a moment ago by another request: answer as if this one came second.
        session.rollback()
        return add_customer_user(session, account_id, email, name=name, actor=actor, now=now)
    audit.record(session, actor, "user.added", now=now, account_id=account_id, email=email)
    session.commit()
    return UserAdded(user=user, created=True)
