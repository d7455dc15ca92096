"""Everything the Billing details page shows, gathered in a fixed, small number of queries."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Account, PaymentMethod, Subscription
from . import addresses, cards
from .invoices import InvoicePage, list_invoices
from .pricing import Quote, quote
from .seller import Seller
from .errors import NotFound


@dataclass
class SubscriptionSummary:
    subscription: Subscription
    next_billing_date: date | None
    next_charge: Quote

    @property
    def status_label(self) -> str:
        return {"active": "Active", "past_due": "Past due", "suspended": "Suspended",
                "canceled": "Canceled"}.get(self.subscription.status, self.subscription.status.title())


@dataclass
class BillingOverview:
    account: Account
    subscription: SubscriptionSummary | None
    cards: list[PaymentMethod]
    today: date
    invoices: InvoicePage

    @property
    def default_card(self) -> PaymentMethod | None:
        return next((c for c in self.cards if c.is_default), None)

    @property
    def country_name(self) -> str:
        return addresses.country_name(self.account.country)

    @property
    def countries(self) -> list[tuple[str, str]]:
        return [(c.code, c.name) for c in addresses.countries()]


def current_subscription(session: Session, account_id: int) -> Subscription | None:
    """The account's live subscription, or its most recent one when none is live."""
    return session.scalar(
        select(Subscription).where(Subscription.account_id == account_id)
        .order_by((Subscription.status == "canceled").asc(), Subscription.created_at.desc()).limit(1))


def billing_overview(session: Session, account_id: int, *, today: date, seller: Seller,
                     invoice_cursor: str | None = None) -> BillingOverview:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    subscription = current_subscription(session, account_id)
    summary = None
    if subscription is not None:
        billing_date = subscription.current_period_end.date() if subscription.status != "canceled" else None
        summary = SubscriptionSummary(subscription=subscription, next_billing_date=billing_date,
                                      next_charge=quote(account, subscription.plan, seller))
    return BillingOverview(account=account, subscription=summary, cards=cards.list_cards(session, account_id),
                           today=today, invoices=list_invoices(session, account_id, cursor=invoice_cursor))
