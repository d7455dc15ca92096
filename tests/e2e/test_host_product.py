"""The seed doc's path end to end, with the product in front of the portal played by a tiny Flask app started
here: in the product, "Manage plan" → the browser is sent to the portal → Billing details, signed in.

The product does only what a real one would: it talks to the portal's API with its key (creates a plan, its
customer's account and subscription, a webhook endpoint), makes a portal session when its user presses
"Manage plan", and verifies the webhooks it receives with the README's snippet.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
import requests
from flask import Flask, redirect, request
from playwright.sync_api import expect
from werkzeug.serving import make_server

from portal.models import utcnow

from ..helpers import bearer, make_api_key, readme_webhook_verifier
from ..integration.test_renewal_workers import portal_env
from .test_cards_sandbox import fill_card, open_add_form, toast


class HostProduct:
    """The product: a settings page with a "Manage plan" button, and a webhook receiver."""

    def __init__(self):
        self.portal_url = self.api_key = ""
        self.received: list[dict] = []
        app = Flask("acme_app")

        @app.get("/settings")
        def settings_page():
            return ("<!doctype html><title>Acme App</title><h1>Acme App settings</h1>"
                    '<form method="post" action="/manage-plan"><button>Manage plan</button></form>')

        @app.post("/manage-plan")
        def manage_plan():
            # The signed-in user of the product is "acct_42"'s Ada; the product's server asks for a portal session.
            answer = requests.post(f"{self.portal_url}/api/v1/portal-sessions", headers=bearer(self.api_key),
                                   json={"account": "acct_42", "email": "ada@acme.example",
                                         "return_url": f"{self.url}/settings"}, timeout=10)
            answer.raise_for_status()
            return redirect(answer.json()["url"], code=303)

        @app.post("/hooks")
        def hooks():
            self.received.append({"body": request.get_data(), "signature": request.headers.get("Portal-Signature")})
            return "", 204

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        answer = requests.request(method, f"{self.portal_url}/api/v1{path}", headers=bearer(self.api_key),
                                  json=body, timeout=10)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def events(self, secret: str) -> list[dict]:
        """What the receiver got, each delivery's signature checked with the README's verification code."""
        verify = readme_webhook_verifier()
        assert all(verify(secret, item["body"], item["signature"]) for item in self.received)
        return [json.loads(item["body"]) for item in self.received]

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def product():
    host = HostProduct()
    yield host
    host.stop()


def worker_pass(database_url: str, now) -> None:
    """``portal worker --once --now …`` in its own process, as an operator moving the demo's clock would."""
    done = subprocess.run([sys.executable, "-m", "portal.cli", "worker", "--once", "--now", now.isoformat()],
                          env=portal_env(database_url), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_product_hands_its_user_to_billing_and_hears_when_paid_access_ends(page, live_server_factory, session,
                                                                               database_url, product):
    server = live_server_factory(allowed_return_origins=product.url, product_name="Acme App")
    product.portal_url, product.api_key = server.url, make_api_key(session, name="acme-app backend")

    # The product's set-up, through the API only.
    secret = product.api("POST", "/webhook-endpoints", {"url": f"{product.url}/hooks"})["secret"]
    product.api("POST", "/plans", {"code": "team-monthly", "name": "Team", "interval": "month", "price": 4900,
                                   "currency": "USD"})
    product.api("PUT", "/accounts/acct_42", {
        "name": "Acme Analytics Inc.", "billing_email": "billing@acme.example",
        "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "01101", "region": "MA",
                    "country": "US"}})
    product.api("POST", "/accounts/acct_42/users", {"email": "ada@acme.example", "name": "Ada Lovelace"})
    subscription = product.api("POST", "/accounts/acct_42/subscriptions", {"plan": "team-monthly", "trial_days": 14})
    assert product.api("GET", "/accounts/acct_42/entitlements")["paid_access"] is True

    # In the product: Manage plan → the portal, signed in, with the way back.
    page.goto(f"{product.url}/settings")
    page.get_by_role("button", name="Manage plan").click()
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/billing$"))
    expect(page.get_by_role("heading", name="Billing details")).to_be_visible()
    expect(page.get_by_text("ada@acme.example")).to_be_visible()

    # A card the processor accepts now and declines at the first charge.
    fill_card(open_add_form(page), number="4000 0000 0000 0341", default=True)
    expect(toast(page)).to_contain_text("Visa •••• 0341 was added")

    page.get_by_role("link", name="← Back to Acme App").click()
    expect(page).to_have_url(f"{product.url}/settings")
    expect(page.get_by_role("heading", name="Acme App settings")).to_be_visible()

    # The worker delivers what happened so far: the subscription the product started.
    worker_pass(database_url, utcnow())
    created = [e for e in product.events(secret) if e["type"] == "subscription.created"]
    assert [e["data"]["object"]["id"] for e in created] == [subscription["id"]]
    assert created[0]["data"]["object"]["account"] == "acct_42"

    # The trial ends and the first charge is declined: the product hears that paid access is gone.
    worker_pass(database_url, utcnow() + timedelta(days=15))
    worker_pass(database_url, utcnow() + timedelta(days=15, minutes=5))  # the next pass delivers the events
    flips = [e["data"]["object"] for e in product.events(secret) if e["type"] == "entitlements.updated"]
    assert flips and flips[-1] == {**flips[-1], "account": "acct_42", "paid_access": False, "status": "past_due"}
    assert product.api("GET", "/accounts/acct_42/entitlements")["paid_access"] is False
    failed = [e for e in product.events(secret) if e["type"] == "invoice.payment_failed"]
    assert len(failed) == 1
