"""Customers and saved cards: the documented test numbers, saving a card through a setup intent (with the
test bank's 3-D Secure step), editing, default and detaching."""
from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ...models import SandboxObject
from .. import card_numbers
from ..gateway import CardDetails, CardError, CardInfo, ProcessorError, SetupIntent
from .books import Books

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

DECLINE_MESSAGES = {
    "card_declined": ("Your card was declined.", "number"),
    "expired_card": ("Your card has expired.", "expiry"),
    "incorrect_cvc": ("Your card's security code is incorrect.", "cvc"),
    "insufficient_funds": ("Your card has insufficient funds.", None),
    "authentication_required": ("Your bank needs you to confirm this payment.", None),
}


# --- customers -----------------------------------------------------------------------------------

def create_customer(books: Books, *, email: str, name: str, account_id: int, idempotency_key: str) -> str:
    def create(session):
        obj = books.new(session, "cus", "customer",
                        {"email": email, "name": name, "account_id": account_id, "default_payment_method": None})
        return {"id": obj.id}

    return books.idempotent(idempotency_key, create)["id"]


def set_default_card(books: Books, customer_id: str, payment_method_id: str) -> None:
    with books.writing() as session:
        customer = books.get(session, customer_id, "customer")
        attached_card(session, books, payment_method_id, customer_id)
        customer.data = {**customer.data, "default_payment_method": payment_method_id}


def customer_default_card(books: Books, customer_id: str) -> str | None:
    with books.reading() as session:
        return books.get(session, customer_id, "customer").data.get("default_payment_method")


# --- saving a card -------------------------------------------------------------------------------

def create_setup_intent(books: Books, *, customer_id: str, metadata: dict, idempotency_key: str,
                        card: CardDetails | None) -> SetupIntent:
    if card is None:
        raise ProcessorError("The sandbox needs the test card's details.", code="parameter_missing")
    behaviour = _validate(card, books.clock().date())

    def create(session):
        books.get(session, customer_id, "customer")
        digits = card_numbers.normalise(card.number)
        if behaviour["setup"] in DECLINE_MESSAGES:
            # A declined setup leaves a failed intent behind, as Stripe's does; no card is attached.
            message, _ = DECLINE_MESSAGES[behaviour["setup"]]
            seti = books.new(session, "seti", "setup_intent", {
                "customer": customer_id, "status": "requires_payment_method", "payment_method": None,
                "metadata": metadata, "last_error": {"code": behaviour["setup"], "message": message}})
            return {"id": seti.id}
        pm = books.new(session, "pm", "payment_method", {
            "customer": None, "brand": card_numbers.brand_of(digits), "last4": digits[-4:],
            "exp_month": card.exp_month, "exp_year": card.exp_year, "name": card.cardholder_name.strip(),
            "charge": behaviour["charge"], "detached": False})
        needs_auth = behaviour["setup"] == "authenticate"
        seti = books.new(session, "seti", "setup_intent", {
            "customer": customer_id, "status": "requires_action" if needs_auth else "succeeded",
            "payment_method": pm.id, "metadata": metadata, "last_error": None})
        if not needs_auth:
            pm.data = {**pm.data, "customer": customer_id}
        return {"id": seti.id}

    result = books.idempotent(idempotency_key, create)
    intent = retrieve_setup_intent(books, result["id"])
    if intent.status == "requires_payment_method" and intent.error_message:
        code = _setup_error_code(books, intent.id)
        _, param = DECLINE_MESSAGES.get(code, (None, None))
        raise CardError(intent.error_message, code=code, param=param)
    return intent


def authenticate_setup_intent(books: Books, setup_intent_id: str, *, approve: bool) -> SetupIntent:
    """The sandbox's stand-in for the bank's 3-D Secure page: the tester approves or fails it."""
    with books.writing() as session:
        seti = books.get(session, setup_intent_id, "setup_intent")
        if seti.data["status"] != "requires_action":
            return setup_intent_of(seti)
        if approve:
            pm = books.get(session, seti.data["payment_method"], "payment_method")
            pm.data = {**pm.data, "customer": seti.data["customer"]}
            seti.data = {**seti.data, "status": "succeeded"}
        else:
            seti.data = {**seti.data, "status": "requires_payment_method", "payment_method": None,
                         "last_error": {"code": "authentication_failed",
                                        "message": "Card authentication failed. Try again or use another card."}}
        return setup_intent_of(seti)


def retrieve_setup_intent(books: Books, setup_intent_id: str) -> SetupIntent:
    with books.reading() as session:
        return setup_intent_of(books.get(session, setup_intent_id, "setup_intent"))


# --- saved cards ---------------------------------------------------------------------------------

def retrieve_card(books: Books, payment_method_id: str) -> CardInfo:
    with books.reading() as session:
        return _card(books.get(session, payment_method_id, "payment_method"))


