"""Saved cards in the browser, sandbox processor, JavaScript on: every action goes through HTMX and
swaps the Payment details section (and the subscription summary) without reloading the page.

The helpers and fixtures here are shared with the keyboard and no-JavaScript card tests.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from portal.payments.sandbox import SandboxGateway

from ..helpers import PASSWORD, Browser, add_card, make_customer, make_subscription

EMAIL = "ada@example.com"
EXPIRY = "Expiry date (MM / YY)"


# --- set-up ---------------------------------------------------------------------------------------

@pytest.fixture
def customer(session):
    account, _ = make_customer(session, email=EMAIL)
    return account


@pytest.fixture
def gateway(live_server):
    return live_server.app.extensions["portal.gateway"]


@pytest.fixture
def subscribed(session, gateway, customer):
    """An active subscription charged to a default Mastercard •••• 4444."""
    make_subscription(session, customer)
    add_card(session, gateway, customer, number="5555555555554444", default=True)
    return customer


def log_in(page, live_server):
    """Log in through the login form."""
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Billing details", level=1)).to_be_visible()


def sign_in(page, live_server):
    """Open Billing details already logged in: the session cookie of a real login, without the form
    (the login form has its own test; this keeps the card tests fast)."""
    browser = Browser(live_server.app.test_client())
    browser.login(email=EMAIL)
    cookie = browser.client.get_cookie("portal_session")
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page.goto(f"{live_server.url}/billing")
    expect(page.get_by_role("heading", name="Billing details", level=1)).to_be_visible()


# --- what the page shows --------------------------------------------------------------------------

def remember_this_page(page):
    """Leave a mark on the window: it survives HTMX swaps and is gone after a full page load."""
    page.evaluate("window.__samePage = 'not reloaded'")


def assert_not_reloaded(page):
    assert page.evaluate("window.__samePage") == "not reloaded", "the page was reloaded"


def saved_cards(page):
    return page.get_by_role("list", name="Saved cards").get_by_role("listitem")


def card(page, last4):
    return saved_cards(page).filter(has_text=f"•••• {last4}")


def default_badge(page, last4):
    return card(page, last4).locator(".badge-default")


def charged_to(page):
    return page.locator("#subscription .facts > div").filter(has_text="Charged to").locator("dd")


def toast(page):
    return page.locator("#toast")


def field_of(form, label):
    """The field block (label, input, error) around the input with this label."""
    return form.locator(".field").filter(has=form.page.get_by_label(label, exact=True))


def menu_button(page, brand, last4):
    # A <summary>: Chromium exposes it as a (disclosure) button, Playwright's role engine has no role for it.
    return page.locator("summary").and_(page.get_by_label(f"Actions for {brand} ending in {last4}", exact=True))


def card_menu(page, brand, last4):
    return page.get_by_role("menu", name=f"Actions for {brand} ending in {last4}")


# --- what a person does ---------------------------------------------------------------------------

def open_card_menu(page, brand, last4):
    menu_button(page, brand, last4).click()
    return card_menu(page, brand, last4)


def settled(page):
    """Wait until HTMX has finished swapping: it focuses the new [autofocus] field only when the swap
    settles, which can come after the browser's own autofocus, so typing earlier could be cut short."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-added, .htmx-settling")).to_have_count(0)


def open_add_form(page):
    page.get_by_role("link", name="Add payment method").click()
    form = page.get_by_role("form", name="Add a new card")
    expect(form).to_be_visible()
    settled(page)
    expect(form.get_by_label("Cardholder name")).to_be_focused()
    return form


def open_edit_form(page, brand, last4):
    open_card_menu(page, brand, last4).get_by_role("menuitem", name="Edit").click()
    form = page.get_by_role("form", name=f"Edit {brand} •••• {last4}")
    expect(form).to_be_visible()
    settled(page)
    expect(form.get_by_label("Cardholder name")).to_be_focused()
    return form


