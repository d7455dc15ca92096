"""Layout a customer would notice at desktop width: tables that line up, labels that do not break, fields that
stay put when an error appears. Measured in a real browser, since only the rendered boxes show it."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.models import CreditEntry, Refund

from ..helpers import PASSWORD, make_customer, make_invoice, make_subscription
from .conftest import settled

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# How many lines an element's text takes (its content only, without padding).
LINES_OF = ("(el) => { const r = document.createRange(); r.selectNodeContents(el);"
            " return Math.round(r.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight)); }")
BOX = "(el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.right]; }"


def test_tables_actions_checkout_and_forms_keep_their_shape(page, live_server, session):
    page.set_viewport_size(DESKTOP)
    account, _ = make_customer(session, address_line1="1 Main St", city="Boston", postal_code="02101", region="MA")
    make_subscription(session, account)
    refunded = make_invoice(session, account, status="paid")
    open_ = make_invoice(session, account, status="open")
    session.add_all([
        Refund(invoice_id=refunded.id, account_id=account.id, amount_cents=500, currency="USD", reason="Outage",
               status="succeeded", destination="card", idempotency_key="layout-ref-1"),
        CreditEntry(account_id=account.id, amount_cents=700, currency="USD", kind="grant", reason="Sorry for the outage"),
    ])
    session.commit()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/billing$"))

    # Credits: headers start at the left of their column, and "Invoice" and "Amount" do not touch.
    credits = page.locator("table.credit-history")
    assert credits.locator("th").first.evaluate("(el) => getComputedStyle(el).textAlign") in ("left", "start")
    invoice_head = credits.get_by_role("columnheader", name="Invoice").evaluate(BOX)
    amount_head = credits.get_by_role("columnheader", name="Amount").evaluate(BOX)
    invoice_text = credits.get_by_role("columnheader", name="Invoice").evaluate(
        "(el) => { const r = document.createRange(); r.selectNodeContents(el); return r.getBoundingClientRect().right; }")
    assert amount_head[0] - invoice_text >= 8, "the Invoice and Amount headers run together"
    assert invoice_head[3] <= amount_head[0] + 1

    # An invoice with a refund keeps its row to the lines of an invoice without one; the actions never wrap.
    for invoice in (refunded, open_):
        row = page.locator(f"#invoice-{invoice.id}")
        assert row.locator("td.description").evaluate(LINES_OF) <= 2, f"{invoice.number}'s row wraps"
        email = row.get_by_role("button", name=re.compile("Email me a copy")).or_(
            row.get_by_role("link", name=re.compile("Email me a copy")))
        assert email.evaluate("(el) => el.getClientRects().length") == 1
        assert email.evaluate(LINES_OF) == 1, "“Email me a copy” wraps"
    expect(page.get_by_role("list", name=f"Refunds of {refunded.number}")).to_contain_text("5–10 business days")

    # The address form: each hint follows its input; a long error under the ZIP code keeps it beside the city.
    page.goto(f"{live_server.url}/billing/address/edit")
    region = page.get_by_label("State, province or region")
    assert region.evaluate("(el) => !!(el.compareDocumentPosition(document.getElementById('region-hint')) & 4)")
    page.get_by_label("Postal or ZIP code").fill("this is not a postal code of any country at all")
    page.get_by_label("Country").select_option("US")
    page.get_by_role("button", name="Save").click()
    settled(page)
    expect(page.locator("#postal_code-error")).to_be_visible()
    city_box = page.get_by_label("City").evaluate(BOX)
    zip_box = page.get_by_label("Postal or ZIP code").evaluate(BOX)
    assert abs(city_box[1] - zip_box[1]) < 2, "the error pushed the ZIP field onto its own line"

    # The add-card form: an expiry error does not widen the expiry column.
    page.goto(f"{live_server.url}/billing/cards/new")
    form = page.get_by_role("form", name="Add a new card")
    expiry = form.get_by_label(re.compile("Expiry date")).evaluate(BOX)
    cvc = form.get_by_label(re.compile("Security code|CVC")).evaluate(BOX)
    form.get_by_label(re.compile("Expiry date")).fill("13/99")
    form.get_by_role("button", name="Confirm").click()
    settled(page)
    form = page.get_by_role("form", name="Add a new card")
    expect(form.locator(".has-error").first).to_be_visible()
    assert form.get_by_label(re.compile("Expiry date")).evaluate(BOX)[2] == expiry[2]
    assert form.get_by_label(re.compile("Security code|CVC")).evaluate(BOX)[0] == cvc[0]

    # The checkout heading never breaks inside the invoice number, and its two buttons are equally wide.
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/billing/invoices/{open_.id}")
    page.get_by_role("button", name=re.compile("Pay now")).click()
    expect(page).to_have_url(re.compile(r"/sandbox/checkout/"))
    number = page.get_by_role("heading", level=1).locator("span", has_text=open_.number)
    assert number.evaluate("(el) => el.getClientRects().length") == 1
    assert number.evaluate(LINES_OF) == 1, "the heading breaks inside the invoice number"
    pay = page.get_by_role("button", name=re.compile(r"^Pay ")).evaluate(BOX)
    cancel = page.get_by_role("link", name="Cancel and go back").evaluate(BOX)
    assert abs(pay[2] - cancel[2]) < 1
