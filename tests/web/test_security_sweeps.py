"""Sweeps generated from the app's URL map, so a new route is covered the day it is added:
every mutating route needs a CSRF token, every route with an object id answers 404 for another account's
object, every portal route refuses anonymous users, and no GET changes anything."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.billing.payment_methods import cards, paypal
from portal.billing.collecting import checkout
from portal.audit import Actor
from portal.billing.subscriptions.renewals import run_renewals
from portal.billing.invoicing.seller import Seller
from portal.models import Base, Invoice, OutboxMessage, PaymentAttempt, PaymentMethod, Subscription, utcnow
from portal.notifications.sender import send_pending
from portal.notifications.transports import FileTransport
from portal.payments.gateway import CardDetails

from ..helpers import POLICY, Browser, add_card, make_customer, make_invoice, make_staff, make_subscription

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Open to anyone, each for a stated reason.
PUBLIC = {
    "static",                   # CSS, JS, images
    "health.healthz",           # load balancers
    "auth.index",               # sends people to login or to their page
    "auth.login", "auth.login_submit",
    "auth.logout",              # harmless when logged out
    "auth.email_link",          # "Email me a sign-in link" on the login page, for people who are not logged in
    "sign_in.landing", "sign_in.redeem",  # a portal-session or e-mailed link: the token is the credential
    "webhooks.stripe_webhook",  # protected by Stripe's signature instead (tests/integration/test_checkout_stripe.py)
    "api-docs.openapi_json",    # the API's OpenAPI document: describes the API, holds no data
}
CSRF_EXEMPT = {"webhooks.stripe_webhook"}
# The server-to-server API's blueprints (portal/web/api_v1/): a bearer key, never a cookie, lets a request in,
# so they need no CSRF token (a forged cross-site request carries cookies only) and a logged-in browser gets
# 401 there like a stranger. Their own sweeps are tests/web/test_api_framework.py and the Schemathesis run.
API_ENDPOINTS = "api_v1_"


def is_api_route(rule) -> bool:
    return rule.endpoint.startswith(API_ENDPOINTS)
# Tables that may change on a GET because they are caches, not state: a PDF rendered once per version.
CACHES = {"invoice_pdfs"}


def fingerprint(database, *, leave_out=frozenset()) -> str:
    """A digest of every row of every table (bar caches and ``leave_out``): any change anywhere shows."""
    digest = hashlib.sha256()
    with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in CACHES or table.name in leave_out:
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            digest.update(f"{table.name}:{rows!r}".encode())
    return digest.hexdigest()


class SandboxCards:
    """How a world saves cards in sandbox mode: the test card numbers, confirmed at once."""

    def save(self, session, gateway, account, *, number="4242424242424242", default=False):
        return add_card(session, gateway, account, number=number, default=default)

    def pending(self, session, gateway, account, key: str) -> str:
        """A card waiting for its 3-D Secure step (the sandbox's authenticate page)."""
        intent = cards.start_card_setup(session, gateway, account.id, save_as_default=False, idempotency_key=key,
                                        card=CardDetails(number="4000002500003155", exp_month=12, exp_year=2030,
                                                         cvc="123", cardholder_name="X"))
        assert intent.status == "requires_action"
        return intent.id

    def pending_paypal(self, session, gateway, account, key: str) -> str:
        """A PayPal account waiting for approval on the sandbox's test PayPal page."""
        intent = paypal.start_paypal_setup(session, gateway, account.id, save_as_default=False,
                                           return_url="http://x/billing", idempotency_key=key)
        assert intent.status == "requires_action" and intent.next_action == "redirect_to_url"
        return intent.id


# The data states every GET is swept in: each one renders different branches of the same pages.
STATES = ["default", "default_card_not_first", "past_due"]


class World:
    """Two customers with one of everything each, so every kind of id has an owner and a stranger.

    ``state`` decides how the logged-in customer ("mine") is seeded; the stranger always gets the default.
    Everything goes through the services the app uses (cards, renewals, Pay now, the outbox sender).
    """

    def __init__(self, app, session, gateway, *, state: str = "default", card_seeder=None, send_notices=True):
        self.app = app
        self.session, self.gateway = session, gateway
        # Sending renders each invoice's PDF attachment, a second or so per world: worth it where a page shows
        # what was sent, skipped by tests that don't look.
        self.send_notices = send_notices
        self.cards = card_seeder or SandboxCards()
        self.mine, _ = make_customer(session, region="MA", postal_code="01101")
        self.theirs, _ = make_customer(session, email="mallory@example.com", billing_email="m@example.com",
                                       region="MA", postal_code="01101")
        self.staff = make_staff(session)
        self.objects = {"mine": getattr(self, f"_seed_{state}")(self.mine, "mine"),
                        "theirs": self._seed_default(self.theirs, "theirs")}

    def _objects(self, account, name, card, invoice) -> dict:
        objects = {"card_id": card.id, "invoice_id": invoice.id, "account_id": account.id, "filename": "css/app.css",
                   # A sign-in link's landing page renders for any token (the POST checks it).
                   "token": f"sweep-token-{name}",
                   # The API's ids (its routes answer 401 to browsers; they are swept with a key elsewhere).
                   "code": "pro-monthly", "external_id": f"ext-{name}", "endpoint_id": "we_1"}
        if self.app.extensions["portal.settings"].processor == "sandbox":
            # Only the sandbox has pages of its own for these (Stripe hosts its 3-D Secure step and Checkout).
            objects["setup_intent_id"] = self.cards.pending(self.session, self.gateway, account, f"sweep-{name}")
            objects["paypal_intent_id"] = SandboxCards().pending_paypal(self.session, self.gateway, account,
                                                                        f"sweep-paypal-{name}")
        objects["session_id"] = self._pay_now_started(account, invoice)
        return objects

    def _pay_now_started(self, account, invoice) -> str:
        """Pay now clicked and the payment page left open: an open Checkout Session and a pending attempt."""
        url = checkout.start_checkout(self.session, self.gateway, account.id, invoice.id,
                                      success_url="http://x/s?session_id={CHECKOUT_SESSION_ID}",
                                      cancel_url="http://x/c", now=utcnow())
        self.session.expire_all()
        attempt = self.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id,
                                                                   PaymentAttempt.trigger == "customer"))
        assert attempt.status == "pending" and attempt.checkout_session_id and attempt.checkout_url == url
        return attempt.checkout_session_id

    def _seed_default(self, account, name) -> dict:
        make_subscription(self.session, account)
        card = self.cards.save(self.session, self.gateway, account, default=True)
        self.cards.save(self.session, self.gateway, account, number="5555555555554444")
        invoice = make_invoice(self.session, account)
        return self._objects(account, name, card, invoice)

    def _seed_default_card_not_first(self, account, name) -> dict:
        """Three cards, the default being the second one saved (set default after the fact, as a customer
        does), and an Open invoice whose Pay now was started but not finished."""
        make_subscription(self.session, account)
        first = self.cards.save(self.session, self.gateway, account)
        second = self.cards.save(self.session, self.gateway, account, number="5555555555554444")
        self.cards.save(self.session, self.gateway, account, number="4000056655665556")  # Visa debit
        cards.set_default_card(self.session, self.gateway, account.id, second.id, actor=Actor.system(), now=utcnow())
        self.session.expire_all()
        saved = self.session.scalars(select(PaymentMethod).where(PaymentMethod.account_id == account.id)
                                     .order_by(PaymentMethod.id)).all()
        assert [card.is_default for card in saved] == [False, True, False]
        invoice = make_invoice(self.session, account)
        return self._objects(account, name, first, invoice)

    def _seed_past_due(self, account, name) -> dict:
        """The renewal two days ago failed on a card that saves but declines charges: Past due, the
        failure notice sent, the automatic retries still to come."""
        database = self.app.extensions["portal.db"]
        settings = self.app.extensions["portal.settings"]
        renewed_at = utcnow() - timedelta(days=2)
        card = self.cards.save(self.session, self.gateway, account, number="4000000000000341", default=True)
        subscription = make_subscription(self.session, account, period_end=renewed_at - timedelta(hours=1))
        run_renewals(database, self.gateway, Seller.from_settings(settings), now=renewed_at, policy=POLICY)
        if self.send_notices:
            # The outbox stamps messages with the real clock, so the pass that sends them runs at the real now.
            send_pending(database, FileTransport(settings.instance_path / "mail"), now=utcnow())
        self.session.expire_all()
        invoice = self.session.scalar(select(Invoice).where(Invoice.subscription_id == subscription.id))
        assert self.session.get(Subscription, subscription.id).status == "past_due"
        assert invoice.status == "open" and invoice.next_retry_at > utcnow()
        assert [a.status for a in self.session.scalars(select(PaymentAttempt).where(
            PaymentAttempt.invoice_id == invoice.id))] == ["failed"]
        notices = self.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "payment_failed")).all()
        assert notices and all((notice.sent_at is not None) == self.send_notices for notice in notices)
        return self._objects(account, name, card, invoice)

    def args(self, rule, owner: str) -> dict:
        values = {}
        for arg in rule.arguments:
            if arg not in self.objects[owner]:
                pytest.fail(f"route {rule.rule} takes <{arg}>: teach tests/web/test_security_sweeps.py "
                            f"how to make one for the sweeps")
            values[arg] = self.objects[owner][arg]
        return values


