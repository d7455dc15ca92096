"""Refunds of paid invoices: to the original payment (through the processor) or as account credit.

Written first, like payments: (1) lock the invoice, check the amount against what is still refundable and
commit a pending Refund row with its idempotency key, (2) ask the processor, (3) record its answer. Pending
refunds count against the refundable amount, so concurrent requests can never send back more than was
paid; a crash between (2) and (3) is repaired by asking again with the same key (``settle_pending_refunds``).

Refunds made in the processor's own dashboard reach us as ``charge.refunded`` events and become rows here
too (``apply_charge_refunded``), matched by the processor's refund id so nothing is counted twice.
"""
from __future__ import annotations

import functools
import logging
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...db import Database
from ...errors import InvalidInput, NotFound, RefundFailed, RefundRefused
from ...models import Account, CreditEntry, Invoice, PaymentAttempt, Refund
from ...money import format_money, parse_amount
from ...notifications import outbox
from ...payments.gateway import PaymentGateway, ProcessorError, ProcessorUnavailable, RefundResult
from . import payloads
from ..invoicing.invoices import lock_invoice
from ..outcome import Done

log = logging.getLogger(__name__)

COUNTING = ("pending", "succeeded")
DESTINATIONS = ("card", "credit")
DASHBOARD_REASON = "Refunded in the payment processor's dashboard"


# --- reading ------------------------------------------------------------------------------------

def refunded_or_pending_cents(session: Session, invoice_id: int) -> int:
    """Paid money that is refunded or on its way back (surplus refunds never were part of what was paid)."""
    return int(session.scalar(select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
        Refund.invoice_id == invoice_id, Refund.status.in_(COUNTING), Refund.kind == "refund")) or 0)


def refundable_cents(session: Session, invoice: Invoice) -> int:
    """What can still be refunded: paid, less what is refunded or on its way back."""
    if invoice.status != "paid":
        return 0
    return max(0, invoice.amount_paid_cents - refunded_or_pending_cents(session, invoice.id))


def refunds_by_invoice(session: Session, invoice_ids: list[int]) -> dict[int, list[Refund]]:
    """The refunds of several invoices in one query (a page of invoices costs the same however many)."""
    found: dict[int, list[Refund]] = {}
    if not invoice_ids:
        return found
    for refund in session.scalars(_refunds_of_invoices(), {"invoice_ids": list(invoice_ids)}):
        found.setdefault(refund.invoice_id, []).append(refund)
    return found


@functools.cache
def _refunds_of_invoices():
    """Built once per process (Billing details runs it on every view); the ids are an expanding parameter."""
    return (select(Refund).where(Refund.invoice_id.in_(bindparam("invoice_ids", expanding=True)))
            .order_by(Refund.created_at, Refund.id))


def refund_phrase(invoice: Invoice) -> str:
    """"Refunded $21.25" when all of it came back, "Partially refunded $5.00" when part did; "" otherwise."""
    if not invoice.amount_refunded_cents:
        return ""
    amount = format_money(invoice.amount_refunded_cents, invoice.currency)
    if invoice.amount_refunded_cents >= invoice.amount_paid_cents:
        return f"Refunded {amount}"
    return f"Partially refunded {amount}"


def original_payment_id(session: Session, invoice: Invoice) -> str | None:
    """The processor's id of the payment that paid the invoice (where a card refund must go), if any."""
    payment_id = session.scalar(select(PaymentAttempt.processor_payment_id).where(
        PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.status == "succeeded",
        PaymentAttempt.processor_payment_id != "").order_by(PaymentAttempt.completed_at.desc(),
                                                            PaymentAttempt.id.desc()).limit(1))
    if payment_id:
        return payment_id
    if invoice.processor_transaction_id.startswith(("pi_", "ch_", "py_")):
        return invoice.processor_transaction_id
    return None


# --- refunding ----------------------------------------------------------------------------------

