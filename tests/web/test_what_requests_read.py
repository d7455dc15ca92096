"""What a request reads from the database: /healthz nothing at all, an HTMX answer only what the sections it
swaps show. Counted with SQLAlchemy's ``before_cursor_execute`` (statements, never times)."""
from __future__ import annotations

import pytest

from portal.auth import sessions

from ..helpers import add_card, make_customer, make_invoice, make_subscription, statements

US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}


@pytest.fixture
def customer(session, browser, gateway):
    account, _ = make_customer(session, **US)
    make_subscription(session, account)
    add_card(session, gateway, account, default=True)
    add_card(session, gateway, account, number="5555555555554444")
    for _ in range(3):
        make_invoice(session, account, status="paid")
    browser.login()
    return account


def test_healthz_with_a_logged_in_cookie_loads_no_session_and_no_user(database, browser, customer, monkeypatch):
    looked_up = []
    real = sessions.load_session
    monkeypatch.setattr(sessions, "load_session", lambda *a, **k: looked_up.append(a) or real(*a, **k))
    assert browser.get("/billing").status_code == 200 and looked_up  # the cookie is a live login
    looked_up.clear()
    with statements(database) as log:
        response = browser.get("/healthz")
    assert response.status_code == 200 and response.get_data() == b"ok\n"
    assert log == [] and looked_up == []
    assert "Set-Cookie" not in response.headers  # nothing of the session was read, so nothing is written back


def test_the_htmx_set_default_answer_reads_no_invoices(database, browser, session, customer):
    from portal.models import PaymentMethod

    other = session.query(PaymentMethod).filter_by(account_id=customer.id, is_default=False).one()
    with statements(database) as log:
        response = browser.post(f"/billing/cards/{other.id}/default", htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Mastercard •••• 4444 is now your default card." in body
    assert 'id="payment-details"' in body and 'id="subscription"' in body
    assert log.on("invoices") == [] and log.on("refunds") == []


def test_show_more_invoices_reads_no_cards_and_no_subscription(database, browser, customer):
    with statements(database) as log:
        response = browser.get("/billing/invoices", htmx=True)
    assert response.status_code == 200 and "Download PDF" in response.get_data(as_text=True)
    assert log.on("invoices") and log.on("payment_methods") == [] and log.on("subscriptions") == []


def test_the_whole_page_still_reads_every_section(database, browser, customer):
    with statements(database) as log:
        response = browser.get("/billing")
    body = response.get_data(as_text=True)
    for section in ("subscription", "payment-details", "billing-address", "invoices", "credits"):
        assert f'id="{section}"' in body
    assert log.on("invoices") and log.on("payment_methods") and log.on("subscriptions")