@pytest.fixture
def world(app, session, gateway):
    return World(app, session, gateway)


def rules(app, *, methods=None, public=False):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in PUBLIC and not public:
            continue
        if methods and not (rule.methods & methods):
            continue
        yield rule


def url_for_rule(app, rule, values) -> str:
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def login_for(app, rule, world) -> Browser:
    browser = Browser(app.test_client())
    staff_route = rule.endpoint.split(".")[0].startswith("staff")
    browser.login("sam@support.example" if staff_route else "ada@example.com")
    return browser


def test_every_mutating_route_refuses_a_request_without_a_csrf_token(app, database, world):
    checked = 0
    for rule in rules(app, methods=MUTATING, public=True):
        if rule.endpoint in CSRF_EXEMPT or is_api_route(rule):
            continue
        browser = login_for(app, rule, world)
        url = url_for_rule(app, rule, world.args(rule, "mine"))
        before = fingerprint(database)
        for htmx in (False, True):
            response = browser.post(url, {}, csrf=False, htmx=htmx)
            assert response.status_code == 400, f"{rule.endpoint} accepted a POST without a CSRF token"
        assert fingerprint(database) == before, f"{rule.endpoint} changed data without a CSRF token"
        checked += 1
    assert checked >= 15


def test_every_portal_route_refuses_anonymous_users(app, world):
    checked = 0
    for rule in rules(app):
        client = app.test_client()
        url = url_for_rule(app, rule, world.args(rule, "mine"))
        token_source = Browser(client)
        token_source.get("/login")
        for method in sorted(rule.methods & ({"GET"} | MUTATING)):
            data = {"csrf_token": token_source.token} if method != "GET" else None
            plain = client.open(url, method=method, data=data)
            htmx = client.open(url, method=method, data=data, headers={"HX-Request": "true"})
            assert plain.status_code in (302, 401), f"{method} {rule.rule} answered {plain.status_code} to a stranger"
            if plain.status_code == 302:
                assert "/login" in plain.headers["Location"], rule.rule
            assert htmx.status_code == 401, f"{method} {rule.rule} (HTMX) answered {htmx.status_code}"
            checked += 1
    assert checked >= 25