def refund_invoice(database: Database, gateway: PaymentGateway, account_id: int, invoice_id: int, *,
                   amount_cents: int | None, reason: str, destination: str = "card", actor: Actor, now: datetime,
                   request_key: str | None = None) -> Refund:
    """Refund a paid invoice fully or partly, to the original payment or as account credit.

    Raises InvalidInput (per field) for a bad amount or a missing reason, RefundRefused when the invoice
    can't be refunded, RefundFailed when the processor refuses. A processor that can't be reached leaves
    the refund pending (it still holds its amount) until ``settle_pending_refunds`` asks again.
    """
    reason = (reason or "").strip()
    with database.session() as session:
        invoice = lock_invoice(session, invoice_id, account_id=account_id)
        key = f"refund-{invoice.id}-{request_key}" if request_key else f"refund-{invoice.id}-{secrets.token_hex(16)}"
        existing = session.scalar(select(Refund).where(Refund.idempotency_key == key))
        if existing is not None:
            return existing  # the same form submitted twice: one refund
        if invoice.status != "paid":
            raise RefundRefused(f"{invoice.number} is {invoice.status_label.lower()}: only paid invoices can be "
                                "refunded.")
        refundable = refundable_cents(session, invoice)
        errors: dict[str, str] = {}
        if destination not in DESTINATIONS:
            errors["destination"] = "Choose where the money goes: the original payment or account credit."
        if not reason:
            errors["reason"] = "Enter the reason for this refund."
        elif len(reason) > 300:
            errors["reason"] = "Use at most 300 characters."
        if refundable == 0:
            raise RefundRefused(f"Nothing is left to refund on {invoice.number}: "
                                f"{format_money(invoice.amount_paid_cents, invoice.currency)} paid, all of it "
                                "refunded or being refunded.")
        if amount_cents is None or amount_cents <= 0:
            errors["amount"] = "Enter an amount greater than zero."
        elif amount_cents > refundable:
            errors["amount"] = (f"At most {format_money(refundable, invoice.currency)} can still be refunded on "
                                f"{invoice.number}.")
        payment_id = None
        if destination == "card" and "destination" not in errors:
            payment_id = original_payment_id(session, invoice)
            if payment_id is None:
                label = invoice.payment_method_label or "outside the payment processor"
                errors["destination"] = (f"{invoice.number} was paid by {label}, not through the payment processor, "
                                         "so it can't go back to a card. Refund it as account credit instead.")
        if errors:
            raise InvalidInput(errors)
        refund = Refund(invoice_id=invoice.id, account_id=invoice.account_id, amount_cents=amount_cents,
                        currency=invoice.currency, reason=reason, status="pending", destination=destination,
                        origin="portal", idempotency_key=key, created_by_user_id=actor.user_id, created_at=now)
        session.add(refund)
        session.flush()
        audit.record(session, actor, "refund.created", now=now, account_id=invoice.account_id, invoice_id=invoice.id,
                     invoice_number=invoice.number, refund_id=refund.id, amount_cents=amount_cents,
                     currency=invoice.currency, destination=destination, reason=reason)
        if destination == "credit":
            session.add(CreditEntry(account_id=invoice.account_id, amount_cents=amount_cents, currency=invoice.currency,
                                    kind="refund_as_credit", reason=f"{reason} (refund of {invoice.number})"[:300],
                                    invoice_id=invoice.id, created_by_user_id=actor.user_id, created_at=now))
            _set_status(session, invoice, refund, "succeeded", now=now)
            session.commit()
            return refund
        invoice.status_version = invoice.status_version + 1  # the PDF lists the pending refund
        session.commit()
        refund_id = refund.id
        request = dict(payment_id_or_charge_id=payment_id, amount_cents=amount_cents, idempotency_key=key,
                       metadata={"refund_id": refund.id, "invoice_id": invoice.id, "invoice_number": invoice.number,
                                 "reason": reason})
    return _call_processor(database, gateway, refund_id, request, now=now)


def refund_entered_amount(database: Database, gateway: PaymentGateway, account_id: int, invoice_id: int, *, amount: str,
                          max_cents: int, reason: str, destination: str, actor: Actor, now: datetime,
                          request_key: str | None = None) -> Done[Refund]:
    """The console's Refund form: ``amount`` as staff typed it, in the invoice's currency and at most
    ``max_cents`` (``PORTAL_MAX_AMOUNT_CENTS``), then ``refund_invoice``. A refused amount and a missing
    reason are reported together; another account's invoice is not found."""
    with database.session() as session:
        invoice = session.scalar(select(Invoice).where(Invoice.id == invoice_id, Invoice.account_id == account_id,
                                                       Invoice.status != "draft"))
        if invoice is None:
            raise NotFound("That invoice does not exist.")
        currency, number = invoice.currency, invoice.number
    try:
        cents = parse_amount(amount, currency, max_cents=max_cents)
    except InvalidInput as exc:
        if not (reason or "").strip():
            exc.errors["reason"] = "Enter the reason for this refund."
        raise
    made = refund_invoice(database, gateway, account_id, invoice_id, amount_cents=cents, reason=reason,
                          destination=destination or "card", actor=actor, now=now, request_key=request_key)
    amount_text = format_money(made.amount_cents, made.currency)
    if made.destination == "credit":
        return Done(made, f"Refunded {amount_text} of {number} as account credit.")
    if made.status == "succeeded":
        return Done(made, f"Refunded {amount_text} of {number} to the original payment.")
    return Done(made, f"Refund of {amount_text} for {number} is pending with the payment processor.")


