"""The "Manage plan" hand-off in Chromium: the product's portal-session URL opens Billing details logged in,
with "Back to {product}" in the header, and that link leads back to the product."""
from __future__ import annotations

import os
import re
import threading
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from portal.auth import sign_in_tokens
from portal.models import utcnow

from ..helpers import add_card, make_customer, make_subscription

# Where the screenshots of this flow go when asked for (PORTAL_TEST_SCREENSHOTS=folder); none by default.
SHOTS = os.environ.get("PORTAL_TEST_SCREENSHOTS")


@pytest.fixture
def product():
    """A stand-in for the product's own site: one page the Back link should lead to."""
    server = make_server("127.0.0.1", 0, lambda environ, start: Response(
        "<!doctype html><title>Acme App</title><h1>Acme App settings</h1>", mimetype="text/html")(environ, start))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def shoot(page, name: str) -> None:
    if not SHOTS:
        return
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=os.path.join(SHOTS, f"{name}-{width}.png"), full_page=True)


def test_a_portal_session_url_opens_billing_details_with_a_link_back_to_the_product(page, live_server_factory,
                                                                                      session, product):
    server = live_server_factory(allowed_return_origins=product, product_name="Acme App")
    account, _ = make_customer(session, external_id="acct_42")
    add_card(session, server.app.extensions["portal.gateway"], account, default=True)
    make_subscription(session, account)
    url, _ = sign_in_tokens.create_portal_session(
        session, account_external_id="acct_42", email="ada@example.com", return_url=product + "/settings",
        flow="billing", api_key_id=None, settings=server.app.extensions["portal.settings"], now=utcnow())

    page.goto(server.url + urlsplit(url).path)  # the landing page posts the token by itself
    expect(page).to_have_url(re.compile(r"/billing$"))
    expect(page.get_by_role("heading", name="Billing details")).to_be_visible()
    back = page.get_by_role("link", name="← Back to Acme App")
    expect(back).to_be_visible()
    shoot(page, "billing-with-back-link")
    page.set_viewport_size({"width": 1100, "height": 900})

    back.click()
    expect(page).to_have_url(product + "/settings")
    expect(page.get_by_role("heading", name="Acme App settings")).to_be_visible()

    page.goto(server.url + urlsplit(url).path)  # the same link again: spent
    expect(page.get_by_role("heading", name="This link has expired or was already used")).to_be_visible()
    expect(page.get_by_text("Go back to Acme App and open billing again")).to_be_visible()


@pytest.mark.nojs
def test_with_javascript_off_the_landing_page_has_a_button_that_signs_in(page, live_server_factory, session,
                                                                         product):
    server = live_server_factory(allowed_return_origins=product, product_name="Acme App")
    make_customer(session, external_id="acct_42")
    url, _ = sign_in_tokens.create_portal_session(
        session, account_external_id="acct_42", email="ada@example.com", return_url=product + "/",
        flow="billing", api_key_id=None, settings=server.app.extensions["portal.settings"], now=utcnow())
    page.goto(server.url + urlsplit(url).path)
    page.get_by_role("button", name="Continue to billing").click()
    expect(page).to_have_url(re.compile(r"/billing$"))
    expect(page.get_by_role("link", name="← Back to Acme App")).to_be_visible()


def test_the_login_page_offers_a_sign_in_link_by_email(page, live_server, session):
    make_customer(session)
    page.goto(live_server.url + "/login")
    shoot(page, "login")
    page.set_viewport_size({"width": 1100, "height": 900})
    page.get_by_label("Your e-mail address").fill("ada@example.com")
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_text("we have e-mailed it a sign-in link")).to_be_visible()
