"""Processor events (Stripe webhooks, and the sandbox's own deliveries) mapped to small idempotent handlers.

``process_event`` records the event id in the caller's transaction, together with its effects: a
redelivered event finds its id and does nothing. Events may arrive in any order, so every handler only
moves state forward (a Paid invoice never goes back to Open; an attempt with an outcome keeps it).

Handlers read their fields through ``payloads``: an event of the wrong shape raises ``MalformedEvent`` and
``apply_event`` rolls back everything it did, event id included.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...db import Database
from ...errors import ProcessorDown
from ...models import Account, Invoice, PaymentAttempt, PaymentMethod, ProcessorEvent
from ...payments.gateway import PaymentGateway, PaymentResult, ProcessorError, SandboxControls
from ..payment_methods import cards
from . import payloads, refunds
from .collection import OPEN_ATTEMPT_STATUSES, charge_backup_after, execute_attempt, record_outcome
from .dunning import RetryPolicy
from .payloads import MalformedEvent

log = logging.getLogger(__name__)

Handler = Callable[[Session, PaymentGateway, dict, datetime, RetryPolicy], str]
HANDLERS: dict[str, Handler] = {}


def handles(*event_types: str):
    def register(fn: Handler) -> Handler:
        for event_type in event_types:
            HANDLERS[event_type] = fn
        return fn

    return register


def process_event(session: Session, gateway: PaymentGateway, event: dict, *, now: datetime, policy: RetryPolicy,
                  source: str = "stripe") -> str:
    """Apply one event exactly once, in the caller's transaction (the caller commits). Returns what it did.
    Raises ``MalformedEvent`` for an event that is not shaped as the processor sends them (the caller rolls
    back)."""
    obj = payloads.check_event(event)
    if session.get(ProcessorEvent, event["id"]) is not None:
        return "duplicate"
    handler = HANDLERS.get(event["type"])
    if handler is None:
        log.info("ignoring processor event %s of type %s", event["id"], event["type"])
        outcome = "ignored"
    else:
        outcome = handler(session, gateway, obj, now, policy)
    session.add(ProcessorEvent(id=event["id"], type=event["type"], source=source, outcome=outcome[:200],
                               created_at=now))
    return outcome


def apply_event(database: Database, gateway: PaymentGateway, event: dict, *, now: datetime, policy: RetryPolicy,
                source: str = "stripe") -> str:
    """``process_event`` in a transaction of its own; two deliveries racing each other apply it once. Money
    the event brought that the invoice could not take is sent back right after the commit. A malformed event
    changes nothing: its ``MalformedEvent`` leaves the block below before the commit, so closing the session
    rolls back whatever the handler did before finding the bad field, and the event id is not recorded
    either: the processor's redelivery of a corrected event still applies."""
    with database.session() as session:
        outcome = process_event(session, gateway, event, now=now, policy=policy, source=source)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return "duplicate"
    refunds.send_surplus_refunds(database, gateway, now=now)
    if event.get("type") == "payment_intent.payment_failed":
        _charge_backup_after_late_failure(database, gateway, event["data"]["object"], now=now, policy=policy)
    return outcome


def _charge_backup_after_late_failure(database: Database, gateway: PaymentGateway, intent: dict, *,
                                      now: datetime, policy: RetryPolicy) -> None:
    """A renewal's bank debit that failed days later gets the same second chance as a declined card: the
    backup's attempt was committed with the event (written first), and is charged now, after that commit.
    Should this charge not happen (a crash, the processor down), the attempt stays pending and the next
    worker pass asks again with the same key (``settle_pending_attempts``)."""
    with database.session() as session:
        attempt = _attempt_for_payment(session, intent)
        attempt_id = attempt.id if attempt is not None else None
    if attempt_id is not None:
        charge_backup_after(database, gateway, attempt_id, now=now, policy=policy)


