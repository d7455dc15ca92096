"""Request-scoped access to the database session, the gateway and who is acting."""
from __future__ import annotations

import re
import secrets

from flask import current_app, g, request
from flask_login import current_user
from sqlalchemy.orm import Session

from ..audit import Actor
from ..billing.collecting.bank_transfer import TransferTerms
from ..billing.collecting.dunning import RetryPolicy
from ..config import Settings
from ..db import Database
from ..payments.gateway import PaymentGateway


# The server-to-server API (``portal/web/api_v1/``): bearer keys instead of cookies, JSON instead of pages.
API_PREFIX = "/api/v1/"


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def database() -> Database:
    """For services that run their own transactions (they call the processor between them)."""
    return current_app.extensions["portal.db"]


def db() -> Session:
    if "db_session" not in g:
        g.db_session = database().session()
    return g.db_session


def discard_request_transaction() -> None:
    """Roll the request's session back, if it has one: after a failed flush the session refuses every
    query (``PendingRollbackError``) until it is, and the error page still has to load who is logged in.
    Nothing of a failed request's transaction should survive anyway."""
    session = g.get("db_session")
    if session is not None:
        session.rollback()


def transfer_terms() -> TransferTerms:
    """Who may pay by bank transfer, and the seller's details, from the settings (built once per app)."""
    return current_app.extensions["portal.transfer_terms"]


def forget_reads() -> None:
    """Make the request's session read again what it has already loaded. For routes whose service writes in
    its own transactions (``database()``): the account and subscription loaded before the call are stale
    after it, whether it succeeded or refused and undid what it started. Nothing is written or rolled back."""
    session = g.get("db_session")
    if session is not None:
        session.expire_all()


def gateway() -> PaymentGateway:
    return current_app.extensions["portal.gateway"]


def settings() -> Settings:
    return current_app.extensions["portal.settings"]


def retry_policy() -> RetryPolicy:
    """The failed-payment retry schedule from the settings, for services that may record a failure."""
    return current_app.extensions["portal.retry_policy"]


def seller():
    """Who invoices are from, built once per app from the settings."""
    from ..billing.invoicing.seller import Seller

    cached = current_app.extensions.get("portal.seller")
    if cached is None:
        cached = current_app.extensions["portal.seller"] = Seller.from_settings(settings())
    return cached


_KEY = re.compile(r"^[0-9a-f]{32}$")


def new_key() -> str:
    """A fresh idempotency key for a form about to be shown."""
    return secrets.token_hex(16)


def request_key() -> str:
    """The posted form's idempotency key (``request_key``); a missing or malformed one makes this request its
    own, so a hand-made request is never mistaken for another one."""
    key = request.form.get("request_key", "")
    return key if _KEY.match(key) else new_key()


def client_ip() -> str:
    """The customer's address: rate limits, login sessions and audit rows all use this one value.

    Behind reverse proxies, ``PORTAL_PROXY_HOPS`` makes ProxyFix (see ``create_app``) put the address the
    nearest trusted proxy saw into ``remote_addr``; without it, it is the peer of the TCP connection.
    """
    return request.remote_addr or ""


def account_id() -> int:
    """The account every customer query is scoped to."""
    return current_user.account_id


def actor() -> Actor:
    """Who is acting; while impersonating, the customer being viewed with the staff member behind them."""
    if not current_user.is_authenticated:
        return Actor(user_id=None, ip=client_ip())
    impersonation = getattr(current_user, "impersonation", None)
    return Actor(user_id=current_user.id, ip=client_ip(),
                 impersonator_id=impersonation.staff_user_id if impersonation is not None else None)
