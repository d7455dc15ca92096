"""Saved cards with JavaScript disabled: every action is a plain form or link, and ends back on
Billing details (a 303 after each post) showing what changed."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..helpers import add_card
from .test_cards_sandbox import (EXPIRY, card, charged_to, customer, default_badge, field_of, gateway,  # noqa: F401
                                 menu_button, saved_cards, sign_in, subscribed, toast)

pytestmark = pytest.mark.nojs


def expect_back_on_billing(page, live_server, message):
    expect(page).to_have_url(f"{live_server.url}/billing")
    expect(toast(page)).to_have_text(message)


def open_menu(page, brand, last4):
    """The three-dot menu is a <details>: it opens on a click without any script."""
    button = menu_button(page, brand, last4)
    # Without JavaScript nothing adds the menu roles: this really is the script-free page.
    expect(button).not_to_have_attribute("aria-haspopup", "menu")
    button.click()
    menu = page.locator("details.menu[open]")
    expect(menu).to_have_count(1)
    return menu


@pytest.fixture
def second_card(session, gateway, subscribed):
    add_card(session, gateway, subscribed, number="4242424242424242")


def test_setting_the_default_card_without_javascript(page, live_server, subscribed, second_card):
    sign_in(page, live_server)

    open_menu(page, "Visa", "4242").get_by_role("button", name="Save as default card").click()

    expect_back_on_billing(page, live_server, "Visa •••• 4242 is now your default card.")
    expect(default_badge(page, "4242")).to_have_text("Default")
    expect(default_badge(page, "4444")).to_have_count(0)
    expect(charged_to(page)).to_have_text("Visa •••• 4242")


def test_editing_a_card_without_javascript(page, live_server, subscribed):
    sign_in(page, live_server)

    open_menu(page, "Mastercard", "4444").get_by_role("link", name="Edit").click()
    expect(page).to_have_url(re.compile(r"/billing/cards/\d+/edit#card-\d+$"))
    form = page.get_by_role("form", name="Edit Mastercard •••• 4444")
    form.get_by_label(EXPIRY).fill("01 / 20")
    form.get_by_role("button", name="Save").click()
    expect(field_of(form, EXPIRY).locator(".error")).to_have_text("This expiry date is in the past.")

    form.get_by_label("Cardholder name").fill("Augusta Ada King")
    form.get_by_label(EXPIRY).fill("03 / 31")
    form.get_by_role("button", name="Save").click()

    expect_back_on_billing(page, live_server, "Mastercard •••• 4444 was updated.")
    expect(card(page, "4444").locator(".card-meta")).to_have_text("Expires 03/2031 · Augusta Ada King")
    expect(page.get_by_role("form", name="Edit Mastercard •••• 4444")).to_have_count(0)


def test_deleting_a_card_asks_for_confirmation_without_javascript(page, live_server, subscribed, second_card):
    sign_in(page, live_server)

    open_menu(page, "Visa", "4242").get_by_role("link", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/billing/cards/\d+/delete#card-\d+$"))
    confirm = page.get_by_role("alertdialog", name="Delete Visa •••• 4242? This can't be undone.")
    confirm.get_by_role("button", name="Delete card").click()

    expect_back_on_billing(page, live_server, "Visa •••• 4242 was deleted.")
    expect(card(page, "4242")).to_have_count(0)
    expect(saved_cards(page)).to_have_count(1)


def test_adding_a_card_without_javascript(page, live_server, subscribed):
    sign_in(page, live_server)

    page.get_by_role("link", name="Add payment method").click()
    expect(page).to_have_url(f"{live_server.url}/billing/cards/new#payment-details")
    form = page.get_by_role("form", name="Add a new card")
    form.get_by_label("Cardholder name").fill("Ada Lovelace")
    form.get_by_label("Card number").fill("4242 4242 4242 4241")
    form.get_by_label(EXPIRY).fill("12 / 30")
    form.get_by_label("Security code").fill("123")
    form.get_by_label("Save as default card").check()
    form.get_by_role("button", name="Confirm").click()
    expect(field_of(form, "Card number").locator(".error")).to_have_text("Your card number is incorrect.")
    expect(saved_cards(page)).to_have_count(1)

    # The form kept what was typed (except the number, which is corrected here).
    expect(form.get_by_label("Save as default card")).to_be_checked()
    form.get_by_label("Card number").fill("4242 4242 4242 4242")
    form.get_by_label("Security code").fill("123")
    form.get_by_role("button", name="Confirm").click()

    expect_back_on_billing(page, live_server, "Visa •••• 4242 was added and set as your default card.")
    expect(default_badge(page, "4242")).to_have_text("Default")
    expect(default_badge(page, "4444")).to_have_count(0)
    expect(charged_to(page)).to_have_text("Visa •••• 4242")


def test_3d_secure_is_a_page_of_its_own_without_javascript(page, live_server, subscribed):
    sign_in(page, live_server)

    page.get_by_role("link", name="Add payment method").click()
    form = page.get_by_role("form", name="Add a new card")
    form.get_by_label("Cardholder name").fill("Ada Lovelace")
    form.get_by_label("Card number").fill("4000 0025 0000 3155")
    form.get_by_label(EXPIRY).fill("12 / 30")
    form.get_by_label("Security code").fill("123")
    form.get_by_role("button", name="Confirm").click()

    expect(page).to_have_url(re.compile(r"/sandbox/setup-intents/seti_\w+/authenticate$"))
    page.get_by_role("group", name="Confirm this card with your bank").get_by_role(
        "button", name="Approve authentication").click()

    expect_back_on_billing(page, live_server, "Visa •••• 3155 was added.")
    expect(saved_cards(page)).to_have_count(2)
    expect(default_badge(page, "4444")).to_have_text("Default")
