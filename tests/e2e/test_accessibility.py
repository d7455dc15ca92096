"""axe-core on every page and open state of the portal, in sandbox mode: no serious or critical violations."""
from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from ..helpers import PASSWORD, add_card, make_customer, make_invoice, make_subscription
from .conftest import settled
from portal.models import utcnow

AXE = Axe()


def violations(page) -> list[str]:
    results = AXE.run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def assert_accessible(page, where: str):
    found = violations(page)
    assert not found, f"{where}: " + "; ".join(found)


@pytest.fixture
def customer_page(page, live_server, session):
    gateway = live_server.app.extensions["portal.gateway"]
    account, _ = make_customer(session, address_line1="1 Main St", city="Boston", postal_code="02101", region="MA")
    make_subscription(session, account)
    add_card(session, gateway, account, default=True)
    add_card(session, gateway, account, number="5555555555554444")
    for i in range(3):
        make_invoice(session, account, status="paid" if i else "open")
    page.goto(live_server.url + "/login")
    assert_accessible(page, "login page")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/billing$"))
    return page


def test_billing_details_and_every_form_it_opens_are_accessible(customer_page, live_server):
    page = customer_page
    assert_accessible(page, "Billing details")
    page.get_by_role("link", name="Add payment method").click()
    settled(page)
    assert_accessible(page, "the add-card form")
    page.get_by_label("Card number").fill("4242")
    page.get_by_role("button", name="Confirm").click()
    settled(page)
    assert_accessible(page, "the add-card form with errors")
    page.get_by_role("link", name="Cancel").first.click()
    settled(page)
    page.locator('summary[aria-label="Actions for Mastercard ending in 4444"]').click()
    assert_accessible(page, "an open card menu")
    page.get_by_role("menuitem", name="Edit").click()
    settled(page)
    assert_accessible(page, "the edit-card form")
    page.goto(live_server.url + "/billing/cards/new")
    page.get_by_label("Cardholder name").fill("Ada")
    page.get_by_label("Card number").fill("4000 0025 0000 3155")
    page.get_by_label("Expiry date (MM / YY)").fill("12/30")
    page.get_by_label("Security code").fill("123")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Confirm this card with your bank")).to_be_visible()
    assert_accessible(page, "the 3-D Secure step")
    page.goto(live_server.url + "/billing/address/edit")
    assert_accessible(page, "the billing address form")
    page.goto(live_server.url + "/account")
    assert_accessible(page, "account settings")


def test_pay_now_pages_are_accessible(customer_page, live_server):
    page = customer_page
    page.get_by_role("button", name=re.compile("Pay now")).click()
    expect(page).to_have_url(re.compile(r"/sandbox/checkout/"))
    assert_accessible(page, "the sandbox checkout page")
    page.get_by_label("iDEAL (bank redirect)").check()
    page.get_by_label(re.compile("Process for a while")).check()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    expect(page.get_by_text("Payment processing…")).to_be_visible()
    assert_accessible(page, "the payment-processing page")


def test_the_receipt_after_a_paid_checkout_is_accessible(customer_page):
    page = customer_page
    page.get_by_role("button", name=re.compile("Pay now")).click()
    expect(page).to_have_url(re.compile(r"/sandbox/checkout/"))
    page.get_by_label("Succeed", exact=True).check()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    expect(page.get_by_role("heading", name=re.compile("Payment for INV-"))).to_be_visible()
    expect(page.get_by_text("Payment processing…")).to_have_count(0)
    assert_accessible(page, "the receipt page")


def test_the_delete_confirmation_is_accessible(customer_page):
    page = customer_page
    page.locator('summary[aria-label="Actions for Mastercard ending in 4444"]').click()
    page.get_by_role("menuitem", name="Delete").click()
    expect(page.get_by_role("button", name="Delete card")).to_be_visible()
    assert_accessible(page, "the delete confirmation")


def test_error_pages_are_accessible(page, live_server):
    page.goto(live_server.url + "/no-such-page")
    assert_accessible(page, "the 404 page")


def test_the_support_console_and_the_impersonation_banner_are_accessible(page, live_server, session):
    from ..helpers import make_staff

    gateway = live_server.app.extensions["portal.gateway"]
    account, _ = make_customer(session, address_line1="1 Main St", city="Boston", postal_code="02101", region="MA")
    make_subscription(session, account)
    add_card(session, gateway, account, default=True)
    make_invoice(session, account, status="paid")
    make_staff(session, email="agent@support.example")
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill("agent@support.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Support console", level=1)).to_be_visible()
    assert_accessible(page, "the support console")
    page.goto(f"{live_server.url}/staff?q=Acme")
    assert_accessible(page, "search results")
    page.goto(f"{live_server.url}/staff/accounts/{account.id}")
    assert_accessible(page, "the staff account page")
    view_as = page.get_by_role("region", name="View as customer")
    view_as.get_by_label("Reason").fill("Ticket 1: checking the invoices")
    view_as.get_by_role("button", name="View as customer").click()
    expect(page.get_by_role("heading", name="Billing details", level=1)).to_be_visible()
    assert_accessible(page, "Billing details while impersonating")


def test_the_demo_mail_pages_are_accessible(page, live_server_factory, session, tmp_path):
    server = live_server_factory(demo=True, secure_cookies=False)
    account, _ = make_customer(session, address_line1="1 Main St", city="Boston", postal_code="02101", region="MA")
    invoice = make_invoice(session, account)
    from portal.notifications import outbox
    from portal.notifications.sender import build_transport, send_pending

    outbox.invoice_issued(session, invoice, account, now=utcnow())
    session.commit()
    send_pending(server.app.extensions["portal.db"], build_transport(server.app.extensions["portal.settings"]),
                 now=utcnow())
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(server.url + "/demo/mail")
    assert_accessible(page, "the demo mail list")
    page.get_by_role("link", name=re.compile("Invoice")).first.click()
    assert_accessible(page, "a demo e-mail")
