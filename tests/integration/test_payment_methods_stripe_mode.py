"""Saving PayPal and bank accounts on the Billing details page in Stripe mode, through Flask's test client.

"Stripe" is the SetupIntent stand-in (``setup_standin``) in front of localstripe: localstripe saves cards but
has no PayPal or US bank account methods, no micro-deposits and no SEPA mandates, so those SetupIntents, their
PaymentMethods and Mandates, and the ``setup_intent.*`` events are shaped after Stripe's API reference (see
``setup_standin``). The Payment Element's part in the browser is played by ``setup_standin.confirm``; what
our server receives is only what a browser posts: a SetupIntent id, never a card or account number.
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from portal.models import PaymentMethod, ProcessorEvent

from ..helpers import make_customer, make_plan, make_subscription
from .checkout_standin import signed_webhook

pytestmark = pytest.mark.stripe

FORM_KEY = "0123456789abcdef0123456789abcdef"
WEBHOOK_SECRET = "whsec_setup_types"
US_BANK = {"type": "us_bank_account", "billing_details": {"name": "Ada Lovelace", "email": "ada@example.com"},
           "us_bank_account": {"routing_number": "110000000", "account_number": "000123456789",
                               "account_holder_type": "individual"}}
SEPA = {"type": "sepa_debit", "billing_details": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "sepa_debit": {"iban": "DE89370400440532013000"}}
CARD_OR_ACCOUNT_INPUTS = ('name="number"', 'name="cvc"', 'name="expiry"', 'name="iban"', 'name="account_number"',
                          'name="routing_number"', 'autocomplete="cc-number"', 'autocomplete="cc-csc"')


@pytest.fixture
def stripe_overrides(stripe_overrides, setup_standin):
    return {**stripe_overrides, "stripe_api_base": setup_standin.url, "stripe_webhook_secret": WEBHOOK_SECRET}


@pytest.fixture
def account(session):
    account, _ = make_customer(session)
    make_subscription(session, account, plan=make_plan(session, code="pro-annual", interval="year",
                                                       price_cents=20000))
    return account


@pytest.fixture
def customer(account, stripe_browser):
    stripe_browser.login()
    return stripe_browser


def new_setup_intent(browser, method_type, key=FORM_KEY):
    return browser.post("/billing/cards/setup-intents", {"idempotency_key": key, "method_type": method_type},
                        headers={"Accept": "application/json"})


def methods(session) -> list[PaymentMethod]:
    session.expire_all()
    return list(session.scalars(select(PaymentMethod).order_by(PaymentMethod.id)))


def deliver(client, event):
    body, headers = signed_webhook(event, WEBHOOK_SECRET)
    return client.post("/stripe/webhook", data=body, headers=headers)


def test_the_add_form_offers_card_paypal_and_the_accounts_bank_and_never_a_number_field(customer):
    for htmx in (False, True):
        body = customer.get("/billing/cards/new", htmx=htmx).get_data(as_text=True)

        assert re.findall(r'name="method_type" value="(\w+)"', body) == ["card", "paypal", "us_bank_account"]
        assert 'data-payment-element' in body and 'data-currency="usd"' in body
        assert 'data-return-url="http://localhost/billing/cards/setup-return"' in body
        for card_input in CARD_OR_ACCOUNT_INPUTS:
            assert card_input not in body


@pytest.mark.parametrize("currency, bank_type", [("USD", "us_bank_account"), ("EUR", "sepa_debit")])
@pytest.mark.parametrize("method, path", [
    ("get", "/billing/cards/new"), ("get", "/billing/payment-methods/paypal/new"),
    ("get", "/billing/payment-methods/bank/new"),
    # An old sandbox-style form posted anyway: refused, the Payment Element form shown instead.
    ("post", "/billing/payment-methods/paypal"), ("post", "/billing/payment-methods/bank")])
def test_every_way_to_add_a_type_shows_the_payment_element_and_no_number_field(
        session, stripe_browser, currency, bank_type, method, path):
    account, _ = make_customer(session, country="DE" if currency == "EUR" else "US", currency=currency)
    make_subscription(session, account, plan=make_plan(session, code=f"annual-{currency}", interval="year",
                                                       currency=currency))
    stripe_browser.login()
    posted = {"holder_name": "Ada Lovelace", "routing_number": "110000000", "account_number": "000123456789",
              "iban": "DE89370400440532013000", "mandate": "y", "idempotency_key": FORM_KEY}
    for htmx in (False, True):
        if method == "get":
            response = stripe_browser.get(path, htmx=htmx)
        else:
            response = stripe_browser.post(path, posted, htmx=htmx)
        body = response.get_data(as_text=True)

        assert response.status_code == (200 if method == "get" else 409)
        assert re.findall(r'name="method_type" value="(\w+)"', body) == ["card", "paypal", bank_type]
        assert "data-payment-element" in body and f'data-currency="{currency.lower()}"' in body
        for card_input in CARD_OR_ACCOUNT_INPUTS:
            assert card_input not in body
        assert "test-note" not in body and "payment-methods/paypal\"" not in body  # no sandbox test form
    assert methods(session) == []


def test_a_monthly_plan_is_offered_no_bank_account_and_the_page_says_why(session, stripe_browser):
    account, _ = make_customer(session)
    make_subscription(session, account)
    stripe_browser.login()

    body = stripe_browser.get("/billing/cards/new").get_data(as_text=True)
    refused = new_setup_intent(stripe_browser, "us_bank_account")

    assert re.findall(r'name="method_type" value="(\w+)"', body) == ["card", "paypal"]
    assert "Bank accounts can be added only to annual plans, and your plan is billed monthly." in body
    assert refused.status_code == 422
    assert refused.get_json()["field"] == "method_type"
    assert "only to annual plans" in refused.get_json()["error"]


def test_a_euro_account_is_offered_sepa_instead_of_ach(session, stripe_browser):
    account, _ = make_customer(session, country="DE", currency="EUR")
    make_subscription(session, account, plan=make_plan(session, code="pro-annual-eur", interval="year",
                                                       currency="EUR"))
    stripe_browser.login()

    body = stripe_browser.get("/billing/cards/new").get_data(as_text=True)

    assert re.findall(r'name="method_type" value="(\w+)"', body) == ["card", "paypal", "sepa_debit"]
    assert 'data-currency="eur"' in body


def test_a_setup_intent_is_made_for_the_chosen_type_only(customer, setup_standin):
    answer = new_setup_intent(customer, "paypal")

    assert answer.status_code == 200
    assert answer.get_json()["method_type"] == "paypal"
    sent = setup_standin.received("POST", "/v1/setup_intents")[-1].params
    assert sent["payment_method_types"] == ["paypal"]
    # A double click sends the same form key: one SetupIntent, not two.
    assert new_setup_intent(customer, "paypal").get_json()["client_secret"] == answer.get_json()["client_secret"]
    assert len([r for r in setup_standin.received("POST", "/v1/setup_intents") if not r.replayed]) == 1


def test_an_unknown_type_is_refused_with_its_field_and_nothing_is_made(customer, setup_standin):
    answer = new_setup_intent(customer, "klarna")

    assert answer.status_code == 422
    assert answer.get_json()["field"] == "method_type"
    assert setup_standin.received("POST", "/v1/setup_intents") == []


def test_back_from_paypal_the_get_saves_nothing_and_the_page_posts_the_id(customer, session, setup_standin):
    secret = new_setup_intent(customer, "paypal").get_json()["client_secret"]
    intent_id = secret.split("_secret_")[0]
    setup_standin.confirm(secret, {"type": "paypal"}, return_url="http://localhost/billing/cards/setup-return")
    setup_standin.approve_paypal(intent_id, payer_email="ada@example.com")

    back = customer.get(f"/billing/cards/setup-return?setup_intent={intent_id}"
                        f"&setup_intent_client_secret={secret}&redirect_status=succeeded")

    body = back.get_data(as_text=True)
    assert back.status_code == 200
    assert methods(session) == [], "a GET saves nothing"
    form = re.search(r'<form[^>]*data-setup-return.*?</form>', body, re.S).group(0)
    assert 'method="post"' in form and f'value="{intent_id}"' in form and 'name="csrf_token"' in form

    saved = customer.post("/billing/cards", {"setup_intent": intent_id}, htmx=True)

    assert saved.status_code == 200
    assert "PayPal · ada@example.com was added and set as your default payment method." in saved.get_data(as_text=True)
    (paypal,) = methods(session)
    assert (paypal.type, paypal.email, paypal.is_default, paypal.setup_intent_id) == (
        "paypal", "ada@example.com", True, intent_id)


def test_paypal_not_approved_opens_the_form_again_with_why(customer, session, setup_standin):
    secret = new_setup_intent(customer, "paypal").get_json()["client_secret"]
    intent_id = secret.split("_secret_")[0]

    back = customer.get(f"/billing/cards/setup-return?setup_intent={intent_id}&redirect_status=failed")

    body = back.get_data(as_text=True)
    assert "was not approved, so nothing was saved" in body
    assert "data-stripe-card-form" in body
    assert methods(session) == []


def test_a_malformed_return_goes_back_to_the_page(customer):
    assert customer.get("/billing/cards/setup-return?setup_intent=<script>").status_code == 302


def test_a_sepa_account_is_saved_with_its_mandate_reference(session, stripe_browser, setup_standin):
    account, _ = make_customer(session, country="DE", currency="EUR")
    make_subscription(session, account, plan=make_plan(session, code="pro-annual-eur", interval="year",
                                                       currency="EUR"))
    stripe_browser.login()
    secret = new_setup_intent(stripe_browser, "sepa_debit").get_json()["client_secret"]
    intent_id = secret.split("_secret_")[0]
    setup_standin.confirm(secret, SEPA)

    response = stripe_browser.post("/billing/cards", {"setup_intent": intent_id})

    assert response.status_code == 303
    (sepa,) = methods(session)
    mandate = setup_standin.mandates[setup_standin.setup_intent(intent_id)["mandate"]]
    assert (sepa.type, sepa.last4, sepa.country) == ("sepa_debit", "3000", "DE")
    assert sepa.mandate_reference == mandate["payment_method_details"]["sepa_debit"]["reference"]
    assert sepa.mandate_accepted_at is not None


def test_an_ach_account_waiting_for_micro_deposits_is_saved_pending_then_verified_on_its_row(
        customer, session, setup_standin, account):
    secret = new_setup_intent(customer, "us_bank_account").get_json()["client_secret"]
    intent_id = secret.split("_secret_")[0]
    setup_standin.confirm(secret, US_BANK)

    response = customer.post("/billing/cards", {"setup_intent": intent_id}, htmx=True)

    assert "Two small deposits will arrive in 1-2 business days" in response.get_data(as_text=True)
    (bank,) = methods(session)
    assert (bank.type, bank.bank_name, bank.last4, bank.verification, bank.is_default) == (
        "us_bank_account", "STRIPE TEST BANK", "6789", "pending", False)
    page = customer.get("/billing").get_data(as_text=True)
    # The same row as in sandbox mode: the badge and the Verify form, no "Save as default" while pending.
    assert "Verification pending" in page and f"/billing/payment-methods/{bank.id}/verify" in page
    assert f'/billing/cards/{bank.id}/default"' not in page

    refused = customer.post(f"/billing/cards/{bank.id}/default", {}, htmx=True)
    assert refused.status_code == 409
    assert "can&#39;t be your default until it is verified" in refused.get_data(as_text=True)

    wrong = customer.post(f"/billing/payment-methods/{bank.id}/verify", {"amount1": "1", "amount2": "2"}, htmx=True)
    assert wrong.status_code == 422
    assert re.search(r'id="amount1-error">[^<]*match', wrong.get_data(as_text=True))  # next to the amounts
    assert methods(session)[0].verification == "pending"
    assert setup_standin.setup_intent(intent_id)["status"] == "requires_action"

    right = customer.post(f"/billing/payment-methods/{bank.id}/verify", {"amount1": "32", "amount2": "45"},
                          htmx=True)
    assert right.status_code == 200
    assert "is verified and is now your default payment method" in right.get_data(as_text=True)
    (bank,) = methods(session)
    assert (bank.verification, bank.is_default) == ("verified", True)
    assert setup_standin.setup_intent(intent_id)["status"] == "succeeded"


def test_the_account_number_reaches_stripe_from_the_browser_only(customer, setup_standin):
    """What our server sends Stripe (signed with the secret key) in a bank account's setup never carries the
    number; only the Payment Element's confirmation (the publishable key) does."""
    answer = new_setup_intent(customer, "us_bank_account")
    secret = answer.get_json()["client_secret"]
    setup_standin.confirm(secret, US_BANK)
    customer.post("/billing/cards", {"setup_intent": secret.split("_secret_")[0]})

    ours = [r for r in setup_standin.requests if r.headers.get("authorization")]
    browsers = [r for r in setup_standin.requests if not r.headers.get("authorization")]
    assert len(ours) >= 3 and "000123456789" not in json.dumps([(r.path, r.query, r.params) for r in ours])
    assert "000123456789" in json.dumps([r.params for r in browsers])


