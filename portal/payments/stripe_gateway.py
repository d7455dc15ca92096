"""The Stripe processor, through stripe-python's ``StripeClient``.

``STRIPE_API_BASE`` points the client elsewhere (the tests use a localstripe server). Stripe errors are
translated into the gateway's own exceptions so that services and pages never see a Stripe type.
"""
from __future__ import annotations

import stripe

import logging

from .gateway import (AuthenticationFailed, CardDetails, CardError, CardInfo, PaymentResult, ProcessorError,
                      ProcessorUnavailable, SetupIntent)

log = logging.getLogger(__name__)

# Stripe's ``param`` for card errors, mapped onto the names of our form fields.
_PARAM_TO_FIELD = {"number": "number", "exp_month": "expiry", "exp_year": "expiry", "cvc": "cvc"}


class StripeGateway:
    name = "stripe"

    def __init__(self, *, secret_key: str, api_base: str | None = None, max_network_retries: int = 2):
        base_addresses = {"api": api_base.rstrip("/")} if api_base else None
        # Network retries reuse the idempotency key we pass, so a retried create never duplicates.
        self.client = stripe.StripeClient(secret_key, base_addresses=base_addresses,
                                          max_network_retries=max_network_retries)

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
        if metadata.get("invoice_number"):
            params["description"] = f"Invoice {metadata['invoice_number']}"
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
                         amount_cents=int(intent.get("amount") or 0), currency=(intent.get("currency") or "").upper(),
                         payment_method_id=pm if isinstance(pm, str) or pm is None else pm.get("id"),
                         charge_id=charge_id, failure_code=error.get("decline_code") or error.get("code"),
                         failure_message=error.get("message"))


def _card(pm) -> CardInfo:
    pm = _plain(pm)
    card = pm["card"]
    billing = pm.get("billing_details") or {}
    customer = pm.get("customer")
    customer_id = customer if isinstance(customer, str) or customer is None else customer.get("id")
    return CardInfo(processor_id=pm["id"], brand=card.get("brand", "unknown"), last4=card["last4"],
                    exp_month=int(card["exp_month"]), exp_year=int(card["exp_year"]),
                    cardholder_name=billing.get("name") or "", customer_id=customer_id)
