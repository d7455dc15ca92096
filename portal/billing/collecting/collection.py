"""Collecting money for an invoice: the one path every collection takes.

Renewal charges, automatic retries, Retry payment, staff retries, Pay now (Checkout), wire transfers and
the processor's events all pass the same rule: **one collection in flight per invoice**.

1. ``claim`` takes the one invoice lock (``invoices.lock_invoice``: ``FOR UPDATE`` on PostgreSQL,
   ``BEGIN IMMEDIATE`` on SQLite) and reads the invoice's attempts inside that write transaction, so the
   check and the write that follows are one step. A charge or bank debit still in flight refuses a second
   collection. An open payment page (a Checkout Session) is expired at the processor *first*
   (``expire_open_checkouts``), so it can no longer take money once another path pays or voids the invoice.
2. Written first: the attempt is committed with its idempotency key, then the processor is asked (never
   while the lock is held), then the outcome is committed. A crash after the call leaves a pending attempt
   that ``settle_pending_attempts`` asks about again with the same key, which never charges twice.
3. A renewal or automatic retry the default method declines is tried once more, in the same pass, on the
   account's backup method (``open_backup``): its own attempt (trigger ``backup``) with its own key, written in
   the same transaction as the decline, so a crash before its charge is settled like any pending attempt.
   The decline counts (notice, retry schedule) only when the backup does not pay either.
4. ``record_outcome`` applies money one way (``settle_payment``): Paid only when paid in full; less is a
   partial payment; money that cannot be applied (the invoice was already Paid or Void through a race the
   portal cannot prevent, another currency, more than was due) is refunded automatically, recorded and
   e-mailed (``refunds.refund_surplus``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from ... import audit
from ...audit import Actor
from ...db import Database
from ...errors import InvalidInput, InvoiceNotOpen, NothingToPay, PaymentInProgress, ProcessorDown
from ...models import Account, CreditEntry, Invoice, PaymentAttempt, PaymentMethod, Subscription
from ...money import format_money, parse_received_on
from ...notifications import outbox
from ...payments.gateway import PaymentDetails, PaymentGateway, PaymentResult, ProcessorError, ProcessorUnavailable
from . import refunds
from ..payment_methods.cards import default_card
from .dunning import AUTOMATIC, RetryPolicy, after_failure, outstanding_invoices, reason_text
from ..invoicing.invoices import PaymentApplied, apply_payment, lock_invoice, lock_invoices
from ..invoicing.periods import add_interval
from ..outcome import Done

log = logging.getLogger(__name__)

# An attempt in one of these may still move money: no second collection may start beside it.
IN_FLIGHT = ("pending", "processing")
# An attempt in one of these still accepts its outcome (a late webhook, a reconciliation).
OPEN_ATTEMPT_STATUSES = ("pending", "processing", "requires_action")
# The attempt that tries the backup method after the default declined a renewal or retry.
BACKUP = "backup"
# A Pay-now attempt whose payment page was never created (a crash in between) stops blocking after this.
ABANDONED_PAGE_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class AttemptOutcome:
    attempt_id: int
    invoice_id: int
    status: str  # succeeded | failed | requires_action | processing | pending (outcome unknown)


def next_attempt_number(session: Session, invoice_id: int) -> int:
    """Attempts are numbered per invoice; the number is part of the idempotency key."""
    return (session.scalar(select(func.max(PaymentAttempt.attempt_number))
                           .where(PaymentAttempt.invoice_id == invoice_id)) or 0) + 1


# --- the guard ----------------------------------------------------------------------------------

@dataclass
class Claim:
    """A locked invoice and what is already trying to collect it."""

    invoice: Invoice
    in_flight: PaymentAttempt | None = None  # a charge, a debit processing, a payment page being opened
    open_pages: list[PaymentAttempt] = field(default_factory=list)  # Checkout Sessions that can still be paid


def claim(session: Session, invoice_id: int, *, now: datetime, account_id: int | None = None) -> Claim:
    """Lock the invoice and classify its live attempts, in the caller's write transaction."""
    invoice = lock_invoice(session, invoice_id, account_id=account_id)
    found = Claim(invoice=invoice)
    live = session.scalars(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id,
                                                        PaymentAttempt.status.in_(IN_FLIGHT))
                           .order_by(PaymentAttempt.attempt_number)
                           .execution_options(populate_existing=True)).all()
    for attempt in live:
        if attempt.status == "pending" and attempt.checkout_session_id:
            if attempt.expires_at is not None and attempt.expires_at <= now:
                # The processor has expired it by itself; its `checkout.session.expired` event may follow.
                attempt.status, attempt.completed_at = "expired", now
            else:
                found.open_pages.append(attempt)
        elif attempt.status == "pending" and attempt.payment_method_id is None and not attempt.checkout_session_id \
                and attempt.created_at < now - ABANDONED_PAGE_AFTER:
            # An earlier Pay now died before its page existed: nobody can pay it, so it no longer blocks.
            attempt.status, attempt.completed_at = "expired", now
            attempt.failure_message = "The payment page was never opened."
        else:
            found.in_flight = found.in_flight or attempt
    return found