# --- webhooks ------------------------------------------------------------------------------------

def test_the_succeeded_webhook_saves_a_paypal_account_the_browser_never_came_back_with(
        customer, session, setup_standin, stripe_app):
    secret = new_setup_intent(customer, "paypal").get_json()["client_secret"]
    intent_id = secret.split("_secret_")[0]
    setup_standin.confirm(secret, {"type": "paypal"}, return_url="http://localhost/billing/cards/setup-return")

    event = setup_standin.approve_paypal(intent_id, payer_email="pp@example.com")
    assert deliver(stripe_app.test_client(), event).status_code == 200
    assert deliver(stripe_app.test_client(), event).status_code == 200  # Stripe delivers again: still one

    (paypal,) = methods(session)
    assert paypal.label == "PayPal · pp@example.com"
    assert session.get(ProcessorEvent, event["id"]).outcome == f"card {paypal.id} saved"


def test_the_requires_action_webhook_saves_an_ach_account_as_pending_and_succeeded_verifies_it(
        customer, session, setup_standin, stripe_app):
    secret = new_setup_intent(customer, "us_bank_account").get_json()["client_secret"]
    intent_id = secret.split("_secret_")[0]
    setup_standin.confirm(secret, US_BANK)
    webhook = stripe_app.test_client()

    assert deliver(webhook, setup_standin.setup_event("setup_intent.requires_action", intent_id)).status_code == 200
    (bank,) = methods(session)
    assert bank.verification == "pending"

    # Verified on Stripe's hosted verification page, which talks to Stripe directly: only the event tells us.
    status, _, _ = setup_standin.handle("POST", f"/v1/setup_intents/{intent_id}/verify_microdeposits", "",
                                        {"Authorization": "Bearer sk_test_localstripe"},
                                        b"amounts[0]=32&amounts[1]=45")
    assert status == 200
    assert deliver(webhook, setup_standin.setup_event("setup_intent.succeeded", intent_id)).status_code == 200
    (bank,) = methods(session)
    assert (bank.verification, bank.is_default) == ("verified", True)


def test_a_paypal_that_was_refused_is_kept_only_as_the_events_outcome(customer, session, setup_standin,
                                                                      stripe_app):
    secret = new_setup_intent(customer, "paypal").get_json()["client_secret"]
    intent_id = secret.split("_secret_")[0]
    setup_standin.confirm(secret, {"type": "paypal"}, return_url="http://localhost/billing/cards/setup-return")
    redirected = setup_standin.setup_event("setup_intent.requires_action", intent_id)
    refused = setup_standin.decline_paypal(intent_id)

    assert deliver(stripe_app.test_client(), redirected).status_code == 200
    assert deliver(stripe_app.test_client(), refused).status_code == 200

    assert methods(session) == []
    assert session.get(ProcessorEvent, redirected["id"]).outcome == "waiting for the customer (redirect_to_url)"
    assert session.get(ProcessorEvent, refused["id"]).outcome == "setup failed (setup_intent_setup_attempt_failed)"
