"""Pay by bank transfer (annual plans from $100), and paying a failed renewal in one step with a method just saved."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from portal.audit import Actor
from portal.billing.collecting import collection
from portal.billing.subscriptions.renewals import run_renewals
from portal.billing.invoicing.seller import Seller
from portal.models import Invoice, OutboxMessage, PaymentAttempt, Subscription

from ..helpers import POLICY, add_card, make_customer, make_plan, make_subscription

DAY0 = datetime(2026, 11, 20, tzinfo=timezone.utc)


def open_renewal(app, session, gateway, settings, *, interval="year", price_cents=20000):
    """A customer whose renewal was declined: its invoice is Open and the subscription Past due."""
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_card(session, gateway, account, number="4000000000000341", default=True)
    plan = make_plan(session, code=f"pro-{interval}-{price_cents}", interval=interval, price_cents=price_cents)
    sub = make_subscription(session, account, plan=plan, period_end=DAY0)
    run_renewals(app.extensions["portal.db"], gateway, Seller.from_settings(settings), now=DAY0 + timedelta(hours=1),
                 policy=POLICY)
    return account, sub, session.query(Invoice).one()


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_pay_by_bank_transfer_shows_the_bank_details_and_a_reference_and_stops_retries(
        app, browser, session, gateway, settings, htmx):
    account, sub, invoice = open_renewal(app, session, gateway, settings)
    browser.login()
    details = browser.get(f"/billing/invoices/{invoice.id}").get_data(as_text=True)
    assert "Pay by bank transfer" in details and "contact sales@example.com" not in details
    response = browser.post(f"/billing/invoices/{invoice.id}/bank-transfer", htmx=htmx)
    if htmx:
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert body.lstrip().startswith(f'<tr id="invoice-details-{invoice.id}"')
    else:
        assert response.status_code == 303
        assert response.headers["Location"].endswith(f"/billing/invoices/{invoice.id}#bank-transfer-{invoice.id}")
        body = browser.get(f"/billing/invoices/{invoice.id}").get_data(as_text=True)
    session.expire_all()
    chosen = session.get(Invoice, invoice.id)
    assert re.fullmatch(rf"{invoice.number}-[A-HJ-NP-Z2-9]{{4}}", chosen.transfer_reference)
    assert chosen.awaiting_transfer_at is not None
    panel = re.search(r'<section id="bank-transfer-\d+".*?</section>', body, re.S).group(0)
    assert chosen.transfer_reference in panel and "$212.50" in panel
    assert "IE00 DEMO 0000 0000 0000 00 (demo, not a real account)" in panel and "DEMOIE2D" in panel
    assert f"with reference {chosen.transfer_reference}" in body  # the toast, or the flashed message
    mail = session.query(OutboxMessage).filter_by(kind="bank_transfer_details").one()
    assert chosen.transfer_reference in mail.text_body and "DEMOIE2D" in mail.html_body
    # No automatic retry while it waits, though one was due; the due date and Past due still stand.
    retries = collection.run_retries(app.extensions["portal.db"], gateway, now=DAY0 + timedelta(days=4),
                                     policy=POLICY)
    assert retries["retried"] == 0 and session.query(PaymentAttempt).count() == 1
    assert session.get(Subscription, sub.id).status == "past_due"
    # Choosing again keeps the reference and sends nothing more.
    browser.post(f"/billing/invoices/{invoice.id}/bank-transfer", htmx=True)
    session.expire_all()
    assert session.get(Invoice, invoice.id).transfer_reference == chosen.transfer_reference
    assert session.query(OutboxMessage).filter_by(kind="bank_transfer_details").count() == 1

    # Staff record the transfer with the wire action: Paid, access back.
    collection.record_wire_payment(app.extensions["portal.db"], gateway, account.id, invoice.id,
                                   reference=chosen.transfer_reference, received_on="2026-11-25",
                                   actor=Actor.system(), now=DAY0 + timedelta(days=6))
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "paid"
    assert session.get(Subscription, sub.id).status == "active"


@pytest.mark.parametrize("interval, price_cents", [("month", 20000), ("year", 9000)], ids=["monthly", "below-minimum"])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_monthly_plans_and_small_invoices_are_not_offered_bank_transfer_and_are_refused_it(
        app, browser, session, gateway, settings, interval, price_cents, htmx):
    _, _, invoice = open_renewal(app, session, gateway, settings, interval=interval, price_cents=price_cents)
    browser.login()
    assert "Pay by bank transfer" not in browser.get("/billing").get_data(as_text=True)
    details = browser.get(f"/billing/invoices/{invoice.id}", htmx=htmx).get_data(as_text=True)
    assert "Pay by bank transfer" not in details
    assert ('For wire transfers or invoicing, contact <a href="mailto:sales@example.com">sales@example.com</a>.'
            in details)
    response = browser.post(f"/billing/invoices/{invoice.id}/bank-transfer", htmx=htmx)
    refusal = "For wire transfers or invoicing, contact sales@example.com."
    if htmx:
        assert response.status_code == 409 and refusal in response.get_data(as_text=True)
    else:
        assert response.status_code == 303
        assert refusal in browser.get(response.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    assert session.get(Invoice, invoice.id).transfer_reference is None
    assert session.query(OutboxMessage).filter_by(kind="bank_transfer_details").count() == 0


def test_a_paid_invoice_cannot_be_paid_by_bank_transfer(app, browser, session, gateway, settings):
    account, _, invoice = open_renewal(app, session, gateway, settings)
    add_card(session, gateway, account, default=True)
    collection.retry_now(app.extensions["portal.db"], gateway, account.id, now=DAY0 + timedelta(days=1),
                         policy=POLICY)
    browser.login()
    response = browser.post(f"/billing/invoices/{invoice.id}/bank-transfer", htmx=True)
    assert response.status_code == 409 and "there is nothing to pay" in response.get_data(as_text=True)


def test_the_bank_transfer_action_needs_a_csrf_token(app, browser, session, gateway, settings):
    _, _, invoice = open_renewal(app, session, gateway, settings)
    browser.login()
    assert browser.post(f"/billing/invoices/{invoice.id}/bank-transfer", csrf=False).status_code == 400
    session.expire_all()
    assert session.get(Invoice, invoice.id).transfer_reference is None


# --- recovering a failed payment in one step ---------------------------------------------------------

def default_box(form: str) -> str:
    return re.search(r'<input[^>]*name="save_as_default"[^>]*>', form).group(0).replace("<input", "<input ")

@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_method_saved_from_update_payment_method_is_default_and_pays_in_one_click(
        app, browser, session, gateway, settings, htmx):
    account, sub, invoice = open_renewal(app, session, gateway, settings, interval="month", price_cents=2000)
    browser.login()
    form = browser.get("/billing/cards/new", htmx=htmx).get_data(as_text=True)
    assert " checked " in default_box(form)  # pre-selected while Past due
    response = browser.post("/billing/cards", {"cardholder_name": "Ada", "number": "4242 4242 4242 4242",
                                               "expiry": "12/30", "cvc": "123", "save_as_default": "y",
                                               "idempotency_key": "d" * 32}, htmx=htmx)
    body = response.get_data(as_text=True) if htmx else browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "Pay the overdue amount with Visa •••• 4242 now" in body  # the toast names the method
    offer = re.search(r'<div class="banner pay-with".*?</div>', body, re.S).group(0)
    assert "Pay $21.25 now with Visa •••• 4242" in offer
    method_id = re.search(r'name="payment_method_id" value="(\d+)"', offer).group(1)
    paid = browser.post("/billing/retry-payment", {"payment_method_id": method_id}, htmx=htmx)
    assert paid.status_code == (200 if htmx else 303)
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "paid"
    assert session.get(Invoice, invoice.id).payment_method_label == "Visa •••• 4242"
    assert session.get(Subscription, sub.id).status == "active"
    if htmx:
        assert 'id="pay-with"' not in paid.get_data(as_text=True)  # the offer leaves with the payment


def test_an_active_customer_saving_a_card_gets_no_payment_offer_nor_a_preselected_default(browser, session, gateway):
    account, _ = make_customer(session)
    make_subscription(session, account, period_end=datetime(2027, 1, 1, tzinfo=timezone.utc))
    browser.login()
    form = browser.get("/billing/cards/new", htmx=True).get_data(as_text=True)
    assert " checked " not in default_box(form)
    body = browser.post("/billing/cards", {"cardholder_name": "Ada", "number": "4242 4242 4242 4242",
                                           "expiry": "12/30", "cvc": "123", "idempotency_key": "e" * 32},
                        htmx=True).get_data(as_text=True)
    assert 'id="pay-with"' not in body and "Visa •••• 4242 was added" in body and "Pay $" not in body


def test_paying_with_another_accounts_method_is_refused(app, browser, session, gateway, settings):
    account, _, invoice = open_renewal(app, session, gateway, settings, interval="month", price_cents=2000)
    other, _ = make_customer(session, email="eve@example.com", billing_email="eve@example.com")
    theirs = add_card(session, gateway, other, default=True)
    browser.login()
    response = browser.post("/billing/retry-payment", {"payment_method_id": str(theirs.id)}, htmx=True)
    assert response.status_code == 409 and "no longer saved" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "open"


def test_the_console_shows_the_transfer_reference_and_finds_the_account_by_it(app, browser, session, gateway,
                                                                               settings):
    """Staff matching an arrived wire: the reference the customer quotes finds the account, its invoice row says
    it is awaiting the transfer with that reference, and the wire form repeats it; once recorded, Paid."""
    from ..helpers import Browser, make_staff

    account, sub, invoice = open_renewal(app, session, gateway, settings)
    browser.login()
    browser.post(f"/billing/invoices/{invoice.id}/bank-transfer")
    session.expire_all()
    reference = session.get(Invoice, invoice.id).transfer_reference

    make_staff(session)
    staff = Browser(app.test_client())
    staff.login("sam@support.example")
    found = staff.get("/staff", query_string={"q": reference.lower()}).get_data(as_text=True)
    assert f'<a href="/staff/accounts/{account.id}">' in found
    page = staff.get(f"/staff/accounts/{account.id}").get_data(as_text=True)
    row = re.search(rf'<tr id="staff-invoice-{invoice.id}">.*?</tr>', page, re.S).group(0)
    assert "Awaiting bank transfer since" in row and reference in row
    assert f"The customer was asked to quote <code class=\"id\">{reference}</code>" in page

    response = staff.post(f"/staff/accounts/{account.id}/invoices/{invoice.id}/wire",
                          {"reference": "BANK-REF-991", "received_on": "2026-11-21"}, htmx=True)
    assert response.status_code == 200
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "paid"
    row = re.search(rf'<tr id="staff-invoice-{invoice.id}">.*?</tr>',
                    staff.get(f"/staff/accounts/{account.id}").get_data(as_text=True), re.S).group(0)
    assert "Bank transfer reference" in row and reference in row and "Awaiting" not in row
