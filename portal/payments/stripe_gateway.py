"""The Stripe processor, through stripe-python's ``StripeClient``.

``STRIPE_API_BASE`` points the client elsewhere (the tests use a localstripe server). Stripe errors are
translated into the gateway's own exceptions so that services and pages never see a Stripe type.
"""
from __future__ import annotations

import stripe

import logging

from .gateway import (AuthenticationFailed, CardDetails, CardError, CardInfo, CheckoutSession, PaymentDetails,
                      PaymentResult, ProcessorError, ProcessorUnavailable, RefundResult, SetupIntent)

log = logging.getLogger(__name__)

# Stripe's ``param`` for card errors, mapped onto the names of our form fields.
_PARAM_TO_FIELD = {"number": "number", "exp_month": "expiry", "exp_year": "expiry", "cvc": "cvc"}


class StripeGateway:
    name = "stripe"

    def __init__(self, *, secret_key: str, api_base: str | None = None, max_network_retries: int = 2,
                 timeout: float = 80.0):
        base_addresses = {"api": api_base.rstrip("/")} if api_base else None
        # ``timeout`` bounds connecting and each read of one request (80 s is Stripe's own default); a request
        # that runs out of it counts as a network error, retried like one, then ProcessorUnavailable.
        http_client = stripe.new_default_http_client(timeout=timeout)
        # Network retries reuse the idempotency key we pass, so a retried create never duplicates.
        self.client = stripe.StripeClient(secret_key, base_addresses=base_addresses,
                                          max_network_retries=max_network_retries, http_client=http_client)

    # --- customers -------------------------------------------------------------------------------

    def create_customer(self, *, email: str, name: str, account_id: int, idempotency_key: str) -> str:
        customer = self._call(self.client.v1.customers.create,
                              params={"email": email, "name": name, "metadata": {"account_id": str(account_id)}},
                              options={"idempotency_key": idempotency_key})
        return customer.id

    def set_default_card(self, customer_id: str, payment_method_id: str, *, idempotency_key: str) -> None:
        self._call(self.client.v1.customers.update, customer_id,
                   params={"invoice_settings": {"default_payment_method": payment_method_id}},
                   options={"idempotency_key": idempotency_key})

    # --- saving a card ---------------------------------------------------------------------------

    def create_setup_intent(self, *, customer_id: str, metadata: dict, idempotency_key: str,
                            card: CardDetails | None = None) -> SetupIntent:
        if card is not None:
            # Card numbers never reach this server in Stripe mode; refuse rather than forward one.
            raise ProcessorError("Card details must be entered in Stripe's card field.", code="card_data_refused")
        intent = self._call(self.client.v1.setup_intents.create,
                            params={"customer": customer_id, "usage": "off_session",
                                    "payment_method_types": ["card"],
                                    "metadata": {k: str(v) for k, v in metadata.items()}},
                            options={"idempotency_key": idempotency_key})
        return _setup_intent(intent)

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntent:
        return _setup_intent(self._call(self.client.v1.setup_intents.retrieve, setup_intent_id))

    # --- cards -----------------------------------------------------------------------------------

    def retrieve_card(self, payment_method_id: str) -> CardInfo:
        return _card(self._call(self.client.v1.payment_methods.retrieve, payment_method_id))

    def update_card(self, payment_method_id: str, *, exp_month: int, exp_year: int, cardholder_name: str,
                    idempotency_key: str) -> CardInfo:
        pm = self._call(self.client.v1.payment_methods.update, payment_method_id,
                        params={"card": {"exp_month": exp_month, "exp_year": exp_year},
                                "billing_details": {"name": cardholder_name}},
                        options={"idempotency_key": idempotency_key})
        return _card(pm)

    def detach_card(self, payment_method_id: str, *, idempotency_key: str) -> None:
        try:
            self._call(self.client.v1.payment_methods.detach, payment_method_id,
                       options={"idempotency_key": idempotency_key})
        except ProcessorError:
            # Detaching twice (our commit failed after Stripe's detach, and the customer retried) is refused
            # by Stripe; a card that is no longer attached is exactly what we asked for.
            if self.retrieve_card(payment_method_id).customer_id is not None:
                raise

    # --- charges ---------------------------------------------------------------------------------

    def charge(self, *, customer_id: str, payment_method_id: str, amount_cents: int, currency: str,
               idempotency_key: str, metadata: dict, off_session: bool = True) -> PaymentResult:
        """A PaymentIntent confirmed at once. Declines come back as results; an unknown outcome raises
        ProcessorUnavailable so the attempt stays pending and is asked about again with the same key."""
        params = {"amount": amount_cents, "currency": currency.lower(), "customer": customer_id,
                  "payment_method": payment_method_id, "confirm": True, "off_session": off_session,
                  "metadata": {k: str(v) for k, v in metadata.items()}}
        try:
            intent = self.client.v1.payment_intents.create(params=params,
                                                           options={"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            # A declined or authentication-needing charge still created a PaymentIntent; report it.
            intent = getattr(exc.error, "payment_intent", None)
            code = getattr(exc.error, "decline_code", None) or getattr(exc.error, "code", None) or "card_declined"
            if intent is None:
                return PaymentResult(payment_id="", status="failed", amount_cents=amount_cents, currency=currency,
                                     payment_method_id=payment_method_id, failure_code=code,
                                     failure_message=exc.user_message or "Your card was declined.")
            result = _payment(intent)
            status = "requires_action" if code == "authentication_required" else result.status
            return PaymentResult(payment_id=result.payment_id, status=status, amount_cents=amount_cents,
                                 currency=currency, payment_method_id=payment_method_id, charge_id=result.charge_id,
                                 failure_code=code, failure_message=exc.user_message or result.failure_message)
        except (stripe.IdempotencyError, stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            raise ProcessorUnavailable("The payment processor did not confirm the charge; it will be checked "
                                       "again.") from exc
        except stripe.StripeError as exc:
            log.warning("Stripe refused a charge: %s", exc)
            return PaymentResult(payment_id="", status="failed", amount_cents=amount_cents, currency=currency,
                                 payment_method_id=payment_method_id,
                                 failure_code=getattr(exc, "code", None) or "processor_error",
                                 failure_message="The payment processor refused the charge.")
        return _payment(intent)

    def retrieve_payment(self, payment_id: str) -> PaymentResult:
        return _payment(self._call(self.client.v1.payment_intents.retrieve, payment_id))

    def payment_details(self, payment_id: str) -> PaymentDetails:
        """How a PaymentIntent was paid ("Visa •••• 4242", "iDEAL") and its transaction id (the charge)."""
        intent = _plain(self._call(self.client.v1.payment_intents.retrieve, payment_id,
                                   params={"expand": ["latest_charge"]}))
        charge = intent.get("latest_charge")
        if isinstance(charge, str):  # not expanded after all: the id is still the transaction id
            charge = {"id": charge}
        charge = charge or {}
        label = _method_label(charge.get("payment_method_details"))
        if label is None:
            # Stripe always describes the method on the charge; servers that mimic it may not. Ask the
            # PaymentMethod itself instead, and settle for a neutral label if even that is unknown.
            pm = charge.get("payment_method") or intent.get("payment_method")
            pm_id = pm if isinstance(pm, str) or pm is None else pm.get("id")
            if pm_id:
                try:
                    label = _method_label(_plain(self._call(self.client.v1.payment_methods.retrieve, pm_id)))
                except ProcessorError:
                    log.warning("could not read payment method %s of %s", pm_id, payment_id)
        return PaymentDetails(label=label or "Online payment", transaction_id=charge.get("id") or intent["id"])

    # --- checkout --------------------------------------------------------------------------------

    def create_checkout_session(self, *, customer_id: str, amount_cents: int, currency: str, description: str,
                                metadata: dict, success_url: str, cancel_url: str, expires_at: int,
                                idempotency_key: str) -> CheckoutSession:
        """A Stripe Checkout page for one amount. No ``payment_method_types``: Stripe's dynamic payment methods
        offer what suits the customer (cards, wallets, bank redirects where eligible)."""
        meta = {k: str(v) for k, v in metadata.items()}
        session = self._call(self.client.v1.checkout.sessions.create, params={
            "mode": "payment",
            "customer": customer_id,
            "line_items": [{"quantity": 1, "price_data": {"currency": currency.lower(), "unit_amount": amount_cents,
                                                          "product_data": {"name": description}}}],
            "metadata": meta,
            # The PaymentIntent carries the invoice too, so its own events and the dashboard name it.
            "payment_intent_data": {"metadata": meta},
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": expires_at,
        }, options={"idempotency_key": idempotency_key})
        return _checkout(session)

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        return _checkout(self._call(self.client.v1.checkout.sessions.retrieve, session_id))

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> CheckoutSession:
        """Close a Checkout page so it can no longer take money (``POST /v1/checkout/sessions/{id}/expire``).
        Stripe refuses to expire a session that is not open: then its state says why (already expired is
        fine; complete means the customer paid, reported as ``checkout_complete``)."""
        try:
            return _checkout(self._call(self.client.v1.checkout.sessions.expire, session_id,
                                        options={"idempotency_key": idempotency_key}))
        except ProcessorUnavailable:
            raise
        except ProcessorError:
            current = self.retrieve_checkout_session(session_id)
            if current.status == "expired":
                return current
            if current.status == "complete":
                raise ProcessorError("The customer has already paid on this payment page.",
                                     code="checkout_complete") from None
            raise

    # --- internals -------------------------------------------------------------------------------

    @staticmethod
    def _call(method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except stripe.CardError as exc:
            error = exc.error
            code = getattr(error, "code", None) or "card_declined"
            param = _PARAM_TO_FIELD.get(getattr(error, "param", None) or "")
            message = exc.user_message or "Your card was declined."
            if code in {"authentication_required", "setup_intent_authentication_failure"}:
                raise AuthenticationFailed(message, code=code, param=param) from exc
            raise CardError(message, code=code, param=param) from exc
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise ProcessorUnavailable("We could not reach the payment processor. Nothing was changed; "
                                       "please try again in a moment.") from exc
        except stripe.IdempotencyError as exc:
            # Our key was reused for a different request: repeating it would be refused again, so this is
            # not an outage to wait out.
            raise ProcessorError("The payment processor refused a repeated request. Please reload the page "
                                 "and try again.", code="idempotency_error") from exc
        except stripe.InvalidRequestError as exc:
            # Stripe's own text ("No such setupintent: seti_…") is for developers: log it, show ours.
            log.warning("Stripe refused a request: %s", exc)
            raise ProcessorError("The payment processor refused the request. Please reload the page and try "
                                 "again.", code=getattr(exc, "code", None) or "invalid_request") from exc
        except stripe.StripeError as exc:
            raise ProcessorUnavailable("The payment processor had a problem. Nothing was changed; "
                                       "please try again in a moment.") from exc


    # --- refunds ---------------------------------------------------------------------------------

    def refund(self, payment_id_or_charge_id: str, amount_cents: int, idempotency_key: str,
               metadata: dict) -> RefundResult:
        """A Refund of a PaymentIntent (``pi_``) or a Charge (``ch_``), with our idempotency key: a repeat
        after a timeout returns the first refund instead of refunding twice. The reason travels in the
        metadata (Stripe's own ``reason`` takes only its three fixed values)."""
        key = "payment_intent" if payment_id_or_charge_id.startswith("pi_") else "charge"
        refund = self._call(self.client.v1.refunds.create, params={
            key: payment_id_or_charge_id, "amount": amount_cents,
            "metadata": {k: str(v)[:500] for k, v in (metadata or {}).items()},
        }, options={"idempotency_key": idempotency_key})
        return _refund(refund)

    def list_refunds(self, payment_id_or_charge_id: str) -> list[RefundResult]:
        """Every refund of a payment, newest first, including those made in Stripe's dashboard."""
        key = "payment_intent" if payment_id_or_charge_id.startswith("pi_") else "charge"
        page = self._call(self.client.v1.refunds.list, params={key: payment_id_or_charge_id, "limit": 100})
        return [_refund(r) for r in _plain(page).get("data") or []]

def _plain(obj) -> dict:
    # stripe-python 13+ objects are no longer dicts (``.get`` raises); read plain data instead.
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _setup_intent(intent) -> SetupIntent:
    intent = _plain(intent)
    pm = intent.get("payment_method")
    pm_id = pm if isinstance(pm, str) or pm is None else pm.get("id")
    customer = intent.get("customer")
    customer_id = customer if isinstance(customer, str) or customer is None else customer.get("id")
    error = intent.get("last_setup_error") or {}
    return SetupIntent(id=intent["id"], status=intent["status"], customer_id=customer_id,
                       client_secret=intent.get("client_secret"), payment_method_id=pm_id,
                       metadata=dict(intent.get("metadata") or {}),
                       error_message=error.get("message") if error else None)


_PI_STATUS = {"succeeded": "succeeded", "processing": "processing", "requires_action": "requires_action",
              "requires_confirmation": "requires_action", "requires_payment_method": "failed", "canceled": "failed"}


def _payment(intent) -> PaymentResult:
    intent = _plain(intent)
    error = intent.get("last_payment_error") or {}
    charge = intent.get("latest_charge")
    charge_id = charge if isinstance(charge, str) or charge is None else charge.get("id")
    pm = intent.get("payment_method")
    return PaymentResult(payment_id=intent["id"], status=_PI_STATUS.get(intent.get("status"), "failed"),
                         # Collected, not asked for, once it has succeeded.
                         amount_cents=int((intent.get("amount_received") if intent.get("status") == "succeeded"
                                           else None) or intent.get("amount") or 0),
                         currency=(intent.get("currency") or "").upper(),
                         payment_method_id=pm if isinstance(pm, str) or pm is None else pm.get("id"),
                         charge_id=charge_id, failure_code=error.get("decline_code") or error.get("code"),
                         failure_message=error.get("message"))


def _checkout(session) -> CheckoutSession:
    session = _plain(session)
    pi = session.get("payment_intent")
    return CheckoutSession(id=session["id"], url=session.get("url") or "", status=session.get("status") or "open",
                           payment_status=session.get("payment_status") or "unpaid",
                           payment_intent_id=pi if isinstance(pi, str) or pi is None else pi.get("id"),
                           expires_at=session.get("expires_at"), metadata=dict(session.get("metadata") or {}))


# Payment method types by the name customers know them by; anything else is spelled out from its type.
_METHOD_NAMES = {
    "ideal": "iDEAL", "bancontact": "Bancontact", "blik": "BLIK", "eps": "EPS", "giropay": "giropay",
    "p24": "Przelewy24", "sofort": "Sofort", "sepa_debit": "SEPA Direct Debit", "bacs_debit": "Bacs Direct Debit",
    "au_becs_debit": "BECS Direct Debit", "acss_debit": "Pre-authorized debit", "us_bank_account": "US bank account",
    "link": "Link", "paypal": "PayPal", "klarna": "Klarna", "affirm": "Affirm", "afterpay_clearpay": "Afterpay",
    "cashapp": "Cash App Pay", "amazon_pay": "Amazon Pay", "revolut_pay": "Revolut Pay", "alipay": "Alipay",
    "wechat_pay": "WeChat Pay", "twint": "TWINT", "mobilepay": "MobilePay", "multibanco": "Multibanco",
}
_WALLET_NAMES = {"apple_pay": "Apple Pay", "google_pay": "Google Pay", "samsung_pay": "Samsung Pay", "link": "Link"}


def _method_label(details: dict | None) -> str | None:
    """A label from a charge's ``payment_method_details`` or a PaymentMethod (both have ``type`` and a hash
    named after it): "Visa •••• 4242", "Visa •••• 4242 (Apple Pay)", "iDEAL", "SEPA Direct Debit •••• 3000"."""
    from ..models.payment_method import BRAND_NAMES

    method_type = (details or {}).get("type")
    if not method_type:
        return None
    specifics = details.get(method_type) or {}
    if method_type in ("card", "card_present"):
        brand = specifics.get("brand") or ""
        label = BRAND_NAMES.get(brand, brand.replace("_", " ").title() or "Card")
        if specifics.get("last4"):
            label += f" •••• {specifics['last4']}"
        wallet = (specifics.get("wallet") or {}).get("type")
        if wallet:
            label += f" ({_WALLET_NAMES.get(wallet, wallet.replace('_', ' ').title())})"
        return label
    label = _METHOD_NAMES.get(method_type, method_type.replace("_", " ").title())
    if method_type.endswith("_debit") or method_type == "us_bank_account":
        if specifics.get("last4"):  # a debited account, like a card, is recognised by its last digits
            label += f" •••• {specifics['last4']}"
    return label


def _card(pm) -> CardInfo:
    pm = _plain(pm)
    card = pm["card"]
    billing = pm.get("billing_details") or {}
    customer = pm.get("customer")
    customer_id = customer if isinstance(customer, str) or customer is None else customer.get("id")
    return CardInfo(processor_id=pm["id"], brand=card.get("brand", "unknown"), last4=card["last4"],
                    exp_month=int(card["exp_month"]), exp_year=int(card["exp_year"]),
                    cardholder_name=billing.get("name") or "", customer_id=customer_id)


_REFUND_STATUS = {"succeeded": "succeeded", "pending": "pending", "requires_action": "pending",
                  "failed": "failed", "canceled": "failed"}


def _refund(refund):
    from .gateway import RefundResult

    refund = _plain(refund)
    charge, intent = refund.get("charge"), refund.get("payment_intent")
    return RefundResult(id=refund["id"], status=_REFUND_STATUS.get(refund.get("status") or "", "pending"),
                        amount=int(refund.get("amount") or 0), currency=(refund.get("currency") or "").upper(),
                        payment_id=intent if isinstance(intent, str) or intent is None else intent.get("id"),
                        charge_id=charge if isinstance(charge, str) or charge is None else charge.get("id"),
                        metadata=dict(refund.get("metadata") or {}),
                        failure_message=refund.get("failure_reason"))