def in_flight_message(invoice: Invoice, attempt: PaymentAttempt) -> str:
    if attempt.status == "processing":
        return (f"A payment for {invoice.number} is already being processed. We'll update the invoice as soon as "
                "it completes; nothing more is needed.")
    if attempt.payment_method_id is None:
        return (f"The payment page for {invoice.number} is being opened in another window. Please wait a moment; "
                "nothing more is needed.")
    return f"A payment for {invoice.number} is already in progress. Please wait a moment; nothing more is needed."


def claim_open(session: Session, invoice_id: int, account_id: int, *, now: datetime, paid_message: str,
               verb: str | None = None) -> Invoice:
    """The locked invoice, refused unless it is Open (and, with ``verb``, unless nothing is collecting it).

    For the staff actions that close an invoice without charging it (void, a wire transfer): they look once
    before closing its payment pages and again, with ``verb``, under the lock they then write in."""
    found = claim(session, invoice_id, now=now, account_id=account_id)
    invoice = found.invoice
    if invoice.status == "paid":
        raise InvoiceNotOpen(paid_message.format(number=invoice.number))
    if invoice.status != "open":
        raise InvoiceNotOpen(f"{invoice.number} is already {invoice.status_label.lower()}.")
    if verb is not None and (found.in_flight is not None or found.open_pages):
        attempt = found.in_flight or found.open_pages[0]
        raise PaymentInProgress(f"{in_flight_message(invoice, attempt)} Wait for its outcome before {verb}.")
    return invoice


def close_payment_pages(database: Database, gateway: PaymentGateway, invoice_id: int, account_id: int, *,
                        now: datetime, paid_message: str, why: str) -> None:
    """Before a staff action closes an invoice without charging it (void, a wire transfer): refuse unless it
    is Open, then expire its payment pages at the processor, outside any lock. The action then claims the
    invoice again, under the lock it writes in (``claim_open`` with its ``verb``)."""
    with database.session() as session:
        claim_open(session, invoice_id, account_id, now=now, paid_message=paid_message)
    expire_open_checkouts(database, gateway, invoice_id, now=now, account_id=account_id, why=why)


def expire_open_checkouts(database: Database, gateway: PaymentGateway, invoice_id: int, *, now: datetime,
                          why: str, account_id: int | None = None) -> int:
    """Close every payment page of the invoice that could still take money, at the processor first.

    Expiring is idempotent and its result also arrives as a ``checkout.session.expired`` event, so a crash
    between the call and our commit only leaves the attempt for that event or the reconciliation to close.
    Raises PaymentInProgress when the customer completed a page a moment ago (its payment is on its way).
    """
    with database.session() as session:
        pages = [(a.id, a.checkout_session_id, a.idempotency_key)
                 for a in claim(session, invoice_id, now=now, account_id=account_id).open_pages]
        number = session.get(Invoice, invoice_id).number
        session.commit()
    for attempt_id, checkout_id, key in pages:
        try:
            gateway.expire_checkout_session(checkout_id, idempotency_key=f"{key}-expire")
        except ProcessorUnavailable as exc:
            raise ProcessorDown("The payment processor could not be reached, so the open payment page of "
                                f"{number} could not be closed. Nothing was charged; try again in a moment.") from exc
        except ProcessorError as exc:
            if exc.code != "resource_missing":
                # Most often the customer has just paid on that page: its outcome arrives as an event.
                raise PaymentInProgress(f"A payment for {number} was just made on its payment page. Wait for it "
                                        "to be recorded; nothing was charged twice.") from exc
        with database.session() as session:
            lock_invoice(session, invoice_id)
            attempt = session.get(PaymentAttempt, attempt_id, populate_existing=True)
            if attempt.status == "pending":
                attempt.status, attempt.completed_at = "expired", now
                attempt.failure_message = why[:300]
            session.commit()
    return len(pages)


# --- charging the default card ------------------------------------------------------------------

def open_attempt(session: Session, invoice: Invoice, *, trigger: str, now: datetime,
                 method: PaymentMethod | None = None, first: bool = False) -> PaymentAttempt | None:
    """Write the intent to charge (in the caller's transaction) the default method, or ``method``. None when
    there is nothing to charge: no default, or one still waiting for its verification (never charged).

    Callers hold the invoice lock (``claim``), or, for a renewal, created the invoice in this transaction
    (``first``: it has no attempts yet, so this is number 1 without asking).
    """
    card = method or default_card(session, invoice.account_id)
    if card is None or card.verification != "verified":
        return None
    number = 1 if first else next_attempt_number(session, invoice.id)
    attempt = PaymentAttempt(invoice_id=invoice.id, attempt_number=number, trigger=trigger, status="pending",
                             idempotency_key=f"invoice-{invoice.id}-attempt-{number}",
                             amount_cents=invoice.amount_due_cents, currency=invoice.currency,
                             payment_method_id=card.id, payment_method_label=card.label, created_at=now)
    session.add(attempt)
    return attempt


