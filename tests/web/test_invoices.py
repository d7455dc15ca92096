"""The Invoices section: newest first, paginated, PDF, Pay now, Email me a copy, other accounts."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from portal.models import OutboxMessage

from ..helpers import make_customer, make_invoice

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


def count_queries(app, database, browser, url):
    statements = []

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", before)
    try:
        assert browser.get(url).status_code == 200
    finally:
        event.remove(database.engine, "before_cursor_execute", before)
    return len(statements)


def test_billing_details_runs_the_same_small_number_of_queries_for_5_or_60_invoices(app, database, browser, session,
                                                                                      customer):
    many_invoices(session, customer, 5)
    few = count_queries(app, database, browser, "/billing")
    many_invoices(session, customer, 55)
    many = count_queries(app, database, browser, "/billing")
    assert few == many
    assert many <= 12


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


@pytest.mark.parametrize("method, path", [("get", "/billing/invoices/{id}.pdf"), ("post", "/billing/invoices/{id}/email"),
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
