"""The other main flows with JavaScript disabled: update the billing address and download an invoice PDF."""
from __future__ import annotations

import io
import re

import pytest
from playwright.sync_api import expect

from ..helpers import make_invoice
from .test_cards_sandbox import customer, gateway, sign_in, subscribed  # noqa: F401

pytestmark = pytest.mark.nojs


def test_updating_the_billing_address_without_javascript(page, live_server, subscribed):
    sign_in(page, live_server)
    address = page.locator("#billing-address")
    address.get_by_role("link", name="Update").click()
    expect(page).to_have_url(re.compile(r"/billing/address/edit#billing-address$"))
    page.get_by_label("Name or company name").fill("Acme Analytics GmbH")
    page.get_by_label("Address line 1").fill("Friedrichstraße 68")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Postal or ZIP code").fill("1011")
    page.get_by_label("State, province or region").fill("")
    page.get_by_label("Country").select_option("DE")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#postal_code-error")).to_have_text("Enter a valid postal code for Germany, like 10115.")
    page.get_by_label("Postal or ZIP code").fill("10117")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/billing#billing-address$"))
    expect(page.locator("#toast")).to_contain_text("Your billing information was saved.")
    expect(page.locator("#billing-address address")).to_contain_text("Friedrichstraße 68")
    expect(page.locator("#next-charge")).to_contain_text("incl. VAT 19%")


def test_downloading_an_invoice_pdf_without_javascript(page, live_server, session, subscribed):
    from pypdf import PdfReader

    invoice = make_invoice(session, subscribed, status="paid")
    sign_in(page, live_server)
    row = page.locator(f"#invoice-{invoice.id}")
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile("Download PDF")).click()
    assert download.value.suggested_filename == f"{invoice.number}.pdf"
    text = PdfReader(io.BytesIO(open(download.value.path(), "rb").read())).pages[0].extract_text()
    assert invoice.number in text and "PAID" in text


def test_without_javascript_a_message_sits_in_the_page_and_covers_no_button(page, live_server, subscribed):
    sign_in(page, live_server)
    page.locator("#billing-address").get_by_role("link", name="Update").click()
    page.get_by_label("Address line 1").fill("1 Main St")
    page.get_by_label("City").fill("Boston")
    page.get_by_label("Postal or ZIP code").fill("02101")
    page.get_by_label("State, province or region").fill("MA")
    page.get_by_label("Country").select_option("US")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#toast")).to_contain_text("Your billing information was saved.")
    update = page.locator("#billing-address").get_by_role("link", name="Update")
    update.scroll_into_view_if_needed()
    box = update.bounding_box()
    on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('a') !== null && "
                           "document.elementFromPoint(x, y).closest('a').textContent.trim() === 'Update'",
                           [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    assert on_top, "the message covers the Update button"
    assert page.evaluate("getComputedStyle(document.getElementById('toast')).position") == "static"