def deliver_sandbox_events(database: Database, gateway: PaymentGateway, *, now: datetime, policy: RetryPolicy) -> int:
    """The sandbox's webhook delivery: due events go through the very same handlers as Stripe's."""
    if not isinstance(gateway, SandboxControls):
        return 0  # a real processor sends its events as webhooks
    delivered = 0
    for event in gateway.due_events(now=int(now.timestamp())):
        try:
            apply_event(database, gateway, event, now=now, policy=policy, source="sandbox")
        except ProcessorDown as exc:
            log.warning("sandbox event %s left for the next pass: %s", event.get("id"), exc.message)
            continue
        except MalformedEvent as exc:
            # Redelivering it would fail the same way forever; say so and go on with the others.
            log.error("sandbox event %s is malformed and was not applied: %s", event.get("id"), exc.message)
        gateway.mark_delivered(event["id"])
        delivered += 1
    return delivered


# --- Checkout -----------------------------------------------------------------------------------

def _checkout_attempt(session: Session, checkout: dict) -> PaymentAttempt | None:
    checkout_id = payloads.text(checkout, "id", required=True, max_length=120)
    return session.scalar(select(PaymentAttempt).where(PaymentAttempt.checkout_session_id == checkout_id))


def _paid_by_checkout(session: Session, gateway: PaymentGateway, attempt: PaymentAttempt, checkout: dict,
                      now: datetime, policy: RetryPolicy) -> str:
    """A paid checkout session: what it says it collected (amount and currency) is what is applied, never
    the amount we asked for. Without those in the event, the processor is asked."""
    payment_id = payloads.text(checkout, "payment_intent") or ""
    amount, currency = payloads.amount(checkout, "amount_total"), payloads.currency(checkout)
    if (amount is None or currency is None) and payment_id:
        received = _processor(gateway.retrieve_payment, payment_id)
        amount, currency = received.amount_cents, received.currency
    if amount is None or not currency:
        raise ProcessorDown("The payment's amount is unknown; the event is left for a later delivery.")
    details = None
    if payment_id:
        try:
            details = gateway.payment_details(payment_id)
        except ProcessorError:
            log.warning("could not read how %s was paid; recording it without details", payment_id)
    result = PaymentResult(payment_id=payment_id, status="succeeded", amount_cents=amount, currency=currency.upper())
    return record_outcome(session, attempt.id, result, now=now, policy=policy, details=details)


def _processor(call, *args):
    try:
        return call(*args)
    except ProcessorError as exc:
        raise ProcessorDown(f"The payment processor could not be asked: {exc.message}") from exc


@handles("checkout.session.completed")
def checkout_completed(session, gateway: PaymentGateway, checkout, now, policy) -> str:
    attempt = _checkout_attempt(session, checkout)
    if attempt is None:
        return "unknown checkout session"
    if payloads.text(checkout, "payment_status") in ("paid", "no_payment_required"):
        return _paid_by_checkout(session, gateway, attempt, checkout, now, policy)
    # A bank redirect or similar: the money arrives later (async_payment_succeeded / _failed).
    payment_id = payloads.text(checkout, "payment_intent")
    if attempt.status == "pending":
        attempt.status = "processing"
        attempt.processor_payment_id = payment_id or attempt.processor_payment_id
    return "processing"


@handles("checkout.session.async_payment_succeeded")
def checkout_async_succeeded(session, gateway: PaymentGateway, checkout, now, policy) -> str:
    attempt = _checkout_attempt(session, checkout)
    if attempt is None:
        return "unknown checkout session"
    return _paid_by_checkout(session, gateway, attempt, checkout, now, policy)


@handles("checkout.session.async_payment_failed")
def checkout_async_failed(session, gateway: PaymentGateway, checkout, now, policy) -> str:
    attempt = _checkout_attempt(session, checkout)
    if attempt is None:
        return "unknown checkout session"
    result = PaymentResult(payment_id=payloads.text(checkout, "payment_intent") or "", status="failed",
                           amount_cents=attempt.amount_cents, currency=attempt.currency,
                           failure_code="payment_failed", failure_message="The bank did not authorise the payment.")
    return record_outcome(session, attempt.id, result, now=now, policy=policy)


