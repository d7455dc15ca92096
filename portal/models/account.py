"""The paying customer (Account), the people who log in (User) and their login sessions."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The product's own id for this account: the API finds accounts by it.
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    # Where invoices and billing notices go; deliberately not the profile e-mail of any user.
    billing_email: Mapped[str] = mapped_column(String(254))
    address_line1: Mapped[str] = mapped_column(String(200), default="")
    address_line2: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    region: Mapped[str] = mapped_column(String(100), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    vat_number: Mapped[str] = mapped_column(String(20), default="")
    # none | valid | invalid | pending
    vat_status: Mapped[str] = mapped_column(String(10), default="none")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    processor_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="account")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Customers belong to one account; staff belong to none.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default="customer")  # customer | staff
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account | None] = relationship(back_populates="users")

    # Set by the session loader: the cookie keeps this token, not the user id, so that logging out revokes
    # exactly one server-side session (see portal/auth/sessions.py). The web layer hands it to Flask-Login
    # as the user's id (portal/web/auth.py, ``adopt_login_protocol``).
    session_token = None
    # Set by the session loader too: where "Back to {product}" leads for this login ("" for none).
    return_url = ""
    # Set by the session loader while a staff member views this customer's pages (see
    # portal/auth/impersonation.py): the live Impersonation, whose staff_user is the person at the keyboard.
    impersonation = None

    @property
    def impersonator(self) -> User | None:
        """The staff member viewing the portal as this user in this request, if any."""
        return self.impersonation.staff_user if self.impersonation is not None else None

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"


class LoginSession(Base):
    """One signed-in browser. The cookie holds only its random token; logout revokes the row."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    # Where "Back to {product}" leads for this login, when it began with a portal session.
    return_url: Mapped[str] = mapped_column(String(500), default="")
    # When the password was last entered. Rotating the session (impersonation start and stop) keeps it, so
    # "logged in within the last 15 minutes" means the password, not the latest rotation.
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set while this browser views a customer's pages as support staff.
    impersonation_id: Mapped[int | None] = mapped_column(ForeignKey("impersonations.id"), index=True)

    user: Mapped[User] = relationship()
    impersonation: Mapped[Impersonation | None] = relationship()

    @property
    def logged_in_at(self) -> datetime:
        return self.authenticated_at or self.created_at


class Impersonation(Base):
    """A staff member viewing the portal as a customer of one account: read-only, for 30 minutes at most."""

    __tablename__ = "impersonations"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The customer user whose view is shown.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # stopped | expired | logout
    end_reason: Mapped[str] = mapped_column(String(20), default="")
    # SHA-256 of the staff session's token it was started from (revoked at the start: sessions rotate).
    parent_session_hash: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), default="")

    staff_user: Mapped[User] = relationship(foreign_keys=[staff_user_id])
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    account: Mapped[Account] = relationship()
