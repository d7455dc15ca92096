"""Account credit: a ledger of grants (positive) and uses (negative) whose sum is the balance.

Credits never expire. The next invoice uses the balance first (``invoices.apply_totals``), partly when the
balance is smaller than the invoice, and what is left carries over to the invoice after.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...errors import InvalidInput, NotFound
from ...models import Account, CreditEntry, Invoice, Plan, Subscription
from ...notifications import outbox
from ..invoicing.invoices import credit_balance
from ..outcome import Done
from ...money import format_money, parse_amount

KIND_LABELS = {"grant": "Credit granted", "refund_as_credit": "Refund as credit", "applied": "Used on invoice",
               "reversal": "Reversed", "proration": "Unused time credited"}


@dataclass(frozen=True)
class CreditLine:
    created_at: datetime
    amount_cents: int
    currency: str
    kind: str
    reason: str
    invoice_number: str | None

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind.replace("_", " ").capitalize())


@dataclass(frozen=True)
class CreditSummary:
    balance_cents: int
    currency: str
    entries: list[CreditLine]  # newest first


def account_currency(session: Session, account: Account) -> str:
    """The currency credits are kept in: the plan's, else the latest invoice's, else the account's (USD)."""
    currency = session.scalar(select(Plan.currency).join(Subscription, Subscription.plan_id == Plan.id)
                              .where(Subscription.account_id == account.id)
                              .order_by((Subscription.status == "canceled").asc(), Subscription.created_at.desc())
                              .limit(1))
    if not currency:
        currency = session.scalar(select(Invoice.currency).where(Invoice.account_id == account.id)
                                  .order_by(Invoice.id.desc()).limit(1))
    return (currency or account.currency or "USD").upper()


def credit_summary(session: Session, account_id: int, *, currency: str | None = None) -> CreditSummary:
    """The balance and every grant and use, newest first, with invoice numbers (one query)."""
    rows = session.execute(_credit_entries(), {"account_id": account_id}).all()
    entries = [CreditLine(created_at=e.created_at, amount_cents=e.amount_cents, currency=e.currency, kind=e.kind,
                          reason=e.reason, invoice_number=number) for e, number in rows]
    balance = sum(e.amount_cents for e in entries)
    return CreditSummary(balance_cents=balance, currency=(entries[0].currency if entries else currency or "USD"),
                         entries=entries)


@functools.cache
def _credit_entries():
    """Built once per process: Billing details runs it on every view."""
    return (select(CreditEntry, Invoice.number).outerjoin(Invoice, Invoice.id == CreditEntry.invoice_id)
            .where(CreditEntry.account_id == bindparam("account_id"))
            .order_by(CreditEntry.created_at.desc(), CreditEntry.id.desc()))


def grant_credit(session: Session, account_id: int, *, amount_cents: int | None, reason: str, actor: Actor,
                 now: datetime) -> CreditEntry:
    """Add credit to an account (staff only), in the account's currency; audited and confirmed by e-mail.
    Commits."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    reason = (reason or "").strip()
    errors = {}
    if amount_cents is None or amount_cents <= 0:
        errors["amount"] = "Enter an amount greater than zero."
    if not reason:
        errors["reason"] = "Enter the reason for this credit."
    elif len(reason) > 300:
        errors["reason"] = "Use at most 300 characters."
    if errors:
        raise InvalidInput(errors)
    currency = account_currency(session, account)
    entry = CreditEntry(account_id=account.id, amount_cents=amount_cents, currency=currency, kind="grant",
                        reason=reason, created_by_user_id=actor.user_id, created_at=now)
    session.add(entry)
    session.flush()
    audit.record(session, actor, "credit.granted", now=now, account_id=account.id, credit_entry_id=entry.id,
                 amount_cents=amount_cents, currency=currency, reason=reason)
    balance = credit_balance(session, account.id)
    outbox.enqueue(session, dedupe_key=f"credit-granted-{entry.id}", kind="credit_granted", to=account.billing_email,
                   account_id=account.id, subject="A credit was added to your account", template="credit_granted",
                   context={"entry": entry, "account": account, "balance_cents": balance}, now=now)
    session.commit()
    return entry


def grant_entered_credit(session: Session, account_id: int, *, amount: str, reason: str, actor: Actor,
                         now: datetime, max_cents: int) -> Done[CreditEntry]:
    """The console's Grant credit form: ``amount`` as staff typed it, in the account's credit currency and
    at most ``max_cents``. A refused amount and a missing reason are reported together. Commits."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    try:
        cents = parse_amount(amount, account_currency(session, account), max_cents=max_cents)
    except InvalidInput as exc:
        if not (reason or "").strip():
            exc.errors["reason"] = "Enter the reason for this credit."
        raise
    entry = grant_credit(session, account_id, amount_cents=cents, reason=reason, actor=actor, now=now)
    return Done(entry, f"Credit of {format_money(entry.amount_cents, entry.currency)} granted to {account.name.rstrip('.')}.")  # "Inc." ends the sentence too
