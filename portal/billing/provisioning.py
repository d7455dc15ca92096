"""What the product's servers do and read through the API, for an account they know by their own id: one
verb each, answering the objects of ``portal/api_objects.py``.

A read model and a set of verbs at billing's top, like ``overview.py``: each finds the account by its
external id (NotFound otherwise) and calls the capability that does the work — ``customer.accounts``
(create or update), ``auth.users`` (add a user), ``subscriptions.starting`` (start one, with its first
invoice from the renewal engine), ``subscriptions.access`` (entitlements), ``invoicing.invoices`` (the list).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from ..api_objects import (account_object, entitlements_object, invoice_object, invoice_pdf_url, subscription_object,
                           user_object)
from ..audit import Actor
from ..auth.users import add_customer_user
from ..db import Database
from ..payments.gateway import PaymentGateway
from .collecting.dunning import RetryPolicy
from .customer.accounts import find_account, put_account
from .customer.billing_info import VatPolicy
from .invoicing import invoices
from .invoicing.seller import Seller
from .subscriptions import starting
from .subscriptions.access import current_subscription, paid_access

INVOICE_PAGE_LIMIT = 100


@dataclass(frozen=True)
class Answer:
    """An object to answer with, and whether the call created it (201) or found it (200)."""

    object: dict
    created: bool = False


def _account_answer(session: Session, account) -> dict:
    return account_object(account, subscription=current_subscription(session, account.id))


def upsert_account(session: Session, external_id: str, values: dict[str, str], *, currency: str | None,
                   actor: Actor, now: datetime, policy: VatPolicy) -> Answer:
    done = put_account(session, external_id, values, currency=currency, actor=actor, now=now, policy=policy)
    return Answer(_account_answer(session, done.account), created=done.created)


def get_account(session: Session, external_id: str) -> dict:
    return _account_answer(session, find_account(session, external_id))


def add_user(session: Session, external_id: str, *, email: str, name: str, actor: Actor, now: datetime) -> Answer:
    account = find_account(session, external_id)
    added = add_customer_user(session, account.id, email, name=name, actor=actor, now=now)
    return Answer(user_object(added.user, external_id=external_id), created=added.created)


def start_subscription(session: Session, database: Database, gateway: PaymentGateway, seller: Seller,
                       external_id: str, *, plan_code: str, start: date | None, trial_days: int, actor: Actor,
                       now: datetime, policy: RetryPolicy) -> dict:
    account = find_account(session, external_id)
    started = starting.start_subscription(session, database, gateway, seller, account.id, plan_code=plan_code,
                                          start=start, trial_days=trial_days, actor=actor, now=now, policy=policy)
    return subscription_object(started.subscription, external_id=external_id)


def list_subscriptions(session: Session, external_id: str) -> list[dict]:
    account = find_account(session, external_id)
    return [subscription_object(subscription, external_id=external_id)
            for subscription in starting.list_subscriptions(session, account.id)]


def entitlements(session: Session, external_id: str) -> dict:
    """The same answer as ``paid_access()`` gives the customer's own browser."""
    access = paid_access(session, find_account(session, external_id).id)
    return entitlements_object(external_id=external_id, paid_access=access.paid_access, status=access.status,
                               reason=access.reason, plan=access.plan, current_period_end=access.current_period_end)


@dataclass(frozen=True)
class InvoiceList:
    data: list[dict]
    next_cursor: str | None


def list_invoices(session: Session, external_id: str, *, cursor: str | None, limit: int,
                  base_url: str) -> InvoiceList:
    """Issued invoices, newest first, ``limit`` at a time; ``next_cursor`` fetches the next page."""
    account = find_account(session, external_id)
    page = invoices.list_invoices(session, account.id, cursor=cursor, limit=max(1, min(limit, INVOICE_PAGE_LIMIT)))
    return InvoiceList(data=[invoice_object(invoice, external_id=external_id,
                                            pdf_url=invoice_pdf_url(base_url, invoice.id))
                             for invoice in page.invoices], next_cursor=page.next_cursor)
