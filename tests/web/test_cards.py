"""Saved cards on Billing details, through the test client: each action as a full page and as an
HTMX partial, its errors, other accounts' cards, and CSRF."""
from __future__ import annotations

import html
import re

import pytest

from portal.models import AuditEvent, PaymentMethod

from ..helpers import add_card, make_customer, make_subscription


@pytest.fixture
def customer(session, browser):
    account, user = make_customer(session)
    browser.login()
    return account


def cards_of(session, account):
    session.expire_all()
    return session.query(PaymentMethod).filter_by(account_id=account.id, detached_at=None).all()


def default_of(session, account):
    return next((c for c in cards_of(session, account) if c.is_default), None)


def card_form(number="4242424242424242", expiry="12 / 30", cvc="123", name="Ada Lovelace", default=False,
              key="0" * 32):
    data = {"cardholder_name": name, "number": number, "expiry": expiry, "cvc": cvc, "idempotency_key": key}
    if default:
        data["save_as_default"] = "y"
    return data


def field_error(body: str, field: str) -> str | None:
    match = re.search(rf'id="{field}-error">([^<]+)<', body)
    return html.unescape(match.group(1)) if match else None


# --- the page ---------------------------------------------------------------------------------------

def test_billing_page_shows_every_card_with_brand_last4_expiry_name_and_badges(browser, session, gateway, customer):
    add_card(session, gateway, customer, number="4242424242424242", exp_month=8, exp_year=2030, default=True)
    add_card(session, gateway, customer, number="5555555555554444", exp_month=11, exp_year=2029, name="A. Lovelace")
    add_card(session, gateway, customer, number="378282246310005", exp_month=12, exp_year=2026)
    body = browser.get("/billing").get_data(as_text=True)
    assert "Visa <span class=\"digits\">•••• 4242</span>" in body
    assert "Expires 08/2030" in body and "Mastercard" in body and "A. Lovelace" in body
    assert "American Express" in body and "img/brands/amex.svg" in body
    assert body.count("badge-default") == 1
    for section in ("Current subscription", "Payment details", "Billing address", "Invoices"):
        assert section in body


def test_card_expiring_this_month_says_expires_soon_and_an_old_one_says_expired(browser, session, gateway, customer):
    from portal.models import utcnow

    today = utcnow().date()
    card = add_card(session, gateway, customer, exp_month=today.month, exp_year=today.year)
    body = browser.get("/billing").get_data(as_text=True)
    assert "Expires soon" in body and ">Expired<" not in body
    card.exp_year = today.year - 1
    session.commit()
    assert ">Expired<" in browser.get("/billing").get_data(as_text=True)


def test_every_page_shows_the_test_mode_marker_in_sandbox_mode(app, browser, customer):
    assert "Test mode" in browser.get("/billing").get_data(as_text=True)
    assert "Test mode" in browser.get("/billing/cards/new").get_data(as_text=True)
    assert "Test mode" in app.test_client().get("/login").get_data(as_text=True)


def test_billing_page_varies_on_hx_request_and_is_not_cached(browser, customer):
    response = browser.get("/billing")
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"


# --- add --------------------------------------------------------------------------------------------

def test_add_card_form_opens_in_page_and_as_partial(browser, customer):
    page = browser.get("/billing/cards/new").get_data(as_text=True)
    assert "<html" in page and 'name="number"' in page and "Test mode form" in page
    partial = browser.get("/billing/cards/new", htmx=True).get_data(as_text=True)
    assert "<html" not in partial and 'id="payment-details"' in partial and 'name="number"' in partial


def test_adding_a_card_with_a_plain_form_redirects_back_with_the_card(browser, session, customer):
    response = browser.post("/billing/cards", card_form())
    assert response.status_code == 303 and response.headers["Location"].endswith("/billing")
    page = browser.get("/billing").get_data(as_text=True)
    assert "Visa •••• 4242 was added" in page
    [card] = cards_of(session, customer)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, 2030)
    assert card.is_default, "an account's first card becomes its default"