def fill_card(form, *, number, expiry="12 / 30", cvc="123", name="Ada Lovelace", default=False):
    form.get_by_label("Cardholder name").fill(name)
    form.get_by_label("Card number").fill(number)
    form.get_by_label(EXPIRY).fill(expiry)
    form.get_by_label("Security code").fill(cvc)
    if default:
        form.get_by_label("Save as default card").check()
    form.get_by_role("button", name="Confirm").click()


# --- logging in -----------------------------------------------------------------------------------

def test_customer_logs_in_through_the_form_and_sees_the_test_mode_marker(page, live_server, subscribed):
    log_in(page, live_server)

    expect(page).to_have_url(f"{live_server.url}/billing")
    expect(page.get_by_role("note").filter(has_text="Test mode")).to_contain_text("no real card is ever charged")
    expect(default_badge(page, "4444")).to_have_text("Default")
    expect(charged_to(page)).to_have_text("Mastercard •••• 4444")


# --- adding cards ---------------------------------------------------------------------------------

def test_adding_a_default_card_moves_the_badge_and_the_charged_to_line_without_a_reload(page, live_server, subscribed):
    sign_in(page, live_server)
    remember_this_page(page)

    fill_card(open_add_form(page), number="4242 4242 4242 4242", default=True)

    expect(toast(page)).to_have_text("Visa •••• 4242 was added and set as your default card.")
    expect(default_badge(page, "4242")).to_have_text("Default")
    expect(card(page, "4444")).to_be_visible()
    expect(default_badge(page, "4444")).to_have_count(0)
    expect(charged_to(page)).to_have_text("Visa •••• 4242")
    expect(page.get_by_role("form", name="Add a new card")).to_have_count(0)
    assert_not_reloaded(page)


def test_each_invalid_card_shows_its_message_next_to_the_field_and_adds_nothing(page, live_server, subscribed):
    sign_in(page, live_server)
    remember_this_page(page)
    form = open_add_form(page)

    for label, number, expiry, message in [
        ("Card number", "4242 4242 4242 4241", "12 / 30", "Your card number is incorrect."),  # fails Luhn
        (EXPIRY, "4242 4242 4242 4242", "01 / 20", "This expiry date is in the past."),
        ("Card number", "1234 5678 1234 5670", "12 / 30", "This card brand is not supported."),  # Luhn-valid
    ]:
        fill_card(form, number=number, expiry=expiry)

        expect(field_of(form, label).locator(".error")).to_contain_text(message)
        expect(form.get_by_label(label, exact=True)).to_have_attribute("aria-invalid", "true")
        expect(form.locator(".field.has-error")).to_have_count(1)
        expect(saved_cards(page)).to_have_count(1)
        settled(page)
        expect(form.get_by_label("Cardholder name")).to_be_focused()

    assert_not_reloaded(page)


def test_only_the_field_with_the_error_is_marked_invalid(page, live_server, subscribed):
    sign_in(page, live_server)
    form = open_add_form(page)

    fill_card(form, number="4242 4242 4242 4241")

    expect(form.get_by_label("Card number")).to_have_attribute("aria-invalid", "true")
    # Screen readers read any aria-invalid other than "false" as invalid.
    invalid = {label: form.get_by_label(label, exact=True).get_attribute("aria-invalid")
               for label in ("Cardholder name", EXPIRY, "Security code")}
    assert invalid == {"Cardholder name": None, EXPIRY: None, "Security code": None}


def test_a_declined_card_shows_the_decline_message_and_adds_nothing(page, live_server, subscribed):
    sign_in(page, live_server)

    form = open_add_form(page)
    fill_card(form, number="4000 0000 0000 0002", default=True)

    expect(field_of(form, "Card number").locator(".error")).to_have_text("Your card was declined.")
    expect(saved_cards(page)).to_have_count(1)
    expect(charged_to(page)).to_have_text("Mastercard •••• 4444")


