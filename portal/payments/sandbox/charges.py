"""Charging saved payment methods: what happens depends on the test number the card was saved with, including
the test bank's 3-D Secure answer for a charge that needed the customer. Bank accounts (ACH and SEPA debits)
answer ``processing`` and settle later, as banks do: the outcome is a queued ``payment_intent.succeeded`` or
``payment_intent.payment_failed`` event that becomes due ``BANK_DEBIT_DAYS`` later."""
from __future__ import annotations

from ...models import BANK_TYPES, BRAND_NAMES, SandboxObject
from ..gateway import PaymentDetails, PaymentResult
from .books import Books, new_id
from .cards import DECLINE_MESSAGES, attached_card, attached_card_data
from .events import enqueue

# Days a bank debit stays processing before the bank's answer arrives. One figure for ACH and SEPA alike:
# Stripe quotes about 4 business days for ACH and up to 5 for SEPA; the exact number changes nothing here.
BANK_DEBIT_DAYS = 4
DEBIT_FAILED = ("debit_failed", "The bank returned the debit.")


def charge(books: Books, *, customer_id: str, payment_method_id: str, amount_cents: int, currency: str,
           idempotency_key: str, metadata: dict, off_session: bool) -> PaymentResult:
    made: dict[str, PaymentResult] = {}  # the answer of the intent this call created, as it was written

    def create(session):
        data = attached_card_data(session, books, payment_method_id, customer_id)
        if data.get("type", "card") in BANK_TYPES:
            pm = attached_card(session, books, payment_method_id, customer_id)
            return {"id": _debit(session, books, pm, customer_id=customer_id, amount_cents=amount_cents,
                                 currency=currency, metadata=metadata).id}
        outcome = data.get("charge", "ok")
        status, code, message = "succeeded", None, None
        if outcome == "authentication_required":
            status, code = "requires_action", outcome
            message = DECLINE_MESSAGES[outcome][0]
        elif outcome != "ok":
            status, code = "failed", outcome
            message = DECLINE_MESSAGES.get(outcome, ("Your card was declined.", None))[0]
        intent = books.insert(session, "pi", "payment_intent", {
            "customer": customer_id, "payment_method": payment_method_id, "amount": amount_cents,
            "currency": currency.lower(), "status": status, "failure_code": code, "failure_message": message,
            "metadata": {k: str(v) for k, v in metadata.items()}, "off_session": off_session,
            "charge": new_id("ch") if status == "succeeded" else None})
        made[intent.id] = payment_result(intent)
        return {"id": intent.id}

    result = books.idempotent(idempotency_key, create)
    # A replayed key (or a bank debit) reads the intent as it is now; a new card charge answers what it wrote.
    return made.get(result["id"]) or retrieve_payment(books, result["id"])


def _debit(session, books: Books, pm: SandboxObject, *, customer_id: str, amount_cents: int, currency: str,
           metadata: dict) -> SandboxObject:
    """A bank debit: processing now, its outcome (``"charge": "debit_succeeds"`` or ``"debit_fails"``)
    queued as the event a bank's answer becomes at Stripe."""
    intent = books.new(session, "pi", "payment_intent", {
        "customer": customer_id, "payment_method": pm.id, "amount": amount_cents, "currency": currency.lower(),
        "status": "processing", "failure_code": None, "failure_message": None,
        "metadata": {k: str(v) for k, v in metadata.items()}, "off_session": True, "charge": None,
        "label": method_label(pm.data)})
    fails = pm.data.get("charge") == "debit_fails"
    payload = {"id": intent.id, "object": "payment_intent", "customer": customer_id, "amount": amount_cents,
               "amount_received": 0 if fails else amount_cents, "currency": currency.lower(),
               "metadata": intent.data["metadata"], "payment_method": pm.id,
               "status": "requires_payment_method" if fails else "succeeded",
               "last_payment_error": {"code": DEBIT_FAILED[0], "message": DEBIT_FAILED[1]} if fails else None}
    enqueue(session, books, "payment_intent.payment_failed" if fails else "payment_intent.succeeded", payload,
            deliver_at=books.timestamp() + BANK_DEBIT_DAYS * 86_400,
            settle_intent=(intent.id, "failed" if fails else "succeeded"))
    return intent


def method_label(data: dict) -> str:
    """How a sandbox payment method is named, the way the portal names saved methods."""
    kind = data.get("type", "card")
    if kind == "paypal":
        return f"PayPal · {data['email']}" if data.get("email") else "PayPal"
    if kind in BANK_TYPES:
        return f"{data.get('bank_name') or 'Bank account'} •••• {data.get('last4', '')}"
    return f"{BRAND_NAMES.get(data['brand'], data['brand'])} •••• {data['last4']}"


def retrieve_payment(books: Books, payment_id: str) -> PaymentResult:
    with books.reading() as session:
        return payment_result(books.get(session, payment_id, "payment_intent"))


def complete_payment_authentication(books: Books, payment_id: str, *, approve: bool) -> PaymentResult:
    with books.writing() as session:
        pi = books.get(session, payment_id, "payment_intent")
        if pi.data["status"] == "requires_action":
            if approve:
                pi.data = {**pi.data, "status": "succeeded", "failure_code": None, "failure_message": None,
                           "charge": new_id("ch")}
            else:
                pi.data = {**pi.data, "status": "failed", "failure_code": "authentication_failed",
                           "failure_message": "Card authentication failed."}
        return payment_result(pi)


def payment_details(books: Books, payment_id: str) -> PaymentDetails:
    with books.reading() as session:
        pi = books.get(session, payment_id, "payment_intent")
        label = pi.data.get("label")
        if not label and pi.data.get("payment_method"):
            label = method_label(books.get(session, pi.data["payment_method"], "payment_method").data)
        return PaymentDetails(label=label or "Card", transaction_id=pi.data.get("charge") or pi.id)


def payment_result(obj: SandboxObject) -> PaymentResult:
    d = obj.data
    return PaymentResult(payment_id=obj.id, status=d["status"], amount_cents=d["amount"],
                         currency=d["currency"].upper(), payment_method_id=d.get("payment_method"),
                         charge_id=d.get("charge"), failure_code=d.get("failure_code"),
                         failure_message=d.get("failure_message"))