@handles("checkout.session.expired")
def checkout_expired(session, gateway: PaymentGateway, checkout, now, policy) -> str:
    attempt = _checkout_attempt(session, checkout)
    if attempt is None:
        return "unknown checkout session"
    if attempt.status == "pending":
        attempt.status, attempt.completed_at = "expired", now
    return attempt.status


# --- PaymentIntents (renewal charges that finish later) -----------------------------------------

def _attempt_for_payment(session: Session, intent: dict) -> PaymentAttempt | None:
    payment_id = payloads.text(intent, "id", required=True)
    meta = payloads.metadata(intent)
    invoice_id, attempt_number = payloads.our_id(meta, "invoice_id"), payloads.our_id(meta, "attempt")
    customer = payloads.text(intent, "customer", max_length=64)
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.processor_payment_id == payment_id))
    if attempt is None and invoice_id and attempt_number:
        # A charge whose answer we never recorded (a crash): its idempotency key names it in the metadata.
        attempt = session.scalar(select(PaymentAttempt).join(PaymentAttempt.invoice).join(
            Account, Account.id == Invoice.account_id).where(  # and the customer's: ids repeat across installations
            PaymentAttempt.invoice_id == invoice_id,
            PaymentAttempt.attempt_number == attempt_number,
            Account.processor_customer_id == customer))
    return attempt


@handles("payment_intent.succeeded")
def payment_intent_succeeded(session, gateway: PaymentGateway, intent, now, policy) -> str:
    attempt = _attempt_for_payment(session, intent)
    if attempt is None:
        return "unknown payment"
    charge = intent.get("latest_charge")  # an id, or the charge itself when expanded
    charge_id = payloads.text(charge, "id") if isinstance(charge, dict) else payloads.text(intent, "latest_charge")
    # What was collected, not what was asked for: ``amount_received`` (Stripe always sends it).
    amount, currency = payloads.amount(intent, "amount_received"), payloads.currency(intent)
    if amount is None or currency is None:
        received = _processor(gateway.retrieve_payment, intent["id"])
        amount, currency = received.amount_cents, received.currency
    result = PaymentResult(payment_id=intent["id"], status="succeeded", amount_cents=amount,
                           currency=currency.upper(), charge_id=charge_id)
    details = None
    try:
        details = gateway.payment_details(intent["id"])
    except ProcessorError:
        pass
    return record_outcome(session, attempt.id, result, now=now, policy=policy, details=details)


@handles("payment_intent.processing")
def payment_intent_processing(session, gateway: PaymentGateway, intent, now, policy) -> str:
    """A bank debit (ACH, SEPA) was accepted and settles in a few days: the attempt stays in flight, so nothing
    collects the invoice a second time, and the subscription keeps its access meanwhile."""
    attempt = _attempt_for_payment(session, intent)
    if attempt is None:
        return "unknown payment"
    result = PaymentResult(payment_id=intent["id"], status="processing",
                           amount_cents=payloads.amount(intent, "amount") or attempt.amount_cents,
                           currency=payloads.currency(intent) or attempt.currency)
    return record_outcome(session, attempt.id, result, now=now, policy=policy)


@handles("payment_intent.payment_failed")
def payment_intent_failed(session, gateway: PaymentGateway, intent, now, policy) -> str:
    attempt = _attempt_for_payment(session, intent)
    if attempt is None:
        return "unknown payment"
    error = payloads.mapping(intent, "last_payment_error")
    code = payloads.text(error, "decline_code", max_length=60) or payloads.text(error, "code", max_length=60) \
        or "card_declined"
    status = "requires_action" if code == "authentication_required" else "failed"
    result = PaymentResult(payment_id=intent["id"], status=status, amount_cents=payloads.amount(intent, "amount") or 0,
                           currency=payloads.currency(intent) or attempt.currency, failure_code=code,
                           failure_message=payloads.text(error, "message", max_length=None) or "The payment failed.")
    # A renewal's or retry's debit on the default that failed late (processing, then returned by the bank) is
    # a failed charge on the default like a decline: its backup is tried once (written here, charged by
    # ``apply_event`` after the commit). A card's decline was recorded when it was charged, so for it this
    # event finds the outcome already there and writes nothing.
    return record_outcome(session, attempt.id, result, now=now, policy=policy, backup_allowed=True)