def test_adding_a_card_with_htmx_returns_the_section_the_subscription_and_a_toast(browser, session, customer, gateway):
    add_card(session, gateway, customer, default=True)
    make_subscription(session, customer)
    response = browser.post("/billing/cards", card_form(number="5555555555554444", default=True), htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert 'id="payment-details"' in body
    assert 'id="subscription" class="panel" aria-labelledby="subscription-title" hx-swap-oob="true"' in body
    assert "Mastercard •••• 4444 was added and set as your default card." in body
    assert default_of(session, customer).last4 == "4444"


def test_the_same_form_submitted_twice_saves_one_card(browser, session, customer):
    browser.post("/billing/cards", card_form(key="a" * 32))
    browser.post("/billing/cards", card_form(key="a" * 32))
    assert len(cards_of(session, customer)) == 1


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
@pytest.mark.parametrize("form, field, message", [
    (card_form(number="4242424242424241"), "number", "Your card number is incorrect."),
    (card_form(number="9999999999999995"), "number", "This card brand is not supported."),
    (card_form(expiry="01 / 20"), "expiry", "This expiry date is in the past."),
    (card_form(expiry="13 / 30"), "expiry", "The expiry month must be between 01 and 12."),
    (card_form(expiry="soon"), "expiry", "Enter the expiry date as MM / YY."),
    (card_form(cvc="12"), "cvc", "The security code is 3 or 4 digits."),
    (card_form(name=""), "cardholder_name", "Enter the name on the card."),
    (card_form(number="4000000000000002"), "number", "Your card was declined."),
], ids=["luhn", "brand", "past-expiry", "bad-month", "expiry-format", "cvc", "name", "declined"])
def test_bad_card_input_is_shown_next_to_its_field_and_saves_nothing(browser, session, customer, form, field,
                                                                      message, htmx):
    response = browser.post("/billing/cards", form, htmx=htmx)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert (field_error(body, field) or "").startswith(message), body
    assert ('<html' in body) is not htmx
    assert cards_of(session, customer) == []


def test_amex_needs_a_four_digit_security_code(browser, session, customer):
    body = browser.post("/billing/cards", card_form(number="378282246310005", cvc="123")).get_data(as_text=True)
    assert field_error(body, "cvc") == "Your card's security code should be 4 digits."


def test_after_a_decline_the_form_gets_a_fresh_key_so_a_good_card_can_follow(browser, session, customer):
    declined = browser.post("/billing/cards", card_form(number="4000000000000002", key="b" * 32), htmx=True)
    fresh_key = re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f]{32})"', declined.get_data(as_text=True))
    assert fresh_key and fresh_key.group(1) != "b" * 32
    ok = browser.post("/billing/cards", card_form(key=fresh_key.group(1)), htmx=True)
    assert ok.status_code == 200
    assert len(cards_of(session, customer)) == 1


def test_three_d_secure_card_asks_for_authentication_then_saves_when_approved(browser, session, customer):
    step = browser.post("/billing/cards", card_form(number="4000002500003155"), htmx=True)
    body = step.get_data(as_text=True)
    assert "Confirm this card with your bank" in body and "simulated 3-D Secure" in body
    assert cards_of(session, customer) == []
    action = re.search(r'action="(/sandbox/setup-intents/[^"]+/authenticate)"', body).group(1)
    done = browser.post(action, {"decision": "approve"}, htmx=True)
    assert done.status_code == 200
    assert [c.last4 for c in cards_of(session, customer)] == ["3155"]


def test_three_d_secure_failure_shows_an_error_and_saves_nothing(browser, session, customer):
    step = browser.post("/billing/cards", card_form(number="4000002500003155"))
    assert step.status_code == 303  # no JavaScript: the bank step is a page of its own
    page = browser.get(step.headers["Location"])
    action = re.search(r'action="(/sandbox/setup-intents/[^"]+/authenticate)"', page.get_data(as_text=True)).group(1)
    failed = browser.post(action, {"decision": "fail"})
    assert failed.status_code == 422
    assert "Card authentication failed" in failed.get_data(as_text=True)
    assert cards_of(session, customer) == []



@pytest.mark.parametrize("decision", ["", "Approve", "approve ", "maybe"])
def test_a_three_d_secure_answer_that_is_neither_button_is_refused_and_the_step_stays_open(
        browser, session, gateway, customer, decision):
    body = browser.post("/billing/cards", card_form(number="4000002500003155"), htmx=True).get_data(as_text=True)
    action = re.search(r'action="(/sandbox/setup-intents/[^"]+/authenticate)"', body).group(1)
    refused = browser.post(action, {"decision": decision}, htmx=True)
    assert refused.status_code == 422
    assert "Choose Approve authentication or Fail authentication." in refused.get_data(as_text=True)
    assert "Confirm this card with your bank" in refused.get_data(as_text=True)
    # The bank's answer is still to come: approving now saves the card.
    assert browser.post(action, {"decision": "approve"}, htmx=True).status_code == 200
    assert [c.last4 for c in cards_of(session, customer)] == ["3155"]

