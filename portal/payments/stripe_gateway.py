"""The Stripe processor, through stripe-python's ``StripeClient``.

``STRIPE_API_BASE`` points the client elsewhere (the tests use a localstripe server). Stripe errors are
translated into the gateway's own exceptions so that services and pages never see a Stripe type.
"""
from __future__ import annotations

import stripe

from .gateway import (AuthenticationFailed, CardDetails, CardError, CardInfo, ProcessorError,
                      ProcessorUnavailable, SetupIntent)

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
        self._call(self.client.v1.payment_methods.detach, payment_method_id,
                   options={"idempotency_key": idempotency_key})

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
        except stripe.InvalidRequestError as exc:
            raise ProcessorError(exc.user_message or "The payment processor refused the request.",
                                 code=getattr(exc, "code", None) or "invalid_request") from exc
        except stripe.StripeError as exc:
            raise ProcessorUnavailable("The payment processor had a problem. Nothing was changed; "
                                       "please try again in a moment.") from exc


def _setup_intent(intent) -> SetupIntent:
    pm = intent.get("payment_method")
    pm_id = pm if isinstance(pm, str) or pm is None else pm.get("id")
    customer = intent.get("customer")
    customer_id = customer if isinstance(customer, str) or customer is None else customer.get("id")
    error = intent.get("last_setup_error") or {}
    return SetupIntent(id=intent["id"], status=intent["status"], customer_id=customer_id,
                       client_secret=intent.get("client_secret"), payment_method_id=pm_id,
                       metadata=dict(intent.get("metadata") or {}),
                       error_message=error.get("message") if error else None)


def _card(pm) -> CardInfo:
    card = pm["card"]
    billing = pm.get("billing_details") or {}
    customer = pm.get("customer")
    customer_id = customer if isinstance(customer, str) or customer is None else customer.get("id")
    return CardInfo(processor_id=pm["id"], brand=card.get("brand", "unknown"), last4=card["last4"],
                    exp_month=int(card["exp_month"]), exp_year=int(card["exp_year"]),
                    cardholder_name=billing.get("name") or "", customer_id=customer_id)