def sweep_every_get(app, database, world) -> dict[str, int]:
    """GET every route (page and HTMX partial) as its user would; fail if one answers 5xx or changes a row.
    Returns each rule's status code, so callers can check that the world let the pages really render."""
    answered = {}
    for rule in rules(app, methods={"GET"}, public=True):
        browser = login_for(app, rule, world)
        url = url_for_rule(app, rule, world.args(rule, "mine"))
        before = fingerprint(database)
        for htmx in (False, True):
            response = browser.get(url, htmx=htmx)
            assert response.status_code < 500, f"GET {rule.rule} failed with {response.status_code}"
            answered[f"{rule.rule}{' (HTMX)' if htmx else ''}"] = response.status_code
        assert fingerprint(database) == before, f"GET {rule.rule} changed data"
    return answered


@pytest.mark.parametrize("state", STATES)
def test_no_get_request_changes_anything(app, database, session, gateway, state):
    world = World(app, session, gateway, state=state)
    answered = sweep_every_get(app, database, world)
    assert len(answered) >= 30
    # Every id in the sweep is the customer's own, so a 404 would mean the page was never rendered.
    assert [rule for rule, status in answered.items() if status == 404] == []


def test_every_route_with_an_object_id_answers_404_for_another_accounts_object(app, database, world):
    checked = 0
    for rule in rules(app):
        if not rule.arguments or is_api_route(rule):
            continue  # the API has no accounts of its own to keep apart: its unknown ids are in test_api_*.py
        browser = login_for(app, rule, world)
        if rule.endpoint.split(".")[0].startswith("staff"):
            continue  # staff see every account by design; customers meet these in the test below
        url = url_for_rule(app, rule, world.args(rule, "theirs"))
        before = fingerprint(database)
        for method in sorted(rule.methods & ({"GET"} | MUTATING)):
            for htmx in (False, True):
                response = browser.get(url, htmx=htmx) if method == "GET" else browser.post(url, {}, htmx=htmx)
                assert response.status_code == 404, f"{method} {rule.rule} answered {response.status_code} for " \
                                                     f"another account's object"
        assert fingerprint(database) == before, f"{rule.rule} changed another account's data"
        checked += 1
    assert checked >= 10