def _call_processor(database: Database, gateway: PaymentGateway, refund_id: int, request: dict, *,
                    now: datetime) -> Refund:
    try:
        result = gateway.refund(**request)
    except ProcessorUnavailable:
        log.warning("refund %s: the processor did not answer; it stays pending and is asked again later", refund_id)
        with database.session() as session:
            return session.get(Refund, refund_id)
    except ProcessorError as exc:
        with database.session() as session:
            refund = session.get(Refund, refund_id)
            invoice = lock_invoice(session, refund.invoice_id)
            refund = session.get(Refund, refund_id, populate_existing=True)
            refund.failure_message = exc.message[:300]
            _set_status(session, invoice, refund, "failed", now=now)
            session.commit()
        raise RefundFailed(f"The payment processor refused the refund: {exc.message} Nothing was refunded.") from exc
    with database.session() as session:
        refund = record_result(session, refund_id, result, now=now)
        session.commit()
        return refund


def record_result(session: Session, refund_id: int, result: RefundResult, *, now: datetime) -> Refund:
    """Apply the processor's answer to a refund (in the caller's transaction). Idempotent."""
    refund = session.get(Refund, refund_id)
    invoice = lock_invoice(session, refund.invoice_id)
    refund = session.get(Refund, refund_id, populate_existing=True)
    if not refund.processor_refund_id:
        refund.processor_refund_id = result.id
    if result.failure_message:
        refund.failure_message = result.failure_message[:300]
    _set_status(session, invoice, refund, result.status, now=now)
    return refund


def _set_status(session: Session, invoice: Invoice, refund: Refund, status: str, *, now: datetime) -> bool:
    """Move a refund forward (pending -> succeeded | failed; succeeded -> failed when the processor says so),
    keep the invoice's refunded total true, and confirm it to the billing e-mail once."""
    if status not in ("pending", "succeeded", "failed"):
        status = "pending"
    changed = refund.status != status and refund.status != "failed" and not (
        refund.status == "succeeded" and status == "pending")
    if changed:
        refund.status = status
        if status in ("succeeded", "failed"):
            refund.settled_at = now
        session.flush()
        total = int(session.scalar(select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.invoice_id == invoice.id, Refund.status == "succeeded", Refund.kind == "refund")) or 0)
        invoice.amount_refunded_cents = min(total, invoice.amount_paid_cents)
        invoice.status_version = invoice.status_version + 1
    if refund.status in COUNTING and (refund.processor_refund_id or refund.destination == "credit"):
        _confirm(session, invoice, refund, now=now)
    return changed


def _confirm(session: Session, invoice: Invoice, refund: Refund, *, now: datetime) -> None:
    account = session.get(Account, invoice.account_id)
    amount = format_money(refund.amount_cents, refund.currency)
    if refund.kind == "surplus":
        subject = f"We sent {amount} back to you: more than was due for invoice {invoice.number}"
    elif refund.destination == "credit":
        subject = f"Refund of {amount} as account credit for invoice {invoice.number}"
    else:
        subject = f"Refund of {amount} for invoice {invoice.number}"
    outbox.enqueue(session, dedupe_key=f"refund-{refund.id}", kind="refund_issued", to=account.billing_email,
                   account_id=account.id, subject=subject, template="refund_issued",
                   context={"refund": refund, "invoice": invoice, "account": account}, now=now)


def settle_pending_refunds(database: Database, gateway: PaymentGateway, *, now: datetime,
                           older_than: timedelta = timedelta(minutes=5)) -> int:
    """Refunds whose processor call never answered (a timeout, a crash): ask again with the same
    idempotency key, which returns the first refund rather than making a second. Returns how many settled."""
    with database.session() as session:
        rows = session.scalars(select(Refund).where(
            Refund.status == "pending", Refund.destination == "card", Refund.origin == "portal",
            Refund.processor_refund_id.is_(None), Refund.created_at <= now - older_than)).all()
        work = []
        for refund in rows:
            request = _processor_request(session, refund)
            if request is not None:
                work.append((refund.id, request))
    settled = 0
    for refund_id, request in work:
        try:
            refund = _call_processor(database, gateway, refund_id, request, now=now)
        except RefundFailed:
            settled += 1
            continue
        if refund.processor_refund_id:
            settled += 1
    return settled


