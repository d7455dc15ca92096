"""Charging saved cards: what happens depends on the test number the card was saved with, including the
test bank's 3-D Secure answer for a charge that needed the customer."""
from __future__ import annotations

from ...models import BRAND_NAMES, SandboxObject
from ..gateway import PaymentDetails, PaymentResult
from .books import Books, new_id
from .cards import DECLINE_MESSAGES, attached_card


def charge(books: Books, *, customer_id: str, payment_method_id: str, amount_cents: int, currency: str,
           idempotency_key: str, metadata: dict, off_session: bool) -> PaymentResult:
    def create(session):
        pm = attached_card(session, books, payment_method_id, customer_id)
        outcome = pm.data.get("charge", "ok")
        status, code, message = "succeeded", None, None
        if outcome == "authentication_required":
            status, code = "requires_action", outcome
            message = DECLINE_MESSAGES[outcome][0]
        elif outcome != "ok":
            status, code = "failed", outcome
            message = DECLINE_MESSAGES.get(outcome, ("Your card was declined.", None))[0]
        intent = books.new(session, "pi", "payment_intent", {
            "customer": customer_id, "payment_method": payment_method_id, "amount": amount_cents,
            "currency": currency.lower(), "status": status, "failure_code": code, "failure_message": message,
            "metadata": {k: str(v) for k, v in metadata.items()}, "off_session": off_session,
            "charge": new_id("ch") if status == "succeeded" else None})
        return {"id": intent.id}

    result = books.idempotent(idempotency_key, create)
    return retrieve_payment(books, result["id"])


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
            card = books.get(session, pi.data["payment_method"], "payment_method").data
            label = f"{BRAND_NAMES.get(card['brand'], card['brand'])} •••• {card['last4']}"
        return PaymentDetails(label=label or "Card", transaction_id=pi.data.get("charge") or pi.id)


def payment_result(obj: SandboxObject) -> PaymentResult:
    d = obj.data
    return PaymentResult(payment_id=obj.id, status=d["status"], amount_cents=d["amount"],
                         currency=d["currency"].upper(), payment_method_id=d.get("payment_method"),
                         charge_id=d.get("charge"), failure_code=d.get("failure_code"),
                         failure_message=d.get("failure_message"))
