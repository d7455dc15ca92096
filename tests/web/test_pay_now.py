"""Pay now in sandbox mode: the checkout page, its outcomes as events, and the page that waits for them."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal.billing.collecting.events import deliver_sandbox_events
from portal.models import Invoice, OutboxMessage, PaymentAttempt, Subscription, utcnow

from ..helpers import POLICY, Browser, add_card, make_customer, make_invoice, make_subscription

US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}


@pytest.fixture
def customer(session, browser, gateway):
    account, _ = make_customer(session, **US)
    add_card(session, gateway, account, default=True)
    browser.login()
    return account


def pay(browser, invoice, **kwargs):
    return browser.post(f"/billing/invoices/{invoice.id}/pay", **kwargs)


def checkout_id(response) -> str:
    target = response.headers.get("HX-Redirect") or response.headers["Location"]
    return re.search(r"/sandbox/checkout/(cs_sbx_\w+)", target).group(1)


def test_pay_now_sends_a_plain_form_to_the_checkout_page_and_htmx_by_hx_redirect(browser, session, customer):
    invoice = make_invoice(session, customer)
    plain = pay(browser, invoice)
    assert plain.status_code == 303 and "/sandbox/checkout/cs_sbx_" in plain.headers["Location"]
    htmx = pay(browser, invoice, htmx=True)
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == plain.headers["Location"]
    page = browser.get(plain.headers["Location"]).get_data(as_text=True)
    assert "Test mode checkout" in page and invoice.number in page and "$21.25" in page
    assert session.query(PaymentAttempt).filter_by(invoice_id=invoice.id).count() == 1  # resumed, not doubled


@pytest.mark.parametrize("status, message", [("paid", "is already paid"), ("void", "was voided")])
def test_a_paid_or_void_invoice_cannot_start_checkout(browser, session, customer, status, message):
    invoice = make_invoice(session, customer, status=status)
    response = pay(browser, invoice)
    assert response.status_code == 303
    assert message in browser.get("/billing").get_data(as_text=True)
    htmx = pay(browser, invoice, htmx=True)
    assert htmx.status_code == 409 and message in htmx.get_data(as_text=True)
    assert session.query(PaymentAttempt).count() == 0


def test_paying_by_card_marks_the_invoice_paid_through_the_event_handlers(browser, session, customer, gateway):
    invoice = make_invoice(session, customer)
    cs = checkout_id(pay(browser, invoice))
    done = browser.post(f"/sandbox/checkout/{cs}", {"method": "card", "outcome": "success"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/billing/invoices/{invoice.id}/paid?session_id={cs}")
    session.expire_all()
    paid = session.get(Invoice, invoice.id)
    assert (paid.status, paid.payment_method_label) == ("paid", "Visa •••• 4242")
    assert paid.processor_transaction_id.startswith("ch_sbx_")
    assert session.query(OutboxMessage).filter_by(kind="payment_received").count() == 1
    page = browser.get(done.headers["Location"]).get_data(as_text=True)
    assert "Payment received" in page and paid.processor_transaction_id in page
    assert 'hx-trigger="every 2s"' not in page


def test_a_declined_card_stays_on_the_checkout_page_and_the_invoice_stays_open(browser, session, customer):
    invoice = make_invoice(session, customer)
    cs = checkout_id(pay(browser, invoice))
    declined = browser.post(f"/sandbox/checkout/{cs}", {"method": "card", "outcome": "failure"})
    assert declined.status_code == 402 and "Your card was declined" in declined.get_data(as_text=True)
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "open"


def test_a_bank_redirect_is_processing_until_its_delayed_outcome_arrives(app, browser, session, customer, gateway):
    invoice = make_invoice(session, customer)
    cs = checkout_id(pay(browser, invoice))
    browser.post(f"/sandbox/checkout/{cs}", {"method": "ideal", "outcome": "processing"})
    waiting = browser.get(f"/billing/invoices/{invoice.id}/payment-status", htmx=True).get_data(as_text=True)
    assert "Payment processing" in waiting and 'hx-trigger="every 2s"' in waiting
    assert pay(browser, invoice, htmx=True).status_code == 409  # already being paid: no second checkout
    deliver_sandbox_events(app.extensions["portal.db"], gateway, now=utcnow() + timedelta(seconds=11), policy=POLICY)
    done = browser.get(f"/billing/invoices/{invoice.id}/payment-status", htmx=True).get_data(as_text=True)
    assert "Payment received" in done and "iDEAL" in done and "every 2s" not in done


def test_a_failed_bank_redirect_leaves_the_invoice_open_and_offers_to_try_again(app, browser, session, customer,
                                                                               gateway):
    invoice = make_invoice(session, customer)
    cs = checkout_id(pay(browser, invoice))
    browser.post(f"/sandbox/checkout/{cs}", {"method": "bancontact", "outcome": "failure"})
    deliver_sandbox_events(app.extensions["portal.db"], gateway, now=utcnow() + timedelta(seconds=11), policy=POLICY)
    page = browser.get(f"/billing/invoices/{invoice.id}/paid").get_data(as_text=True)
    assert "did not go through" in page and "Try again" in page
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "open"
    again = pay(browser, invoice)
    assert checkout_id(again) != cs


def test_paying_a_past_due_subscriptions_invoice_restores_it_at_once(browser, session, customer):
    sub = make_subscription(session, customer, status="past_due")
    invoice = make_invoice(session, customer, subscription=sub, period_start=sub.current_period_end)
    cs = checkout_id(pay(browser, invoice))
    browser.post(f"/sandbox/checkout/{cs}", {"method": "apple_pay", "outcome": "success"})
    session.expire_all()
    assert session.get(Subscription, sub.id).status == "active"
    receipt = session.query(OutboxMessage).filter_by(kind="payment_received").one()
    assert "active again" in receipt.subject and "Apple Pay" in receipt.text_body


def test_cancel_returns_to_billing_details_with_the_invoice_still_open(browser, session, customer):
    invoice = make_invoice(session, customer)
    pay(browser, invoice)
    back = browser.get(f"/billing/invoices/{invoice.id}/checkout-canceled")
    assert back.status_code == 303
    page = browser.get("/billing").get_data(as_text=True)
    assert f"Payment canceled. {invoice.number} is still open" in page
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "open"


def test_another_accounts_checkout_page_is_not_found(app, browser, session, customer):
    invoice = make_invoice(session, customer)
    cs = checkout_id(pay(browser, invoice))
    make_customer(session, email="eve@example.com", billing_email="eve@example.com", **US)
    eve = Browser(app.test_client())
    eve.login("eve@example.com")
    assert eve.get(f"/sandbox/checkout/{cs}").status_code == 404
    assert eve.post(f"/sandbox/checkout/{cs}", {"method": "card", "outcome": "success"}).status_code == 404
    assert eve.get(f"/billing/invoices/{invoice.id}/paid").status_code == 404
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "open"


def test_the_success_url_alone_does_not_mark_anything_paid(browser, session, customer):
    invoice = make_invoice(session, customer)
    page = browser.get(f"/billing/invoices/{invoice.id}/paid?session_id=cs_forged").get_data(as_text=True)
    assert "Payment processing" in page
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "open"


def test_the_checkout_records_the_saved_card_chosen_and_offers_no_deleted_card(browser, session, customer, gateway):
    mastercard = add_card(session, gateway, customer, number="5555555555554444")
    deleted = add_card(session, gateway, customer, number="6011111111111117")
    assert browser.post(f"/billing/cards/{deleted.id}/delete").status_code in (200, 303)
    invoice = make_invoice(session, customer)
    cs = checkout_id(pay(browser, invoice))
    page = browser.get(f"/sandbox/checkout/{cs}").get_data(as_text=True)
    assert "Saved card: Visa •••• 4242" in page and "Saved card: Mastercard •••• 4444" in page
    methods = page.split("<legend>Payment method</legend>")[1].split("</fieldset>")[0]
    assert "Discover" not in methods
    refused = browser.post(f"/sandbox/checkout/{cs}", {"method": f"card:{deleted.processor_id}",
                                                        "outcome": "success"})
    assert refused.status_code == 422 and "Choose a payment method" in refused.get_data(as_text=True)
    done = browser.post(f"/sandbox/checkout/{cs}", {"method": f"card:{mastercard.processor_id}",
                                                     "outcome": "success"})
    assert done.status_code == 303
    session.expire_all()
    paid = session.get(Invoice, invoice.id)
    assert (paid.status, paid.payment_method_label) == ("paid", "Mastercard •••• 4444")