# --- saved cards --------------------------------------------------------------------------------

@handles("setup_intent.succeeded")
def setup_intent_succeeded(session, gateway: PaymentGateway, intent, now, policy) -> str:
    setup_intent_id = payloads.text(intent, "id", required=True)
    customer = payloads.text(intent, "customer", max_length=64)
    payment_method = intent.get("payment_method")  # an id, or the payment method itself when expanded
    if not isinstance(payment_method, (str, dict, type(None))):
        raise MalformedEvent("payment_method must be a string or an object.")
    account = session.scalar(select(Account).where(Account.processor_customer_id == customer)) if customer else None
    if account is None or not payment_method:
        return "unknown customer"
    card = cards.save_confirmed_card(session, gateway, account.id, setup_intent_id, actor=Actor.system(), now=now)
    return f"card {card.id} saved"


@handles("setup_intent.requires_action")
def setup_intent_requires_action(session, gateway: PaymentGateway, intent, now, policy) -> str:
    """A method waiting for its customer. Only an ACH account waiting for micro-deposits is saved now (as
    pending, so the page can offer Verify even if the browser never came back); PayPal's approval and 3-D
    Secure are finished by the customer and reported by ``setup_intent.succeeded``."""
    setup_intent_id = payloads.text(intent, "id", required=True)
    customer = payloads.text(intent, "customer", max_length=64)
    action = payloads.text(payloads.mapping(intent, "next_action"), "type", max_length=40)
    if action != "verify_with_microdeposits":
        return f"waiting for the customer ({action or 'no next action'})"
    account = session.scalar(select(Account).where(Account.processor_customer_id == customer)) if customer else None
    if account is None:
        return "unknown customer"
    method = cards.save_confirmed_card(session, gateway, account.id, setup_intent_id, actor=Actor.system(), now=now)
    return f"bank account {method.id} saved, waiting for micro-deposits"


@handles("setup_intent.setup_failed")
def setup_intent_setup_failed(session, gateway: PaymentGateway, intent, now, policy) -> str:
    """Nothing to save: the customer saw the refusal in the Payment Element (or on PayPal's page) and may try
    again. Kept as the event's outcome, with Stripe's reason."""
    payloads.text(intent, "id", required=True)
    error = payloads.mapping(intent, "last_setup_error")
    reason = payloads.text(error, "code", max_length=None) or payloads.text(error, "message", max_length=None)
    return f"setup failed ({(reason or 'no reason given')[:120]})"


def _card(session: Session, payment_method: dict) -> PaymentMethod | None:
    processor_id = payloads.text(payment_method, "id", required=True, max_length=64)
    return session.scalar(select(PaymentMethod).where(PaymentMethod.processor_id == processor_id))


@handles("payment_method.updated", "payment_method.automatically_updated")
def payment_method_updated(session, gateway: PaymentGateway, payment_method, now, policy) -> str:
    card = _card(session, payment_method)
    details = payloads.mapping(payment_method, "card")
    # Every field read (and checked) before anything changes.
    brand, last4 = payloads.text(details, "brand", max_length=20), payloads.text(details, "last4", max_length=4)
    exp_month = payloads.whole_number(details, "exp_month", minimum=1, maximum=12)
    exp_year = payloads.whole_number(details, "exp_year", minimum=1970, maximum=9999)
    name = payloads.text(payloads.mapping(payment_method, "billing_details"), "name", max_length=200)
    if card is None or not details:
        return "unknown card"
    before = card.label, card.exp_month, card.exp_year
    card.brand = brand or card.brand
    card.last4 = last4 or card.last4
    card.exp_month = exp_month or card.exp_month
    card.exp_year = exp_year or card.exp_year
    if name:
        card.cardholder_name = name
    audit.record(session, Actor.system(), "card.updated_by_processor", now=now, account_id=card.account_id,
                 card_id=card.id, before=f"{before[0]} {before[1]:02d}/{before[2]}",
                 after=f"{card.label} {card.exp_month:02d}/{card.exp_year}")
    return "card updated"


