"""Sweeps generated from the app's URL map, so a new route is covered the day it is added:
every mutating route needs a CSRF token, every route with an object id answers 404 for another account's
object, every portal route refuses anonymous users, and no GET changes anything."""
from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from portal.billing import checkout
from portal.models import Base, utcnow
from portal.payments.gateway import CardDetails

from ..helpers import Browser, add_card, make_customer, make_invoice, make_staff, make_subscription

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Open to anyone, each for a stated reason.
PUBLIC = {
    "static",                   # CSS, JS, images
    "health.healthz",           # load balancers
    "auth.index",               # sends people to login or to their page
    "auth.login", "auth.login_submit",
    "auth.logout",              # harmless when logged out
    "webhooks.stripe_webhook",  # protected by Stripe's signature instead (tests/integration/test_checkout_stripe.py)
}
CSRF_EXEMPT = {"webhooks.stripe_webhook"}
# Tables that may change on a GET because they are caches, not state: a PDF rendered once per version.
CACHES = {"invoice_pdfs"}


def fingerprint(database) -> str:
    """A digest of every row of every table (bar caches): any change anywhere shows."""
    digest = hashlib.sha256()
    with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in CACHES:
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            digest.update(f"{table.name}:{rows!r}".encode())
    return digest.hexdigest()


class World:
    """Two customers with one of everything each, so every kind of id has an owner and a stranger."""

    def __init__(self, app, session, gateway):
        self.app = app
        self.mine, _ = make_customer(session, region="MA", postal_code="01101")
        self.theirs, _ = make_customer(session, email="mallory@example.com", billing_email="m@example.com",
                                       region="MA", postal_code="01101")
        self.staff = make_staff(session)
        self.objects = {}
        for name, account in (("mine", self.mine), ("theirs", self.theirs)):
            make_subscription(session, account)
            card = add_card(session, gateway, account, default=True)
            add_card(session, gateway, account, number="5555555555554444")
            invoice = make_invoice(session, account)
            pending = gateway.create_setup_intent(
                customer_id=account.processor_customer_id, metadata={}, idempotency_key=f"sweep-{name}",
                card=CardDetails(number="4000002500003155", exp_month=12, exp_year=2030, cvc="123",
                                 cardholder_name="X"))
            url = checkout.start_checkout(session, gateway, account.id, invoice.id, success_url="http://x/s",
                                          cancel_url="http://x/c", now=utcnow())
            self.objects[name] = {"card_id": card.id, "invoice_id": invoice.id, "setup_intent_id": pending.id,
                                  "session_id": re.search(r"cs_sbx_\w+", url).group(0), "account_id": account.id,
                                  "filename": "css/app.css"}

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
        if rule.endpoint in CSRF_EXEMPT:
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


def test_no_get_request_changes_anything(app, database, world):
    checked = 0
    for rule in rules(app, methods={"GET"}, public=True):
        browser = login_for(app, rule, world)
        url = url_for_rule(app, rule, world.args(rule, "mine"))
        before = fingerprint(database)
        for htmx in (False, True):
            response = browser.get(url, htmx=htmx)
            assert response.status_code < 500, f"GET {rule.rule} failed with {response.status_code}"
        assert fingerprint(database) == before, f"GET {rule.rule} changed data"
        checked += 1
    assert checked >= 15


def test_every_route_with_an_object_id_answers_404_for_another_accounts_object(app, database, world):
    checked = 0
    for rule in rules(app):
        if not rule.arguments:
            continue
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
