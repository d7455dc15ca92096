"""Saving PayPal and a bank account in the browser in Stripe mode, with the Payment Element.

"Stripe" is the SetupIntent stand-in (``tests/integration/setup_standin.py``: PayPal, US bank accounts and
SEPA SetupIntents shaped after Stripe's API reference, since localstripe has none of them) in front of
localstripe. The page loads its Stripe.js: localstripe's stand-in (the card field) with a Payment Element
stand-in added (``payment_element_standin.js``), and PayPal's approval is the stand-in's own test page.
Account numbers must only ever travel to Stripe.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.models import PaymentMethod

from ..helpers import make_customer, make_plan, make_subscription
from .test_accessibility import assert_accessible
from .test_cards_stripe import log_in, record_traffic
# The Stripe fixtures live with the integration tests; the browser tests share one localstripe with them.
from ..integration.conftest import (localstripe, localstripe_server, setup_standin,  # noqa: F401
                                    setup_standin_server, stripe_overrides)

pytestmark = pytest.mark.stripe

EMAIL = "ada@example.com"
ACCOUNT_NUMBER = "000123456789"


@pytest.fixture
def portal(live_server_factory, stripe_overrides, setup_standin):  # noqa: F811
    return live_server_factory(**{**stripe_overrides, "stripe_api_base": setup_standin.url,
                                  "stripe_js_url": f"{setup_standin.url}/js.stripe.com/v3/"})


@pytest.fixture
def customer(session):
    account, _ = make_customer(session, email=EMAIL)
    make_subscription(session, account, plan=make_plan(session, code="pro-annual", interval="year",
                                                       price_cents=20000))
    return account


@pytest.fixture
def traffic(page, portal, setup_standin):  # noqa: F811
    yield from record_traffic(page, portal.url, setup_standin.url)


def stored(session, account):
    session.expire_all()
    return list(session.scalars(select(PaymentMethod).where(PaymentMethod.account_id == account.id)))


def open_form(page, kind):
    page.get_by_role("link", name="Add payment method").click()
    page.get_by_role("radio", name=kind).check()


def test_a_customer_saves_a_us_bank_account_in_the_payment_element(page, portal, customer, session, traffic):
    log_in(page, portal)
    open_form(page, "Bank account (ACH)")
    expect(page.get_by_label("Routing number")).to_be_visible()
    expect(page.get_by_label("Cardholder name")).to_be_hidden()
    assert_accessible(page, "Stripe-mode add form, bank account")

    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Email", exact=True).last.fill("ada@example.com")
    page.get_by_label("Routing number").fill("110000000")
    page.get_by_label("Account number").fill(ACCOUNT_NUMBER)
    page.get_by_role("button", name="Confirm").click()

    expect(page.locator("#toast")).to_contain_text("STRIPE TEST BANK •••• 6789 was added. Two small deposits")
    (bank,) = stored(session, customer)
    assert (bank.type, bank.verification) == ("us_bank_account", "pending")
    assert any(ACCOUNT_NUMBER.encode() in sent for sent in traffic["stripe"]), "the account never reached Stripe"
    assert not [sent for sent in traffic["portal"] if ACCOUNT_NUMBER.encode() in sent]

    # The pending row carries the same Verify form as in sandbox mode; it goes to Stripe's SetupIntent.
    row = page.locator(".verify-form")
    expect(page.get_by_text("Verification pending")).to_be_visible()
    row.get_by_label("Deposit 1 (cents)").fill("32")
    row.get_by_label("Deposit 2 (cents)").fill("45")
    row.get_by_role("button", name="Verify").click()
    expect(page.locator("#toast")).to_contain_text("STRIPE TEST BANK •••• 6789 is verified")
    expect(page.get_by_text("Verification pending")).to_have_count(0)
    (bank,) = stored(session, customer)
    assert bank.verification == "verified"


def test_an_incomplete_bank_account_is_refused_by_the_element_and_nothing_is_made(
        page, portal, customer, session, traffic, setup_standin):  # noqa: F811
    log_in(page, portal)
    open_form(page, "Bank account (ACH)")
    page.get_by_label("Routing number").fill("110000000")
    page.get_by_role("button", name="Confirm").click()

    expect(page.locator("[data-card-error]")).to_have_text("Your account details are incomplete.")
    expect(page.get_by_role("button", name="Confirm")).to_be_enabled()
    assert setup_standin.received("POST", "/v1/setup_intents") == []
    assert stored(session, customer) == []


def test_a_customer_approves_paypal_on_its_page_and_comes_back_to_a_saved_method(
        page, portal, customer, session, traffic):
    log_in(page, portal)
    open_form(page, "PayPal")
    expect(page.get_by_text("You will approve saving your PayPal account on PayPal's page.")).to_be_visible()
    assert_accessible(page, "Stripe-mode add form, PayPal")
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", name="Test PayPal approval")).to_be_visible()
    page.get_by_role("button", name="Approve").click()

    expect(page.locator("#toast")).to_contain_text("PayPal · ada@example.com was added and set as your default payment method.")
    (paypal,) = stored(session, customer)
    assert (paypal.type, paypal.email, paypal.is_default) == ("paypal", "ada@example.com", True)


def test_paypal_cancelled_on_its_page_comes_back_to_the_form_with_why(page, portal, customer, session, traffic):
    log_in(page, portal)
    open_form(page, "PayPal")
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Cancel").click()

    expect(page.get_by_text("The payment method was not approved, so nothing was saved.")).to_be_visible()
    expect(page.get_by_role("radio", name="PayPal")).to_be_visible()
    assert stored(session, customer) == []