def test_another_accounts_three_d_secure_step_is_not_found(app, browser, session, customer):
    from ..helpers import Browser

    step = browser.post("/billing/cards", card_form(number="4000002500003155"))
    make_customer(session, email="eve@example.com", billing_email="eve@example.com")
    eve = Browser(app.test_client())
    eve.login("eve@example.com")
    assert eve.get(step.headers["Location"]).status_code == 404
    assert eve.post(step.headers["Location"], {"decision": "approve"}).status_code == 404


# --- edit -------------------------------------------------------------------------------------------

def test_edit_form_opens_in_page_and_as_partial_with_current_values(browser, session, gateway, customer):
    card = add_card(session, gateway, customer, exp_month=3, exp_year=2031, name="Ada L")
    page = browser.get(f"/billing/cards/{card.id}/edit").get_data(as_text=True)
    assert 'value="03 / 31"' in page and 'value="Ada L"' in page and "<html" in page
    partial = browser.get(f"/billing/cards/{card.id}/edit", htmx=True).get_data(as_text=True)
    assert 'value="03 / 31"' in partial and "<html" not in partial


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_editing_expiry_and_name_updates_the_card_here_and_at_the_processor(browser, session, gateway, customer, htmx):
    card = add_card(session, gateway, customer)
    response = browser.post(f"/billing/cards/{card.id}", {"expiry": "07/32", "cardholder_name": "Countess Lovelace"},
                            htmx=htmx)
    assert response.status_code == (200 if htmx else 303)
    session.refresh(card)
    assert (card.exp_month, card.exp_year, card.cardholder_name) == (7, 2032, "Countess Lovelace")
    remote = gateway.retrieve_card(card.processor_id)
    assert (remote.exp_month, remote.exp_year, remote.cardholder_name) == (7, 2032, "Countess Lovelace")


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_editing_with_a_past_expiry_shows_the_error_and_changes_nothing(browser, session, gateway, customer, htmx):
    card = add_card(session, gateway, customer, exp_month=12, exp_year=2030)
    response = browser.post(f"/billing/cards/{card.id}", {"expiry": "01/21", "cardholder_name": "X"}, htmx=htmx)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "expiry") == "This expiry date is in the past."
    session.refresh(card)
    assert (card.exp_month, card.exp_year, card.cardholder_name) == (12, 2030, "Ada Lovelace")


# --- default ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_setting_a_default_moves_the_badge_and_the_processors_default(browser, session, gateway, customer, htmx):
    first = add_card(session, gateway, customer, default=True)
    second = add_card(session, gateway, customer, number="5555555555554444")
    response = browser.post(f"/billing/cards/{second.id}/default", htmx=htmx)
    if htmx:
        body = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "Mastercard •••• 4444 is now your default card." in body
        assert re.search(r'id="card-%d"[^>]*>.*?badge-default' % second.id, body, re.S)
    else:
        assert response.status_code == 303
    assert default_of(session, customer).id == second.id
    assert gateway.customer_default_card(customer.processor_customer_id) == second.processor_id
    assert session.query(AuditEvent).filter_by(action="card.default_set").count() == 1


# --- delete -----------------------------------------------------------------------------------------

def test_delete_asks_for_confirmation_first_in_page_and_partial(browser, session, gateway, customer):
    card = add_card(session, gateway, customer)
    for htmx in (False, True):
        body = html.unescape(browser.get(f"/billing/cards/{card.id}/delete", htmx=htmx).get_data(as_text=True))
        assert "Delete Visa •••• 4242? This can't be undone." in body
    assert len(cards_of(session, customer)) == 1


def test_the_default_card_of_a_subscription_says_why_it_cannot_be_deleted_before_anyone_confirms(
        browser, session, gateway, customer):
    from ..helpers import make_subscription

    make_subscription(session, customer)
    default = add_card(session, gateway, customer, default=True)
    only = "Visa •••• 4242 is the default card for your subscription, so it can't be deleted. "
    page = html.unescape(browser.get("/billing").get_data(as_text=True))
    assert only + "Add a different card and set it as default first." in page
    assert f'href="/billing/cards/{default.id}/delete' not in page
    add_card(session, gateway, customer, number="5555555555554444")
    for htmx in (False, True):
        response = browser.get(f"/billing/cards/{default.id}/delete", htmx=htmx)
        body = html.unescape(response.get_data(as_text=True))
        assert response.status_code == 409 and "This can't be undone." not in body
        assert only + "Set another card as default first." in body
    assert len(cards_of(session, customer)) == 2


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_non_default_card_can_always_be_deleted(browser, session, gateway, customer, htmx):
    add_card(session, gateway, customer, default=True)
    other = add_card(session, gateway, customer, number="5555555555554444")
    make_subscription(session, customer)
    response = browser.post(f"/billing/cards/{other.id}/delete", htmx=htmx)
    assert response.status_code == (200 if htmx else 303)
    assert [c.last4 for c in cards_of(session, customer)] == ["4242"]


