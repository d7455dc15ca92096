"""Billing address in the browser: Update swaps in the form, Save swaps back, the tax preview follows."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from ..helpers import PASSWORD, add_card, make_customer, make_subscription
from .conftest import settled


def login(page, live_server, email="ada@example.com"):
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/billing$"))


def test_update_then_save_changes_the_address_and_the_tax_shown_before_purchase(page, live_server, session):
    account, _ = make_customer(session, address_line1="100 Main Street", city="Springfield", postal_code="01101",
                               region="MA")
    add_card(session, live_server.app.extensions["portal.gateway"], account, default=True)
    make_subscription(session, account)
    login(page, live_server)
    page.evaluate("window.__same_page = true")
    expect(page.locator("#next-charge")).to_contain_text("$21.25")
    expect(page.locator("#next-charge")).to_contain_text("incl. sales tax 6.25%")

    address = page.locator("#billing-address")
    address.get_by_role("link", name="Update").click()
    expect(page.get_by_label("Name or company name")).to_be_focused()
    expect(page.get_by_label("Address line 1")).to_have_value("100 Main Street")
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("Postal or ZIP code").fill("1011")  # too short for Germany
    page.get_by_label("State, province or region").fill("")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Address line 1").fill("Friedrichstraße 68")
    address.get_by_role("button", name="Save").click()
    expect(page.locator("#postal_code-error")).to_have_text("Enter a valid postal code for Germany, like 10115.")
    expect(page.get_by_label("Postal or ZIP code")).to_be_focused()  # the first field to fix
    expect(page.get_by_label("Postal or ZIP code")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Postal or ZIP code").fill("10117")
    address.get_by_role("button", name="Save").click()
    expect(address).to_contain_text("Friedrichstraße 68")
    expect(address).to_contain_text("Germany")
    expect(page.locator("#toast")).to_contain_text("applies to future invoices")
    # German VAT (19%) now, shown before the next charge, without reloading the page.
    expect(page.locator("#next-charge")).to_contain_text("$23.80")
    expect(page.locator("#next-charge")).to_contain_text("incl. VAT 19%")
    assert page.evaluate("window.__same_page") is True

    settled(page)
    address.get_by_role("link", name="Update").click()
    # htmx moves focus to the autofocus field once the form has settled; typing before that would race it.
    settled(page)
    expect(page.get_by_label("Name or company name")).to_be_focused()
    page.get_by_label("VAT number").fill("DE 136 695 976")
    address.get_by_role("button", name="Save").click()
    expect(address).to_contain_text("DE136695976")
    expect(address.locator(".badge")).to_have_text("Valid")
    expect(page.locator("#next-charge")).to_contain_text("$20.00")
    expect(page.locator("#next-charge")).to_contain_text("reverse charge")


def test_cancel_puts_the_address_back_unchanged(page, live_server, session):
    make_customer(session, address_line1="100 Main Street", city="Springfield", postal_code="01101", region="MA")
    login(page, live_server)
    address = page.locator("#billing-address")
    address.get_by_role("link", name="Update").click()
    expect(page.get_by_label("Name or company name")).to_be_focused()
    page.get_by_label("City").fill("Somewhere else")
    address.get_by_role("link", name="Cancel").click()
    expect(address).to_contain_text("Springfield")
    expect(address.get_by_role("link", name="Update")).to_be_visible()