def test_customers_get_404_on_every_staff_route(app, database, world):
    browser = Browser(app.test_client())
    browser.login("ada@example.com")
    checked = 0
    for rule in rules(app):
        if not rule.endpoint.split(".")[0].startswith("staff"):
            continue
        url = url_for_rule(app, rule, world.args(rule, "theirs"))
        for method in sorted(rule.methods & ({"GET"} | MUTATING)):
            response = browser.get(url) if method == "GET" else browser.post(url, {})
            assert response.status_code == 404, f"{method} {rule.rule} answered {response.status_code} to a customer"
            checked += 1
    assert checked >= 1


# 20 digits: past PostgreSQL's integer (and SQLite's 64-bit) range, where a query would fail instead of finding
# nothing.
HUGE_ID = 10**20 - 1


@pytest.mark.parametrize("who", ["customer", "staff"])
def test_an_id_past_the_databases_range_in_any_route_answers_404_and_changes_nothing(app, database, world, who):
    browser = Browser(app.test_client())
    browser.login("ada@example.com" if who == "customer" else "sam@support.example")
    checked = 0
    for rule in rules(app, public=True):
        values = world.args(rule, "mine")
        ids = [name for name, value in values.items() if isinstance(value, int)]
        if not ids:
            continue
        for name in ids:
            url = url_for_rule(app, rule, {**values, name: HUGE_ID})
            before = fingerprint(database)
            for method in sorted(rule.methods & ({"GET"} | MUTATING)):
                for htmx in (False, True):
                    response = browser.get(url, htmx=htmx) if method == "GET" else \
                        browser.post(url, {"amount": "5", "reason": "x"}, htmx=htmx)
                    assert response.status_code == 404, f"{method} {url} ({who}) answered {response.status_code}"
            assert fingerprint(database) == before, f"{rule.rule} changed data for an id that can't exist"
            checked += 1
    assert checked >= 15