def record_failure_without_card(session: Session, invoice: Invoice, *, trigger: str, now: datetime,
                                policy: RetryPolicy) -> PaymentAttempt:
    """No default card to charge: an attempt that failed before reaching the processor, so the schedule and
    the notices run exactly as for a decline."""
    number = next_attempt_number(session, invoice.id)
    attempt = PaymentAttempt(invoice_id=invoice.id, attempt_number=number, trigger=trigger, status="failed",
                             idempotency_key=f"invoice-{invoice.id}-attempt-{number}",
                             amount_cents=invoice.amount_due_cents, currency=invoice.currency, failure_code="no_card",
                             failure_message="There is no default card to charge.", created_at=now, completed_at=now)
    session.add(attempt)
    session.flush()
    subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    after_failure(session, attempt, invoice, subscription, now=now, policy=policy)
    return attempt


def collect_now(database: Database, gateway: PaymentGateway, invoice_id: int, *, trigger: str, now: datetime,
                policy: RetryPolicy, account_id: int | None = None, actor: Actor | None = None,
                only_when_retry_due: bool = False, method_id: int | None = None) -> AttemptOutcome | None:
    """Charge an Open invoice now with the account's default card: the one "collect this invoice now".

    Used by automatic retries (``trigger="retry"``), Retry payment (``"customer"``) and staff (``"staff"``,
    audited with ``actor``). Refuses while another collection is in flight; closes open payment pages first.
    Returns None when ``only_when_retry_due`` and the retry is no longer due (another worker took it, or the
    customer chose to pay by bank transfer meanwhile). ``method_id`` charges that saved method of the account
    instead of the default (the customer's "Pay now with" the method they just saved).
    """
    for _ in range(3):
        with database.session() as session:
            found = claim(session, invoice_id, now=now, account_id=account_id)
            invoice = found.invoice
            if only_when_retry_due and (invoice.status != "open" or not invoice.auto_retry
                                        or invoice.awaiting_transfer_at is not None
                                        or invoice.next_retry_at is None or invoice.next_retry_at > now):
                session.commit()
                return None
            if invoice.status != "open":
                raise InvoiceNotOpen(f"{invoice.number} is {invoice.status_label.lower()}: there is nothing to collect.")
            if found.in_flight is not None:
                raise PaymentInProgress(in_flight_message(invoice, found.in_flight))
            if found.open_pages:
                session.commit()
                expire_open_checkouts(database, gateway, invoice_id, now=now, account_id=account_id,
                                      why="Closed: the invoice was charged to the card on file instead.")
                continue  # look again under the lock: something may have changed meanwhile
            if trigger == "retry":
                invoice.next_retry_at = None  # claimed: the outcome schedules the next one
            method = _chosen_method(session, invoice.account_id, method_id) if method_id is not None else None
            attempt = open_attempt(session, invoice, trigger=trigger, now=now, method=method)
            if attempt is None:
                if method is not None:
                    raise NothingToPay(f"{method.label} can't be charged yet: it is waiting for its verification.")
                if trigger in AUTOMATIC:
                    failed = record_failure_without_card(session, invoice, trigger=trigger, now=now, policy=policy)
                    session.commit()
                    return AttemptOutcome(failed.id, invoice.id, "failed")
                raise NothingToPay("There is no default card to charge. Add a card and set it as default first, "
                                   "then retry the payment.")
            session.flush()
            if actor is not None:
                audit.record(session, actor, "invoice.payment_retried", now=now, account_id=invoice.account_id,
                             invoice_id=invoice.id, invoice_number=invoice.number, amount_cents=attempt.amount_cents,
                             currency=attempt.currency, attempt_id=attempt.id)
            session.commit()
            attempt_id = attempt.id
        return execute_attempt(database, gateway, attempt_id, now=now, policy=policy)
    raise PaymentInProgress("The invoice's payment page could not be closed. Please try again in a moment.")


def _chosen_method(session: Session, account_id: int, method_id: int) -> PaymentMethod:
    method = session.scalar(select(PaymentMethod).where(PaymentMethod.id == method_id,
                                                        PaymentMethod.account_id == account_id,
                                                        PaymentMethod.detached_at.is_(None)))
    if method is None:
        raise NothingToPay("That payment method is no longer saved. Choose another one and try again.")
    return method


def execute_attempt(database: Database, gateway: PaymentGateway, attempt_id: int, *, now: datetime,
                    policy: RetryPolicy) -> AttemptOutcome:
    """Steps (2) and (3) for a committed attempt: charge, then record what happened."""
    return execute_attempts(database, gateway, [attempt_id], now=now, policy=policy)[0]