def test_a_card_corrected_after_an_error_is_added_without_becoming_the_default(page, live_server, subscribed):
    sign_in(page, live_server)
    form = open_add_form(page)
    fill_card(form, number="4242 4242 4242 4241", name="Grace Hopper")
    expect(field_of(form, "Card number").locator(".error")).to_have_text("Your card number is incorrect.")
    settled(page)
    expect(form.get_by_label("Cardholder name")).to_be_focused()

    form.get_by_label("Card number").fill("4242 4242 4242 4242")
    form.get_by_role("button", name="Confirm").click()

    expect(toast(page)).to_have_text("Visa •••• 4242 was added.")
    expect(card(page, "4242")).to_contain_text("Expires 12/2030 · Grace Hopper")
    expect(default_badge(page, "4242")).to_have_count(0)
    expect(default_badge(page, "4444")).to_have_text("Default")
    expect(charged_to(page)).to_have_text("Mastercard •••• 4444")


def test_approving_3d_secure_saves_the_card(page, live_server, subscribed):
    sign_in(page, live_server)
    remember_this_page(page)

    fill_card(open_add_form(page), number="4000 0025 0000 3155", default=True)
    step = page.get_by_role("group", name="Confirm this card with your bank")
    expect(step).to_contain_text("simulated 3-D Secure")
    expect(step.get_by_role("button", name="Approve authentication")).to_be_focused()
    expect(saved_cards(page)).to_have_count(1)
    step.get_by_role("button", name="Approve authentication").click()

    expect(toast(page)).to_have_text("Visa •••• 3155 was added and set as your default card.")
    expect(step).to_have_count(0)
    expect(default_badge(page, "3155")).to_have_text("Default")
    expect(charged_to(page)).to_have_text("Visa •••• 3155")
    assert_not_reloaded(page)


def test_failing_3d_secure_shows_an_error_and_saves_nothing(page, live_server, subscribed):
    sign_in(page, live_server)

    fill_card(open_add_form(page), number="4000002500003155", default=True)
    page.get_by_role("button", name="Fail authentication").click()

    form = page.get_by_role("form", name="Add a new card")
    expect(form.get_by_role("alert")).to_have_text("Card authentication failed. Try again or use another card.")
    expect(page.get_by_role("group", name="Confirm this card with your bank")).to_have_count(0)
    expect(card(page, "3155")).to_have_count(0)
    expect(saved_cards(page)).to_have_count(1)
    expect(charged_to(page)).to_have_text("Mastercard •••• 4444")


# --- the three-dot menu: edit, set default, delete ------------------------------------------------

def test_editing_a_cards_expiry_and_name_through_the_menu(page, live_server, subscribed):
    sign_in(page, live_server)
    remember_this_page(page)

    form = open_edit_form(page, "Mastercard", "4444")
    expect(form.get_by_label(EXPIRY)).to_have_value("12 / 30")
    form.get_by_label(EXPIRY).fill("01 / 20")
    form.get_by_role("button", name="Save").click()
    expect(field_of(form, EXPIRY).locator(".error")).to_have_text("This expiry date is in the past.")
    expect(card(page, "4444").locator(".card-meta")).to_have_text("Expires 12/2030 · Ada Lovelace")
    settled(page)
    expect(form.get_by_label("Cardholder name")).to_be_focused()
    form.get_by_label("Cardholder name").fill("Augusta Ada King")
    form.get_by_label(EXPIRY).fill("03 / 31")
    form.get_by_role("button", name="Save").click()

    expect(toast(page)).to_have_text("Mastercard •••• 4444 was updated.")
    expect(card(page, "4444").locator(".card-meta")).to_have_text("Expires 03/2031 · Augusta Ada King")
    expect(form).to_have_count(0)
    assert_not_reloaded(page)


