"""A stand-in for the SetupIntents localstripe cannot make: PayPal, US bank accounts (ACH) and SEPA debits with
their mandates.

localstripe saves cards (and SEPA accounts, but without the Mandate object Stripe creates, which holds the mandate
reference). ``SetupStandIn`` extends the Checkout stand-in (``checkout_standin``): a SetupIntent created with
``payment_method_types`` of ``paypal``, ``us_bank_account`` or ``sepa_debit`` is kept by the stand-in, every
other request still goes to localstripe. The shapes follow Stripe's API reference:

* SetupIntent object and "Create a SetupIntent" (https://docs.stripe.com/api/setup_intents/object, /create):
  ``payment_method_types``, ``payment_method_options[us_bank_account][verification_method]``, ``usage``,
  ``metadata``; unknown parameters refused with ``parameter_unknown``;
* "Confirm a SetupIntent" as Stripe.js sends it with the publishable key and the client secret
  (``payment_method_data``, ``mandate_data``, ``return_url``); ``next_action`` of type ``redirect_to_url``
  (PayPal's approval) or ``verify_with_microdeposits`` (``arrival_date``, ``hosted_verification_url``,
  ``microdeposit_type``);
* "Verify microdeposits on a SetupIntent" (``amounts[]``, ``descriptor_code``; a wrong answer is an
  ``invalid_request_error`` with code ``payment_method_microdeposit_verification_amounts_mismatch`` or
  ``..._descriptor_code_mismatch``), with Stripe's test values 32 and 45 cents and SM11AA;
* "List all SetupIntents" filtered by ``payment_method`` and ``customer``, with ``expand[]=data.mandate``;
* the PaymentMethod hashes ``paypal`` (``payer_email``, ``payer_id``, ``country``), ``us_bank_account``
  (``bank_name``, ``last4``, ``routing_number``, ``account_type``, ``account_holder_type``) and ``sepa_debit``
  (``bank_code``, ``country``, ``last4``), and the Mandate's ``payment_method_details.sepa_debit.reference``;
* events ``setup_intent.succeeded``, ``setup_intent.setup_failed`` and ``setup_intent.requires_action`` with the
  SetupIntent as ``data.object``.

What the customer does (approve PayPal, link a bank instantly) is played by ``approve_paypal``,
``decline_paypal`` and the ``instant`` choice of ``confirm``.
"""
from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import localstripe
import requests

from .checkout_standin import (API_VERSION, CheckoutStandIn, Received, Refused, _error, _Handler, _secret_key,
                              form_params)

