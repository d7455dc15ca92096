"""Pay now in the browser, sandbox processor: Billing details → the sandbox's test checkout page → back to the
portal, which waits for the processor's event (never the return URL) before it calls the invoice paid."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import expect
from pypdf import PdfReader

from portal.billing.collecting.events import deliver_sandbox_events
from portal.money import format_money
from portal.models import utcnow

from ..helpers import POLICY, make_customer, make_invoice
from .test_cards_sandbox import EMAIL, assert_not_reloaded, log_in, remember_this_page


@pytest.fixture
def invoice(session):
    account, _ = make_customer(session, email=EMAIL)
    return make_invoice(session, account, amount_cents=2000)


def row(page, invoice):
    return page.locator(f"#invoice-{invoice.id}")


def open_checkout(page, live_server, invoice):
    """Log in, press Pay now on the invoice and land on the test checkout page."""
    log_in(page, live_server)
    expect(row(page, invoice).locator(".badge")).to_have_text("Open")
    row(page, invoice).get_by_role("button", name=f"Pay now {invoice.number}").click()
    expect(page.get_by_role("heading", name=f"Pay Invoice {invoice.number}")).to_be_visible()
    expect(page.locator(".checkout").get_by_role("note")).to_contain_text("Test mode checkout")


def pay(page, invoice, *, method: str, outcome: str):
    page.get_by_label(method, exact=True).check()
    page.get_by_label(outcome, exact=True).check()
    page.get_by_role("button", name=f"Pay {format_money(invoice.amount_due_cents, invoice.currency)}").click()


def pdf_text(page, live_server, invoice) -> str:
    """The invoice's PDF, fetched with the browser's own session cookie."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    response = requests.get(f"{live_server.url}/billing/invoices/{invoice.id}.pdf", cookies=cookies, timeout=30)
    assert response.headers["Content-Type"] == "application/pdf"
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)


def test_paying_an_open_invoice_by_card_shows_payment_received_and_the_invoice_and_its_pdf_become_paid(
        page, live_server, invoice):
    open_checkout(page, live_server, invoice)
    expect(page.locator(".checkout .amount")).to_have_text("$20.00")
    assert "PAID" not in pdf_text(page, live_server, invoice)

    pay(page, invoice, method="A new card (Visa •••• 4242)", outcome="Succeed")

    status = page.locator("#payment-status")
    expect(status).to_contain_text("Payment received")
    expect(status).to_contain_text("Visa •••• 4242")
    expect(status).to_contain_text("$20.00")
    page.get_by_role("link", name="Back to Billing details").click()
    expect(row(page, invoice).locator(".badge")).to_have_text("Paid")
    expect(row(page, invoice).get_by_role("button", name=f"Pay now {invoice.number}")).to_have_count(0)
    with page.expect_download() as download:
        row(page, invoice).get_by_role("link", name=f"Download PDF of {invoice.number}").click()
    assert download.value.suggested_filename.endswith(".pdf")
    text = "".join(p.extract_text() for p in PdfReader(download.value.path()).pages)
    assert "PAID" in text and invoice.number in text


def test_a_bank_redirect_shows_processing_and_then_payment_received_without_a_reload(page, live_server, invoice):
    open_checkout(page, live_server, invoice)

    pay(page, invoice, method="iDEAL (bank redirect)",
        outcome="Process for a while, then succeed (like a bank redirect)")

    status = page.locator("#payment-status")
    expect(status).to_contain_text("Payment processing…")
    remember_this_page(page)
    app = live_server.app
    # The bank confirms ten seconds later: the sandbox's delayed event is delivered as a webhook would be.
    delivered = deliver_sandbox_events(app.extensions["portal.db"], app.extensions["portal.gateway"],
                                       now=utcnow() + timedelta(seconds=11), policy=POLICY)
    assert delivered == 1
    expect(status).to_contain_text("Payment received")  # the page polls every two seconds
    expect(status).to_contain_text("iDEAL")
    assert_not_reloaded(page)


def test_cancelling_on_the_checkout_page_returns_to_billing_details_with_the_invoice_still_open(
        page, live_server, invoice):
    open_checkout(page, live_server, invoice)

    page.get_by_role("link", name="Cancel and go back").click()

    expect(page.get_by_role("heading", name="Billing details", level=1)).to_be_visible()
    expect(page.locator("#toast")).to_contain_text(
        f"Payment canceled. {invoice.number} is still open; you can pay it at any time.")
    expect(row(page, invoice).locator(".badge")).to_have_text("Open")
    expect(row(page, invoice).get_by_role("button", name=f"Pay now {invoice.number}")).to_be_visible()