@handles("payment_method.detached")
def payment_method_detached(session, gateway: PaymentGateway, payment_method, now, policy) -> str:
    card = _card(session, payment_method)
    if card is None or card.detached_at is not None:
        return "nothing to do"
    card.detached_at, card.is_default = now, False
    audit.record(session, Actor.system(), "card.detached_by_processor", now=now, account_id=card.account_id,
                 card_id=card.id, card=card.label)
    return "card removed"


# --- refunds made elsewhere ---------------------------------------------------------------------

@handles("charge.refunded")
def charge_refunded(session, gateway: PaymentGateway, charge, now, policy) -> str:
    """Refunds made anywhere (our console, the processor's dashboard) become Refund rows, once each."""
    return refunds.apply_charge_refunded(session, gateway, charge, now)


# Stripe keeps idempotency keys for at least 24 hours; stay safely inside that.
IDEMPOTENCY_WINDOW = timedelta(hours=23)


def reconcile(database: Database, gateway: PaymentGateway, *, now: datetime, policy: RetryPolicy,
              older_than: timedelta = timedelta(minutes=10)) -> dict[str, int]:
    """Ask the processor about attempts whose outcome is still unknown and settle them from its answer.
    Never charges: it only reads (checkout sessions, payment intents)."""
    counts = {"checked": 0, "settled": 0}
    with database.session() as session:
        rows = session.scalars(select(PaymentAttempt).where(
            PaymentAttempt.status.in_(OPEN_ATTEMPT_STATUSES), PaymentAttempt.created_at <= now - older_than)).all()
        work = [(a.id, a.checkout_session_id, a.processor_payment_id, a.status, a.created_at, a.payment_method_id)
                for a in rows]
    for attempt_id, checkout_id, payment_id, status, created_at, card_id in work:
        counts["checked"] += 1
        with database.session() as session:
            outcome = None
            try:
                if checkout_id:
                    checkout = gateway.retrieve_checkout_session(checkout_id)
                    payload = {"id": checkout.id, "payment_intent": checkout.payment_intent_id,
                               "payment_status": checkout.payment_status, "amount_total": None, "currency": None}
                    if checkout.status == "complete" and checkout.payment_status == "paid":
                        outcome = checkout_async_succeeded(session, gateway, payload, now, policy)
                    elif checkout.status == "expired":
                        outcome = checkout_expired(session, gateway, payload, now, policy)
                    elif checkout.payment_intent_id:
                        payment_id = checkout.payment_intent_id
                if outcome is None and payment_id:
                    result = gateway.retrieve_payment(payment_id)
                    if result.status in ("succeeded", "failed"):
                        details = gateway.payment_details(payment_id) if result.succeeded else None
                        outcome = record_outcome(session, attempt_id, result, now=now, policy=policy,
                                                 details=details)
            except (ProcessorError, ProcessorDown) as exc:
                log.warning("reconcile: attempt %s still unknown: %s", attempt_id, exc)
                continue
            session.commit()
        if outcome is None and not checkout_id and not payment_id and status == "pending" and card_id is None:
            # A Pay-now attempt whose payment page was never created (a crash in between): the customer
            # never saw a page to pay on, so there is nothing to ask about; close it so Pay now works again.
            with database.session() as session:
                abandoned = session.get(PaymentAttempt, attempt_id)
                if abandoned.status == "pending":
                    abandoned.status, abandoned.completed_at = "expired", now
                    abandoned.failure_message = "The payment page was never opened."
                session.commit()
            outcome = "expired"
        elif outcome is None and not checkout_id and not payment_id and status == "pending":
            if now - created_at < IDEMPOTENCY_WINDOW:
                # Never answered at all: asking again with the same idempotency key returns the first outcome.
                outcome = execute_attempt(database, gateway, attempt_id, now=now, policy=policy).status
            else:
                # Past the processor's idempotency window a repeat could charge again: leave it for a person.
                log.error("attempt %s has had no answer for over a day; check it in the processor's dashboard",
                          attempt_id)
        if outcome not in (None, "pending", "processing", "requires_action"):
            counts["settled"] += 1
    return counts