def execute_attempts(database: Database, gateway: PaymentGateway, attempt_ids: list[int], *, now: datetime,
                     policy: RetryPolicy) -> list[AttemptOutcome]:
    """Steps (2) and (3) for committed attempts (one, or a renewal batch's): their requests read in one
    statement, each charged with its own idempotency key, then every answer recorded in one transaction. A
    crash between the charges and that commit leaves the attempts pending, and ``settle_pending_attempts``
    asks again with the same keys, so nothing is charged twice. The backups those declines opened (written in
    that same transaction) are then charged the same way, in this pass. One outcome per attempt, in order:
    the backup's when one was charged."""
    if not attempt_ids:
        return []
    with database.session() as session:
        rows = session.execute(
            select(PaymentAttempt, PaymentMethod.processor_id, Account.processor_customer_id, Invoice.number)
            .join(Invoice, Invoice.id == PaymentAttempt.invoice_id)
            .join(Account, Account.id == Invoice.account_id)
            .join(PaymentMethod, PaymentMethod.id == PaymentAttempt.payment_method_id)
            .where(PaymentAttempt.id.in_(attempt_ids))).all()
        requests = {attempt.id: (attempt.invoice_id, dict(
            customer_id=customer_id, payment_method_id=method_id, amount_cents=attempt.amount_cents,
            currency=attempt.currency, idempotency_key=attempt.idempotency_key,
            metadata={"invoice_id": attempt.invoice_id, "invoice_number": number, "attempt": attempt.attempt_number}))
            for attempt, method_id, customer_id, number in rows}
    answers: list[tuple[int, PaymentResult]] = []
    for attempt_id in attempt_ids:
        request = requests[attempt_id][1]
        try:
            answers.append((attempt_id, gateway.charge(**request)))
        except ProcessorUnavailable:
            log.warning("outcome of attempt %s unknown; it stays pending and will be settled later", attempt_id)
        except ProcessorError as exc:
            # The processor refused the request itself (e.g. the card was removed there): a failed attempt.
            answers.append((attempt_id, PaymentResult(
                payment_id="", status="failed", amount_cents=request["amount_cents"], currency=request["currency"],
                failure_code=exc.code, failure_message=exc.message)))
    statuses: dict[int, str] = {}
    backup_of: dict[int, int] = {}
    if answers:
        with database.session() as session:
            statuses = record_outcomes(session, answers, now=now, policy=policy, backup_allowed=True)
            backups = backup_attempts_after(session, [attempt_id for attempt_id, _ in answers])
            session.commit()
            backup_of = {attempt_id: backup.id for attempt_id, backup in backups.items() if backup.status == "pending"}
    succeeded = [attempt_id for attempt_id, result in answers if result.succeeded]
    if succeeded:
        refunds.send_surplus_refunds(database, gateway, now=now, attempt_ids=succeeded)
    # The default declined and the backup's attempt is committed: charge it now, in this same pass.
    backup_ids = list(backup_of.values())
    backup_outcomes = dict(zip(backup_ids, execute_attempts(database, gateway, backup_ids, now=now, policy=policy)))
    outcomes = []
    for attempt_id in attempt_ids:
        if attempt_id in backup_of:
            outcomes.append(backup_outcomes[backup_of[attempt_id]])
        else:
            outcomes.append(AttemptOutcome(attempt_id, requests[attempt_id][0], statuses.get(attempt_id, "pending")))
    return outcomes


# --- outcomes -----------------------------------------------------------------------------------

def record_outcome(session: Session, attempt_id: int, result: PaymentResult, *, now: datetime, policy: RetryPolicy,
                   details: PaymentDetails | None = None, backup_allowed: bool = False) -> str:
    """Apply a processor's answer to an attempt, its invoice and its subscription, under the invoice lock.
    Idempotent, and state only moves forward: an attempt that has an outcome keeps it.

    ``backup_allowed``: the caller charges a backup attempt this writes after a decline: ``execute_attempt``
    in a renewal or retry pass, and ``events.apply_event`` for a bank debit that failed late. Other events
    and reconciliation leave it off: a decline they bring is final."""
    invoice_id = session.scalar(select(PaymentAttempt.invoice_id).where(PaymentAttempt.id == attempt_id))
    invoice = lock_invoice(session, invoice_id)
    attempt = session.get(PaymentAttempt, attempt_id, populate_existing=True)
    return _apply_outcome(session, invoice, attempt, result, now=now, policy=policy, details=details,
                          backup_allowed=backup_allowed)


def record_outcomes(session: Session, answers: list[tuple[int, PaymentResult]], *, now: datetime,
                    policy: RetryPolicy, backup_allowed: bool = False) -> dict[int, str]:
    """``record_outcome`` for several attempts in one transaction (a renewal batch's answers): their invoices
    locked in one statement, the attempts, subscriptions and accounts read in one statement each, the
    receipts' look-ups made once; then each answer applied exactly as ``record_outcome`` applies it."""
    attempt_ids = [attempt_id for attempt_id, _ in answers]
    invoice_of = dict(session.execute(select(PaymentAttempt.id, PaymentAttempt.invoice_id)
                                      .where(PaymentAttempt.id.in_(attempt_ids))).all())
    invoices = lock_invoices(session, list(set(invoice_of.values())))
    attempts = {a.id: a for a in session.scalars(select(PaymentAttempt).where(PaymentAttempt.id.in_(attempt_ids))
                                                 .execution_options(populate_existing=True))}
    # Read into the session here (and held, as the session only holds unchanged rows weakly) so the
    # per-answer steps find them without a statement each.
    subscription_ids = {i.subscription_id for i in invoices.values() if i.subscription_id is not None}
    subscriptions = session.scalars(select(Subscription).where(Subscription.id.in_(subscription_ids))).all() \
        if subscription_ids else []
    accounts = session.scalars(select(Account).where(Account.id.in_({i.account_id for i in invoices.values()}))).all()
    outbox.prefetch(session, dedupe_keys=[outbox.payment_received_key(i) for i in invoices.values()],
                    addresses=[a.billing_email for a in accounts])
    with outbox.batched(session):  # the batch's receipts in one INSERT
        statuses = {attempt_id: _apply_outcome(session, invoices[invoice_of[attempt_id]], attempts[attempt_id],
                                               result, now=now, policy=policy, backup_allowed=backup_allowed)
                    for attempt_id, result in answers}
    del subscriptions, accounts  # held until every answer is applied
    return statuses


