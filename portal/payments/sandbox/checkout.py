"""Hosted checkout sessions: the sandbox's stand-in for Stripe Checkout, with the payment methods Checkout
offers and the outcomes a tester can choose for them (paid, declined, or confirmed by the bank later)."""
from __future__ import annotations

from sqlalchemy import select

from ...models import SandboxObject
from ...models.payment_method import BRAND_NAMES
from ..gateway import CheckoutSession, ProcessorError
from .books import Books, new_id
from .events import enqueue

# What the sandbox's checkout page offers: Stripe shows these where the customer's region is eligible.
CHECKOUT_METHODS = {
    "card": ("A new card (Visa •••• 4242)", "Visa •••• 4242", False),
    "apple_pay": ("Apple Pay", "Visa •••• 1881 (Apple Pay)", False),
    "google_pay": ("Google Pay", "Mastercard •••• 4444 (Google Pay)", False),
    "link": ("Link", "Visa •••• 4242 (Link)", False),
    "ideal": ("iDEAL (bank redirect)", "iDEAL", True),
    "bancontact": ("Bancontact (bank redirect)", "Bancontact", True),
    "blik": ("BLIK (bank redirect)", "BLIK", True),
    "eps": ("EPS (bank redirect)", "EPS", True),
}
OUTCOMES = {"success", "failure", "processing"}
# Seconds until a "processing" payment's outcome arrives, like a bank confirming later.
ASYNC_DELAY = 10


def create_checkout_session(books: Books, *, customer_id: str, amount_cents: int, currency: str, description: str,
                            metadata: dict, success_url: str, cancel_url: str, expires_at: int,
                            idempotency_key: str) -> CheckoutSession:
    def create(session):
        books.get(session, customer_id, "customer")
        obj = books.new(session, "cs", "checkout_session", {
            "customer": customer_id, "amount": amount_cents, "currency": currency.lower(),
            "description": description, "metadata": {k: str(v) for k, v in metadata.items()},
            "success_url": success_url, "cancel_url": cancel_url, "expires_at": expires_at,
            "status": "open", "payment_status": "unpaid", "payment_intent": None})
        return {"id": obj.id}

    return retrieve_checkout_session(books, books.idempotent(idempotency_key, create)["id"])


def retrieve_checkout_session(books: Books, session_id: str) -> CheckoutSession:
    with books.reading() as session:
        return _checkout(books.get(session, session_id, "checkout_session"))


def _methods(session, cs: SandboxObject) -> dict[str, tuple[str, str, bool]]:
    """What this checkout offers: each card the customer has saved (a deleted one is gone from here), then
    the fixed test methods; "Card" stands for a new card typed on the page."""
    saved = {}
    for pm in session.scalars(select(SandboxObject).where(SandboxObject.kind == "payment_method")
                              .order_by(SandboxObject.created_at, SandboxObject.id)):
        if pm.data.get("customer") == cs.data["customer"] and not pm.data.get("detached"):
            label = f"{BRAND_NAMES.get(pm.data['brand'], pm.data['brand'].title())} •••• {pm.data['last4']}"
            saved[f"card:{pm.id}"] = (f"Saved card: {label}", label, False)
    return {**saved, **CHECKOUT_METHODS}


def checkout_methods(books: Books, session_id: str) -> dict[str, tuple[str, str, bool]]:
    with books.reading() as session:
        return _methods(session, books.get(session, session_id, "checkout_session"))


def pay_checkout_session(books: Books, session_id: str, *, method: str,
                         outcome: str) -> tuple[CheckoutSession, str | None]:
    now = books.timestamp()
    with books.writing() as session:
        cs = books.get(session, session_id, "checkout_session")
        methods = _methods(session, cs)
        if method not in methods or outcome not in OUTCOMES:
            raise ProcessorError("Choose a payment method and an outcome.", code="parameter_invalid")
        _, label, is_redirect = methods[method]
        if cs.data["status"] != "open":
            return _checkout(cs), None
        if cs.data["expires_at"] and cs.data["expires_at"] <= now:
            cs.data = {**cs.data, "status": "expired"}
            enqueue(session, books, "checkout.session.expired", _checkout_payload(cs), deliver_at=now)
            return _checkout(cs), None
        if outcome == "failure" and not is_redirect:
            return _checkout(cs), "Your card was declined. Try another payment method."
        status = {"success": "succeeded", "processing": "processing", "failure": "processing"}[outcome]
        pi = books.new(session, "pi", "payment_intent", {
            "customer": cs.data["customer"], "payment_method": None, "amount": cs.data["amount"],
            "currency": cs.data["currency"], "status": status, "failure_code": None, "failure_message": None,
            "metadata": cs.data["metadata"], "off_session": False, "label": label, "method": method,
            "charge": new_id("ch") if status == "succeeded" else None})
        paid = outcome == "success"
        cs.data = {**cs.data, "status": "complete", "payment_status": "paid" if paid else "unpaid",
                   "payment_intent": pi.id}
        enqueue(session, books, "checkout.session.completed", _checkout_payload(cs), deliver_at=now)
        if outcome == "processing":
            enqueue(session, books, "checkout.session.async_payment_succeeded",
                    _checkout_payload(cs, payment_status="paid"), deliver_at=now + ASYNC_DELAY,
                    settle_intent=(pi.id, "succeeded"))
        elif outcome == "failure":
            enqueue(session, books, "checkout.session.async_payment_failed", _checkout_payload(cs),
                    deliver_at=now + ASYNC_DELAY, settle_intent=(pi.id, "failed"))
        return _checkout(cs), None


def expire_checkout_session(books: Books, session_id: str) -> CheckoutSession:
    now = books.timestamp()
    with books.writing() as session:
        cs = books.get(session, session_id, "checkout_session")
        if cs.data["status"] == "complete":
            raise ProcessorError("The customer has already paid on this payment page.", code="checkout_complete")
        if cs.data["status"] == "open":
            cs.data = {**cs.data, "status": "expired"}
            enqueue(session, books, "checkout.session.expired", _checkout_payload(cs), deliver_at=now)
        return _checkout(cs)


def _checkout_payload(cs: SandboxObject, **overrides) -> dict:
    d = cs.data
    payload = {"id": cs.id, "object": "checkout.session", "customer": d["customer"], "amount_total": d["amount"],
               "currency": d["currency"], "metadata": d["metadata"], "status": d["status"],
               "payment_status": d["payment_status"], "payment_intent": d["payment_intent"],
               "expires_at": d["expires_at"], "mode": "payment"}
    payload.update(overrides)
    return payload


def _checkout(obj: SandboxObject) -> CheckoutSession:
    d = obj.data
    return CheckoutSession(id=obj.id, url=f"/sandbox/checkout/{obj.id}", status=d["status"],
                           payment_status=d["payment_status"], payment_intent_id=d.get("payment_intent"),
                           expires_at=d.get("expires_at"), metadata=dict(d.get("metadata") or {}))