def test_setting_another_card_as_default_through_the_menu(page, session, gateway, live_server, subscribed):
    add_card(session, gateway, subscribed, number="4242424242424242")
    sign_in(page, live_server)
    remember_this_page(page)

    open_card_menu(page, "Visa", "4242").get_by_role("menuitem", name="Save as default card").click()

    expect(toast(page)).to_have_text("Visa •••• 4242 is now your default card.")
    expect(default_badge(page, "4242")).to_have_text("Default")
    expect(default_badge(page, "4444")).to_have_count(0)
    expect(charged_to(page)).to_have_text("Visa •••• 4242")
    # The default card is listed first and no longer offers to become the default.
    expect(saved_cards(page).first).to_contain_text("•••• 4242")
    expect(open_card_menu(page, "Visa", "4242").get_by_role("menuitem")).to_have_text(["Edit", "Delete"])
    assert_not_reloaded(page)


def test_deleting_a_card_asks_first_and_then_removes_it(page, session, gateway, live_server, subscribed):
    add_card(session, gateway, subscribed, number="4242424242424242")
    sign_in(page, live_server)
    remember_this_page(page)

    open_card_menu(page, "Visa", "4242").get_by_role("menuitem", name="Delete").click()
    confirm = page.get_by_role("alertdialog", name="Delete Visa •••• 4242? This can't be undone.")
    confirm.get_by_role("link", name="Cancel").click()
    expect(confirm).to_have_count(0)
    expect(saved_cards(page)).to_have_count(2)

    open_card_menu(page, "Visa", "4242").get_by_role("menuitem", name="Delete").click()
    expect(confirm.get_by_role("button", name="Delete card")).to_be_focused()
    confirm.get_by_role("button", name="Delete card").click()

    expect(toast(page)).to_have_text("Visa •••• 4242 was deleted.")
    expect(card(page, "4242")).to_have_count(0)
    expect(saved_cards(page)).to_have_count(1)
    expect(charged_to(page)).to_have_text("Mastercard •••• 4444")
    assert_not_reloaded(page)


def test_the_default_card_of_an_active_subscription_says_up_front_why_it_cannot_be_deleted(
        page, session, gateway, live_server, subscribed):
    add_card(session, gateway, subscribed, number="4242424242424242")
    sign_in(page, live_server)

    menu = open_card_menu(page, "Mastercard", "4444")
    delete = menu.get_by_role("menuitem", name="Delete")
    expect(delete).to_have_attribute("aria-disabled", "true")
    expect(delete).to_have_accessible_description(
        "Mastercard •••• 4444 is the default card for your subscription, so it can't be deleted. "
        "Set another card as default first.")
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    # Without the menu (an old link, no JavaScript), the confirmation page says the same instead of asking.
    card_id = card(page, "4444").get_attribute("id").removeprefix("card-")
    page.goto(f"{live_server.url}/billing/cards/{card_id}/delete")
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    expect(card(page, "4444").get_by_role("alert")).to_have_text(
        "Mastercard •••• 4444 is the default card for your subscription, so it can't be deleted. "
        "Set another card as default first.")
    expect(default_badge(page, "4444")).to_have_text("Default")
    expect(saved_cards(page)).to_have_count(2)
    expect(charged_to(page)).to_have_text("Mastercard •••• 4444")


# --- expiry badges --------------------------------------------------------------------------------

def test_cards_expiring_this_month_or_already_expired_are_flagged(page, database, session, gateway, live_server,
                                                                  subscribed):
    today = datetime.now(timezone.utc).date()
    add_card(session, gateway, subscribed, number="4000056655665556", exp_month=today.month, exp_year=today.year)
    # A card saved years ago, when its expiry date was still in the future.
    years_ago = SandboxGateway(database, clock=lambda: datetime(2020, 1, 15, tzinfo=timezone.utc))
    add_card(session, years_ago, subscribed, number="4012888888881881", exp_month=6, exp_year=2021)
    sign_in(page, live_server)

    expect(card(page, "5556").locator(".badges")).to_have_text("Expires soon")
    expect(card(page, "1881").locator(".badges")).to_have_text("Expired")
    expect(card(page, "1881")).to_contain_text("Expires 06/2021")
    expect(card(page, "4444").locator(".badges")).to_have_text("Default")