def _apply_outcome(session: Session, invoice: Invoice, attempt: PaymentAttempt, result: PaymentResult, *,
                   now: datetime, policy: RetryPolicy, details: PaymentDetails | None = None,
                   backup_allowed: bool = False) -> str:
    """The body of ``record_outcome``, for an attempt whose invoice the caller has locked."""
    if attempt.status not in OPEN_ATTEMPT_STATUSES and not (attempt.status == "expired" and result.succeeded):
        return attempt.status  # already recorded (a redelivered webhook, a re-run)
    # An "expired" page that was paid anyway (expiry and payment crossed at the processor) still recorded:
    # its money is real, and settle_payment sends back whatever the invoice no longer needs.
    attempt.status = result.status
    attempt.processor_payment_id = result.payment_id or attempt.processor_payment_id
    attempt.failure_code = result.failure_code or ""
    attempt.failure_message = (result.failure_message or "")[:300]
    if result.status in ("succeeded", "failed"):
        attempt.completed_at = now
    subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if result.succeeded:
        if details is not None:
            attempt.payment_method_label = details.label[:60]
        attempt.amount_received_cents = result.amount_cents
        settle_payment(session, invoice, subscription, amount_cents=result.amount_cents, currency=result.currency,
                       now=now, label=attempt.payment_method_label, attempt=attempt,
                       transaction_id=(details.transaction_id if details else None) or result.charge_id
                       or result.payment_id)
    elif result.status in ("failed", "requires_action"):
        if attempt.trigger == BACKUP:
            # The backup did not pay either: the default's decline counts now (notice, retry schedule).
            declined = _backed_up_attempt(session, attempt)
            if declined is not None:
                after_failure(session, declined, invoice, subscription, now=now, policy=policy, backup=attempt)
        elif not (backup_allowed and result.status == "failed"
                  and open_backup(session, invoice, attempt, now=now) is not None):
            after_failure(session, attempt, invoice, subscription, now=now, policy=policy)
    return attempt.status


# --- the backup method --------------------------------------------------------------------------

def backup_method(session: Session, account_id: int) -> PaymentMethod | None:
    """The account's backup method, if it can be charged: marked Backup, saved, verified, not the default."""
    return session.scalar(select(PaymentMethod).where(
        PaymentMethod.account_id == account_id, PaymentMethod.is_backup.is_(True),
        PaymentMethod.is_default.is_(False), PaymentMethod.detached_at.is_(None),
        PaymentMethod.verification == "verified"))


def open_backup(session: Session, invoice: Invoice, declined: PaymentAttempt, *, now: datetime) -> PaymentAttempt | None:
    """After ``declined`` (a renewal or automatic retry on the default), write one attempt on the backup
    method, in the caller's transaction under the invoice lock. None when there is no backup to try, when
    the declined charge was not an automatic one, or when something already followed it (never twice)."""
    if declined.trigger not in AUTOMATIC or invoice.status != "open":
        return None
    later = session.scalar(select(func.count()).select_from(PaymentAttempt).where(
        PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.attempt_number > declined.attempt_number))
    backup = backup_method(session, invoice.account_id)
    if later or backup is None or backup.id == declined.payment_method_id:
        return None
    attempt = open_attempt(session, invoice, trigger=BACKUP, now=now, method=backup)
    session.flush()
    return attempt


def backup_attempts_after(session: Session, attempt_ids: list[int]) -> dict[int, PaymentAttempt]:
    """``backup_attempt_after`` for several attempts, in one statement: {attempt id: its backup attempt}."""
    attempts = session.execute(select(PaymentAttempt.id, PaymentAttempt.invoice_id, PaymentAttempt.attempt_number)
                               .where(PaymentAttempt.id.in_(attempt_ids))).all()
    backups = {(b.invoice_id, b.attempt_number): b for b in session.scalars(select(PaymentAttempt).where(
        PaymentAttempt.invoice_id.in_({invoice_id for _, invoice_id, _ in attempts}),
        PaymentAttempt.trigger == BACKUP))}
    return {attempt_id: backups[(invoice_id, number + 1)] for attempt_id, invoice_id, number in attempts
            if (invoice_id, number + 1) in backups}


