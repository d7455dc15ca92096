"""An invoice's details: in place under its row with JavaScript, a page of its own without; both accessible."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..helpers import make_invoice
from .conftest import settled
from .test_accessibility import assert_accessible
from .test_cards_sandbox import assert_not_reloaded, customer, gateway, remember_this_page, sign_in, subscribed  # noqa: F401


def test_invoice_details_open_in_place_under_the_row_and_hide_again(page, live_server, session, subscribed):
    paid = make_invoice(session, subscribed, status="paid")
    sign_in(page, live_server)
    remember_this_page(page)
    details = page.locator(f"#invoice-details-{paid.id}")
    expect(details).to_be_hidden()
    opener = page.locator(f"#invoice-{paid.id}").get_by_role("link", name=f"{paid.number} details")
    opener.click()
    settled(page)
    expect(details).to_be_visible()
    expect(details).to_contain_text("Pro plan (monthly)")
    expect(details.locator(".totals .due")).to_have_text(re.compile(r"Amount due\s*\$0\.00"))
    expect(details.get_by_role("link", name=re.compile("Download PDF"))).to_be_visible()
    expect(opener).to_have_attribute("aria-expanded", "true")
    assert_not_reloaded(page)
    assert_accessible(page, "an invoice's details in place")
    details.get_by_role("button", name=re.compile("Hide details")).click()
    expect(details).to_be_hidden()
    expect(opener).to_be_focused()
    opener.click()  # and it opens again from the same place
    settled(page)
    expect(details.locator(".totals")).to_contain_text("$20.00")
    page.goto(f"{live_server.url}/billing/invoices/{paid.id}")
    assert_accessible(page, "an invoice's details page")


@pytest.mark.nojs
def test_invoice_details_without_javascript_are_a_page_with_pay_now(page, live_server, session, subscribed):
    open_ = make_invoice(session, subscribed, status="open")
    sign_in(page, live_server)
    page.locator(f"#invoice-{open_.id}").get_by_role("link", name=f"{open_.number} details").click()
    expect(page).to_have_url(re.compile(rf"/billing/invoices/{open_.id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {open_.number}")
    expect(page.locator(".totals .due")).to_have_text(re.compile(r"Amount due\s*\$20\.00"))
    expect(page.locator("main")).to_contain_text("No payment has been attempted yet.")
    page.get_by_role("button", name=re.compile("Pay now")).click()
    expect(page).to_have_url(re.compile(r"/sandbox/checkout/"))