def update_card(books: Books, payment_method_id: str, *, exp_month: int, exp_year: int,
                cardholder_name: str) -> CardInfo:
    if _expired(exp_month, exp_year, books.clock().date()):
        raise CardError("Your card's expiration date is in the past.", code="invalid_expiry_year", param="expiry")
    with books.writing() as session:
        pm = books.get(session, payment_method_id, "payment_method")
        if pm.data.get("detached"):
            raise ProcessorError("That card has been removed.", code="resource_missing")
        pm.data = {**pm.data, "exp_month": exp_month, "exp_year": exp_year, "name": cardholder_name.strip()}
        return _card(pm)


def detach_card(books: Books, payment_method_id: str) -> None:
    with books.writing() as session:
        pm = books.get(session, payment_method_id, "payment_method")
        customer_id = pm.data.get("customer")
        pm.data = {**pm.data, "detached": True, "customer": None}
        if customer_id:
            customer = books.get(session, customer_id, "customer")
            if customer.data.get("default_payment_method") == payment_method_id:
                customer.data = {**customer.data, "default_payment_method": None}


# --- internals -----------------------------------------------------------------------------------

def _validate(card: CardDetails, today: date) -> dict[str, str]:
    digits = card_numbers.normalise(card.number)
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not card_numbers.luhn_ok(digits):
        raise CardError("Your card number is incorrect.", code="incorrect_number", param="number")
    brand = card_numbers.brand_of(digits)
    if brand is None:
        raise CardError("This card brand is not supported. Use Visa, Mastercard, American Express, "
                        "Discover, Diners Club, JCB or China UnionPay.", code="card_not_supported", param="number")
    if not 1 <= card.exp_month <= 12:
        raise CardError("Your card's expiration month is invalid.", code="invalid_expiry_month", param="expiry")
    if _expired(card.exp_month, card.exp_year, today):
        raise CardError("Your card's expiration date is in the past.", code="invalid_expiry_year", param="expiry")
    cvc_length = 4 if brand == "amex" else 3
    if not (card.cvc.isdigit() and len(card.cvc) == cvc_length):
        raise CardError(f"Your card's security code should be {cvc_length} digits.", code="invalid_cvc", param="cvc")
    return TEST_CARDS.get(digits, {"setup": "ok", "charge": "ok"})


def _expired(exp_month: int, exp_year: int, today: date) -> bool:
    return (exp_year, exp_month) < (today.year, today.month)


def _setup_error_code(books: Books, setup_intent_id: str) -> str:
    with books.reading() as session:
        error = books.get(session, setup_intent_id, "setup_intent").data.get("last_error") or {}
        return error.get("code", "card_declined")


def setup_intent_of(obj: SandboxObject) -> SetupIntent:
    d = obj.data
    next_action = d.get("next_action")
    if next_action is None and d["status"] == "requires_action" and d.get("type", "card") == "card":
        next_action = "use_stripe_sdk"  # a card waiting for 3-D Secure
    return SetupIntent(id=obj.id, status=d["status"], customer_id=d["customer"],
                       client_secret=d.get("client_secret"), payment_method_id=d.get("payment_method"),
                       metadata=dict(d.get("metadata") or {}),
                       error_message=(d.get("last_error") or {}).get("message"),
                       payment_method_type=d.get("type", "card"), next_action=next_action,
                       redirect_url=d.get("redirect_url"))


def _card(obj: SandboxObject) -> CardInfo:
    d = obj.data
    return CardInfo(processor_id=obj.id, brand=d["brand"], last4=d.get("last4", ""), exp_month=d.get("exp_month", 0),
                    exp_year=d.get("exp_year", 0), cardholder_name=d.get("name", ""), customer_id=d.get("customer"),
                    type=d.get("type", "card"), email=d.get("email", ""), bank_name=d.get("bank_name", ""),
                    country=d.get("country", ""), mandate_reference=d.get("mandate_reference", ""),
                    verification=d.get("verification", "verified"))


def attached_card(session: Session, books: Books, payment_method_id: str, customer_id: str) -> SandboxObject:
    """The card, if it is attached to this customer (what a charge needs)."""
    pm = books.get(session, payment_method_id, "payment_method")
    _check_attached(pm.data, customer_id)
    return pm


def attached_card_data(session: Session, books: Books, payment_method_id: str, customer_id: str) -> dict:
    """``attached_card``'s data alone, read without loading an object into the session (every renewal's
    charge reads its card, and a card charge needs nothing else of it)."""
    data = books.get_data(session, payment_method_id, "payment_method")
    _check_attached(data, customer_id)
    return data


def _check_attached(data: dict, customer_id: str) -> None:
    if data.get("customer") != customer_id or data.get("detached"):
        raise ProcessorError("That card is not attached to this customer.", code="resource_missing")
