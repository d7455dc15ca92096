"""The card pages in Stripe mode, through Flask's test client, with localstripe as Stripe.

The browser's Stripe.js part is played by ``stripe_js``; everything our server sees is what a browser posts.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.models import Account, PaymentMethod

from ..helpers import Browser, make_customer

pytestmark = pytest.mark.stripe

FORM_KEY = "0123456789abcdef0123456789abcdef"


def card_count(session) -> int:
    return session.scalar(select(func.count()).select_from(PaymentMethod))


def new_setup_intent(browser, *, default=False, key=FORM_KEY):
    data = {"idempotency_key": key}
    if default:
        data["save_as_default"] = "y"
    return browser.post("/billing/cards/setup-intents", data, headers={"Accept": "application/json"})


@pytest.fixture
def customer(session, stripe_browser):
    make_customer(session)
    stripe_browser.login()
    return stripe_browser


def test_the_add_card_form_shows_stripes_card_field_and_never_a_card_number_input(customer, localstripe):
    for htmx in (False, True):
        response = customer.get("/billing/cards/new", htmx=htmx)
        body = response.get_data(as_text=True)

        assert response.status_code == 200
        assert 'data-stripe-card-form' in body and 'id="card-element"' in body
        assert 'data-publishable-key="pk_test_localstripe"' in body
        assert 'name="setup_intent"' in body
        for card_input in ('name="number"', 'name="cvc"', 'name="expiry"', 'autocomplete="cc-number"',
                           'autocomplete="cc-csc"'):
            assert card_input not in body
    page = customer.get("/billing/cards/new").get_data(as_text=True)
    assert f'<script src="{localstripe.url}/js.stripe.com/v3/"></script>' in page


def test_creating_a_setup_intent_answers_its_client_secret_for_the_customers_stripe_customer(
        customer, session, localstripe):
    response = new_setup_intent(customer)

    assert response.status_code == 200
    secret = response.get_json()["client_secret"]
    intent = localstripe.get(f"/v1/setup_intents/{secret.split('_secret_')[0]}")
    assert intent["client_secret"] == secret
    assert intent["customer"] == session.scalar(select(Account.processor_customer_id))
    # A double click sends the same form key: one SetupIntent, not two.
    assert new_setup_intent(customer).get_json()["client_secret"] == secret
    assert len(localstripe.get("/v1/setup_intents")["data"]) == 1


def test_a_setup_intent_request_without_the_csrf_token_is_refused_and_creates_nothing(customer, localstripe):
    response = customer.post("/billing/cards/setup-intents", {"idempotency_key": FORM_KEY}, csrf=False)

    assert response.status_code == 400
    assert localstripe.get("/v1/setup_intents")["data"] == []
    assert localstripe.get("/v1/customers")["data"] == []


def test_a_setup_intent_request_with_a_malformed_form_key_is_refused_with_a_message(customer, localstripe):
    response = new_setup_intent(customer, key="not-a-key")

    assert response.status_code == 400
    assert "Reload the page" in response.get_json()["error"]
    assert localstripe.get("/v1/setup_intents")["data"] == []


def test_posting_a_setup_intent_confirmed_by_stripe_js_saves_the_card(customer, session, stripe_js):
    secret = new_setup_intent(customer).get_json()["client_secret"]
    stripe_js.confirm_card_setup(secret, number="4242424242424242", exp_month="11", exp_year="2031")

    response = customer.post("/billing/cards", {"setup_intent": secret.split("_secret_")[0]})

    assert response.status_code == 303
    page = customer.get("/billing").get_data(as_text=True)
    assert "Visa •••• 4242 was added and set as your default card." in page
    assert "Expires 11/2031 · Ada Lovelace" in page
    assert card_count(session) == 1


def test_with_htmx_the_saved_card_comes_back_in_the_payment_details_section(customer, session, stripe_js):
    secret = new_setup_intent(customer).get_json()["client_secret"]
    stripe_js.confirm_card_setup(secret)

    response = customer.post("/billing/cards", {"setup_intent": secret.split("_secret_")[0]}, htmx=True)

    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="payment-details"' in body and "•••• 4242" in body
    assert "data-stripe-card-form" not in body
    assert card_count(session) == 1


def test_a_setup_intent_of_another_account_gives_not_found_and_saves_nothing(
        customer, session, stripe_app, stripe_js):
    make_customer(session, email="eve@example.com", name="Other Corp", billing_email="eve@other.example")
    eve = Browser(stripe_app.test_client())
    eve.login("eve@example.com")
    theirs = new_setup_intent(eve).get_json()["client_secret"]
    stripe_js.confirm_card_setup(theirs)
    new_setup_intent(customer)

    response = customer.post("/billing/cards", {"setup_intent": theirs.split("_secret_")[0]})

    assert response.status_code == 404
    assert card_count(session) == 0


def test_a_setup_intent_still_waiting_for_3d_secure_is_not_saved_and_the_form_says_why(customer, session, stripe_js):
    secret = new_setup_intent(customer).get_json()["client_secret"]
    stripe_js.confirm_card_setup(secret, number="4000002500003155")

    response = customer.post("/billing/cards", {"setup_intent": secret.split("_secret_")[0]})

    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The card could not be confirmed. Please try again." in body
    assert "data-stripe-card-form" in body, "the card form stays open to try again"
    assert card_count(session) == 0


def test_the_content_security_policy_lets_the_page_load_stripe_js_from_its_configured_origin(customer, localstripe):
    policy = customer.get("/billing/cards/new").headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}

    assert directives["script-src"] == ["'self'", localstripe.url]
    assert localstripe.url in directives["connect-src"]
    assert "https://js.stripe.com" not in policy
