"""The plan catalogue: what is sold, at which price, and whether customers may pick it themselves.

A plan's price may change; what was already issued never does. Invoices copy the price into their lines
when they are built (``invoicing.invoices.build_subscription_invoice`` reads the plan at each renewal), so a
new price applies from the next period on, and issued invoices are frozen by the model's guards anyway.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...bounds import INT_MAX
from ...errors import InvalidInput, NotFound, PlanExists
from ...models import Plan
from ...money import CURRENCY_RULE, valid_currency

INTERVALS = ("month", "year")
CODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,49}")
CODE_RULE = "1 to 50 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit."
NAME_LENGTH = 100


@dataclass(frozen=True)
class PlanChanges:
    """What a PATCH may change; None leaves a value as it is. The code, interval and currency stay: they
    are what existing subscriptions and their invoices were sold as."""

    name: str | None = None
    price_cents: int | None = None
    self_serve: bool | None = None


def _check(*, code: str | None = None, name: str | None = None, interval: str | None = None,
           price_cents: int | None = None, currency: str | None = None) -> None:
    errors = {}
    if code is not None and not CODE.fullmatch(code):
        errors["code"] = f"Use {CODE_RULE}"
    if name is not None and not (0 < len(name.strip()) <= NAME_LENGTH and "\x00" not in name):
        errors["name"] = f"Give the plan a name of 1 to {NAME_LENGTH} characters."
    if interval is not None and interval not in INTERVALS:
        errors["interval"] = "Use 'month' or 'year'."
    if price_cents is not None and not (isinstance(price_cents, int) and 0 <= price_cents <= INT_MAX):
        errors["price"] = f"A whole number of minor units (cents) from 0 to {INT_MAX}."
    if currency is not None and not valid_currency(currency):
        errors["currency"] = CURRENCY_RULE
    if errors:
        raise InvalidInput(errors)


def find_plan(session: Session, code: str) -> Plan:
    plan = session.scalar(select(Plan).where(Plan.code == code)) if CODE.fullmatch(code or "") else None
    if plan is None:
        raise NotFound(f"There is no plan with the code {code!r}.")
    return plan


def list_plans(session: Session) -> list[Plan]:
    return list(session.scalars(select(Plan).order_by(Plan.code)))


def create_plan(session: Session, *, code: str, name: str, interval: str, price_cents: int, currency: str,
                self_serve: bool = True, actor: Actor, now: datetime) -> Plan:
    _check(code=code, name=name, interval=interval, price_cents=price_cents, currency=currency)
    if session.scalar(select(Plan.id).where(Plan.code == code)) is not None:
        raise PlanExists(f"A plan with the code {code!r} exists already.", field="code")
    plan = Plan(code=code, name=name.strip(), interval=interval, price_cents=price_cents, currency=currency,
                self_serve=self_serve)
    session.add(plan)
    session.flush()
    audit.record(session, actor, "plan.created", now=now, account_id=None, plan=code, price_cents=price_cents,
                 currency=currency, interval=interval)
    session.commit()
    return plan


def update_plan(session: Session, code: str, changes: PlanChanges, *, actor: Actor, now: datetime) -> Plan:
    """Change a plan's name, price or self-serve flag. A new price is billed from each subscription's next
    renewal; nothing issued is touched."""
    plan = find_plan(session, code)
    _check(name=changes.name, price_cents=changes.price_cents)
    before = {"name": plan.name, "price_cents": plan.price_cents, "self_serve": plan.self_serve}
    if changes.name is not None:
        plan.name = changes.name.strip()
    if changes.price_cents is not None:
        plan.price_cents = changes.price_cents
    if changes.self_serve is not None:
        plan.self_serve = changes.self_serve
    after = {"name": plan.name, "price_cents": plan.price_cents, "self_serve": plan.self_serve}
    if after != before:
        audit.record(session, actor, "plan.updated", now=now, account_id=None, plan=code,
                     before=before, after=after)
    session.commit()
    return plan
