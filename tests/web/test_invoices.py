"""The Invoices section: newest first, paginated, PDF, Pay now, Email me a copy, other accounts."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from portal.models import OutboxMessage

from ..helpers import make_customer, make_invoice, make_plan, statements

US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}
START = datetime(2025, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def customer(session, browser):
    account, user = make_customer(session, **US)
    browser.login()
    return account


def many_invoices(session, account, count):
    return [make_invoice(session, account, issued_at=START + timedelta(days=i),
                         status="paid" if i % 3 else "open") for i in range(count)]


def test_invoices_are_listed_newest_first_with_number_date_amount_and_status(browser, session, customer):
    make_invoice(session, customer, issued_at=START, status="paid")
    make_invoice(session, customer, issued_at=START + timedelta(days=31), status="void")
    make_invoice(session, customer, issued_at=START + timedelta(days=62), status="open")
    body = browser.get("/billing").get_data(as_text=True)
    rows = re.findall(r'<tr id="invoice-\d+">.*?</tr>', body, re.S)
    assert [re.search(r"INV-\d{4}-\d{6}", r).group(0) for r in rows] == [
        "INV-2025-000003", "INV-2025-000002", "INV-2025-000001"]
    assert "4 Mar 2025" in rows[0] and "$21.25" in rows[0]
    assert ">Open<" in rows[0] and ">Void<" in rows[1] and ">Paid<" in rows[2]
    assert "Pay now" in rows[0] and "Pay now" not in rows[1] and "Pay now" not in rows[2]
    assert all("Download PDF" in r and "Email me a copy" in r for r in rows)


def test_show_more_loads_the_next_page_as_rows_and_the_link_works_without_javascript(browser, session, customer):
    invoices = many_invoices(session, customer, 30)
    page = browser.get("/billing").get_data(as_text=True)
    assert len(re.findall(r'<tr id="invoice-\d', page)) == 12
    more = re.search(r'href="(/billing/invoices\?cursor=[^"#]+)#invoices"', page).group(1).replace("&amp;", "&")
    partial = browser.get(more, htmx=True).get_data(as_text=True)
    assert "<html" not in partial and len(re.findall(r'<tr id="invoice-\d', partial)) == 12
    assert f'id="invoice-{invoices[17].id}"' in partial  # 30 - 12 - 1: the 13th newest
    plain = browser.get(more).get_data(as_text=True)
    assert "<html" in plain and "Newest invoices" in plain and len(re.findall(r'<tr id="invoice-\d', plain)) == 12


def count_queries(database, browser, url) -> int:
    with statements(database) as log:
        assert browser.get(url).status_code == 200
    return len(log)


def test_billing_details_runs_the_same_six_statements_for_5_or_2000_invoices(app, database, browser, session, seller,
                                                                             customer):
    from portal.perf.seed import seed_invoices

    plan = make_plan(session)
    seed_invoices(session, seller, customer, plan, 5)
    few = count_queries(database, browser, "/billing")
    seed_invoices(session, seller, customer, plan, 1995)
    many = count_queries(database, browser, "/billing")
    # The login session with its user and account, the subscription, credits, a page of invoices with their
    # lines, their refunds, the cards.
    assert few == many <= 6


def test_email_me_a_copy_queues_the_pdf_to_the_users_own_email_not_the_billing_email(browser, session, customer):
    invoice = make_invoice(session, customer)
    response = browser.post(f"/billing/invoices/{invoice.id}/email", {"request_key": "a" * 32}, htmx=True)
    assert response.status_code == 200
    assert f"A copy of {invoice.number} is on its way to ada@example.com." in response.get_data(as_text=True)
    message = session.query(OutboxMessage).filter_by(kind="invoice_copy").one()
    assert message.to_address == "ada@example.com"
    assert message.attachments == [{"type": "invoice_pdf", "invoice_id": invoice.id}]
    assert invoice.number in message.text_body and invoice.number in message.html_body


def test_a_double_clicked_email_copy_queues_one_message(browser, session, customer):
    invoice = make_invoice(session, customer)
    for _ in range(2):
        browser.post(f"/billing/invoices/{invoice.id}/email", {"request_key": "b" * 32})
    assert session.query(OutboxMessage).filter_by(kind="invoice_copy").count() == 1


@pytest.mark.parametrize("method, path", [("get", "/billing/invoices/{id}"), ("get", "/billing/invoices/{id}.pdf"), ("post", "/billing/invoices/{id}/email"),
                                          ("post", "/billing/invoices/{id}/pay")])
def test_another_accounts_invoice_is_not_found(app, browser, session, customer, method, path):
    other, _ = make_customer(session, email="eve@example.com", billing_email="eve@example.com", **US)
    theirs = make_invoice(session, other)
    url = path.format(id=theirs.id)
    response = browser.get(url) if method == "get" else browser.post(url)
    assert response.status_code == 404
    assert session.query(OutboxMessage).filter_by(kind="invoice_copy").count() == 0


def test_email_copy_without_csrf_token_is_refused(browser, session, customer):
    invoice = make_invoice(session, customer)
    assert browser.post(f"/billing/invoices/{invoice.id}/email", csrf=False).status_code == 400


def test_the_next_charge_shows_credits_applied_before_tax(browser, session, customer):
    from portal.models import CreditEntry

    from ..helpers import make_subscription

    make_subscription(session, customer)
    session.add(CreditEntry(account_id=customer.id, amount_cents=500, currency="USD", kind="grant", reason="sorry"))
    session.commit()
    body = browser.get("/billing").get_data(as_text=True)
    # $20.00 - $5.00 credit = $15.00, + 6.25% MA sales tax = $15.94 (half-up on the total)
    assert "$15.94 on 1 Dec 2026" in body and "after $5.00 of your credit" in body


# --- an invoice's details ---------------------------------------------------------------------------------

def paid_invoice_with_history(session, account):
    """A paid invoice with a failed first attempt, a successful retry and a refund as account credit."""
    from portal.models import PaymentAttempt, Refund

    invoice = make_invoice(session, account, status="paid", issued_at=START)
    session.add_all([
        PaymentAttempt(invoice_id=invoice.id, attempt_number=1, idempotency_key="att-1", trigger="renewal",
                       status="failed", failure_code="card_declined", amount_cents=invoice.total_cents,
                       currency="USD", payment_method_label="Mastercard •••• 4444",
                       created_at=START, completed_at=START),
        PaymentAttempt(invoice_id=invoice.id, attempt_number=2, idempotency_key="att-2", trigger="retry",
                       status="succeeded", amount_cents=invoice.total_cents, currency="USD",
                       payment_method_label="Visa •••• 4242", processor_payment_id="ch_test_123",
                       created_at=START + timedelta(days=3), completed_at=START + timedelta(days=3)),
        Refund(invoice_id=invoice.id, account_id=account.id, amount_cents=500, currency="USD", reason="Outage",
               status="succeeded", destination="credit", idempotency_key="ref-1", created_at=START + timedelta(days=5)),
    ])
    session.commit()
    return invoice


def test_invoice_details_without_javascript_are_a_page_with_lines_totals_payments_refunds_and_actions(
        browser, session, customer):
    invoice = paid_invoice_with_history(session, customer)
    body = browser.get(f"/billing/invoices/{invoice.id}").get_data(as_text=True)
    assert "<html" in body and f"Invoice {invoice.number}" in body
    text = re.sub(r"<[^>]+>|\s+", " ", body)
    text = re.sub(r"\s+", " ", text)
    assert "Pro plan (monthly)" in text and "1 Jan 2025 – 31 Jan 2025" in text
    assert "Total $21.25" in text and "Amount paid $21.25" in text and "Amount due $0.00" in text
    assert "Subtotal $20.00 Sales tax 6.25% (MA) on $20.00 $1.25" in text
    assert "1 Jan 2025 · $21.25 with Mastercard •••• 4444 Failed Your bank declined the charge." in text
    assert "4 Jan 2025 · $21.25 with Visa •••• 4242 Succeeded" in text and "ch_test_123" in text
    assert "6 Jan 2025 · $5.00 as account credit Credited" in text
    assert f'href="/billing/invoices/{invoice.id}.pdf"' in body and "Email me a copy" in body
    assert "Pay now" not in body


def test_invoice_details_for_htmx_are_the_row_under_the_invoice_and_an_open_one_offers_pay_now(
        browser, session, customer):
    invoice = make_invoice(session, customer, status="open")
    page = browser.get("/billing").get_data(as_text=True)
    link = re.search(rf'<a href="/billing/invoices/{invoice.id}" hx-get="(/billing/invoices/{invoice.id})"\s+'
                     rf'hx-target="#invoice-details-{invoice.id}" hx-swap="outerHTML"', page)
    assert link, "the invoice number opens its details in place"
    assert f'<tr id="invoice-details-{invoice.id}" class="details-row" hidden></tr>' in page
    partial = browser.get(link.group(1), htmx=True).get_data(as_text=True)
    assert "<html" not in partial
    assert partial.strip().startswith(f'<tr id="invoice-details-{invoice.id}" class="details-row">')
    assert "Amount due" in partial and "$21.25" in partial and "No payment has been attempted yet." in partial
    assert f'action="/billing/invoices/{invoice.id}/pay"' in partial and "Hide details" in partial


def test_the_invoice_list_shows_what_each_invoice_is_for(browser, session, customer):
    from portal.billing.invoicing.invoices import apply_totals, issue_invoice
    from portal.billing.invoicing.seller import Seller
    from portal.config import load_settings
    from portal.models import Invoice, InvoiceLine

    make_invoice(session, customer, issued_at=START)
    seller = Seller.from_settings(load_settings(demo=True))
    one_off = Invoice(account_id=customer.id, currency="USD", status="draft")
    one_off.lines.append(InvoiceLine(position=0, description="Onboarding workshop", quantity=1,
                                     unit_amount_cents=50000, amount_cents=50000))
    apply_totals(session, one_off, customer, seller)
    session.add(one_off)
    issue_invoice(session, one_off, customer, seller, now=START + timedelta(days=2))
    session.commit()
    body = browser.get("/billing").get_data(as_text=True)
    rows = re.findall(r'<tr id="invoice-\d+">.*?</tr>', body, re.S)
    assert '<td class="description">Onboarding workshop</td>' in rows[0]
    assert '<td class="description">Pro plan (monthly)</td>' in rows[1]



def test_a_reverse_charge_next_charge_reads_as_one_phrase_with_the_vat_number(browser, session):
    from ..helpers import make_subscription

    account, _ = make_customer(session, country="DE", address_line1="Unter den Linden 1", city="Berlin",
                               postal_code="10117", vat_number="DE123456789", vat_status="valid")
    make_subscription(session, account, plan=None)
    browser.login()
    body = browser.get("/billing").get_data(as_text=True)
    charge = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", re.search(r'<dd id="next-charge">(.*?)</dd>', body, re.S)[1]))
    assert "reverse charge (no VAT) for your VAT number DE123456789" in charge and ") (" not in charge
