"""Starting an account's subscription (the product's servers do, through the API), and listing them.

A new subscription is written with an empty current period that ends where its first billed period starts:
today, a later start date, or the end of its trial. The renewal engine (``renewals.py``) then issues and
charges that first invoice like any renewal — at once for a subscription starting now (``bill_now``), or on
the worker's pass at the start date or trial end. There is no second way to charge for a plan.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...db import Database
from ...errors import InvalidInput, SubscriptionExists
from ...models import Account, Plan, Subscription
from ...payments.gateway import PaymentGateway
from ..collecting.dunning import RetryPolicy
from ..invoicing.invoices import begin_write
from ..invoicing.seller import Seller
from .renewals import bill_now

MAX_TRIAL_DAYS = 730
# How far ahead a start may be scheduled.
MAX_START_AHEAD = timedelta(days=366)


@dataclass(frozen=True)
class Started:
    subscription: Subscription
    invoiced: bool


def list_subscriptions(session: Session, account_id: int) -> list[Subscription]:
    """Newest first."""
    return list(session.scalars(select(Subscription).where(Subscription.account_id == account_id)
                                .order_by(Subscription.created_at.desc(), Subscription.id.desc())))


def _first_period_start(start: date | None, trial_days: int, now: datetime) -> tuple[datetime, datetime | None]:
    """(when the current period begins, the trial's end or None). A start date later than today begins at
    its midnight UTC; today or no date begins now."""
    errors = {}
    begin = now.replace(microsecond=0)
    if start is not None:
        if start < now.date():
            errors["start_date"] = "Use today or a later date."
        elif start > (now + MAX_START_AHEAD).date():
            errors["start_date"] = "Use a date within a year from today."
        elif start > now.date():
            begin = datetime.combine(start, time(0), tzinfo=timezone.utc)
    if not (isinstance(trial_days, int) and 0 <= trial_days <= MAX_TRIAL_DAYS):
        errors["trial_days"] = f"A whole number of days from 0 to {MAX_TRIAL_DAYS}."
    if errors:
        raise InvalidInput(errors)
    return begin, (begin + timedelta(days=trial_days) if trial_days else None)


def start_subscription(session: Session, database: Database, gateway: PaymentGateway, seller: Seller,
                       account_id: int, *, plan_code: str, start: date | None = None, trial_days: int = 0,
                       actor: Actor, now: datetime, policy: RetryPolicy) -> Started:
    """Start ``plan_code`` for the account. Refused while the account has a subscription that is not
    canceled. The subscription is committed first; its first invoice, when due now, is issued and charged
    after (a declined card leaves it Past due, with the usual retries and notices)."""
    begin, trial_end = _first_period_start(start, trial_days, now)
    plan = session.scalar(select(Plan).where(Plan.code == plan_code))
    if plan is None:
        raise InvalidInput({"plan": f"There is no plan with the code {plan_code!r}."})
    # The account's write lock: two starts at once must not both find "no live subscription".
    begin_write(session)
    query = select(Account).where(Account.id == account_id)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    account = session.scalar(query.execution_options(populate_existing=True))
    if plan.currency != account.currency:
        session.rollback()
        raise InvalidInput({"plan": f"The plan is priced in {plan.currency}; the account is billed in "
                                    f"{account.currency}."})
    live = session.scalar(select(Subscription).where(Subscription.account_id == account_id,
                                                     Subscription.status != "canceled").limit(1))
    if live is not None:
        session.rollback()
        raise SubscriptionExists(f"The account has a subscription already ({live.plan.code}, {live.status}); "
                                 f"change its plan or cancel it instead.")
    period_end = trial_end or begin
    subscription = Subscription(account_id=account_id, plan_id=plan.id, status="active", current_period_start=begin,
                                current_period_end=period_end, trial_end=trial_end, created_at=now)
    session.add(subscription)
    session.flush()
    audit.record(session, actor, "subscription.started", now=now, account_id=account_id, plan=plan.code,
                 starts=begin.isoformat(), trial_end=trial_end.isoformat() if trial_end else None)
    session.commit()
    invoiced = False
    if period_end <= now:
        invoiced = bill_now(database, gateway, seller, subscription.id, now=now, policy=policy).invoiced > 0
        session.expire_all()  # the engine worked in sessions of its own
    return Started(subscription=session.get(Subscription, subscription.id), invoiced=invoiced)
