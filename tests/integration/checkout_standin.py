"""A stand-in for Stripe Checkout in front of localstripe, which has no Checkout Sessions.

``CheckoutStandIn`` is a small HTTP server on a loopback port that answers the Checkout Session endpoints the
way Stripe documents them (https://docs.stripe.com/api/checkout/sessions):

* ``POST /v1/checkout/sessions``: form-encoded parameters as stripe-python sends them (``line_items[0][...]``),
  unknown parameters and bad values refused with Stripe's error shape, ``Idempotency-Key`` honoured (the first
  result replayed with ``Idempotent-Replayed: true``; the same key with other parameters is an
  ``idempotency_error``);
* ``GET /v1/checkout/sessions/{id}`` and ``POST /v1/checkout/sessions/{id}/expire``.

Every other request is forwarded to localstripe unchanged, so a ``StripeClient`` whose API base is the
stand-in's URL works for customers, setup intents and payment intents as well. Everything the stand-in
receives is kept in ``requests`` for the tests to inspect.

The customer's side of Checkout (choosing a method and paying) is played by ``pay``, ``settle`` and
``expire``, which change the session as Stripe would and return the event Stripe would send. A card payment is
a real PaymentIntent confirmed at localstripe; wallets and bank methods, which localstripe cannot describe,
are PaymentIntents kept by the stand-in, whose charge has Stripe's documented ``payment_method_details``.
``signed_webhook`` signs an event exactly as Stripe signs its webhooks.

Not modelled: listing sessions, ``/line_items``, ``expand`` on sessions, and Stripe's account-wide idempotency
(the stand-in and localstripe's launcher each remember their own keys).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import requests

API_VERSION = "2026-10-28.endive"

# The documented parameters of "Create a Checkout Session"; anything else is refused, as Stripe refuses it.
SESSION_PARAMS = {
    "adaptive_pricing", "after_expiration", "allow_promotion_codes", "automatic_tax", "billing_address_collection",
    "cancel_url", "client_reference_id", "consent_collection", "currency", "custom_fields", "custom_text",
    "customer", "customer_creation", "customer_email", "customer_update", "discounts", "expand", "expires_at",
    "invoice_creation", "line_items", "locale", "metadata", "mode", "optional_items", "payment_intent_data",
    "payment_method_collection", "payment_method_configuration", "payment_method_data", "payment_method_options",
    "payment_method_types", "permissions", "phone_number_collection", "redirect_on_completion", "return_url",
    "saved_payment_method_options", "setup_intent_data", "shipping_address_collection", "shipping_options",
    "submit_type", "subscription_data", "success_url", "tax_id_collection", "ui_mode", "wallet_options",
}
PAYMENT_INTENT_DATA_PARAMS = {
    "application_fee_amount", "capture_method", "description", "metadata", "on_behalf_of", "receipt_email",
    "setup_future_usage", "shipping", "statement_descriptor", "statement_descriptor_suffix", "transfer_data",
    "transfer_group",
}

# What Checkout's dynamic payment methods would offer a customer paying in each currency (a plausible subset).
DYNAMIC_METHODS = {"eur": ["card", "link", "ideal", "bancontact", "eps", "sepa_debit"], "pln": ["card", "blik", "p24"]}

# How the customer pays on the page. "card" is a real PaymentIntent at localstripe; the others are described
# by Stripe's documented ``payment_method_details`` of the charge. ``delayed`` methods confirm days later.
METHODS = {
    "card": {"type": "card", "card": {"brand": "visa", "last4": "4242", "wallet": None}},
    "apple_pay": {"type": "card", "card": {"brand": "visa", "last4": "1881", "exp_month": 12, "exp_year": 2030,
                                           "funding": "credit", "country": "US",
                                           "wallet": {"type": "apple_pay", "apple_pay": {}, "dynamic_last4": "1881"}}},
    "google_pay": {"type": "card", "card": {"brand": "mastercard", "last4": "4444", "exp_month": 12,
                                            "exp_year": 2030, "funding": "credit", "country": "US",
                                            "wallet": {"type": "google_pay", "google_pay": {},
                                                       "dynamic_last4": "4444"}}},
    "ideal": {"type": "ideal", "ideal": {"bank": "ing", "bic": "INGBNL2A", "iban_last4": "5264",
                                         "verified_name": "Ada Lovelace"}},
    "bancontact": {"type": "bancontact", "bancontact": {"bank_code": "VAPE", "bank_name": "VAN DE PUT & CO",
                                                        "bic": "VAPEBE22", "iban_last4": "7061",
                                                        "verified_name": "Ada Lovelace"}},
    "sepa_debit": {"type": "sepa_debit", "sepa_debit": {"bank_code": "37040044", "branch_code": "",
                                                        "country": "DE", "last4": "3000",
                                                        "mandate": "mandate_standin"}},
}
DELAYED = {"sepa_debit"}


def _error(status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
           param: str | None = None) -> tuple[int, dict]:
    error = {"type": type_, "message": message}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return status, {"error": error}


def form_params(body: bytes) -> dict:
    """``a[0][b]=1&metadata[k]=v`` as nested dicts and lists, every value a string (as Stripe receives it)."""
    root: dict = {}
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node):
        if isinstance(node, dict):
            node = {k: lists(v) for k, v in node.items()}
            if node and all(k.isdigit() for k in node):
                return [node[k] for k in sorted(node, key=int)]
        return node

    return lists(root)


@dataclass
class Received:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: str
    headers: dict
    params: dict = field(default_factory=dict)
    status: int = 0
    replayed: bool = False


class Refused(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(body["error"]["message"])
        self.status, self.body = status, body


class CheckoutStandIn:
    def __init__(self, localstripe_url: str, secret_key: str):
        self.localstripe_url = localstripe_url.rstrip("/")
        self.secret_key = secret_key
        self.lock = threading.RLock()
        self.requests: list[Received] = []
        self.sessions: dict[str, dict] = {}
        self.payment_intents: dict[str, dict] = {}  # the stand-in's own (wallets and bank methods)
        self._replays: dict[tuple[str, str], tuple[tuple, int, bytes]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> "CheckoutStandIn":
        standin = self

        class Handler(_Handler):
            owner = standin

        return self._serve(Handler)

    def _serve(self, handler):
        """Answer with ``handler`` on a free loopback port, in a thread of its own (a subclass brings its own)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.sessions.clear()
            self.payment_intents.clear()
            self._replays.clear()

    # --- what the tests look at --------------------------------------------------------------------

    def received(self, method: str, path_pattern: str) -> list[Received]:
        """Requests whose method matches and whose path matches the regular expression in full."""
        with self.lock:
            return [r for r in self.requests if r.method == method and re.fullmatch(path_pattern, r.path)]

    @property
    def session_creations(self) -> list[Received]:
        """``POST /v1/checkout/sessions`` requests that created a session (not replays, not refusals)."""
        return [r for r in self.received("POST", "/v1/checkout/sessions") if r.status == 200 and not r.replayed]

    def session(self, session_id: str) -> dict:
        with self.lock:
            return json.loads(json.dumps(self._current(session_id)))

    # --- the customer on the Checkout page ---------------------------------------------------------

    def pay(self, session_id: str, method: str = "card") -> dict:
        """The customer pays with ``method``. Returns ``checkout.session.completed``: paid at once, or unpaid
        for a delayed method (its outcome comes with ``settle``)."""
        with self.lock:
            session = self._current(session_id)
            if session["status"] != "open":
                raise AssertionError(f"{session_id} is {session['status']}, it cannot be paid")
            amount, currency = session["amount_total"], session["currency"]
            meta = dict((session["_payment_intent_data"] or {}).get("metadata") or {})
        if method == "card":
            intent_id = self.card_payment(session["customer"], amount, currency, meta)
        else:
            intent_id = self._own_payment(session["customer"], amount, currency, meta, method)
        customer = self._localstripe("GET", f"/v1/customers/{session['customer']}").json()
        with self.lock:
            session.update(status="complete", payment_intent=intent_id,
                           payment_status="unpaid" if method in DELAYED else "paid",
                           customer_details={"address": None, "email": customer.get("email"),
                                             "name": customer.get("name"), "phone": None, "tax_exempt": "none",
                                             "tax_ids": []})
            return self.event("checkout.session.completed", session_id)

    def settle(self, session_id: str, *, succeeded: bool = True) -> dict:
        """The bank's answer to a delayed payment, days later in real life."""
        with self.lock:
            session = self._current(session_id)
            intent = self.payment_intents[session["payment_intent"]]
            charge = intent["latest_charge"]
            if succeeded:
                intent["status"], charge["status"], charge["paid"] = "succeeded", "succeeded", True
                session["payment_status"] = "paid"
                return self.event("checkout.session.async_payment_succeeded", session_id)
            intent["status"], charge["status"] = "requires_payment_method", "failed"
            charge.update(failure_code="insufficient_funds", failure_message="The account has insufficient funds.")
            intent["last_payment_error"] = {"type": "invalid_request_error", "code": "insufficient_funds",
                                            "message": "The account has insufficient funds."}
            return self.event("checkout.session.async_payment_failed", session_id)

    def expire(self, session_id: str) -> dict:
        """Expire the session through the API (as the server or Stripe's own timer would) and return
        ``checkout.session.expired``."""
        response = requests.post(f"{self.url}/v1/checkout/sessions/{session_id}/expire", auth=(self.secret_key, ""),
                                 timeout=5)
        response.raise_for_status()
        return self.event("checkout.session.expired", session_id)

    def event(self, event_type: str, session_id: str, **changes) -> dict:
        """A Stripe event about the session as it is now (``changes`` alter the copy in the event only)."""
        with self.lock:
            payload = {**self._public(self._current(session_id)), **changes}
        return {"id": f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": API_VERSION,
                "created": int(time.time()), "data": {"object": payload}, "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": event_type}

    def payment_intent_event(self, intent_id: str, event_type: str = "payment_intent.succeeded") -> dict:
        """A Stripe event about a PaymentIntent at localstripe, as it is now."""
        intent = self._localstripe("GET", f"/v1/payment_intents/{intent_id}")
        intent.raise_for_status()
        return {"id": f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": API_VERSION,
                "created": int(time.time()), "data": {"object": intent.json()}, "livemode": False,
                "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": event_type}

    def new_customer(self, email: str = "someone@elsewhere.example") -> str:
        """A customer made directly at localstripe (someone the portal does not know)."""
        response = self._localstripe("POST", "/v1/customers", data={"email": email})
        response.raise_for_status()
        return response.json()["id"]

    # --- the endpoints ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        """Answer one request: (status, extra headers, JSON body)."""
        record = Received(method=method, path=path, query=query,
                          headers={k.lower(): v for k, v in headers.items()},
                          params=form_params(body if method == "POST" else query.encode()))
        with self.lock:
            self.requests.append(record)
        checkout = re.fullmatch(r"/v1/checkout/sessions(?:/([^/]+)(/expire)?)?", path)
        intent = re.fullmatch(r"/v1/payment_intents/([^/]+)", path)
        own_intent = method == "GET" and intent is not None and intent[1] in self.payment_intents
        if checkout is None and not own_intent:
            status, extra, content = self._forward(method, path, query, headers, body)
            record.status = status
            return status, extra, content
        if not _secret_key(record.headers.get("authorization") or "").startswith("sk_"):
            status, answer = _error(401, "You did not provide an API key.")
            record.status = status
            return status, {}, json.dumps(answer).encode()
        key = record.headers.get("idempotency-key")
        scope = (record.headers["authorization"], key)
        fingerprint = (path, body)
        extra = {}
        with self.lock:
            if method == "POST" and key and scope in self._replays:
                first, status, content = self._replays[scope]
                record.replayed = True
                if first != fingerprint:
                    status, answer = _error(
                        400, "Keys for idempotent requests can only be used with the same parameters they were first "
                             f"used with. Try using a key other than '{key}' if you meant to execute a different "
                             "request.", type_="idempotency_error")
                    record.status = status
                    return status, {}, json.dumps(answer).encode()
                record.status = status
                return status, {"Idempotent-Replayed": "true"}, content
            try:
                if own_intent:
                    answer = self._payment_intent(intent[1], record.params.get("expand") or [])
                elif checkout[1] is None and method == "POST":
                    answer = self._create(record.params)
                elif checkout[1] is not None and checkout[2] and method == "POST":
                    answer = self._expire(checkout[1])
                elif checkout[1] is not None and not checkout[2] and method == "GET":
                    answer = self._public(self._current(checkout[1]))
                else:
                    raise Refused(*_error(404, f"Unrecognized request URL ({method}: {path})."))
                status = 200
            except Refused as refused:
                status, answer = refused.status, refused.body
            content = json.dumps(answer).encode()
            # Stripe saves the result of a request that ran, not of one it rejected before running it.
            if method == "POST" and key and status < 400:
                self._replays[scope] = (fingerprint, status, content)
            record.status = status
            return status, extra, content

    def _create(self, params: dict) -> dict:
        unknown = sorted(set(params) - SESSION_PARAMS)
        if unknown:
            raise Refused(*_error(400, f"Received unknown parameter: {unknown[0]}", code="parameter_unknown",
                                  param=unknown[0]))
        mode = params.get("mode")
        if mode not in ("payment", "setup", "subscription"):
            raise Refused(*_error(400, "Missing required param: mode." if mode is None else
                                  f"Invalid mode: must be one of payment, setup, or subscription",
                                  code="parameter_missing" if mode is None else "parameter_invalid_string",
                                  param="mode"))
        intent_data = params.get("payment_intent_data") or {}
        unknown = sorted(set(intent_data) - PAYMENT_INTENT_DATA_PARAMS)
        if unknown:
            raise Refused(*_error(400, f"Received unknown parameter: payment_intent_data[{unknown[0]}]",
                                  code="parameter_unknown", param=f"payment_intent_data[{unknown[0]}]"))
        lines = params.get("line_items")
        if mode == "payment" and not lines:
            raise Refused(*_error(400, "You must provide at least one line item when `mode` is `payment`.",
                                  code="parameter_missing", param="line_items"))
        total, currencies = 0, set()
        for i, line in enumerate(lines or []):
            price = line.get("price_data") or {}
            name = (price.get("product_data") or {}).get("name")
            if not price or not name or not price.get("currency") or not str(price.get("unit_amount", "")).isdigit():
                raise Refused(*_error(400, "Each line item needs a price, or price_data with a currency, a "
                                      "unit_amount and product_data[name].", code="parameter_missing",
                                      param=f"line_items[{i}][price_data]"))
            if not str(line.get("quantity", "")).isdigit() or int(line["quantity"]) < 1:
                raise Refused(*_error(400, "Quantity is required. Add `quantity` to `line_items[0]`",
                                      code="parameter_missing", param=f"line_items[{i}][quantity]"))
            total += int(price["unit_amount"]) * int(line["quantity"])
            currencies.add(price["currency"].lower())
        if len(currencies) > 1:
            raise Refused(*_error(400, "All line items must be in the same currency.", param="line_items"))
        customer = params.get("customer")
        if customer is not None and self._localstripe("GET", f"/v1/customers/{customer}").status_code != 200:
            raise Refused(*_error(400, f"No such customer: '{customer}'", code="resource_missing", param="customer"))
        now = int(time.time())
        expires_at = int(params.get("expires_at") or now + 24 * 3600)
        if not now + 30 * 60 <= expires_at <= now + 24 * 3600 + 60:
            raise Refused(*_error(400, "The `expires_at` timestamp must be between 30 minutes and 24 hours after "
                                  "the Checkout Session's creation.", code="parameter_invalid_integer",
                                  param="expires_at"))
        currency = next(iter(currencies), None)
        session_id = f"cs_test_{secrets.token_hex(24)}"
        metadata = dict(params.get("metadata") or {})
        session = {
            "id": session_id, "object": "checkout.session", "after_expiration": None, "allow_promotion_codes": None,
            "amount_subtotal": total, "amount_total": total,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_address_collection": None, "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"), "client_secret": None, "consent": None,
            "consent_collection": None, "created": now, "currency": currency, "custom_fields": [],
            "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                            "terms_of_service_acceptance": None},
            "customer": customer, "customer_creation": None, "customer_details": None,
            "customer_email": params.get("customer_email"), "expires_at": expires_at, "invoice": None,
            "invoice_creation": {"enabled": False, "invoice_data": {}}, "livemode": False, "locale": None,
            "metadata": metadata, "mode": mode, "payment_intent": None, "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_configuration_details": (None if params.get("payment_method_types")
                                                     else {"id": "pmc_standin", "parent": None}),
            "payment_method_options": {},
            "payment_method_types": params.get("payment_method_types") or DYNAMIC_METHODS.get(currency,
                                                                                                ["card", "link"]),
            "payment_status": "unpaid", "phone_number_collection": {"enabled": False}, "recovered_from": None,
            "setup_intent": None, "shipping_address_collection": None, "shipping_cost": None,
            "shipping_details": None, "shipping_options": [], "status": "open", "submit_type": None,
            "subscription": None, "success_url": params.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}, "ui_mode": "hosted",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}#standin",
            "_payment_intent_data": intent_data, "_line_items": lines,
        }
        self.sessions[session_id] = session
        return self._public(session)

    def _expire(self, session_id: str) -> dict:
        session = self._current(session_id)
        if session["status"] != "open":
            raise Refused(*_error(400, "Only Checkout Sessions with a status in [\"open\"] can be expired.",
                                  param="session"))
        session.update(status="expired", url=None)
        return self._public(session)

    def _current(self, session_id: str) -> dict:
        session = self.sessions.get(session_id)
        if session is None:
            raise Refused(*_error(404, f"No such checkout.session: '{session_id}'", code="resource_missing",
                                  param="session"))
        if session["status"] == "open" and session["expires_at"] <= time.time():
            session.update(status="expired", url=None)
        return session

    @staticmethod
    def _public(session: dict) -> dict:
        return {k: v for k, v in session.items() if not k.startswith("_")}

    def _payment_intent(self, intent_id: str, expand: list) -> dict:
        intent = json.loads(json.dumps(self.payment_intents[intent_id]))
        if "latest_charge" not in expand:
            intent["latest_charge"] = intent["latest_charge"]["id"]
        return intent

    # --- payments --------------------------------------------------------------------------------

    def _localstripe(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.localstripe_url}{path}", auth=(self.secret_key, ""), timeout=5,
                                **kwargs)

    def card_payment(self, customer: str, amount: int, currency: str, metadata: dict) -> str:
        """A Visa payment confirmed at localstripe, as Checkout confirms one; returns the PaymentIntent id."""
        card = self._localstripe("POST", "/v1/payment_methods", data={
            "type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2030",
            "card[cvc]": "123", "billing_details[name]": "Ada Lovelace"})
        card.raise_for_status()
        data = {"amount": amount, "currency": currency, "customer": customer, "payment_method": card.json()["id"],
                "confirm": "true", **{f"metadata[{k}]": v for k, v in metadata.items()}}
        intent = self._localstripe("POST", "/v1/payment_intents", data=data)
        intent.raise_for_status()
        assert intent.json()["status"] == "succeeded", intent.json()
        return intent.json()["id"]

    def _own_payment(self, customer: str, amount: int, currency: str, metadata: dict, method: str) -> str:
        details = json.loads(json.dumps(METHODS[method]))
        intent_id = f"pi_{secrets.token_hex(12)}"
        delayed = method in DELAYED
        charge = {"id": f"py_{secrets.token_hex(12)}" if delayed else f"ch_{secrets.token_hex(12)}",
                  "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": 0,
                  "captured": True, "created": int(time.time()), "currency": currency, "customer": customer,
                  "failure_code": None, "failure_message": None, "livemode": False, "metadata": {},
                  "paid": not delayed, "payment_intent": intent_id,
                  "payment_method": f"pm_{secrets.token_hex(12)}", "payment_method_details": details,
                  "refunded": False, "status": "pending" if delayed else "succeeded"}
        self.payment_intents[intent_id] = {
            "id": intent_id, "object": "payment_intent", "amount": amount, "amount_received": 0 if delayed else amount,
            "currency": currency, "customer": customer, "latest_charge": charge, "last_payment_error": None,
            "livemode": False, "metadata": metadata, "payment_method": charge["payment_method"],
            "payment_method_types": [details["type"]], "status": "processing" if delayed else "succeeded"}
        return intent_id

    def _forward(self, method: str, path: str, query: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        passed = {k: v for k, v in headers.items()
                  if k.lower() in ("authorization", "content-type", "idempotency-key", "stripe-version")}
        response = requests.request(method, f"{self.localstripe_url}{path}" + (f"?{query}" if query else ""),
                                    headers=passed, data=body or None, timeout=10)
        extra = {k: v for k, v in response.headers.items() if k.lower() == "idempotent-replayed"}
        return response.status_code, extra, response.content


def _secret_key(authorization: str) -> str:
    """The API key of a request: Stripe takes it as a bearer token or as the user name of basic auth."""
    scheme, _, value = authorization.partition(" ")
    if scheme == "Bearer":
        return value
    if scheme == "Basic":
        try:
            return base64.b64decode(value).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


class _Handler(BaseHTTPRequestHandler):
    owner: CheckoutStandIn
    protocol_version = "HTTP/1.1"

    def _answer(self):
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, extra, content = self.owner.handle(self.command, parts.path, parts.query, dict(self.headers.items()),
                                                   body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(7)}")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format, *args):  # keep test output quiet
        pass


# --- webhooks, signed the way Stripe signs them --------------------------------------------------

def stripe_signature(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """``Stripe-Signature``: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>" with the signing secret>``."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"


def signed_webhook(event: dict, secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict]:
    """The body and headers of Stripe's POST delivering ``event`` to a webhook endpoint."""
    payload = json.dumps(event, indent=2).encode()
    return payload, {"Content-Type": "application/json; charset=utf-8",
                     "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                     "Stripe-Signature": stripe_signature(payload, secret, timestamp=timestamp)}