def _processor_request(session: Session, refund: Refund) -> dict | None:
    """The processor call for a pending card refund: a refund of a paid invoice goes to the payment that paid
    it, a surplus refund to the very payment that brought the surplus."""
    invoice = session.get(Invoice, refund.invoice_id)
    if refund.kind == "surplus":
        payment_id = refund.payment_attempt.processor_payment_id if refund.payment_attempt else None
    else:
        payment_id = original_payment_id(session, invoice)
    if not payment_id:
        return None
    return dict(payment_id_or_charge_id=payment_id, amount_cents=refund.amount_cents,
                idempotency_key=refund.idempotency_key,
                metadata={"refund_id": refund.id, "invoice_id": invoice.id, "invoice_number": invoice.number,
                          "reason": refund.reason[:200]})


# --- money the invoice could not take -----------------------------------------------------------

def refund_surplus(session: Session, invoice: Invoice, attempt: PaymentAttempt, *, amount_cents: int, currency: str,
                   reason: str, now: datetime) -> Refund:
    """Written first, in the caller's transaction (the one that records the payment): a pending refund of
    money the invoice could not take, back to the payment it came from. ``send_surplus_refunds`` (right
    after the commit, and every worker pass) asks the processor, with a key that never refunds twice."""
    key = f"surplus-attempt-{attempt.id}"
    existing = session.scalar(select(Refund).where(Refund.idempotency_key == key))
    if existing is not None:
        return existing
    refund = Refund(invoice_id=invoice.id, account_id=invoice.account_id, amount_cents=amount_cents,
                    currency=currency, reason=reason[:300], status="pending", destination="card", origin="portal",
                    kind="surplus", payment_attempt_id=attempt.id, idempotency_key=key, created_at=now)
    session.add(refund)
    session.flush()
    invoice.status_version = invoice.status_version + 1  # the PDF lists the refund
    audit.record(session, Actor.system(), "refund.surplus_created", now=now, account_id=invoice.account_id,
                 invoice_id=invoice.id, invoice_number=invoice.number, refund_id=refund.id, amount_cents=amount_cents,
                 currency=currency, attempt_id=attempt.id, reason=reason)
    log.warning("%s: %s of surplus from attempt %s is being refunded automatically", invoice.number, amount_cents,
                attempt.id)
    return refund


def send_surplus_refunds(database: Database, gateway: PaymentGateway, *, now: datetime,
                         attempt_id: int | None = None, attempt_ids: list[int] | None = None) -> int:
    """Ask the processor for surplus refunds not yet sent (those of one attempt, of some, or all). Returns how
    many."""
    with database.session() as session:
        query = select(Refund).where(Refund.kind == "surplus", Refund.status == "pending",
                                     Refund.processor_refund_id.is_(None))
        if attempt_id is not None:
            query = query.where(Refund.payment_attempt_id == attempt_id)
        if attempt_ids is not None:
            query = query.where(Refund.payment_attempt_id.in_(attempt_ids))
        work = [(r.id, _processor_request(session, r)) for r in session.scalars(query)]
    sent = 0
    for refund_id, request in work:
        if request is None:
            continue
        try:
            _call_processor(database, gateway, refund_id, request, now=now)
        except RefundFailed:
            log.error("surplus refund %s was refused by the processor; a person must send it back", refund_id)
        sent += 1
    return sent


# --- refunds made in the processor's dashboard --------------------------------------------------

def _invoice_for_charge(session: Session, charge: dict) -> Invoice | None:
    # The charge id at most 64 characters: it goes into a 100-character idempotency key below.
    ids = [i for i in (payloads.text(charge, "id", max_length=64), payloads.text(charge, "payment_intent")) if i]
    if not ids:
        return None
    invoice = session.scalar(select(Invoice).where(Invoice.processor_transaction_id.in_(ids)).limit(1))
    if invoice is None:
        invoice_id = session.scalar(select(PaymentAttempt.invoice_id).where(
            PaymentAttempt.processor_payment_id.in_(ids), PaymentAttempt.status == "succeeded").limit(1))
        invoice = session.get(Invoice, invoice_id) if invoice_id else None
    return invoice


