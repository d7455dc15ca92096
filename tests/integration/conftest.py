"""Stripe mode against a real localstripe server (a fake of Stripe's API that also serves a Stripe.js stand-in).

localstripe runs as a subprocess through a few lines of launcher instead of its ``localstripe`` command, because
the command listens on every interface (``::``), and pickles its whole store to the fixed path
``/tmp/localstripe.pickle`` on every write, a file every run on the host shares. The launcher listens on
127.0.0.1 only, on a port the OS picks, and keeps the store in memory (as ``--from-scratch`` does, nothing is
read from disk either).

The launcher also closes three gaps between localstripe and Stripe that the gateway depends on, each the way
Stripe documents the behaviour, so the tests check our code rather than localstripe's shortcuts:

* ``Idempotency-Key`` is ignored by localstripe. Stripe replays the first result for a repeated key and
  refuses (``idempotency_error``) the same key with different parameters.
* A PaymentMethod update replaces the whole ``card`` and ``billing_details`` hashes in localstripe (the card
  loses its last4 and brand). Stripe changes only the fields sent.
* A SetupIntent that succeeds leaves its PaymentMethod unattached in localstripe. Stripe attaches it to the
  SetupIntent's customer.

Every test starts with an empty Stripe account: the store is flushed after each test that uses it.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import requests

from portal.config import load_settings
from portal.payments.stripe_gateway import StripeGateway

from ..conftest import serve
from ..helpers import Browser

SECRET_KEY = "sk_test_localstripe"
PUBLISHABLE_KEY = "pk_test_localstripe"

LAUNCHER = r'''
import re
import socket
import sys

from aiohttp import web
from localstripe import server
from localstripe.errors import UserError
from localstripe.resources import PaymentMethod, Store, store, try_convert_to_int

Store.dump_to_disk = lambda self: None

_update = PaymentMethod._update


def _update_changed_fields_only(self, card=None, billing_details=None, **data):
    if card is not None and (type(card) is not dict or not set(card) <= {"exp_month", "exp_year"}):
        raise UserError(400, "Bad request")
    _update(self, **data)
    if card:
        self.card = {**self.card, **{k: try_convert_to_int(v) for k, v in card.items()}}
    if billing_details:
        self.billing_details = {**self.billing_details, **billing_details}


PaymentMethod._update = _update_changed_fields_only

replays = {}


@web.middleware
async def idempotency(request, handler):
    if request.method == "DELETE" and request.path == "/_config/data":
        replays.clear()
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    scope = (request.headers.get("Authorization", ""), key)
    fingerprint = (request.path, await request.read())
    if scope in replays:
        first, status, body = replays[scope]
        if first != fingerprint:
            return web.json_response({"error": {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used with the same parameters they were "
                           f"first used with. Try using a key other than '{key}' if you meant to execute a "
                           "different request."}}, status=400)
        return web.Response(body=body, status=status, content_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    response = await handler(request)
    # Stripe saves a result once the endpoint ran (a card decline included), not a request it rejected.
    if response.status < 400 or response.status == 402:
        replays[scope] = (fingerprint, response.status, response.body)
    return response


CONFIRM = re.compile(r"^/v1/setup_intents/(\w+)/confirm$")


@web.middleware
async def attach_on_success(request, handler):
    response = await handler(request)
    match = CONFIRM.match(request.path)
    if match and response.status == 200:
        intent = store.get("setup_intent:" + match[1])
        if intent is not None and intent.status == "succeeded" and intent.customer and intent.payment_method:
            PaymentMethod._api_retrieve(intent.payment_method).customer = intent.customer
    return response


server.app.middlewares.insert(0, attach_on_success)
server.app.middlewares.insert(0, idempotency)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
web.run_app(server.app, sock=sock, print=None, access_log=None)
'''


@dataclass
class LocalStripe:
    url: str
    process: subprocess.Popen

    def reset(self) -> None:
        requests.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def get(self, path: str) -> dict:
        """Read an object the way our server would, with the secret key."""
        response = requests.get(f"{self.url}{path}", auth=(SECRET_KEY, ""), timeout=5)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("localstripe")
    log = open(workdir / "localstripe.log", "wb")
    process = subprocess.Popen([sys.executable, "-c", LAUNCHER], cwd=workdir, stdout=subprocess.PIPE, stderr=log,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def failed(why: str):
        process.kill()
        process.wait()
        log.close()
        pytest.fail(f"localstripe {why}: {(workdir / 'localstripe.log').read_text()[-2000:]}")

    ready, _, _ = select.select([process.stdout], [], [], 20)
    line = process.stdout.readline().strip() if ready else b""
    if not line.isdigit():
        failed("did not start")
    server = LocalStripe(url=f"http://127.0.0.1:{int(line)}", process=process)
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{server.url}/js.stripe.com/v3/", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                failed("did not answer")
            time.sleep(0.05)
    yield server
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stdout.close()
    log.close()


@pytest.fixture
def localstripe(localstripe_server):
    """localstripe, emptied after the test so that the next one starts with a fresh Stripe account."""
    yield localstripe_server
    localstripe_server.reset()


@pytest.fixture(scope="session")
def standin_server(localstripe_server):
    """The Checkout stand-in in front of localstripe (``checkout_standin``), for tests that open Checkout."""
    from .checkout_standin import CheckoutStandIn

    standin = CheckoutStandIn(localstripe_server.url, SECRET_KEY).start()
    yield standin
    standin.stop()


@pytest.fixture
def standin(standin_server, localstripe):
    yield standin_server
    standin_server.reset()


@pytest.fixture(scope="session")
def setup_standin_server(localstripe_server):
    """The SetupIntent stand-in (``setup_standin``: PayPal, US bank accounts and SEPA with mandates) in front of
    localstripe, for what localstripe cannot save."""
    from .setup_standin import SetupStandIn

    standin = SetupStandIn(localstripe_server.url, SECRET_KEY).start()
    yield standin
    standin.stop()


@pytest.fixture
def setup_standin(setup_standin_server, localstripe):
    yield setup_standin_server
    setup_standin_server.reset()


@pytest.fixture
def stripe_overrides(localstripe) -> dict:
    """Settings that put the portal in Stripe mode against localstripe, Stripe.js stand-in included."""
    return {"stripe_secret_key": SECRET_KEY, "stripe_publishable_key": PUBLISHABLE_KEY,
            "stripe_api_base": localstripe.url, "stripe_js_url": f"{localstripe.url}/js.stripe.com/v3/"}


@pytest.fixture
def stripe_settings(database_url, tmp_path, stripe_overrides):
    return load_settings(overrides={
        "database_url": database_url, "secret_key": "test-secret-key", "testing": True, "secure_cookies": False,
        "instance_path": tmp_path / "instance", "ratelimit_storage_url": "memory://", **stripe_overrides,
    })


@pytest.fixture
def stripe_app(stripe_settings, database):
    yield from serve(stripe_settings, database)


@pytest.fixture
def stripe_gateway(stripe_app) -> StripeGateway:
    gateway = stripe_app.extensions["portal.gateway"]
    assert isinstance(gateway, StripeGateway)
    return gateway


@pytest.fixture
def stripe_browser(stripe_app) -> Browser:
    return Browser(stripe_app.test_client())


class StripeJs:
    """What Stripe.js does in the customer's browser, as localstripe's stand-in does it: requests signed with
    the publishable key and the SetupIntent's client secret, never with our secret key."""

    def __init__(self, url: str):
        self.url = url

    def _post(self, client_secret: str, action: str, **body) -> requests.Response:
        intent_id = client_secret.split("_secret_")[0]
        # The stand-in sends JSON as a text/plain body so that the browser needs no CORS preflight.
        return requests.post(f"{self.url}/v1/setup_intents/{intent_id}/{action}", timeout=5, data=json.dumps(
            {"key": PUBLISHABLE_KEY, "use_stripe_sdk": True, "client_secret": client_secret, **body}))

    def confirm_card_setup(self, client_secret: str, *, number: str = "4242424242424242", exp_month: str = "12",
                           exp_year: str = "2030", cvc: str = "123", name: str = "Ada Lovelace") -> requests.Response:
        return self._post(client_secret, "confirm", payment_method_data={
            "type": "card", "card": {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc},
            "billing_details": {"name": name, "address": {"postal_code": "10001"}}})

    def complete_authentication(self, client_secret: str) -> requests.Response:
        """The 3-D Secure modal's "Complete authentication"."""
        return self._post(client_secret, "confirm")

    def fail_authentication(self, client_secret: str) -> requests.Response:
        """The 3-D Secure modal's "Fail authentication"."""
        return self._post(client_secret, "cancel")


@pytest.fixture
def stripe_js(localstripe) -> StripeJs:
    return StripeJs(localstripe.url)