@pytest.mark.parametrize("status", ["active", "past_due"])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_default_card_cannot_be_deleted_while_subscription_is_billable(browser, session, gateway, customer, htmx, status):
    card = add_card(session, gateway, customer, default=True)
    make_subscription(session, customer, status=status)
    response = browser.post(f"/billing/cards/{card.id}/delete", htmx=htmx)
    body = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Add a different card and set it as default first." in body
    assert ("<html" in body) is not htmx
    assert [c.id for c in cards_of(session, customer)] == [card.id]
    assert gateway.retrieve_card(card.processor_id).customer_id == customer.processor_customer_id


@pytest.mark.parametrize("status", ["suspended", "canceled", None])
def test_default_card_can_be_deleted_without_a_billable_subscription(browser, session, gateway, customer, status):
    card = add_card(session, gateway, customer, default=True)
    if status:
        make_subscription(session, customer, status=status)
    assert browser.post(f"/billing/cards/{card.id}/delete").status_code == 303
    assert cards_of(session, customer) == []
    assert gateway.retrieve_card(card.processor_id).customer_id is None


def test_default_card_can_be_deleted_once_another_card_is_default(browser, session, gateway, customer):
    old = add_card(session, gateway, customer, default=True)
    new = add_card(session, gateway, customer, number="5555555555554444")
    make_subscription(session, customer)
    assert browser.post(f"/billing/cards/{old.id}/delete").status_code == 409
    browser.post(f"/billing/cards/{new.id}/default")
    assert browser.post(f"/billing/cards/{old.id}/delete").status_code == 303
    assert [c.id for c in cards_of(session, customer)] == [new.id]


# --- other accounts and CSRF ------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("get", "/billing/cards/{id}/edit"), ("post", "/billing/cards/{id}"), ("post", "/billing/cards/{id}/default"),
    ("get", "/billing/cards/{id}/delete"), ("post", "/billing/cards/{id}/delete"),
])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_another_accounts_card_id_gives_404_and_changes_nothing(browser, session, gateway, customer, method, path, htmx):
    mallory, _ = make_customer(session, email="mallory@example.com", billing_email="m@example.com")
    theirs = add_card(session, gateway, mallory, default=True)
    data = {"expiry": "01/35", "cardholder_name": "Pwned"}
    url = path.format(id=theirs.id)
    response = browser.get(url, htmx=htmx) if method == "get" else browser.post(url, data, htmx=htmx)
    assert response.status_code == 404
    session.refresh(theirs)
    assert (theirs.detached_at, theirs.is_default, theirs.cardholder_name) == (None, True, "Ada Lovelace")


@pytest.mark.parametrize("path", ["/billing/cards", "/billing/cards/{id}", "/billing/cards/{id}/default",
                                  "/billing/cards/{id}/delete"])
def test_card_actions_without_csrf_token_are_refused(browser, session, gateway, customer, path):
    card = add_card(session, gateway, customer, default=True)
    other = add_card(session, gateway, customer, number="5555555555554444")
    response = browser.post(path.format(id=other.id), {**card_form(), "expiry": "01/33"}, csrf=False)
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert default_of(session, customer).id == card.id
    assert len(cards_of(session, customer)) == 2


def test_processor_outage_leaves_cards_unchanged_with_a_clear_message(browser, session, gateway, customer, monkeypatch):
    from portal.payments.gateway import ProcessorUnavailable

    first = add_card(session, gateway, customer, default=True)
    second = add_card(session, gateway, customer, number="5555555555554444")

    def down(*args, **kwargs):
        raise ProcessorUnavailable("We could not reach the payment processor. Nothing was changed; please try again.")

    monkeypatch.setattr(type(gateway), "set_default_card", down)
    response = browser.post(f"/billing/cards/{second.id}/default", htmx=True)
    assert response.status_code == 503
    assert "could not reach the payment processor" in response.get_data(as_text=True)
    assert default_of(session, customer).id == first.id