def _as_result(data) -> RefundResult:
    """A refund as the gateway returns it, or as an event lists it (read through ``payloads``)."""
    if isinstance(data, RefundResult):
        return data
    status = payloads.text(data, "status", max_length=40)
    status = {"requires_action": "pending", "canceled": "failed"}.get(status or "", status)
    return RefundResult(id=payloads.text(data, "id", required=True), status=status or "succeeded",
                        amount=payloads.amount(data, "amount") or 0, currency=payloads.currency(data) or "",
                        payment_id=payloads.text(data, "payment_intent"), charge_id=payloads.text(data, "charge"),
                        metadata=payloads.metadata(data),
                        failure_message=payloads.text(data, "failure_reason", max_length=None))


def _when(data) -> datetime | None:
    created = payloads.timestamp(data, "created") if isinstance(data, dict) else None
    return datetime.fromtimestamp(created, tz=timezone.utc) if created else None


def apply_charge_refunded(session: Session, gateway: PaymentGateway, charge: dict, now: datetime) -> str:
    """A ``charge.refunded`` event: every refund of the charge gets its row (new ones are those made in the
    dashboard), statuses move forward, and the invoice's refunded total follows. Idempotent: refunds are
    matched by the processor's id (or, for our own not yet recorded, by the refund id in their metadata)."""
    invoice = _invoice_for_charge(session, charge)
    refunded = payloads.amount(charge, "amount_refunded") or 0
    data = payloads.items(payloads.mapping(charge, "refunds"), "data")
    if invoice is None:
        return "unknown charge"
    invoice = lock_invoice(session, invoice.id)
    if data is None:
        # Stripe leaves ``refunds`` out of charges unless expanded: ask for them.
        try:
            data = gateway.list_refunds(charge.get("payment_intent") or charge["id"])
        except (ProcessorError, AttributeError):
            log.warning("could not list the refunds of %s; going by the refunded amount", charge.get("id"))
    created = 0
    if data is not None:
        for item in data:
            result = _as_result(item)
            refund = session.scalar(select(Refund).where(Refund.processor_refund_id == result.id))
            ours = payloads.our_id(result.metadata, "refund_id")
            if refund is None and ours is not None:
                refund = session.scalar(select(Refund).where(Refund.id == ours, Refund.invoice_id == invoice.id,
                                                             Refund.processor_refund_id.is_(None)))
                if refund is not None:
                    refund.processor_refund_id = result.id
            if refund is None:
                refund = _dashboard_refund(session, invoice, result.amount, key=f"processor-{result.id}",
                                           processor_refund_id=result.id, now=_when(item) or now)
                created += 1
            if result.failure_message:
                refund.failure_message = result.failure_message[:300]
            _set_status(session, invoice, refund, result.status, now=now)
    else:
        known = int(session.scalar(select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.invoice_id == invoice.id, Refund.destination == "card", Refund.status.in_(COUNTING))) or 0)
        missing = refunded - known
        if missing > 0:
            refund = _dashboard_refund(session, invoice, missing, now=now, processor_refund_id=None,
                                       key=f"processor-{charge.get('id')}-{refunded}")
            _set_status(session, invoice, refund, "succeeded", now=now)
            _confirm(session, invoice, refund, now=now)  # no processor id to wait for: the amount is what we know
            created += 1
    return f"{created} new refund(s); refunded {invoice.amount_refunded_cents}"


def _dashboard_refund(session: Session, invoice: Invoice, amount_cents: int, *, key: str,
                      processor_refund_id: str | None, now: datetime) -> Refund:
    if amount_cents > refundable_cents(session, invoice):
        log.warning("the processor refunded more of %s than we thought refundable; recording what it did",
                    invoice.number)
    refund = Refund(invoice_id=invoice.id, account_id=invoice.account_id, amount_cents=amount_cents,
                    currency=invoice.currency, reason=DASHBOARD_REASON, status="pending", destination="card",
                    origin="processor", idempotency_key=key, processor_refund_id=processor_refund_id, created_at=now)
    session.add(refund)
    session.flush()
    invoice.status_version = invoice.status_version + 1
    audit.record(session, Actor.system(), "refund.recorded_from_processor", now=now, account_id=invoice.account_id,
                 invoice_id=invoice.id, invoice_number=invoice.number, refund_id=refund.id, amount_cents=amount_cents,
                 currency=invoice.currency, processor_refund_id=processor_refund_id or "")
    return refund

