"""Pay now: an Open invoice paid on the processor's hosted page (Stripe Checkout, or the sandbox's).

It passes the same guard as every other collection (``collection.claim``): the invoice is locked in a write
transaction, a charge or debit in flight refuses it, and an open page for the invoice is resumed rather than
doubled. The attempt is committed before the session is created (written first), its idempotency key ties
the session to the invoice and the attempt, and the outcome arrives later as events.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...errors import InvoiceNotPayable, NotFound, PaymentInProgress, ProcessorDown
from ...models import Account, Invoice, PaymentAttempt
from ...payments.gateway import (CheckoutSession, PaymentGateway, ProcessorError, ProcessorUnavailable,
                                 SandboxControls)
from ..payment_methods.cards import ensure_processor_customer
from .collection import claim, in_flight_message, next_attempt_number

CHECKOUT_LIFETIME = timedelta(hours=1)  # Stripe accepts 30 minutes to 24 hours
# A page about to expire is not handed out again: the customer would land on an expired page.
RESUME_MARGIN = timedelta(minutes=2)


def start_checkout(session: Session, gateway: PaymentGateway, account_id: int, invoice_id: int, *, success_url: str,
                   cancel_url: str, now: datetime) -> str:
    """The URL to send the customer to. An open session for this invoice is resumed rather than doubled."""
    account = session.get(Account, account_id)
    # Before the lock: creating the customer is a processor call, and no call is made while it is held.
    customer_id = ensure_processor_customer(session, gateway, account)
    found = claim(session, invoice_id, now=now, account_id=account_id)
    invoice = found.invoice
    if invoice.status == "paid":
        raise InvoiceNotPayable(f"{invoice.number} is already paid. Nothing was charged.")
    if invoice.status == "void":
        raise InvoiceNotPayable(f"{invoice.number} was voided, so no payment is needed.")
    if found.in_flight is not None:
        session.commit()  # keep what claim closed (abandoned pages)
        raise PaymentInProgress(in_flight_message(invoice, found.in_flight))
    for page in found.open_pages:
        if page.expires_at is not None and page.expires_at > now + RESUME_MARGIN and page.checkout_url:
            session.commit()
            return page.checkout_url
    number = next_attempt_number(session, invoice.id)
    expires = now + CHECKOUT_LIFETIME
    attempt = PaymentAttempt(invoice_id=invoice.id, attempt_number=number, trigger="customer", status="pending",
                             idempotency_key=f"invoice-{invoice.id}-attempt-{number}",
                             amount_cents=invoice.amount_due_cents, currency=invoice.currency, created_at=now,
                             expires_at=expires, payment_method_label="Stripe Checkout")
    session.add(attempt)
    session.commit()
    try:
        checkout = gateway.create_checkout_session(
            customer_id=customer_id, amount_cents=attempt.amount_cents, currency=attempt.currency,
            description=f"Invoice {invoice.number}",
            metadata={"invoice_id": invoice.id, "invoice_number": invoice.number, "attempt": number},
            success_url=success_url, cancel_url=cancel_url, expires_at=int(expires.timestamp()),
            idempotency_key=attempt.idempotency_key)
    except ProcessorError as exc:
        attempt.status, attempt.completed_at = "failed", now
        attempt.failure_code, attempt.failure_message = exc.code, exc.message[:300]
        session.commit()
        if isinstance(exc, ProcessorUnavailable):
            raise ProcessorDown(exc.message) from exc
        raise InvoiceNotPayable("The payment page could not be opened. Please try again in a moment.") from exc
    attempt.checkout_session_id, attempt.checkout_url = checkout.id, checkout.url
    session.commit()
    return checkout.url


def payment_status(session: Session, account_id: int, invoice_id: int) -> tuple[Invoice, PaymentAttempt | None]:
    """The invoice and its latest Pay-now attempt, for the page that waits for the outcome."""
    invoice = session.scalar(select(Invoice).where(Invoice.id == invoice_id, Invoice.account_id == account_id,
                                                   Invoice.status != "draft"))
    if invoice is None:
        raise NotFound("That invoice does not exist.")
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id)
                             .order_by(PaymentAttempt.attempt_number.desc()).limit(1))
    return invoice, attempt


def sandbox_checkout(session: Session, gateway: PaymentGateway, controls: SandboxControls, account_id: int,
                     checkout_id: str) -> tuple[CheckoutSession, dict]:
    """A checkout session on the sandbox's stand-in page and the sandbox's own record of it (amount,
    description, return URLs), if it is this account's; anyone else's, or none, is not found."""
    try:
        checkout = gateway.retrieve_checkout_session(checkout_id)
    except ProcessorError as exc:
        raise NotFound("That payment page does not exist.") from exc
    customer_id = session.get(Account, account_id).processor_customer_id
    raw = controls.checkout_details(checkout_id)
    if not customer_id or raw["customer"] != customer_id:
        raise NotFound("That payment page does not exist.")
    return checkout, raw