def backup_attempt_after(session: Session, attempt_id: int) -> PaymentAttempt | None:
    """The backup attempt written right after this one, if there is one."""
    attempt = session.get(PaymentAttempt, attempt_id)
    return session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.invoice_id == attempt.invoice_id, PaymentAttempt.trigger == BACKUP,
        PaymentAttempt.attempt_number == attempt.attempt_number + 1))


def charge_backup_after(database: Database, gateway: PaymentGateway, attempt_id: int, *, now: datetime,
                        policy: RetryPolicy) -> AttemptOutcome | None:
    """Charge the backup attempt written (and committed) after ``attempt_id`` failed late, if it is still
    waiting for its charge: a bank debit on the default that was processing and failed days later, whose
    failure arrives as an event. None when no backup was written for it."""
    with database.session() as session:
        backup = backup_attempt_after(session, attempt_id)
        backup_id = backup.id if backup is not None and backup.status == "pending" else None
    if backup_id is None:
        return None
    return execute_attempt(database, gateway, backup_id, now=now, policy=policy)


def _backed_up_attempt(session: Session, backup: PaymentAttempt) -> PaymentAttempt | None:
    """The declined attempt a backup followed: written in the same transaction, so numbered just before it."""
    return session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == backup.invoice_id,
                                                       PaymentAttempt.attempt_number == backup.attempt_number - 1))


def settle_payment(session: Session, invoice: Invoice, subscription: Subscription | None, *, amount_cents: int,
                   currency: str, now: datetime, label: str, transaction_id: str,
                   attempt: PaymentAttempt | None = None) -> PaymentApplied:
    """The one place money received reaches an invoice (the caller holds the invoice lock).

    Paid in full: access comes back at once and the billing e-mail gets a receipt. Less: a partial payment,
    the rest stays due. Whatever cannot be applied goes back to where it came from, automatically.
    """
    was = subscription.status if subscription is not None else None
    due_before = invoice.amount_due_cents
    state_before = invoice.status
    applied = apply_payment(invoice, amount_cents=amount_cents, currency=currency, now=now,
                            payment_method_label=label, transaction_id=transaction_id)
    account = session.get(Account, invoice.account_id)
    if applied.paid_in_full:
        if subscription is not None:
            advance_after_payment(subscription, invoice, now=now)
        outbox.payment_received(session, invoice, account, restored=was in ("past_due", "suspended"), now=now,
                                backup_note=_backup_note(session, attempt))
    elif applied.applied_cents:
        outbox.payment_received(session, invoice, account, restored=False,
                                partial_key=attempt.id if attempt else transaction_id, now=now)
    if applied.surplus_cents:
        reason = _surplus_reason(invoice, state_before, currency, amount_cents, due_before, applied)
        if attempt is not None and attempt.processor_payment_id:
            refunds.refund_surplus(session, invoice, attempt, amount_cents=applied.surplus_cents,
                                   currency=currency.upper(), reason=reason, now=now)
        else:
            # Money that did not come through the processor (none today): a person must send it back.
            log.error("surplus of %s on %s without a processor payment to refund", applied.surplus_cents,
                      invoice.number)
            audit.record(session, Actor.system(), "payment.surplus_needs_review", now=now,
                         account_id=invoice.account_id, invoice_id=invoice.id, invoice_number=invoice.number,
                         amount_cents=applied.surplus_cents, currency=currency.upper(), reason=reason)
    return applied


def _backup_note(session: Session, attempt: PaymentAttempt | None) -> str | None:
    """The receipt's sentence when the backup method paid: which method declined, which one paid."""
    if attempt is None or attempt.trigger != BACKUP:
        return None
    declined = _backed_up_attempt(session, attempt)
    declined_label = declined.payment_method_label if declined is not None else "your default payment method"
    return (f"{declined_label} {failed_words(declined)}, so we charged your backup payment method, "
            f"{attempt.payment_method_label}.")


def failed_words(declined: PaymentAttempt | None) -> str:
    """How the default's failure is told beside the backup that paid: a card is declined, a debit returned."""
    if declined is not None and declined.failure_code == "debit_failed":
        return "was returned by your bank"
    return "was declined"


def _surplus_reason(invoice: Invoice, state_before: str, currency: str, amount_cents: int, due_before: int,
                    applied: PaymentApplied) -> str:
    if state_before == "paid":
        return f"{invoice.number} was already paid, so this second payment was refunded automatically."
    if state_before == "void":
        return f"{invoice.number} was voided, so this payment was refunded automatically."
    if currency.upper() != invoice.currency.upper():
        return (f"This payment was made in {currency.upper()}, but {invoice.number} is billed in "
                f"{invoice.currency.upper()}, so it was refunded automatically.")
    return (f"This payment of {format_money(amount_cents, invoice.currency)} was more than the "
            f"{format_money(due_before, invoice.currency)} due on {invoice.number}, so the difference was refunded "
            "automatically.")


