"""A support agent in the browser (sandbox mode): log in, find an account, view it as the customer with a
reason, be refused a change, end the view and land back in the console."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.models import AuditEvent, PaymentMethod

from ..helpers import PASSWORD, add_card, make_customer, make_staff, make_subscription
from .test_cards_sandbox import menu_button, open_card_menu, settled

MESSAGE = "You are viewing this account as support staff; changes are made from the console."


@pytest.fixture
def gateway(live_server):
    return live_server.app.extensions["portal.gateway"]


@pytest.fixture
def customer(session, gateway):
    account, _ = make_customer(session, email="ada@example.com", name="Acme Analytics Inc.")
    make_customer(session, email="bob@other.example", name="Other Company", billing_email="ap@other.example")
    make_subscription(session, account)
    add_card(session, gateway, account, number="5555555555554444", default=True)
    add_card(session, gateway, account, number="4242424242424242")
    make_staff(session, email="agent@support.example")
    return account


def test_a_support_agent_views_an_account_as_the_customer_is_refused_a_change_and_returns(
        page, live_server, session, customer):
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email").fill("agent@support.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Support console", level=1)).to_be_visible()

    page.get_by_label("E-mail, name, invoice number or processor customer id").fill("ada@example")
    page.get_by_role("button", name="Search").click()
    results = page.locator("#search-results")
    expect(results.get_by_role("heading")).to_have_text("Accounts matching “ada@example”")
    expect(results.get_by_role("link")).to_have_text(["Acme Analytics Inc."])
    results.get_by_role("link", name="Acme Analytics Inc.").click()
    expect(page.get_by_role("heading", name=re.compile("Acme Analytics Inc."), level=1)).to_be_visible()

    # No reason: the form says so next to the field.
    view_as = page.get_by_role("region", name="View as customer")
    view_as.get_by_role("button", name="View as customer").click()
    expect(view_as.get_by_label("Reason")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reason-error")).to_have_text("Say why you need to view this account as the customer.")
    view_as.get_by_label("Reason").fill("Ticket 8812: customer cannot find the default card setting")
    view_as.get_by_role("button", name="View as customer").click()

    expect(page.get_by_role("heading", name="Billing details", level=1)).to_be_visible()
    banner = page.get_by_role("region", name="Viewing as customer")
    expect(banner).to_contain_text("Acme Analytics Inc.")
    expect(banner).to_contain_text("Sam Support")
    expect(banner).to_contain_text("agent@support.example")

    # The top bar names the agent, not the customer, and has no Log out: the banner ends the view.
    account_bar = page.get_by_role("navigation", name="Account")
    expect(account_bar).to_contain_text("Sam Support (support) viewing as Acme Analytics Inc.")
    expect(account_bar).not_to_contain_text("ada@example.com")
    expect(account_bar.get_by_role("button", name="Log out")).to_have_count(0)

    # A change that would be refused is shown disabled, with the read-only reason.
    settled(page)
    expect(page.get_by_role("note").filter(has_text=MESSAGE)).to_be_visible()
    make_default = open_card_menu(page, "Visa", "4242").get_by_role("menuitem", name="Save as default card")
    expect(make_default).to_be_disabled()
    menu_button(page, "Visa", "4242").click()  # close the menu again
    expect(page.get_by_role("button", name="Update")).to_have_count(0)  # a link that opens a form stays a link
    page.get_by_role("link", name="Update").click()
    settled(page)
    expect(page.get_by_role("button", name="Save")).to_be_disabled()
    # A hand-made request is still refused and audited; nothing moved.
    card_id = session.scalars(select(PaymentMethod.id).where(PaymentMethod.account_id == customer.id,
                                                             PaymentMethod.last4 == "4242")).one()
    status = page.evaluate("""async (url) => {
        const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
        return (await fetch(url, {method: "POST", headers: {"X-CSRFToken": token}})).status; }""",
                           f"{live_server.url}/billing/cards/{card_id}/default")
    assert status == 403
    expect(page.locator("#card-" + str(default_card_id(session, customer))).locator(".badge-default")).to_have_count(1)
    expect(banner).to_contain_text("Acme Analytics Inc.")

    banner.get_by_role("button", name="End impersonation").click()
    expect(page.get_by_role("heading", name=re.compile("Acme Analytics Inc."), level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.get_by_role("region", name="Viewing as customer")).to_have_count(0)
    log = page.locator("#audit-log")
    expect(log.locator("code").first).to_have_text("impersonation.stopped")
    expect(log).to_contain_text("impersonation.refused")
    expect(log).to_contain_text("impersonation.started")

    session.expire_all()
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.account_id == customer.id,
                                                              AuditEvent.action.like("impersonation.%"))
                              .order_by(AuditEvent.id)).all()
    assert actions == ["impersonation.started", "impersonation.refused", "impersonation.stopped"]


def default_card_id(session, account) -> int:
    session.expire_all()
    return session.scalars(select(PaymentMethod.id).where(PaymentMethod.account_id == account.id,
                                                          PaymentMethod.is_default.is_(True))).one()


def test_htmx_swaps_keep_working_and_keep_the_banner_while_viewing_as_the_customer(page, live_server, session,
                                                                                     customer):
    """The out-of-band banner rides along even on a partial made of table rows (Show more invoices)."""
    from datetime import datetime, timedelta, timezone

    from ..helpers import Browser, make_invoice

    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for n in range(14):
        make_invoice(session, customer, status="paid", issued_at=start + timedelta(days=30 * n))
    staff = Browser(live_server.app.test_client())
    staff.login("agent@support.example")
    staff.get(f"/staff/accounts/{customer.id}")
    assert staff.post(f"/staff/accounts/{customer.id}/impersonate", {"reason": "Ticket 9"}).status_code == 303
    cookie = staff.client.get_cookie("portal_session")
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page.goto(f"{live_server.url}/billing")
    banner = page.get_by_role("region", name="Viewing as customer")
    expect(banner).to_contain_text("Acme Analytics Inc.")
    rows = page.locator("#invoices tbody tr[id^=invoice-]:not(#invoice-more):not(.details-row)")
    expect(rows).to_have_count(12)
    page.get_by_role("link", name="Show more invoices").click()
    expect(rows).to_have_count(14)
    settled(page)
    expect(banner).to_have_count(1)
    expect(banner).to_contain_text("agent@support.example")
    # A section swap (open the add-card form, then cancel) works too.
    page.get_by_role("link", name="Add payment method").click()
    expect(page.get_by_role("heading", name="Payment details")).to_be_visible()
    settled(page)
    expect(banner).to_have_count(1)
