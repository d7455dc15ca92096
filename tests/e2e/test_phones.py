"""Every page at a phone's width (390 × 844): nothing is wider than the screen, so nothing scrolls sideways."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from ..helpers import PASSWORD, add_card, make_customer, make_invoice, make_staff, make_subscription
from .conftest import settled

PHONE = {"width": 390, "height": 844}


def assert_fits(page, where: str):
    # Measured once the page has loaded: right after a redirect the URL can already be the new page's while
    # its stylesheet is still arriving, and an unstyled page is wider than any styled one.
    page.wait_for_load_state("load")
    width, screen = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width <= screen, f"{where} is {width} px wide on a {screen} px screen"


def log_in(page, live_server, email):
    page.goto(f"{live_server.url}/login")
    assert_fits(page, "the login page")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_every_customer_page_and_the_checkout_fit_a_phone(page, live_server, session):
    page.set_viewport_size(PHONE)
    gateway = live_server.app.extensions["portal.gateway"]
    account, _ = make_customer(session, email="a.very.long.address.for.billing@acme-analytics.example",
                               address_line1="1 Main St", city="Boston", postal_code="02101", region="MA")
    make_subscription(session, account)
    card = add_card(session, gateway, account, default=True)
    add_card(session, gateway, account, number="5555555555554444")
    invoices = [make_invoice(session, account, status="paid") for _ in range(13)]
    open_ = make_invoice(session, account, status="open")
    log_in(page, live_server, "a.very.long.address.for.billing@acme-analytics.example")
    expect(page).to_have_url(re.compile(r"/billing$"))
    assert_fits(page, "Billing details")
    page.locator(f"#invoice-{invoices[-1].id}").get_by_role("link", name=re.compile("details")).click()
    settled(page)
    expect(page.locator(f"#invoice-details-{invoices[-1].id}")).to_be_visible()
    assert_fits(page, "an invoice's details in place")
    for path, where in [("/billing/cards/new", "the add-card form"), (f"/billing/cards/{card.id}/edit", "the edit form"),
                        (f"/billing/cards/{card.id}/delete", "the delete confirmation"),
                        ("/billing/address/edit", "the billing address form"),
                        (f"/billing/invoices/{open_.id}", "an invoice's details page"), ("/account", "account settings")]:
        page.goto(live_server.url + path)
        assert_fits(page, where)
    page.goto(live_server.url + "/billing/address/edit")
    page.get_by_label("City").fill("")
    page.get_by_role("button", name="Save").click()
    settled(page)
    assert_fits(page, "the billing address form with errors")
    page.goto(f"{live_server.url}/billing/invoices/{open_.id}")
    page.get_by_role("button", name=re.compile("Pay now")).click()
    expect(page).to_have_url(re.compile(r"/sandbox/checkout/"))
    assert_fits(page, "the checkout page")
    page.get_by_label("Saved card: Mastercard •••• 4444").check()
    page.get_by_label("Succeed", exact=True).check()
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    expect(page).to_have_url(re.compile(rf"/billing/invoices/{open_.id}/paid"))
    assert_fits(page, "the payment page after checkout")


def test_every_staff_console_page_fits_a_phone(page, live_server, session):
    page.set_viewport_size(PHONE)
    gateway = live_server.app.extensions["portal.gateway"]
    account, _ = make_customer(session, email="a.very.long.address.for.billing@acme-analytics.example",
                               name="Acme Analytics International Holdings Inc.")
    make_subscription(session, account)
    add_card(session, gateway, account, default=True)
    make_invoice(session, account, status="paid")
    make_invoice(session, account, status="open")
    make_staff(session, email="agent@support.example")
    log_in(page, live_server, "agent@support.example")
    expect(page.get_by_role("heading", name="Support console", level=1)).to_be_visible()
    assert_fits(page, "the console")
    page.get_by_label(re.compile("E-mail, name")).fill("acme")
    page.get_by_role("button", name="Search").click()
    assert_fits(page, "the search results")
    page.locator("#search-results").get_by_role("link", name=account.name).click()
    expect(page.get_by_role("heading", name=re.compile("Acme Analytics"), level=1)).to_be_visible()
    assert_fits(page, "the console's account page")
    view_as = page.get_by_role("region", name="View as customer")
    view_as.get_by_label("Reason").fill("Ticket 8812: checking the invoices on a phone")
    view_as.get_by_role("button", name="View as customer").click()
    expect(page.get_by_role("heading", name="Billing details", level=1)).to_be_visible()
    assert_fits(page, "Billing details viewed as the customer")


TABLE_SHAPE = """() => {
  const table = document.querySelector('#search-results table');
  const panel = document.querySelector('#search-results');
  const lines = el => {
    const style = getComputedStyle(el);
    return Math.round(el.getBoundingClientRect().height / parseFloat(style.lineHeight));
  };
  return {
    table: table.scrollWidth, panel: panel.clientWidth,
    nameLines: [...table.querySelectorAll('.account-name a')].map(lines),
    // Each piece of an e-mail and each id is drawn on one line: nothing breaks inside a word.
    brokenWords: [...table.querySelectorAll('.word, code')].filter(el => el.getClientRects().length > 1)
                   .map(el => el.textContent),
  };
}"""


def test_the_console_search_table_fits_its_panel_with_names_ids_and_e_mails_whole(page, live_server, session):
    for i, name in enumerate(["Acme Analytics International Holdings Inc.", "Berliner Datenwerk GmbH"]):
        make_customer(session, email=f"a.very.long.address.for.billing.{i}@acme-analytics.example", name=name,
                      billing_email=f"accounts.payable.department.{i}@acme-analytics-international.example",
                      processor_customer_id=f"cus_Q8xYzLongProcessorId{i}")
    make_staff(session, email="agent@support.example")
    log_in(page, live_server, "agent@support.example")
    for width, height in ((1280, 900), (PHONE["width"], PHONE["height"])):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/staff?q=acme")
        shape = page.evaluate(TABLE_SHAPE)
        assert shape["table"] <= shape["panel"], f"at {width} px the table is {shape['table']} px in a " \
                                                 f"{shape['panel']} px panel"
        assert not shape["brokenWords"], f"at {width} px these break inside a word: {shape['brokenWords']}"
        if width == 1280:
            assert max(shape["nameLines"]) <= 2, f"names take {shape['nameLines']} lines at {width} px"
        assert_fits(page, f"the search results at {width} px")