def advance_after_payment(subscription: Subscription, invoice: Invoice, *, now: datetime) -> None:
    """A paid renewal invoice moves the subscription into the period it paid for and restores access.

    The rule for a Suspended subscription: it was off for a while, so the period it pays for starts on the
    day it is paid (and runs one interval from there) rather than on the long-past renewal date. A Past due
    one keeps its renewal date: the customer paid for the period that started then.

    A plan change's invoice (``invoice.plan_id``: an upgrade's proration, or a resubscribe's first period)
    moves the subscription to that plan, in the period the invoice ends (the same one, or a new one starting
    with the change); it is paid once, so this happens once, whichever path paid it (the card on file, Pay now
    after 3-D Secure, a wire transfer).
    """
    if invoice.plan_id is not None:
        # Also a resubscribe: a Canceled or Suspended subscription comes back on the plan it paid for.
        if subscription.status == "suspended":
            _void_superseded(object_session(subscription), subscription, invoice, now=now)
        subscription.plan_id, subscription.scheduled_plan_id = invoice.plan_id, None
        if invoice.period_end != subscription.current_period_end:  # a new period starts with the change
            subscription.current_period_start = invoice.period_start
            subscription.current_period_end = invoice.period_end
        if subscription.status != "active":
            subscription.status, subscription.canceled_at = "active", None
            subscription.cancel_at_period_end = False
        return
    if subscription.status == "suspended":
        start = now.replace(microsecond=0)
        subscription.current_period_start = start
        subscription.current_period_end = add_interval(start, subscription.plan.interval)
    elif invoice.period_start and invoice.period_end and subscription.current_period_end <= invoice.period_start:
        subscription.current_period_start = invoice.period_start
        subscription.current_period_end = invoice.period_end
    if subscription.status in ("past_due", "suspended"):
        subscription.status = "active"


def _void_superseded(session: Session, subscription: Subscription, paid: Invoice, *, now: datetime) -> None:
    """A Suspended customer who resubscribes has paid for a period starting today. The renewal invoice they
    never paid would, if paid, have bought that same period (a Suspended subscription restarts on the day it
    is paid), so it is owed no longer: paying both would bill the same days twice."""
    ids = session.scalars(select(Invoice.id).where(Invoice.subscription_id == subscription.id, Invoice.id != paid.id,
                                                   Invoice.status == "open")).all()
    for invoice in (lock_invoice(session, i) for i in ids):
        if invoice.status == "open":
            void_unpaid(session, invoice, now=now,
                        reason=f"Replaced by {paid.number}: the subscription started again when it was paid.")


def void_unpaid(session: Session, invoice: Invoice, *, reason: str, now: datetime) -> None:
    """An open invoice that is owed no longer (a plan change that will not happen, a period bought again):
    it is voided, retries stop, and any credit it used is given back. The caller holds its lock and commits;
    a payment that still arrives for it is refunded automatically (``settle_payment``)."""
    invoice.status, invoice.voided_at, invoice.void_reason = "void", now, reason
    invoice.auto_retry, invoice.next_retry_at = False, None
    invoice.status_version = invoice.status_version + 1
    if invoice.credit_applied_cents:
        session.add(CreditEntry(account_id=invoice.account_id, amount_cents=invoice.credit_applied_cents,
                                currency=invoice.currency, kind="reversal", invoice_id=invoice.id,
                                reason=f"Given back: {invoice.number} was voided", created_at=now))


def settle_pending_attempts(database: Database, gateway: PaymentGateway, *, now: datetime, policy: RetryPolicy,
                            older_than: timedelta = timedelta(minutes=5)) -> int:
    """Finish attempts whose outcome was never recorded (a crash, a timeout) by asking again with the same
    idempotency key. Never charges twice; returns how many were settled."""
    with database.session() as session:
        # Card charges only: a Pay-now attempt has no card and is settled from its checkout session.
        ids = list(session.scalars(select(PaymentAttempt.id).where(
            PaymentAttempt.status == "pending", PaymentAttempt.created_at <= now - older_than,
            PaymentAttempt.payment_method_id.is_not(None)).order_by(PaymentAttempt.id)))
    settled = 0
    for attempt_id in ids:
        if execute_attempt(database, gateway, attempt_id, now=now, policy=policy).status != "pending":
            settled += 1
    return settled


# --- the paths that use it ----------------------------------------------------------------------

def run_retries(database: Database, gateway: PaymentGateway, *, now: datetime, policy: RetryPolicy) -> dict[str, int]:
    """Charge every invoice whose next automatic retry is due, with the account's current default card."""
    counts = {"retried": 0, "paid": 0, "failed": 0}
    with database.session() as session:
        ids = list(session.scalars(select(Invoice.id).join(Subscription, Subscription.id == Invoice.subscription_id)
                                   .where(Invoice.status == "open", Invoice.auto_retry.is_(True),
                                          Invoice.next_retry_at <= now, Subscription.status == "past_due",
                                          # the customer is paying it by bank transfer: no charges meanwhile
                                          Invoice.awaiting_transfer_at.is_(None))
                                   .order_by(Invoice.next_retry_at)))
    for invoice_id in ids:
        try:
            outcome = collect_now(database, gateway, invoice_id, trigger="retry", now=now, policy=policy,
                                  only_when_retry_due=True)
        except (PaymentInProgress, InvoiceNotOpen, ProcessorDown) as exc:
            log.info("retry of invoice %s skipped this pass: %s", invoice_id, exc.message)
            continue
        if outcome is None:
            continue  # another worker took it, or it was paid meanwhile
        counts["retried"] += 1
        counts["paid" if outcome.status == "succeeded" else "failed"] += 1
    return counts


