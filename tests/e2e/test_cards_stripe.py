"""Saved cards in the browser in Stripe mode: the page loads localstripe's Stripe.js stand-in, whose card field
and 3-D Secure modal stand in for Stripe's. The card number must only ever travel to Stripe."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.billing.payment_methods import cards
from portal.audit import Actor
from portal.models import Account, PaymentMethod, utcnow

from ..helpers import PASSWORD, make_customer
# The Stripe fixtures live with the integration tests; the browser tests share one localstripe with them.
from .test_accessibility import assert_accessible
from ..integration.conftest import StripeJs, localstripe, localstripe_server, stripe_overrides  # noqa: F401

pytestmark = pytest.mark.stripe

EMAIL = "ada@example.com"
VISA = "4242424242424242"
SECOND_CARD = "5555555555554444"
THREE_D_SECURE = "4000002500003155"
DECLINED = "4000000000000002"


@pytest.fixture
def portal(live_server_factory, stripe_overrides):  # noqa: F811
    return live_server_factory(**stripe_overrides)


@pytest.fixture
def customer(session):
    account, _ = make_customer(session, email=EMAIL)
    return account


def record_traffic(page, portal_url: str, stripe_url: str):
    """Every request the browser makes, split by where it went (the portal or Stripe's stand-in), and every
    console error (a blocked script shows up there); after the test, no script may have been blocked by the
    Content Security Policy."""
    seen = {"portal": [], "stripe": [], "console": []}

    def record(request):
        sent = request.url.encode() + b"\n" + (request.post_data_buffer or b"")
        if request.url.startswith(portal_url):
            seen["portal"].append(sent)
        elif request.url.startswith(stripe_url):
            seen["stripe"].append(sent)

    page.on("request", record)
    page.on("console", lambda message: message.type == "error" and seen["console"].append(message.text))
    yield seen
    assert not [m for m in seen["console"] if "Content Security Policy" in m], seen["console"]


@pytest.fixture
def traffic(page, portal, localstripe):  # noqa: F811
    yield from record_traffic(page, portal.url, localstripe.url)


def assert_card_number_only_went_to_stripe(traffic, number):
    assert any(number.encode() in sent for sent in traffic["stripe"]), "the card never reached Stripe"
    leaked = [sent for sent in traffic["portal"] if number.encode() in sent]
    assert not leaked, f"the card number was sent to the portal: {leaked}"


def log_in(page, portal):
    page.goto(f"{portal.url}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Billing details", level=1)).to_be_visible()


def open_add_card_form(page):
    page.get_by_role("link", name="Add payment method").click()
    expect(page.get_by_role("heading", name="Add a payment method")).to_be_visible()
    # The stand-in's card field: its inputs only exist once stripe-card.js has mounted it.
    expect(card_input(page, "number")).to_be_visible()


def card_input(page, name):
    return page.locator(f"#card-element input[placeholder={name}]")


def enter_card(page, number, *, name="Ada Lovelace", exp_month="12", exp_year="30", cvc="123"):
    page.get_by_label("Cardholder name").fill(name)
    for field, value in (("number", number), ("exp_month", exp_month), ("exp_year", exp_year), ("cvc", cvc),
                         ("postal_code", "10001")):
        card_input(page, field).fill(value)


def saved_cards(page):
    return page.get_by_role("list", name="Saved cards").get_by_role("listitem")


def card(page, last4):
    return saved_cards(page).filter(has_text=f"•••• {last4}")


def card_error(page):
    return page.locator("[data-card-error]")


def stored_cards(session, account):
    session.expire_all()
    return list(session.scalars(select(PaymentMethod).where(PaymentMethod.account_id == account.id,
                                                           PaymentMethod.detached_at.is_(None))
                                .order_by(PaymentMethod.id)))


def seed_card(session, portal, localstripe, account, number):  # noqa: F811
    """A card saved the way the page saves one, without spending browser time on it."""
    gateway = portal.app.extensions["portal.gateway"]
    intent = cards.start_card_setup(session, gateway, account.id, save_as_default=False,
                                    idempotency_key=f"seed-{number}")
    assert StripeJs(localstripe.url).confirm_card_setup(intent.client_secret, number=number).status_code == 200
    return cards.complete_card_setup(session, gateway, account.id, intent.id, actor=Actor.system(), now=utcnow())


def test_a_customer_adds_a_card_in_stripes_card_field_and_sees_it_saved(page, portal, customer, session, traffic):
    log_in(page, portal)
    open_add_card_form(page)
    expect(page.get_by_label("Card number")).to_have_count(0)

    enter_card(page, VISA, exp_month="08", exp_year="31")
    page.get_by_role("button", name="Confirm").click()

    expect(card(page, "4242")).to_contain_text("Expires 08/2031 · Ada Lovelace")
    expect(card(page, "4242")).to_contain_text("Default")
    expect(page.locator("#toast")).to_contain_text("Visa •••• 4242 was added and set as your default card.")
    assert [(c.last4, c.is_default) for c in stored_cards(session, customer)] == [("4242", True)]
    assert_card_number_only_went_to_stripe(traffic, VISA)


def test_a_3d_secure_card_is_saved_once_the_customer_completes_authentication(
        page, portal, customer, session, traffic):
    log_in(page, portal)
    open_add_card_form(page)
    enter_card(page, THREE_D_SECURE)
    page.get_by_role("button", name="Confirm").click()

    page.get_by_role("button", name="Complete authentication").click()

    expect(card(page, "3155")).to_be_visible()
    assert [c.last4 for c in stored_cards(session, customer)] == ["3155"]
    assert_card_number_only_went_to_stripe(traffic, THREE_D_SECURE)


def test_a_3d_secure_card_whose_authentication_fails_shows_an_error_and_is_not_saved(
        page, portal, customer, session, traffic):
    log_in(page, portal)
    open_add_card_form(page)
    enter_card(page, THREE_D_SECURE)
    page.get_by_role("button", name="Confirm").click()

    page.get_by_role("button", name="Fail authentication").click()

    expect(card_error(page)).to_be_visible()
    expect(card_error(page)).to_contain_text("authentication failed")
    expect(page.get_by_role("button", name="Confirm")).to_be_enabled()
    expect(page.get_by_text("You have no saved cards.")).to_be_visible()
    assert stored_cards(session, customer) == []
    assert_card_number_only_went_to_stripe(traffic, THREE_D_SECURE)


def test_after_a_decline_the_customer_can_enter_another_card_and_save_it_as_default(
        page, portal, customer, session, localstripe, traffic):  # noqa: F811
    seed_card(session, portal, localstripe, customer, VISA)
    log_in(page, portal)
    open_add_card_form(page)
    enter_card(page, DECLINED)
    page.get_by_role("button", name="Confirm").click()
    expect(card_error(page)).to_have_text("Your card was declined.")

    page.get_by_label("Save as default card").check()
    card_input(page, "number").fill(SECOND_CARD)
    page.get_by_role("button", name="Confirm").click()

    expect(card(page, "4444")).to_contain_text("Default")
    expect(card(page, "4242")).not_to_contain_text("Default")
    assert [(c.last4, c.is_default) for c in stored_cards(session, customer)] == [("4242", False), ("4444", True)]
    assert_card_number_only_went_to_stripe(traffic, DECLINED)
    assert_card_number_only_went_to_stripe(traffic, SECOND_CARD)


def test_a_customer_logged_out_elsewhere_is_told_to_reload_rather_than_shown_a_technical_error(
        page, portal, customer, session):
    log_in(page, portal)
    open_add_card_form(page)
    enter_card(page, VISA)
    page.context.clear_cookies()

    page.get_by_role("button", name="Confirm").click()

    expect(card_error(page)).to_have_text("Your card could not be saved. Please reload the page and try again.")
    assert stored_cards(session, customer) == []


def test_a_customer_sets_another_default_card_and_deletes_the_old_one_from_the_card_menu(
        page, portal, customer, session, localstripe):  # noqa: F811
    first = seed_card(session, portal, localstripe, customer, VISA)
    second = seed_card(session, portal, localstripe, customer, SECOND_CARD)
    log_in(page, portal)
    expect(card(page, "4242")).to_contain_text("Default")

    card(page, "4444").locator("summary").click()
    page.get_by_role("menuitem", name="Save as default card").click()
    expect(card(page, "4444")).to_contain_text("Default")
    expect(card(page, "4242")).not_to_contain_text("Default")

    card(page, "4242").locator("summary").click()
    page.get_by_role("menuitem", name="Delete").click()
    page.get_by_role("button", name="Delete card").click()

    expect(card(page, "4242")).to_have_count(0)
    expect(page.locator("#toast")).to_contain_text("Visa •••• 4242 was deleted.")
    assert [(c.last4, c.is_default) for c in stored_cards(session, customer)] == [("4444", True)]
    customer_id = session.get(Account, customer.id).processor_customer_id
    assert localstripe.get(f"/v1/customers/{customer_id}")["invoice_settings"]["default_payment_method"] \
        == second.processor_id
    assert localstripe.get(f"/v1/payment_methods/{first.processor_id}")["customer"] is None


def test_the_stripe_card_form_is_accessible(page, portal, customer):
    log_in(page, portal)
    open_add_card_form(page)
    assert_accessible(page, "the Stripe-mode card form")
    page.get_by_role("button", name="Confirm").click()
    expect(card_error(page)).to_be_visible()
    assert_accessible(page, "the Stripe-mode card form with an error")
