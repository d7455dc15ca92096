"""Which kinds of payment method an account may save, and why a bank account is not among them.

Cards and PayPal always; a bank account only while the subscription is billed at one of the intervals the
seed allows (annual by default), and only where the account's currency has a debit scheme: US dollars are
debited by ACH (``us_bank_account``), euros by SEPA (``sepa_debit``).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...models import Account, Plan, Subscription

BANK_TYPE_BY_CURRENCY = {"USD": "us_bank_account", "EUR": "sepa_debit"}
INTERVAL_WORDS = {"year": "annual", "month": "monthly"}


@dataclass(frozen=True)
class MethodChoices:
    types: tuple[str, ...]  # card | paypal | us_bank_account | sepa_debit, in the order offered
    currency: str           # the account's currency, lower case as Stripe.js takes it
    bank_note: str | None   # why a bank account is not offered, for the page to say


def method_choices(session: Session, account_id: int, *, bank_intervals: tuple[str, ...] = ("year",)
                   ) -> MethodChoices:
    account = session.get(Account, account_id)
    currency = (account.currency if account else "USD").upper()
    interval = session.scalar(select(Plan.interval).join(Subscription, Subscription.plan_id == Plan.id)
                              .where(Subscription.account_id == account_id)
                              .order_by(Subscription.id.desc()).limit(1))
    bank = BANK_TYPE_BY_CURRENCY.get(currency)
    note = None
    if bank is None:
        note = f"Bank accounts can't be used for payments in {currency}."
    elif interval not in bank_intervals:
        allowed = " or ".join(INTERVAL_WORDS.get(i, i) for i in bank_intervals)
        note = f"Bank accounts can be added to {allowed} plans only: switch to one to pay by bank debit."
    types = ("card", "paypal") + ((bank,) if note is None else ())
    return MethodChoices(types=types, currency=currency.lower(), bank_note=note)
