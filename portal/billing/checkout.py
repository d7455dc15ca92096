"""Pay now: an Open invoice paid on the processor's hosted page (Stripe Checkout, or the sandbox's).

The attempt is committed before the session is created (written first), its idempotency key ties the
session to the invoice and the attempt, and the outcome arrives later as events.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Account, Invoice, PaymentAttempt
from ..payments.gateway import PaymentGateway, ProcessorError, ProcessorUnavailable
from .cards import ensure_processor_customer
from .collection import next_attempt_number
from .errors import DomainError, NotFound, ProcessorDown

CHECKOUT_LIFETIME = timedelta(hours=1)  # Stripe accepts 30 minutes to 24 hours


class InvoiceNotPayable(DomainError):
    code = "invoice_not_payable"
    status = 409


def start_checkout(session: Session, gateway: PaymentGateway, account_id: int, invoice_id: int, *, success_url: str,
                   cancel_url: str, now: datetime) -> str:
    """The URL to send the customer to. An open session for this invoice is resumed rather than doubled."""
    invoice = session.scalar(select(Invoice).where(Invoice.id == invoice_id, Invoice.account_id == account_id,
                                                   Invoice.status != "draft").with_for_update())
    if invoice is None:
        raise NotFound("That invoice does not exist.")
    if invoice.status == "paid":
        raise InvoiceNotPayable(f"{invoice.number} is already paid. Nothing was charged.")
    if invoice.status == "void":
        raise InvoiceNotPayable(f"{invoice.number} was voided, so no payment is needed.")
    attempts = session.scalars(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id)).all()
    for attempt in attempts:
        if (attempt.status == "pending" and not attempt.checkout_session_id and attempt.payment_method_id is None
                and attempt.created_at < now - timedelta(minutes=2)):
            # An earlier Pay now died before its page existed: nobody can pay it, so it no longer blocks.
            attempt.status, attempt.completed_at = "expired", now
            attempt.failure_message = "The payment page was never opened."
    if any(a.status == "processing" or (a.status == "pending" and not a.checkout_session_id) for a in attempts):
        raise InvoiceNotPayable(f"A payment for {invoice.number} is already being processed. We'll update the "
                                "invoice as soon as it completes; nothing more is needed.")
    for attempt in attempts:
        if attempt.checkout_session_id and attempt.status == "pending" and attempt.expires_at \
                and attempt.expires_at > now + timedelta(minutes=2):
            session.rollback()
            return attempt.checkout_url
    account = session.get(Account, account_id)
    customer_id = ensure_processor_customer(session, gateway, account)
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
