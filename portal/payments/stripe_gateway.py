"""The Stripe processor, through stripe-python's ``StripeClient``.

``STRIPE_API_BASE`` points the client elsewhere (the tests use a localstripe server). Stripe errors are
translated into the gateway's own exceptions so that services and pages never see a Stripe type.
"""
from __future__ import annotations

import logging
from dataclasses import replace

import stripe

from .gateway import (AuthenticationFailed, BankAccountDetails, CardDetails, CardError, CardInfo, CheckoutSession,
                      MandateAcceptance, PaymentDetails, PaymentResult, ProcessorError, ProcessorUnavailable,
                      RefundResult, SetupIntent)

log = logging.getLogger(__name__)

# Stripe's ``param`` for card errors, mapped onto the names of our form fields.
_PARAM_TO_FIELD = {"number": "number", "exp_month": "expiry", "exp_year": "expiry", "cvc": "cvc"}

# What a customer can save for off-session renewals in Stripe mode, one type per SetupIntent.
SETUP_METHOD_TYPES = ("card", "paypal", "us_bank_account", "sepa_debit")

# What the customer reads when a micro-deposit answer is refused, by Stripe's error code.
_MICRODEPOSIT_MESSAGES = {
    "amounts": "Those amounts don't match the two deposits. Check your bank statement and try again.",
    "descriptor_code": "That code doesn't match the deposit. Check your bank statement and try again.",
    "payment_method_microdeposit_verification_amounts_mismatch":
        "Those amounts don't match the two deposits. Check your bank statement and try again.",
    "payment_method_microdeposit_verification_amounts_invalid":
        "Enter two amounts in cents, each between 1 and 99.",
    "payment_method_microdeposit_verification_descriptor_code_mismatch":
        "That code doesn't match the deposit. Check your bank statement and try again.",
    "payment_method_microdeposit_verification_attempts_exceeded":
        "Too many wrong answers: this bank account can't be verified. Remove it and add it again.",
    "payment_method_microdeposit_verification_timeout":
        "The deposits were not verified in time: remove this bank account and add it again.",
}


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
                            card: CardDetails | None = None, method_type: str = "card",
                            bank: BankAccountDetails | None = None, mandate: MandateAcceptance | None = None,
                            return_url: str | None = None) -> SetupIntent:
        """A SetupIntent for one payment method type, confirmed later by the Payment Element in the browser.

        ``return_url`` and ``mandate`` are not sent: Stripe takes them only when the server confirms, and here
        Stripe.js confirms (it passes the return URL for PayPal's approval and records the mandate the Payment
        Element showed). Raw card or bank details are refused rather than forwarded."""
        if card is not None or bank is not None:
            # Card and account numbers never reach this server in Stripe mode; refuse rather than forward one.
            raise ProcessorError("Card and bank details must be entered in Stripe's payment form.",
                                 code="card_data_refused")
        if method_type not in SETUP_METHOD_TYPES:
            raise ProcessorError("That kind of payment method can't be saved.", code="method_type_refused")
        params = {"customer": customer_id, "usage": "off_session", "payment_method_types": [method_type],
                  "metadata": {k: str(v) for k, v in metadata.items()}}
        if method_type == "us_bank_account":
            # Instant verification through Financial Connections where the bank supports it, micro-deposits
            # otherwise (Stripe's "automatic").
            params["payment_method_options"] = {"us_bank_account": {"verification_method": "automatic"}}
        intent = self._call(self.client.v1.setup_intents.create, params=params,
                            options={"idempotency_key": idempotency_key})
        return _setup_intent(intent)

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntent:
        return _setup_intent(self._call(self.client.v1.setup_intents.retrieve, setup_intent_id))

    def verify_microdeposits(self, setup_intent_id: str, *, amounts: list[int] | None = None,
                             descriptor_code: str | None = None, idempotency_key: str) -> SetupIntent:
        """``POST /v1/setup_intents/{id}/verify_microdeposits`` with the two amounts in cents or the
        six-character code starting with SM. Stripe answers a wrong value with an invalid-request error
        (``payment_method_microdeposit_verification_amounts_mismatch`` and the like): it is the customer's to
        correct, so it comes back as a CardError on the field that was typed."""
        if bool(amounts) == bool(descriptor_code):
            raise CardError("Enter the two amounts or the code from your bank statement.",
                            code="verification_input_missing", param="amounts")
        params = {"amounts": [int(a) for a in amounts]} if amounts else {"descriptor_code": descriptor_code}
        param = "amounts" if amounts else "descriptor_code"
        try:
            intent = self.client.v1.setup_intents.verify_microdeposits(
                setup_intent_id, params=params, options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError as exc:
            code = getattr(exc, "code", None) or getattr(getattr(exc, "error", None), "code", None) or ""
            if not code.startswith("payment_method_microdeposit"):
                return self._call(_reraise(exc))
            log.info("micro-deposit verification refused: %s", code)
            raise CardError(_MICRODEPOSIT_MESSAGES.get(code, _MICRODEPOSIT_MESSAGES[param]), code=code,
                            param="descriptor_code" if "descriptor_code" in code else
                            "amounts" if "amounts" in code else param) from exc
        except stripe.StripeError as exc:
            return self._call(_reraise(exc))
        return _setup_intent(intent)

    # --- cards -----------------------------------------------------------------------------------

    def retrieve_card(self, payment_method_id: str) -> CardInfo:
        """The saved method as the customer recognises it. A SEPA account also carries its mandate's
        reference, which Stripe keeps on the Mandate the SetupIntent created (``payment_method_details.
        sepa_debit.reference``): found by listing the method's SetupIntents with the mandate expanded."""
        info = _card(self._call(self.client.v1.payment_methods.retrieve, payment_method_id))
        if info.type == "sepa_debit":
            info = replace(info, mandate_reference=self._mandate_reference(payment_method_id, info.customer_id))
        return info

    def _mandate_reference(self, payment_method_id: str, customer_id: str | None) -> str:
        params = {"payment_method": payment_method_id, "limit": 10, "expand": ["data.mandate"]}
        if customer_id:
            params["customer"] = customer_id
        page = _plain(self._call(self.client.v1.setup_intents.list, params=params))
        for intent in page.get("data") or []:
            mandate = intent.get("mandate")
            if isinstance(mandate, str):  # not expanded after all: ask for it
                mandate = _plain(self._call(self.client.v1.mandates.retrieve, mandate))
            details = ((mandate or {}).get("payment_method_details") or {}).get("sepa_debit") or {}
            if details.get("reference"):
                return str(details["reference"])[:80]
        return ""

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

def _reraise(exc):
    """A call that raises ``exc`` again, so ``_call`` translates an error caught elsewhere."""
    def call():
        raise exc
    return call


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
    types = intent.get("payment_method_types") or ["card"]
    method_type = pm.get("type") if isinstance(pm, dict) and pm.get("type") else types[0]
    action = intent.get("next_action") or {}
    action_type = action.get("type") if intent.get("status") == "requires_action" else None
    redirect_url = (action.get("redirect_to_url") or {}).get("url") if action_type == "redirect_to_url" else None
    return SetupIntent(id=intent["id"], status=intent["status"], customer_id=customer_id,
                       client_secret=intent.get("client_secret"), payment_method_id=pm_id,
                       metadata=dict(intent.get("metadata") or {}),
                       error_message=error.get("message") if error else None,
                       payment_method_type=method_type, next_action=action_type, redirect_url=redirect_url)


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
    """A PaymentMethod of any saved type as CardInfo: cards their brand and expiry; PayPal its payer's e-mail;
    bank accounts their bank, last four digits and country (PayPal and banks do not expire: 0/0)."""
    pm = _plain(pm)
    method_type = pm.get("type") or "card"
    billing = pm.get("billing_details") or {}
    customer = pm.get("customer")
    customer_id = customer if isinstance(customer, str) or customer is None else customer.get("id")
    name = billing.get("name") or ""
    if method_type == "card":
        card = pm["card"]
        return CardInfo(processor_id=pm["id"], brand=card.get("brand", "unknown"), last4=card["last4"],
                        exp_month=int(card["exp_month"]), exp_year=int(card["exp_year"]),
                        cardholder_name=name, customer_id=customer_id)
    details = pm.get(method_type) or {}
    if method_type == "paypal":
        return CardInfo(processor_id=pm["id"], brand="paypal", last4="", exp_month=0, exp_year=0,
                        cardholder_name=name, customer_id=customer_id, type="paypal",
                        email=details.get("payer_email") or billing.get("email") or "",
                        country=details.get("country") or "")
    if method_type == "us_bank_account":
        return CardInfo(processor_id=pm["id"], brand="bank", last4=details.get("last4") or "", exp_month=0,
                        exp_year=0, cardholder_name=name, customer_id=customer_id, type="us_bank_account",
                        email=billing.get("email") or "", bank_name=(details.get("bank_name") or "")[:80],
                        country="US")
    if method_type == "sepa_debit":
        return CardInfo(processor_id=pm["id"], brand="bank", last4=details.get("last4") or "", exp_month=0,
                        exp_year=0, cardholder_name=name, customer_id=customer_id, type="sepa_debit",
                        email=billing.get("email") or "", bank_name=_sepa_bank(details),
                        country=details.get("country") or "")
    raise ProcessorError("That kind of payment method can't be saved.", code="method_type_refused")


def _sepa_bank(details: dict) -> str:
    """Stripe gives a SEPA account's bank code, not the bank's name: show the code, as a bank statement does."""
    code = details.get("bank_code") or ""
    return f"Bank {code}" if code else ""


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
