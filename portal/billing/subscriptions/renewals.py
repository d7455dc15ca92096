"""The renewal engine: every subscription whose period has ended gets exactly one invoice for its next
period, and the default card is charged off-session.

Several workers may run at once on PostgreSQL: each claims a batch of due subscriptions with
``FOR UPDATE SKIP LOCKED`` and issues their invoices in one transaction, with their numbers taken in one
step; the unique (subscription, period start) constraint is the backstop if two claims ever overlap. The
batch's charges follow, and their outcomes are recorded together in one more transaction.
On SQLite one worker is the supported set-up; a second one waits on SQLite's write lock and the same
constraint keeps it from billing a period twice.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...db import Database
from ...models import Account, Invoice, PaymentAttempt, Plan, Subscription
from ...notifications import outbox
from ...payments.gateway import PaymentGateway
from ..collecting.collection import (advance_after_payment, execute_attempts, open_attempt,
                                     record_failure_without_card, settle_pending_attempts)
from ..collecting.dunning import RetryPolicy
from ..invoicing.invoices import (build_subscription_invoice, credit_balances, issue_invoice,
                                  take_invoice_numbers)
from ..payment_methods.cards import default_cards_of
from ..invoicing.periods import add_interval
from ..invoicing.seller import Seller
from .cancellation import lapse


@dataclass
class RenewalStats:
    due: int = 0
    invoiced: int = 0
    paid: int = 0
    failed: int = 0
    no_card: int = 0
    settled: int = 0
    seconds: float = 0.0
    skipped: int = 0
    ended: int = 0  # canceled at the period end: ended instead of invoiced
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.invoiced / self.seconds if self.seconds else 0.0


def _due_query(now: datetime, *, only: int | None = None):
    # Due: live, period over, and the next period not yet invoiced. The next period starts where the current
    # one ends: for a new subscription that is its start (its current period is empty until the first
    # invoice is paid), and for a trial it is ``trial_end`` (the trial is the current period), so the first
    # invoice is issued and charged here, by the same engine as every renewal.
    query = (select(Subscription.id)
             .where(Subscription.status == "active", Subscription.current_period_end <= now,
                    ~exists().where(Invoice.subscription_id == Subscription.id,
                                    Invoice.period_start == Subscription.current_period_end))
             .order_by(Subscription.current_period_end, Subscription.id))
    return query.where(Subscription.id == only) if only is not None else query


def count_due(database: Database, *, now: datetime) -> int:
    with database.session() as session:
        return len(session.scalars(_due_query(now)).all())


def claim_and_invoice(database: Database, seller: Seller, *, now: datetime, batch: int,
                      policy: RetryPolicy, only: int | None = None) -> tuple[list[int], RenewalStats]:
    """Claim up to ``batch`` due subscriptions and issue their invoices in one transaction.

    Returns the payment attempts to execute (committed before any processor call). Each invoice and its
    first attempt are written in the same transaction, so no other collection of it can exist yet: this is
    the one path that opens an attempt without ``collection.claim``.

    The batch is written with a fixed number of statements whatever its size (``_invoice_batch``); when one
    of its periods turns out to be billed already (another worker got there first: the unique constraint),
    the batch's writes are undone and it is done again one subscription at a time, each in its savepoint, so
    the others still go through. The claim's row locks are kept throughout (a savepoint, not a rollback).
    """
    with database.session() as session:
        query = _due_query(now, only=only).limit(batch)
        if not database.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=Subscription)
        ids = list(session.scalars(query))
        attempts: list[int] = []
        stats = RenewalStats()
        if ids:
            try:
                with session.begin_nested():
                    attempts = _invoice_batch(session, seller, ids, now=now, policy=policy, stats=stats)
            except IntegrityError:
                stats = RenewalStats()
                attempts = _invoice_one_by_one(session, seller, ids, now=now, policy=policy, stats=stats)
        session.commit()
    stats.due = len(ids)
    return attempts, stats


def _invoice_batch(session: Session, seller: Seller, ids: list[int], *, now: datetime, policy: RetryPolicy,
                   stats: RenewalStats) -> list[int]:
    """Issue the claimed subscriptions' invoices together: what each needs (subscription, account, plans,
    credit balance, default card, the e-mails' look-ups) read once for the batch, the drafts written in one
    flush (where the uniqueness backstop speaks), their numbers taken in one UPDATE of the counter row late
    in the transaction (so other workers wait on it briefly), then issued, e-mailed and given their pending
    attempts, written in one more flush."""
    subscriptions = {s.id: s for s in session.scalars(select(Subscription).where(Subscription.id.in_(ids)))}
    subscriptions = [subscriptions[i] for i in ids]  # the claim's order: the oldest due first
    account_ids = list({s.account_id for s in subscriptions})
    accounts = {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(account_ids)))}
    plan_ids = {s.plan_id for s in subscriptions} | {s.scheduled_plan_id for s in subscriptions} - {None}
    session.scalars(select(Plan).where(Plan.id.in_(plan_ids))).all()  # into the session: no statement per plan
    credits = credit_balances(session, account_ids)
    cards = {c.account_id: c for c in default_cards_of(session, account_ids)}
    drafts: list[tuple[Subscription, Invoice]] = []
    for subscription in subscriptions:
        if subscription.cancel_at_period_end:
            # Canceled at the period end: it ends now instead of renewing (in this claimed transaction,
            # so once, however many workers run).
            lapse(session, subscription, now=now)
            stats.ended += 1
            continue
        if subscription.scheduled_plan_id is not None:
            # A downgrade scheduled for the period end: the new period is the new plan's, written with the
            # invoice, so another worker's bill undoes both together.
            subscription.plan, subscription.scheduled_plan = subscription.scheduled_plan, None
        account = accounts[subscription.account_id]
        start = subscription.current_period_end
        invoice = build_subscription_invoice(session, account, subscription, subscription.plan, period_start=start,
                                             period_end=add_interval(start, subscription.plan.interval),
                                             seller=seller, now=now, credit_available=credits[account.id])
        # Two subscriptions of one account in a batch: the second sees the credit the first one used.
        credits[account.id] -= invoice.credit_applied_cents
        drafts.append((subscription, invoice))
    session.flush()  # the drafts, their lines and tax lines; a period billed already fails here
    outbox.prefetch(session, dedupe_keys=[outbox.invoice_issued_key(i) for _, i in drafts],
                    addresses=[accounts[s.account_id].billing_email for s, _ in drafts])
    numbers = take_invoice_numbers(session, f"INV-{now.year}", len(drafts))
    attempts: list[PaymentAttempt] = []
    with outbox.batched(session):  # the batch's e-mails in one INSERT
        for (subscription, invoice), number in zip(drafts, numbers):
            account = accounts[subscription.account_id]
            issue_invoice(session, invoice, account, seller, now=now, number=number)
            outbox.invoice_issued(session, invoice, account, now=now)
            stats.invoiced += 1
            if invoice.status == "paid":  # covered by credit
                advance_after_payment(subscription, invoice, now=now)
                stats.paid += 1
                continue
            card = cards.get(account.id)
            attempt = open_attempt(session, invoice, trigger="renewal", now=now, method=card, first=True) if card else None
            if attempt is None:
                record_failure_without_card(session, invoice, trigger="renewal", now=now, policy=policy)
                stats.no_card += 1
            else:
                attempts.append(attempt)
    session.flush()
    return [attempt.id for attempt in attempts]


def _invoice_one_by_one(session: Session, seller: Seller, ids: list[int], *, now: datetime, policy: RetryPolicy,
                        stats: RenewalStats) -> list[int]:
    """The claimed subscriptions one at a time, each in a savepoint: one whose period another worker billed
    first is skipped, and the others still go through."""
    attempts: list[int] = []
    for sub_id in ids:
        subscription = session.get(Subscription, sub_id)
        if subscription.cancel_at_period_end:
            lapse(session, subscription, now=now)
            stats.ended += 1
            continue
        account = session.get(Account, subscription.account_id)
        start = subscription.current_period_end
        try:
            with session.begin_nested():
                if subscription.scheduled_plan_id is not None:
                    subscription.plan, subscription.scheduled_plan = subscription.scheduled_plan, None
                end = add_interval(start, subscription.plan.interval)
                invoice = build_subscription_invoice(session, account, subscription, subscription.plan,
                                                     period_start=start, period_end=end, seller=seller, now=now)
                issue_invoice(session, invoice, account, seller, now=now)
                outbox.invoice_issued(session, invoice, account, now=now)
                if invoice.status == "paid":  # covered by credit
                    advance_after_payment(subscription, invoice, now=now)
                    stats.paid += 1
                else:
                    attempt = open_attempt(session, invoice, trigger="renewal", now=now)
                    if attempt is None:
                        record_failure_without_card(session, invoice, trigger="renewal", now=now, policy=policy)
                        stats.no_card += 1
                    else:
                        session.flush()
                        attempts.append(attempt.id)
                stats.invoiced += 1
        except IntegrityError:
            stats.skipped += 1  # another worker billed this period first
    return attempts


PaymentAttemptRef = int


def bill_now(database: Database, gateway: PaymentGateway, seller: Seller, subscription_id: int, *, now: datetime,
             policy: RetryPolicy) -> RenewalStats:
    """Issue and charge one subscription's due invoice at once (a subscription starting today), exactly as a
    renewal pass would: the invoice and its attempt are committed before the card is charged."""
    attempt_ids, stats = claim_and_invoice(database, seller, now=now, batch=1, policy=policy, only=subscription_id)
    _charge(database, gateway, attempt_ids, stats, now=now, policy=policy)
    return stats


def _charge(database: Database, gateway: PaymentGateway, attempt_ids: list[int], stats: RenewalStats, *,
            now: datetime, policy: RetryPolicy) -> None:
    """Run the attempts a claim committed (written first, so a crash here is settled by the next pass)."""
    for outcome in execute_attempts(database, gateway, attempt_ids, now=now, policy=policy):
        if outcome.status == "succeeded":
            stats.paid += 1
        elif outcome.status != "pending":
            stats.failed += 1


def run_renewals(database: Database, gateway: PaymentGateway, seller: Seller, *, now: datetime, policy: RetryPolicy,
                 batch: int = 50,
                 progress: Callable[[RenewalStats, int], None] | None = None,
                 settle_after: timedelta = timedelta(minutes=5)) -> RenewalStats:
    """One pass: settle attempts left pending by an earlier crash, then renew everything due."""
    started = time.perf_counter()
    total = RenewalStats()
    total.settled = settle_pending_attempts(database, gateway, now=now, policy=policy, older_than=settle_after)
    expected = count_due(database, now=now)
    while True:
        attempt_ids, stats = claim_and_invoice(database, seller, now=now, batch=batch, policy=policy)
        if stats.due == 0:
            break
        total.due += stats.due
        total.invoiced += stats.invoiced
        total.no_card += stats.no_card
        total.paid += stats.paid
        total.skipped += stats.skipped
        total.ended += stats.ended
        _charge(database, gateway, attempt_ids, total, now=now, policy=policy)
        total.seconds = time.perf_counter() - started
        if progress:
            progress(total, expected)
        if stats.invoiced == 0 and stats.ended == 0 and stats.skipped == stats.due:
            break  # everything left was taken by other workers
    total.seconds = time.perf_counter() - started
    return total
