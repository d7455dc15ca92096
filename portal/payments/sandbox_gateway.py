"""The built-in sandbox processor: deterministic test cards, no network, no real money.

It answers like Stripe does for its documented test numbers, so the demo and the tests walk the same
paths a real processor would send them down (declines, 3-D Secure, cards that attach but fail later).
Its state lives in ``sandbox_*`` tables, written in transactions of its own.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db import Database
from ..models import SandboxIdempotencyKey, SandboxObject, utcnow
from . import card_numbers
from .gateway import (AuthenticationFailed, CardDetails, CardError, CardInfo, CheckoutSession, PaymentDetails,
                      PaymentResult, ProcessorError, RefundResult, SetupIntent)

# What each documented test number does. Any other valid number of a supported brand just works.
#   setup:  what happens when the card is saved     charge: what happens when it is charged later
TEST_CARDS: dict[str, dict[str, str]] = {
    "4242424242424242": {"setup": "ok", "charge": "ok"},
    "4000000000000002": {"setup": "card_declined", "charge": "card_declined"},
    "4000000000000069": {"setup": "expired_card", "charge": "expired_card"},
    "4000000000000127": {"setup": "incorrect_cvc", "charge": "incorrect_cvc"},
    "4000002500003155": {"setup": "authenticate", "charge": "ok"},
    "4000002760003184": {"setup": "authenticate", "charge": "authentication_required"},
    "4000000000000341": {"setup": "ok", "charge": "card_declined"},
    "4000000000009995": {"setup": "ok", "charge": "insufficient_funds"},
}

# What the sandbox's checkout page offers: Stripe shows these where the customer's region is eligible.
CHECKOUT_METHODS = {
    "card": ("Card", "Visa •••• 4242", False),
    "apple_pay": ("Apple Pay", "Visa •••• 1881 (Apple Pay)", False),
    "google_pay": ("Google Pay", "Mastercard •••• 4444 (Google Pay)", False),
    "link": ("Link", "Visa •••• 4242 (Link)", False),
    "ideal": ("iDEAL (bank redirect)", "iDEAL", True),
    "bancontact": ("Bancontact (bank redirect)", "Bancontact", True),
    "blik": ("BLIK (bank redirect)", "BLIK", True),
    "eps": ("EPS (bank redirect)", "EPS", True),
}
# Seconds until a "processing" payment's outcome arrives, like a bank confirming later.
ASYNC_DELAY = 10

DECLINE_MESSAGES = {
    "card_declined": ("Your card was declined.", "number"),
    "expired_card": ("Your card has expired.", "expiry"),
    "incorrect_cvc": ("Your card's security code is incorrect.", "cvc"),
    "insufficient_funds": ("Your card has insufficient funds.", None),
    "authentication_required": ("Your bank needs you to confirm this payment.", None),
}


class SandboxGateway:
    name = "sandbox"

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow):
        self.db = database
        self.clock = clock

    # --- customers -------------------------------------------------------------------------------

    def create_customer(self, *, email: str, name: str, account_id: int, idempotency_key: str) -> str:
        def create(session):
            obj = self._new(session, "cus", "customer",
                            {"email": email, "name": name, "account_id": account_id,
                             "default_payment_method": None})
            return {"id": obj.id}

        return self._idempotent(idempotency_key, create)["id"]

    def set_default_card(self, customer_id: str, payment_method_id: str, *, idempotency_key: str) -> None:
        with self.db.session() as session, session.begin():
            customer = self._get(session, customer_id, "customer")
            card = self._get(session, payment_method_id, "payment_method")
            if card.data.get("customer") != customer_id or card.data.get("detached"):
                raise ProcessorError("That card is not attached to this customer.", code="resource_missing")
            customer.data = {**customer.data, "default_payment_method": payment_method_id}

    # --- saving a card ---------------------------------------------------------------------------

    def create_setup_intent(self, *, customer_id: str, metadata: dict, idempotency_key: str,
                            card: CardDetails | None = None) -> SetupIntent:
        if card is None:
            raise ProcessorError("The sandbox needs the test card's details.", code="parameter_missing")
        behaviour = self._validate(card)

        def create(session):
            self._get(session, customer_id, "customer")
            digits = card_numbers.normalise(card.number)
            if behaviour["setup"] in DECLINE_MESSAGES:
                # A declined setup leaves a failed intent behind, as Stripe's does; no card is attached.
                message, _ = DECLINE_MESSAGES[behaviour["setup"]]
                seti = self._new(session, "seti", "setup_intent", {
                    "customer": customer_id, "status": "requires_payment_method", "payment_method": None,
                    "metadata": metadata, "last_error": {"code": behaviour["setup"], "message": message}})
                return {"id": seti.id}
            pm = self._new(session, "pm", "payment_method", {
                "customer": None, "brand": card_numbers.brand_of(digits), "last4": digits[-4:],
                "exp_month": card.exp_month, "exp_year": card.exp_year, "name": card.cardholder_name.strip(),
                "charge": behaviour["charge"], "detached": False})
            needs_auth = behaviour["setup"] == "authenticate"
            seti = self._new(session, "seti", "setup_intent", {
                "customer": customer_id, "status": "requires_action" if needs_auth else "succeeded",
                "payment_method": pm.id, "metadata": metadata, "last_error": None})
            if not needs_auth:
                pm.data = {**pm.data, "customer": customer_id}
            return {"id": seti.id}

        result = self._idempotent(idempotency_key, create)
        intent = self.retrieve_setup_intent(result["id"])
        if intent.status == "requires_payment_method" and intent.error_message:
            code = self._setup_error_code(intent.id)
            _, param = DECLINE_MESSAGES.get(code, (None, None))
            raise CardError(intent.error_message, code=code, param=param)
        return intent

    def authenticate_setup_intent(self, setup_intent_id: str, *, approve: bool) -> SetupIntent:
        """The sandbox's stand-in for the bank's 3-D Secure page: the tester approves or fails it."""
        with self.db.session() as session, session.begin():
            seti = self._get(session, setup_intent_id, "setup_intent")
            if seti.data["status"] != "requires_action":
                return self._setup_intent(seti)
            if approve:
                pm = self._get(session, seti.data["payment_method"], "payment_method")
                pm.data = {**pm.data, "customer": seti.data["customer"]}
                seti.data = {**seti.data, "status": "succeeded"}
            else:
                seti.data = {**seti.data, "status": "requires_payment_method", "payment_method": None,
                             "last_error": {"code": "authentication_failed",
                                            "message": "Card authentication failed. Try again or use another card."}}
            return self._setup_intent(seti)

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntent:
        with self.db.session() as session:
            return self._setup_intent(self._get(session, setup_intent_id, "setup_intent"))

    # --- cards -----------------------------------------------------------------------------------

    def retrieve_card(self, payment_method_id: str) -> CardInfo:
        with self.db.session() as session:
            return self._card(self._get(session, payment_method_id, "payment_method"))

    def update_card(self, payment_method_id: str, *, exp_month: int, exp_year: int, cardholder_name: str,
                    idempotency_key: str) -> CardInfo:
        if _expired(exp_month, exp_year, self.clock().date()):
            raise CardError("Your card's expiration date is in the past.", code="invalid_expiry_year",
                            param="expiry")
        with self.db.session() as session, session.begin():
            pm = self._get(session, payment_method_id, "payment_method")
            if pm.data.get("detached"):
                raise ProcessorError("That card has been removed.", code="resource_missing")
            pm.data = {**pm.data, "exp_month": exp_month, "exp_year": exp_year, "name": cardholder_name.strip()}
            return self._card(pm)

    def detach_card(self, payment_method_id: str, *, idempotency_key: str) -> None:
        with self.db.session() as session, session.begin():
            pm = self._get(session, payment_method_id, "payment_method")
            customer_id = pm.data.get("customer")
            pm.data = {**pm.data, "detached": True, "customer": None}
            if customer_id:
                customer = self._get(session, customer_id, "customer")
                if customer.data.get("default_payment_method") == payment_method_id:
                    customer.data = {**customer.data, "default_payment_method": None}

    # --- charges ---------------------------------------------------------------------------------

    def charge(self, *, customer_id: str, payment_method_id: str, amount_cents: int, currency: str,
               idempotency_key: str, metadata: dict, off_session: bool = True) -> PaymentResult:
        """Charge a saved test card; what happens depends on the number it was saved with."""
        def create(session):
            pm = self._get(session, payment_method_id, "payment_method")
            if pm.data.get("customer") != customer_id or pm.data.get("detached"):
                raise ProcessorError("That card is not attached to this customer.", code="resource_missing")
            outcome = pm.data.get("charge", "ok")
            status, code, message = "succeeded", None, None
            if outcome == "authentication_required":
                status, code = "requires_action", outcome
                message = DECLINE_MESSAGES[outcome][0]
            elif outcome != "ok":
                status, code = "failed", outcome
                message = DECLINE_MESSAGES.get(outcome, ("Your card was declined.", None))[0]
            intent = self._new(session, "pi", "payment_intent", {
                "customer": customer_id, "payment_method": payment_method_id, "amount": amount_cents,
                "currency": currency.lower(), "status": status, "failure_code": code, "failure_message": message,
                "metadata": {k: str(v) for k, v in metadata.items()}, "off_session": off_session,
                "charge": f"ch_sbx_{secrets.token_hex(10)}" if status == "succeeded" else None})
            return {"id": intent.id}

        result = self._idempotent(idempotency_key, create)
        return self.retrieve_payment(result["id"])

    def retrieve_payment(self, payment_id: str) -> PaymentResult:
        with self.db.session() as session:
            return self._payment(self._get(session, payment_id, "payment_intent"))

    def complete_payment_authentication(self, payment_id: str, *, approve: bool) -> PaymentResult:
        """The test bank's 3-D Secure answer for a charge that needed the customer."""
        with self.db.session() as session, session.begin():
            pi = self._get(session, payment_id, "payment_intent")
            if pi.data["status"] == "requires_action":
                if approve:
                    pi.data = {**pi.data, "status": "succeeded", "failure_code": None, "failure_message": None,
                               "charge": f"ch_sbx_{secrets.token_hex(10)}"}
                else:
                    pi.data = {**pi.data, "status": "failed", "failure_code": "authentication_failed",
                               "failure_message": "Card authentication failed."}
            return self._payment(pi)

    def payment_details(self, payment_id: str) -> PaymentDetails:
        with self.db.session() as session:
            pi = self._get(session, payment_id, "payment_intent")
            label = pi.data.get("label")
            if not label and pi.data.get("payment_method"):
                card = self._get(session, pi.data["payment_method"], "payment_method").data
                from ..models.payment_method import BRAND_NAMES

                label = f"{BRAND_NAMES.get(card['brand'], card['brand'])} •••• {card['last4']}"
            return PaymentDetails(label=label or "Card", transaction_id=pi.data.get("charge") or pi.id)

    # --- checkout ---------------------------------------------------------------------------------

    def create_checkout_session(self, *, customer_id: str, amount_cents: int, currency: str, description: str,
                                metadata: dict, success_url: str, cancel_url: str, expires_at: int,
                                idempotency_key: str) -> CheckoutSession:
        def create(session):
            self._get(session, customer_id, "customer")
            obj = self._new(session, "cs", "checkout_session", {
                "customer": customer_id, "amount": amount_cents, "currency": currency.lower(),
                "description": description, "metadata": {k: str(v) for k, v in metadata.items()},
                "success_url": success_url, "cancel_url": cancel_url, "expires_at": expires_at,
                "status": "open", "payment_status": "unpaid", "payment_intent": None})
            return {"id": obj.id}

        return self.retrieve_checkout_session(self._idempotent(idempotency_key, create)["id"])

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        with self.db.session() as session:
            return self._checkout(self._get(session, session_id, "checkout_session"))

    def pay_checkout_session(self, session_id: str, *, method: str, outcome: str) -> tuple[CheckoutSession, str | None]:
        """The tester's choice on the sandbox checkout page. Returns the session and, when the payment was
        declined on the page itself (as Checkout shows card declines), the message to show.

        Outcomes travel as Stripe-shaped events through the same handlers as Stripe's webhooks.
        """
        if method not in CHECKOUT_METHODS or outcome not in {"success", "failure", "processing"}:
            raise ProcessorError("Choose a payment method and an outcome.", code="parameter_invalid")
        _, label, is_redirect = CHECKOUT_METHODS[method]
        now = int(self.clock().timestamp())
        with self.db.session() as session, session.begin():
            cs = self._get(session, session_id, "checkout_session")
            if cs.data["status"] != "open":
                return self._checkout(cs), None
            if cs.data["expires_at"] and cs.data["expires_at"] <= now:
                cs.data = {**cs.data, "status": "expired"}
                self._event(session, "checkout.session.expired", self._checkout_payload(cs), deliver_at=now)
                return self._checkout(cs), None
            if outcome == "failure" and not is_redirect:
                return self._checkout(cs), "Your card was declined. Try another payment method."
            status = {"success": "succeeded", "processing": "processing", "failure": "processing"}[outcome]
            pi = self._new(session, "pi", "payment_intent", {
                "customer": cs.data["customer"], "payment_method": None, "amount": cs.data["amount"],
                "currency": cs.data["currency"], "status": status, "failure_code": None, "failure_message": None,
                "metadata": cs.data["metadata"], "off_session": False, "label": label, "method": method,
                "charge": f"ch_sbx_{secrets.token_hex(10)}" if status == "succeeded" else None})
            paid = outcome == "success"
            cs.data = {**cs.data, "status": "complete", "payment_status": "paid" if paid else "unpaid",
                       "payment_intent": pi.id}
            self._event(session, "checkout.session.completed", self._checkout_payload(cs), deliver_at=now)
            if outcome == "processing":
                self._event(session, "checkout.session.async_payment_succeeded", self._checkout_payload(
                    cs, payment_status="paid"), deliver_at=now + ASYNC_DELAY, settle_intent=(pi.id, "succeeded"))
            elif outcome == "failure":
                self._event(session, "checkout.session.async_payment_failed", self._checkout_payload(cs),
                            deliver_at=now + ASYNC_DELAY, settle_intent=(pi.id, "failed"))
            return self._checkout(cs), None

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> CheckoutSession:
        """Close an open checkout page so it can no longer be paid, as Stripe's expire call does."""
        now = int(self.clock().timestamp())
        with self.db.session() as session, session.begin():
            cs = self._get(session, session_id, "checkout_session")
            if cs.data["status"] == "complete":
                raise ProcessorError("The customer has already paid on this payment page.", code="checkout_complete")
            if cs.data["status"] == "open":
                cs.data = {**cs.data, "status": "expired"}
                self._event(session, "checkout.session.expired", self._checkout_payload(cs), deliver_at=now)
            return self._checkout(cs)

    def checkout_details(self, object_id: str) -> dict:
        """The sandbox's own record of a checkout session: amount, description and return URLs for its page."""
        with self.db.session() as session:
            obj = session.get(SandboxObject, object_id)
            if obj is None:
                raise ProcessorError(f"No such object: {object_id}", code="resource_missing")
            return dict(obj.data)

    def due_events(self, *, now: int) -> list[dict]:
        """Events whose time has come, oldest first (the sandbox's webhook deliveries). A delayed payment
        outcome (the bank confirming later) becomes true at that moment, before its event is delivered."""
        with self.db.session() as session, session.begin():
            rows = session.scalars(select(SandboxObject).where(SandboxObject.kind == "event")
                                   .order_by(SandboxObject.created_at, SandboxObject.id)).all()
            due = [r for r in rows if not r.data["delivered"] and r.data["deliver_at"] <= now]
            for row in due:
                settle = row.data.get("settle_intent")
                if settle and not row.data.get("settled"):
                    self._settle_intent(session, settle[0], settle[1], row.data["event"]["data"]["object"]["id"])
                    row.data = {**row.data, "settled": True}
            return [r.data["event"] for r in due]

    def mark_delivered(self, event_id: str) -> None:
        with self.db.session() as session, session.begin():
            row = self._get(session, event_id, "event")
            row.data = {**row.data, "delivered": True}

    def _settle_intent(self, session, payment_id: str, status: str, checkout_id: str) -> None:
        pi = self._get(session, payment_id, "payment_intent")
        failed = status == "failed"
        pi.data = {**pi.data, "status": status, "failure_code": "payment_failed" if failed else None,
                   "failure_message": "The bank did not authorise the payment." if failed else None,
                   "charge": None if failed else f"ch_sbx_{secrets.token_hex(10)}"}
        if not failed:
            cs = self._get(session, checkout_id, "checkout_session")
            cs.data = {**cs.data, "payment_status": "paid"}

    def _event(self, session, event_type: str, payload: dict, *, deliver_at: int, settle_intent=None) -> None:
        event_id = f"evt_sbx_{secrets.token_hex(10)}"
        event = {"id": event_id, "object": "event", "type": event_type, "created": deliver_at,
                 "livemode": False, "data": {"object": payload}}
        session.add(SandboxObject(id=event_id, kind="event", data={
            "event": event, "deliver_at": deliver_at, "delivered": False, "settle_intent": settle_intent}))

    @staticmethod
    def _checkout_payload(cs: SandboxObject, **overrides) -> dict:
        d = cs.data
        payload = {"id": cs.id, "object": "checkout.session", "customer": d["customer"], "amount_total": d["amount"],
                   "currency": d["currency"], "metadata": d["metadata"], "status": d["status"],
                   "payment_status": d["payment_status"], "payment_intent": d["payment_intent"],
                   "expires_at": d["expires_at"], "mode": "payment"}
        payload.update(overrides)
        return payload

    @staticmethod
    def _checkout(obj: SandboxObject) -> CheckoutSession:
        d = obj.data
        return CheckoutSession(id=obj.id, url=f"/sandbox/checkout/{obj.id}", status=d["status"],
                               payment_status=d["payment_status"], payment_intent_id=d.get("payment_intent"),
                               expires_at=d.get("expires_at"), metadata=dict(d.get("metadata") or {}))

    def count_charges(self, *, status: str | None = "succeeded") -> int:
        """How many payments the sandbox has taken (tests use it to prove nothing was charged twice)."""
        with self.db.session() as session:
            rows = session.scalars(select(SandboxObject).where(SandboxObject.kind == "payment_intent")).all()
            return sum(1 for r in rows if status is None or r.data.get("status") == status)

    def customer_default_card(self, customer_id: str) -> str | None:
        """What the sandbox will charge for this customer (tests compare it with our default)."""
        with self.db.session() as session:
            return self._get(session, customer_id, "customer").data.get("default_payment_method")

    # --- internals -------------------------------------------------------------------------------

    def _validate(self, card: CardDetails) -> dict[str, str]:
        digits = card_numbers.normalise(card.number)
        if not digits.isdigit() or not 12 <= len(digits) <= 19 or not card_numbers.luhn_ok(digits):
            raise CardError("Your card number is incorrect.", code="incorrect_number", param="number")
        brand = card_numbers.brand_of(digits)
        if brand is None:
            raise CardError("This card brand is not supported. Use Visa, Mastercard, American Express, "
                            "Discover, Diners Club, JCB or China UnionPay.", code="card_not_supported", param="number")
        if not 1 <= card.exp_month <= 12:
            raise CardError("Your card's expiration month is invalid.", code="invalid_expiry_month", param="expiry")
        if _expired(card.exp_month, card.exp_year, self.clock().date()):
            raise CardError("Your card's expiration date is in the past.", code="invalid_expiry_year",
                            param="expiry")
        cvc_length = 4 if brand == "amex" else 3
        if not (card.cvc.isdigit() and len(card.cvc) == cvc_length):
            raise CardError(f"Your card's security code should be {cvc_length} digits.", code="invalid_cvc",
                            param="cvc")
        return TEST_CARDS.get(digits, {"setup": "ok", "charge": "ok"})

    def _setup_error_code(self, setup_intent_id: str) -> str:
        with self.db.session() as session:
            error = self._get(session, setup_intent_id, "setup_intent").data.get("last_error") or {}
            return error.get("code", "card_declined")

    def _idempotent(self, key: str, create) -> dict:
        """Run ``create`` once per key; a replay returns the first result, as Stripe's keys do."""
        with self.db.session() as session:
            stored = session.get(SandboxIdempotencyKey, key)
            if stored is not None:
                return stored.result
        try:
            with self.db.session() as session, session.begin():
                result = create(session)
                session.add(SandboxIdempotencyKey(key=key, result=result))
            return result
        except IntegrityError:
            # A concurrent request with the same key won the race: answer what it answered.
            with self.db.session() as session:
                return session.get(SandboxIdempotencyKey, key).result

    def _new(self, session, prefix: str, kind: str, data: dict) -> SandboxObject:
        obj = SandboxObject(id=f"{prefix}_sbx_{secrets.token_hex(10)}", kind=kind, data=data)
        if kind == "setup_intent":
            obj.data = {**data, "client_secret": f"{obj.id}_secret_{secrets.token_hex(8)}"}
        session.add(obj)
        session.flush()
        return obj

    def _get(self, session, object_id: str, kind: str) -> SandboxObject:
        obj = session.scalar(select(SandboxObject).where(SandboxObject.id == object_id, SandboxObject.kind == kind))
        if obj is None:
            raise ProcessorError(f"No such {kind.replace('_', ' ')}: {object_id}", code="resource_missing")
        return obj

    @staticmethod
    def _setup_intent(obj: SandboxObject) -> SetupIntent:
        d = obj.data
        return SetupIntent(id=obj.id, status=d["status"], customer_id=d["customer"],
                           client_secret=d.get("client_secret"), payment_method_id=d.get("payment_method"),
                           metadata=dict(d.get("metadata") or {}),
                           error_message=(d.get("last_error") or {}).get("message"))

    @staticmethod
    def _payment(obj: SandboxObject) -> PaymentResult:
        d = obj.data
        return PaymentResult(payment_id=obj.id, status=d["status"], amount_cents=d["amount"],
                             currency=d["currency"].upper(), payment_method_id=d.get("payment_method"),
                             charge_id=d.get("charge"), failure_code=d.get("failure_code"),
                             failure_message=d.get("failure_message"))

    @staticmethod
    def _card(obj: SandboxObject) -> CardInfo:
        d = obj.data
        return CardInfo(processor_id=obj.id, brand=d["brand"], last4=d["last4"], exp_month=d["exp_month"],
                        exp_year=d["exp_year"], cardholder_name=d["name"], customer_id=d.get("customer"))


    # --- refunds ---------------------------------------------------------------------------------

    def refund(self, payment_id_or_charge_id: str, amount_cents: int, idempotency_key: str,
               metadata: dict) -> RefundResult:
        """Refund part or all of a succeeded payment, as Stripe does: never more than is left unrefunded,
        once per key, and followed by a ``charge.refunded`` event."""
        def create(session):
            pi = self._payment_for(session, payment_id_or_charge_id)
            if pi.data["status"] != "succeeded" or not pi.data.get("charge"):
                raise ProcessorError("This payment did not succeed, so there is nothing to refund.",
                                     code="charge_not_refundable")
            refunded = int(pi.data.get("amount_refunded") or 0)
            if amount_cents <= 0 or amount_cents > pi.data["amount"] - refunded:
                raise ProcessorError("The refund is larger than what is left to refund of this payment.",
                                     code="amount_too_large")
            refund = self._new(session, "re", "refund", {
                "payment_intent": pi.id, "charge": pi.data["charge"], "amount": amount_cents,
                "currency": pi.data["currency"], "status": "succeeded",
                "metadata": {k: str(v) for k, v in (metadata or {}).items()}, "created": int(self.clock().timestamp())})
            pi.data = {**pi.data, "amount_refunded": refunded + amount_cents,
                       "refunds": [*(pi.data.get("refunds") or []), refund.id]}
            session.flush()
            self._event(session, "charge.refunded", self._charge_payload(session, pi),
                        deliver_at=int(self.clock().timestamp()))
            return {"id": refund.id}

        result = self._idempotent(idempotency_key, create)
        with self.db.session() as session:
            return self._refund(self._get(session, result["id"], "refund"))

    def list_refunds(self, payment_id_or_charge_id: str) -> list[RefundResult]:
        with self.db.session() as session:
            pi = self._payment_for(session, payment_id_or_charge_id, lock=False)
            return [self._refund(self._get(session, rid, "refund")) for rid in pi.data.get("refunds") or []]

    def dashboard_refund(self, payment_id_or_charge_id: str, amount_cents: int | None = None) -> RefundResult:
        """A refund made by hand in the sandbox's "dashboard", outside the portal (tests and demos): the
        portal learns of it only from the ``charge.refunded`` event, as with Stripe's dashboard."""
        if amount_cents is None:
            with self.db.session() as session:
                pi = self._payment_for(session, payment_id_or_charge_id, lock=False)
                amount_cents = pi.data["amount"] - int(pi.data.get("amount_refunded") or 0)
        return self.refund(payment_id_or_charge_id, amount_cents, f"dashboard-{secrets.token_hex(8)}", {})

    def _payment_for(self, session, payment_id_or_charge_id: str, *, lock: bool = True) -> SandboxObject:
        if payment_id_or_charge_id.startswith("pi_"):
            query = select(SandboxObject).where(SandboxObject.id == payment_id_or_charge_id,
                                                SandboxObject.kind == "payment_intent")
            pi = session.scalar(query.with_for_update() if lock else query)
        else:
            rows = session.scalars(select(SandboxObject).where(SandboxObject.kind == "payment_intent")).all()
            match = next((r for r in rows if r.data.get("charge") == payment_id_or_charge_id), None)
            pi = None
            if match is not None:
                query = select(SandboxObject).where(SandboxObject.id == match.id)
                pi = session.scalar(query.with_for_update() if lock else query)
        if pi is None:
            raise ProcessorError(f"No such payment: {payment_id_or_charge_id}", code="resource_missing")
        return pi

    def _charge_payload(self, session, pi: SandboxObject) -> dict:
        d = pi.data
        refunds = [self._refund_payload(self._get(session, rid, "refund")) for rid in d.get("refunds") or []]
        refunded = int(d.get("amount_refunded") or 0)
        return {"id": d["charge"], "object": "charge", "payment_intent": pi.id, "amount": d["amount"],
                "amount_refunded": refunded, "refunded": refunded >= d["amount"], "currency": d["currency"],
                "metadata": d.get("metadata") or {},
                "refunds": {"object": "list", "data": list(reversed(refunds)), "has_more": False}}

    @staticmethod
    def _refund_payload(obj: SandboxObject) -> dict:
        d = obj.data
        return {"id": obj.id, "object": "refund", "amount": d["amount"], "currency": d["currency"],
                "charge": d["charge"], "payment_intent": d["payment_intent"], "status": d["status"],
                "metadata": d.get("metadata") or {}, "created": d.get("created")}

    @staticmethod
    def _refund(obj: SandboxObject) -> RefundResult:
        d = obj.data
        return RefundResult(id=obj.id, status=d["status"], amount=d["amount"], currency=d["currency"].upper(),
                            payment_id=d["payment_intent"], charge_id=d["charge"], metadata=dict(d.get("metadata") or {}))

def _expired(exp_month: int, exp_year: int, today: date) -> bool:
    return (exp_year, exp_month) < (today.year, today.month)


__all__ = ["SandboxGateway", "TEST_CARDS", "AuthenticationFailed"]
