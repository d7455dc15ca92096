"""Pay by bank transfer in the browser (sandbox and demo mail): an annual invoice of $212.50 whose renewal was
declined is paid by wire; the panel shows the seller's bank details and the reference (axe on it), the row says
it is awaiting the transfer, the e-mail arrives in the demo mailbox, support finds the account by the reference
and records the wire, and the customer sees Paid. A monthly invoice offers no transfer and names sales."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from portal.billing.invoicing.seller import Seller
from portal.billing.subscriptions.renewals import run_renewals
from portal.models import Invoice, utcnow
from portal.notifications.sender import build_transport, send_pending

from ..helpers import PASSWORD, POLICY, add_card, make_customer, make_plan, make_staff, make_subscription
from .conftest import settled
from .test_accessibility import assert_accessible

RENEWAL = datetime(2026, 11, 20, tzinfo=timezone.utc)


@pytest.fixture
def server(live_server_factory):
    return live_server_factory(demo=True, secure_cookies=False)


def declined_renewal(server, session, *, interval: str, price_cents: int) -> Invoice:
    """A customer whose renewal the card declined: the invoice is Open, the subscription Past due."""
    gateway = server.app.extensions["portal.gateway"]
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_card(session, gateway, account, number="4000000000000341", default=True)
    plan = make_plan(session, code=f"pro-{interval}", interval=interval, price_cents=price_cents)
    make_subscription(session, account, plan=plan, period_end=RENEWAL)
    run_renewals(server.app.extensions["portal.db"], gateway, Seller.from_settings(server.app.extensions["portal.settings"]),
                 now=RENEWAL + timedelta(hours=1), policy=POLICY)
    session.expire_all()
    return session.query(Invoice).one()


def log_in(page, server, email: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def deliver_mail(server) -> None:
    """What the worker's outbox step does every few seconds in the demo."""
    send_pending(server.app.extensions["portal.db"], build_transport(server.app.extensions["portal.settings"]),
                 now=utcnow())


def test_an_annual_invoice_is_paid_by_bank_transfer_from_choosing_it_to_paid(page, server, session):
    invoice = declined_renewal(server, session, interval="year", price_cents=20000)
    make_staff(session, email="agent@support.example")
    log_in(page, server, "ada@example.com")
    expect(page.get_by_role("heading", name="Billing details", level=1)).to_be_visible()

    row = page.locator(f"#invoice-{invoice.id}")
    row.get_by_role("button", name=f"Pay by bank transfer {invoice.number}").click()
    settled(page)
    panel = page.get_by_role("region", name="Pay by bank transfer")
    expect(panel).to_be_visible()
    session.expire_all()
    reference = session.get(Invoice, invoice.id).transfer_reference
    assert re.fullmatch(rf"{invoice.number}-[A-HJ-NP-Z2-9]{{4}}", reference)
    expect(panel.locator(".reference")).to_have_text(reference)
    expect(panel).to_contain_text("$212.50")
    expect(panel).to_contain_text("IE00 DEMO 0000 0000 0000 00 (demo, not a real account)")
    expect(panel).to_contain_text("Example Software Ltd.")
    expect(panel).to_contain_text("We won't charge your saved payment method while we wait for it.")
    expect(page.locator(".toast, [role=status]").filter(has_text=reference).first).to_be_visible()
    assert_accessible(page, "the bank-transfer panel")

    page.reload()
    expect(page.locator(f"#invoice-{invoice.id}")).to_contain_text(f"Awaiting your bank transfer ({reference})")
    expect(page.locator(f"#invoice-{invoice.id}").get_by_role("button", name=re.compile("Pay by bank transfer"))
           ).to_have_count(0)

    deliver_mail(server)
    page.goto(f"{server.url}/demo/mail")
    page.get_by_role("link", name=f"How to pay invoice {invoice.number} by bank transfer").click()
    mail = page.locator("pre.mail-text")
    expect(mail).to_contain_text(reference)
    expect(mail).to_contain_text("IE00 DEMO 0000 0000 0000 00")

    # Support: the wire arrives quoting the reference; they find the account by it and record it.
    page.get_by_role("button", name="Log out").click()
    log_in(page, server, "agent@support.example")
    page.get_by_label("E-mail, name, invoice number or processor customer id").fill(reference)
    page.get_by_role("button", name="Search").click()
    page.locator("#search-results").get_by_role("link", name="Acme Analytics Inc.").click()
    expect(page.locator(f"#staff-invoice-{invoice.id}")).to_contain_text(f"Awaiting bank transfer since")
    expect(page.locator(f"#staff-invoice-{invoice.id}")).to_contain_text(reference)
    page.locator("summary", has_text=f"Record wire transfer").filter(has_text=invoice.number).click()
    wire = page.get_by_role("form", name=f"Record a wire transfer for {invoice.number}")
    expect(wire).to_contain_text(f"The customer was asked to quote {reference}.")
    wire.get_by_label("Bank reference").fill("BANK-2026-11-991")
    wire.get_by_label("Date received").fill(utcnow().date().isoformat())
    wire.get_by_role("button", name="Record payment").click()
    settled(page)
    page.reload()
    expect(page.locator(f"#staff-invoice-{invoice.id}")).to_contain_text("Paid")
    expect(page.locator(f"#staff-invoice-{invoice.id}")).to_contain_text(f"Bank transfer reference {reference}")

    page.get_by_role("button", name="Log out").click()
    log_in(page, server, "ada@example.com")
    expect(page.locator(f"#invoice-{invoice.id}")).to_contain_text("Paid")
    expect(page.locator("#payment-problem")).to_have_count(0)  # access is back


def test_a_monthly_invoice_offers_no_bank_transfer_and_names_sales(page, server, session):
    invoice = declined_renewal(server, session, interval="month", price_cents=50000)
    log_in(page, server, "ada@example.com")
    row = page.locator(f"#invoice-{invoice.id}")
    expect(row.get_by_role("button", name=re.compile("Pay by bank transfer"))).to_have_count(0)
    row.get_by_role("link", name=f"{invoice.number} details").click()
    settled(page)
    details = page.locator(f"#invoice-details-{invoice.id}")
    expect(details.locator(".sales-contact")).to_have_text("For wire transfers or invoicing, contact sales@example.com.")
    expect(details.get_by_role("link", name="sales@example.com")).to_have_attribute("href", "mailto:sales@example.com")
    expect(details.get_by_role("button", name=re.compile("Pay by bank transfer"))).to_have_count(0)
    assert_accessible(page, "a monthly invoice's details")