# PayPal's approval page, as the test sees it: clearly a test page, with Approve and Cancel.
PAYPAL_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PayPal (test)</title></head>
<body><main><h1>Test PayPal approval</h1><p>This is a test page standing in for PayPal.</p>
<form method="post"><button name="choice" value="approve">Approve</button>
<button name="choice" value="cancel">Cancel</button></form></main></body></html>"""

OWN_TYPES = ("paypal", "us_bank_account", "sepa_debit")
SETUP_PARAMS = {"attach_to_self", "automatic_payment_methods", "confirm", "customer", "description", "expand",
                "flow_directions", "mandate_data", "metadata", "on_behalf_of", "payment_method",
                "payment_method_configuration", "payment_method_data", "payment_method_options",
                "payment_method_types", "return_url", "single_use", "usage", "use_stripe_sdk"}
MICRODEPOSIT_AMOUNTS = ["32", "45"]
DESCRIPTOR_CODE = "SM11AA"
BANK_NAMES = {"110000000": "STRIPE TEST BANK"}


class SetupStandIn(CheckoutStandIn):
    def __init__(self, localstripe_url: str, secret_key: str):
        super().__init__(localstripe_url, secret_key)
        self.setup_intents: dict[str, dict] = {}
        self.payment_methods: dict[str, dict] = {}
        self.mandates: dict[str, dict] = {}
        self.defaults: dict[str, str] = {}  # customer -> the stand-in's method set as its default

    def start(self) -> "SetupStandIn":
        standin = self

        class Handler(_Handler):
            owner = standin

            def _answer(self):
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                page = standin.page(self.command, parts.path, parts.query, body)
                if page is None:
                    status, extra, content = standin.handle(self.command, parts.path, parts.query,
                                                            dict(self.headers.items()), body)
                    extra = {"Content-Type": "application/json", **extra}
                else:
                    status, extra, content = page
                self.send_response(status)
                # The browser's Stripe.js reads answers from another origin, as it does from Stripe's.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(content)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _answer

        return self._serve(Handler)

    def page(self, method: str, path: str, query: str, body: bytes):
        """What a browser loads from "Stripe" rather than calls: Stripe.js (localstripe's stand-in with the
        Payment Element added) and PayPal's approval page. None for API requests."""
        if method == "GET" and path == "/js.stripe.com/v3/":
            script = (Path(localstripe.__file__).with_name("localstripe-v3.js").read_text() + "\n"
                      + Path(__file__).with_name("payment_element_standin.js").read_text())
            return 200, {"Content-Type": "application/javascript"}, script.encode()
        approval = re.fullmatch(r"/paypal/approve/(seti_\w+)", path)
        if approval is None or approval[1] not in self.setup_intents:
            return None
        intent = self.setup_intent(approval[1])
        if method == "GET":
            html = PAYPAL_PAGE.format(intent=approval[1])
            return 200, {"Content-Type": "text/html; charset=utf-8"}, html.encode()
        choice = dict(parse_qsl(body.decode())).get("choice")
        if choice == "approve":
            self.approve_paypal(approval[1])
        else:
            self.decline_paypal(approval[1])
        back = intent["next_action"]["redirect_to_url"]["return_url"]
        query = urlencode({"setup_intent": intent["id"], "setup_intent_client_secret": intent["client_secret"],
                           "redirect_status": "succeeded" if choice == "approve" else "failed"})
        return 303, {"Location": f"{back}?{query}", "Content-Type": "text/plain"}, b""

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.setup_intents.clear()
            self.payment_methods.clear()
            self.mandates.clear()
            self.defaults.clear()

    # --- the customer, in Stripe.js and on PayPal's page --------------------------------------------

    def confirm(self, client_secret: str, payment_method_data: dict, *, return_url: str = "",
                instant: bool = False, mandate: bool = True) -> requests.Response:
        """Stripe.js's ``confirmSetup`` from the Payment Element: ``POST /v1/setup_intents/{id}/confirm`` with
        the publishable key and the client secret. ``instant`` links a US account through Financial
        Connections (verified at once) instead of entering it by hand (micro-deposits)."""
        intent_id = client_secret.split("_secret_")[0]
        body = {"key": "pk_test_localstripe", "client_secret": client_secret,
                "payment_method_data": payment_method_data, "_instant": instant}
        if return_url:
            body["return_url"] = return_url
        if mandate:
            body["mandate_data"] = {"customer_acceptance": {"type": "online", "online": {
                "infer_from_client": True}}}
        return requests.post(f"{self.url}/v1/setup_intents/{intent_id}/confirm", data=json.dumps(body), timeout=5)

    def approve_paypal(self, intent_id: str, payer_email: str = "ada@example.com") -> dict:
        """The customer approves on PayPal's page; returns the ``setup_intent.succeeded`` event."""
        with self.lock:
            intent = self.setup_intents[intent_id]
            pm = self.payment_methods[intent["payment_method"]]
            pm["paypal"]["payer_email"] = payer_email
            self._succeed(intent)
            return self.setup_event("setup_intent.succeeded", intent_id)

    def decline_paypal(self, intent_id: str) -> dict:
        """The customer cancels on PayPal's page; returns ``setup_intent.setup_failed``."""
        with self.lock:
            intent = self.setup_intents[intent_id]
            intent.update(status="requires_payment_method", next_action=None, payment_method=None,
                          last_setup_error={"type": "invalid_request_error", "code": "setup_intent_setup_attempt_failed",
                                            "message": "The customer did not approve the PayPal billing agreement."})
            return self.setup_event("setup_intent.setup_failed", intent_id)

    def setup_event(self, event_type: str, intent_id: str) -> dict:
        with self.lock:
            payload = json.loads(json.dumps(self.setup_intents[intent_id]))
        return {"id": f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": API_VERSION,
                "created": int(time.time()), "data": {"object": payload}, "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": event_type}

    def setup_intent(self, intent_id: str) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.setup_intents[intent_id]))

    # --- the endpoints ---------------------------------------------------------------------------

    def handle(self, method, path, query, headers, body):
        lowered = {k.lower(): v for k, v in headers.items()}
        create = method == "POST" and path == "/v1/setup_intents"
        params = form_params(body) if method == "POST" else form_params(query.encode())
        match = re.fullmatch(r"/v1/(setup_intents|payment_methods|mandates)/([^/]+)(?:/(\w+))?", path)
        customer = re.fullmatch(r"/v1/customers/([^/]+)", path)
        default = ((params.get("invoice_settings") or {}).get("default_payment_method")
                   if method == "POST" and customer else None)
        if default in self.payment_methods:
            return self._set_default(customer[1], default, headers, body)
        own = (create and (params.get("payment_method_types") or ["card"])[0] in OWN_TYPES) or (
            match is not None and match[2] in {**self.setup_intents, **self.payment_methods, **self.mandates}) or (
            method == "GET" and path == "/v1/setup_intents" and self.setup_intents)
        if not own:
            return super().handle(method, path, query, headers, body)
        record = Received(method=method, path=path, query=query, headers=lowered, params=params)
        with self.lock:
            self.requests.append(record)
            try:
                status, answer = 200, None
                if match and match[3] == "confirm":  # from the browser: JSON, the publishable key
                    answer = self._confirm(match[2], json.loads(body or b"{}"))
                else:
                    if not _secret_key(lowered.get("authorization") or "").startswith("sk_"):
                        raise Refused(*_error(401, "You did not provide an API key."))
                    key = lowered.get("idempotency-key")
                    scope = (lowered["authorization"], key)
                    if method == "POST" and key and scope in self._replays:
                        first, status, content = self._replays[scope]
                        record.replayed, record.status = True, status
                        if first != (path, body):
                            status, answer = _error(400, "Keys for idempotent requests can only be used with the "
                                                    "same parameters they were first used with.",
                                                    type_="idempotency_error")
                            record.status = status
                            return status, {}, json.dumps(answer).encode()
                        return status, {"Idempotent-Replayed": "true"}, content
                    if create:
                        answer = self._create(params)
                    elif match and match[3] == "verify_microdeposits":
                        answer = self._verify(match[2], params)
                    elif match and match[1] == "setup_intents" and method == "GET":
                        answer = self._expanded(self.setup_intents[match[2]], params.get("expand") or [])
                    elif match and match[1] == "payment_methods" and match[3] == "detach":
                        answer = self.payment_methods[match[2]]
                        if answer["customer"] is None:
                            raise Refused(*_error(400, "The payment method you provided is not attached to a "
                                                  "customer so detachment is impossible.",
                                                  code="payment_method_unexpected_state"))
                        answer["customer"] = None
                    elif match and match[1] == "payment_methods" and method == "GET":
                        answer = self.payment_methods[match[2]]
                    elif match and match[1] == "mandates" and method == "GET":
                        answer = self.mandates[match[2]]
                    elif path == "/v1/setup_intents" and method == "GET":
                        answer = self._list(params)
                    else:
                        raise Refused(*_error(404, f"Unrecognized request URL ({method}: {path})."))
                    if method == "POST" and key:
                        self._replays[scope] = ((path, body), 200, json.dumps(answer).encode())
            except Refused as refused:
                status, answer = refused.status, refused.body
            record.status = status
            return status, {}, json.dumps(answer).encode()

    def _set_default(self, customer_id: str, pm_id: str, headers: dict, body: bytes):
        """"Update a customer" naming one of the stand-in's methods as ``invoice_settings.
        default_payment_method``: localstripe does not know the method, so the stand-in keeps the choice and
        answers with localstripe's customer carrying it."""
        with self.lock:
            self.requests.append(Received(method="POST", path=f"/v1/customers/{customer_id}", query="",
                                          headers={k.lower(): v for k, v in headers.items()},
                                          params=form_params(body), status=200))
            self.defaults[customer_id] = pm_id
        found = self._localstripe("GET", f"/v1/customers/{customer_id}")
        if found.status_code != 200:
            return found.status_code, {}, found.content
        answer = found.json()
        answer["invoice_settings"] = {**(answer.get("invoice_settings") or {}), "default_payment_method": pm_id}
        return 200, {}, json.dumps(answer).encode()

    def _create(self, params: dict) -> dict:
        unknown = sorted(set(params) - SETUP_PARAMS)
        if unknown:
            raise Refused(*_error(400, f"Received unknown parameter: {unknown[0]}", code="parameter_unknown",
                                  param=unknown[0]))
        types = params["payment_method_types"]
        options = params.get("payment_method_options") or {}
        if set(options) - set(types):
            raise Refused(*_error(400, "payment_method_options must match payment_method_types.",
                                  param="payment_method_options"))
        verification = (options.get("us_bank_account") or {}).get("verification_method", "automatic")
        if verification not in ("automatic", "instant", "microdeposits"):
            raise Refused(*_error(400, "Invalid verification_method.", code="parameter_invalid_string",
                                  param="payment_method_options[us_bank_account][verification_method]"))
        customer = params.get("customer")
        if customer and self._localstripe("GET", f"/v1/customers/{customer}").status_code != 200:
            raise Refused(*_error(400, f"No such customer: '{customer}'", code="resource_missing", param="customer"))
        intent_id = f"seti_{secrets.token_hex(12)}"
        intent = {
            "id": intent_id, "object": "setup_intent", "application": None, "automatic_payment_methods": None,
            "cancellation_reason": None, "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
            "created": int(time.time()), "customer": customer, "description": None, "flow_directions": None,
            "last_setup_error": None, "latest_attempt": None, "livemode": False, "mandate": None,
            "metadata": dict(params.get("metadata") or {}), "next_action": None, "on_behalf_of": None,
            "payment_method": None, "payment_method_configuration_details": None,
            "payment_method_options": ({"us_bank_account": {"verification_method": verification,
                                                            "financial_connections": {"permissions":
                                                                                      ["payment_method"]}}}
                                       if "us_bank_account" in types else {}),
            "payment_method_types": types, "single_use_mandate": None, "status": "requires_payment_method",
            "usage": params.get("usage") or "off_session",
        }
        self.setup_intents[intent_id] = intent
        return intent

    def _confirm(self, intent_id: str, body: dict) -> dict:
        intent = self.setup_intents[intent_id]
        if body.get("client_secret") != intent["client_secret"] or not str(body.get("key", "")).startswith("pk_"):
            raise Refused(*_error(401, "Invalid client secret or publishable key."))
        if intent["status"] != "requires_payment_method":
            raise Refused(*_error(400, "This SetupIntent cannot be confirmed in its current state.",
                                  code="setup_intent_unexpected_state"))
        data = body.get("payment_method_data") or {}
        method_type = data.get("type")
        if method_type not in intent["payment_method_types"]:
            raise Refused(*_error(400, f"The payment method type {method_type!r} is not allowed for this "
                                  "SetupIntent.", code="payment_method_invalid_parameter",
                                  param="payment_method_data[type]"))
        pm_id = f"pm_{secrets.token_hex(12)}"
        billing = {"address": None, "email": None, "name": None, "phone": None, **(data.get("billing_details") or {})}
        pm = {"id": pm_id, "object": "payment_method", "billing_details": billing, "created": int(time.time()),
              "customer": None, "livemode": False, "metadata": {}, "type": method_type}
        if method_type == "paypal":
            if not body.get("return_url"):
                raise Refused(*_error(400, "A return_url is required to confirm a PayPal SetupIntent.",
                                      code="parameter_missing", param="return_url"))
            pm["paypal"] = {"country": "US", "payer_email": None, "payer_id": f"PAYER{secrets.token_hex(5).upper()}"}
            intent.update(status="requires_action", next_action={"type": "redirect_to_url", "redirect_to_url": {
                "url": f"{self.url}/paypal/approve/{intent_id}", "return_url": body["return_url"]}})
        elif method_type == "us_bank_account":
            bank = data.get("us_bank_account") or {}
            routing, account = str(bank.get("routing_number", "")), str(bank.get("account_number", ""))
            if len(routing) != 9 or not routing.isdigit():
                raise Refused(*_error(400, "Invalid routing number.", code="routing_number_invalid",
                                      param="payment_method_data[us_bank_account][routing_number]"))
            pm["us_bank_account"] = {"account_holder_type": bank.get("account_holder_type", "individual"),
                                     "account_type": "checking", "bank_name": BANK_NAMES.get(routing, "TEST BANK"),
                                     "financial_connections_account": None, "fingerprint": secrets.token_hex(8),
                                     "last4": account[-4:], "networks": {"preferred": "ach", "supported": ["ach"]},
                                     "routing_number": routing, "status_details": {}}
            intent["mandate"] = self._mandate(pm_id, "us_bank_account", {})
            if body.get("_instant"):
                intent["payment_method"] = pm_id
                self.payment_methods[pm_id] = pm
                self._succeed(intent)
                return intent
            intent.update(status="requires_action", next_action={
                "type": "verify_with_microdeposits", "verify_with_microdeposits": {
                    "arrival_date": int(time.time()) + 2 * 86400,
                    "hosted_verification_url": f"{self.url}/microdeposits/{intent_id}",
                    "microdeposit_type": "amounts"}})
        else:  # sepa_debit
            iban = str((data.get("sepa_debit") or {}).get("iban", "")).replace(" ", "").upper()
            if not (15 <= len(iban) <= 34 and iban[:2].isalpha()):
                raise Refused(*_error(400, "The IBAN you entered is invalid.", code="invalid_iban",
                                      param="payment_method_data[sepa_debit][iban]"))
            if not body.get("mandate_data"):
                raise Refused(*_error(400, "mandate_data is required to set up a SEPA Direct Debit.",
                                      code="parameter_missing", param="mandate_data"))
            pm["sepa_debit"] = {"bank_code": iban[4:12], "branch_code": "", "country": iban[:2],
                                "fingerprint": secrets.token_hex(8), "generated_from": {"charge": None,
                                                                                         "setup_attempt": None},
                                "last4": iban[-4:]}
            intent["mandate"] = self._mandate(pm_id, "sepa_debit", {
                "reference": secrets.token_hex(8).upper(),
                "url": f"{self.url}/mandates/{pm_id}"})
            intent["payment_method"] = pm_id
            self.payment_methods[pm_id] = pm
            self._succeed(intent)
            return intent
        intent["payment_method"] = pm_id
        self.payment_methods[pm_id] = pm
        return intent

    def _mandate(self, pm_id: str, method_type: str, details: dict) -> str:
        mandate_id = f"mandate_{secrets.token_hex(12)}"
        self.mandates[mandate_id] = {
            "id": mandate_id, "object": "mandate", "customer_acceptance": {
                "accepted_at": int(time.time()), "online": {"ip_address": "127.0.0.1", "user_agent": "test"},
                "type": "online"}, "livemode": False, "multi_use": {}, "payment_method": pm_id,
            "payment_method_details": {"type": method_type, method_type: details}, "status": "active",
            "type": "multi_use"}
        return mandate_id

    def _succeed(self, intent: dict) -> None:
        intent.update(status="succeeded", next_action=None, last_setup_error=None)
        self.payment_methods[intent["payment_method"]]["customer"] = intent["customer"]

    def _verify(self, intent_id: str, params: dict) -> dict:
        intent = self.setup_intents[intent_id]
        action = intent.get("next_action") or {}
        if intent["status"] != "requires_action" or action.get("type") != "verify_with_microdeposits":
            raise Refused(*_error(400, "This SetupIntent is not waiting for micro-deposits.",
                                  code="setup_intent_unexpected_state"))
        amounts, code = params.get("amounts"), params.get("descriptor_code")
        if amounts is not None:
            if len(amounts) != 2 or not all(a.isdigit() for a in amounts):
                raise Refused(*_error(400, "Amounts must be two positive integers.",
                                      code="payment_method_microdeposit_verification_amounts_invalid",
                                      param="amounts"))
            if amounts != MICRODEPOSIT_AMOUNTS:
                raise Refused(*_error(400, "The amounts provided do not match the amounts that were sent to the "
                                      "bank account.", code="payment_method_microdeposit_verification_amounts_mismatch",
                                      param="amounts"))
        elif code != DESCRIPTOR_CODE:
            raise Refused(*_error(400, "The verification code provided does not match the code that was sent.",
                                  code="payment_method_microdeposit_verification_descriptor_code_mismatch",
                                  param="descriptor_code"))
        self._succeed(intent)
        return intent

    def _expanded(self, intent: dict, expand: list) -> dict:
        copy = json.loads(json.dumps(intent))
        if ("mandate" in expand or "data.mandate" in expand) and copy.get("mandate"):
            copy["mandate"] = self.mandates[copy["mandate"]]
        return copy

    def _list(self, params: dict) -> dict:
        found = [i for i in self.setup_intents.values()
                 if (not params.get("payment_method") or i["payment_method"] == params["payment_method"])
                 and (not params.get("customer") or i["customer"] == params["customer"])]
        found.sort(key=lambda i: i["created"], reverse=True)
        return {"object": "list", "url": "/v1/setup_intents", "has_more": False,
                "data": [self._expanded(i, params.get("expand") or []) for i in found[:int(params.get("limit", 10))]]}