@dataclass
class RetryResult:
    paid: list[str]
    failed: list[tuple[str, str]]  # (invoice number, reason)


def retry_now(database: Database, gateway: PaymentGateway, account_id: int, *, now: datetime,
              policy: RetryPolicy, method_id: int | None = None) -> RetryResult:
    """Retry payment, asked for by the customer: each open invoice, now, with the default card (or the
    account's saved method ``method_id``)."""
    with database.session() as session:
        invoices = [(i.id, i.number) for i in outstanding_invoices(session, account_id)]
    if not invoices:
        raise NothingToPay("There is nothing to pay: every invoice is paid.")
    result = RetryResult(paid=[], failed=[])
    for invoice_id, number in invoices:
        try:
            outcome = collect_now(database, gateway, invoice_id, trigger="customer", now=now, policy=policy,
                                  account_id=account_id, method_id=method_id)
        except InvoiceNotOpen:
            continue  # paid or voided since the list was read
        if outcome.status == "succeeded":
            result.paid.append(number)
        else:
            with database.session() as session:
                failed = session.get(PaymentAttempt, outcome.attempt_id)
                result.failed.append((number, failed.failure_message or reason_text(failed.failure_code)))
    if not result.paid and not result.failed:
        # Everything was paid meanwhile (another tab, a webhook): say so rather than "paid" for nothing.
        raise NothingToPay("There is nothing to pay: every invoice is paid.")
    return result


# --- staff: collect now, or record money that arrived another way ---------------------------------

@dataclass(frozen=True)
class RetryOutcome:
    invoice_number: str
    status: str  # succeeded | pending | failed | requires_action
    message: str

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "requires_action")


def retry_invoice_payment(database: Database, gateway: PaymentGateway, account_id: int, invoice_id: int, *,
                          actor: Actor, now: datetime, policy: RetryPolicy) -> RetryOutcome:
    """Staff charge one Open invoice now with the account's default card (the one collection path), audited."""
    outcome = collect_now(database, gateway, invoice_id, trigger="staff", now=now, policy=policy,
                          account_id=account_id, actor=actor)
    with database.session() as session:
        attempt = session.get(PaymentAttempt, outcome.attempt_id)
        number = attempt.invoice.number
        if outcome.status == "succeeded":
            return RetryOutcome(number, "succeeded", f"Payment received for {number}.")
        if outcome.status == "pending":
            return RetryOutcome(number, "pending", f"The payment for {number} is being processed.")
        why = attempt.failure_message or reason_text(attempt.failure_code)
        return RetryOutcome(number, outcome.status, f"The payment for {number} failed: {why}")


WIRE_PAID_MESSAGE = "{number} is paid: only an Open invoice can be paid by wire transfer."


def record_wire_payment(database: Database, gateway: PaymentGateway, account_id: int, invoice_id: int, *,
                        reference: str, received_on: str, actor: Actor, now: datetime) -> Done[Invoice]:
    """A payment that arrived by wire transfer: the invoice becomes Paid the one usual way (access restored,
    receipt sent), labelled "Wire transfer" with the bank's reference as its transaction id. Open payment
    pages are expired first and a payment in flight refuses it, like every other collection.

    ``reference`` and ``received_on`` (``YYYY-MM-DD``) are as staff typed them; both are checked before
    anything else, so a form missing both says so next to both fields at once."""
    reference = (reference or "").strip()
    errors: dict[str, str] = {}
    if not reference:
        errors["reference"] = "Enter the bank's reference of the transfer."
    elif len(reference) > 80:
        errors["reference"] = "Use at most 80 characters."
    try:
        received = parse_received_on(received_on, today=now.date())
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors)
    close_payment_pages(database, gateway, invoice_id, account_id, now=now, paid_message=WIRE_PAID_MESSAGE,
                        why="Closed: the invoice was paid by wire transfer.")
    with database.session() as session:
        invoice = claim_open(session, invoice_id, account_id, now=now, paid_message=WIRE_PAID_MESSAGE,
                             verb="recording the transfer")
        amount = invoice.amount_due_cents
        paid_at = min(datetime.combine(received, time(12, 0), tzinfo=timezone.utc), now)
        subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
        settle_payment(session, invoice, subscription, amount_cents=amount, currency=invoice.currency, now=paid_at,
                       label="Wire transfer", transaction_id=reference)
        audit.record(session, actor, "invoice.wire_payment_recorded", now=now, account_id=invoice.account_id,
                     invoice_id=invoice.id, invoice_number=invoice.number, amount_cents=amount,
                     currency=invoice.currency, reference=reference, received_on=received.isoformat())
        session.commit()
        return Done(invoice, f"{invoice.number} is paid by wire transfer {invoice.processor_transaction_id}.")
