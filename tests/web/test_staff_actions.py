"""The staff console's billing actions: refunds, credits, void, retry, resend, wire transfers; what the
customer then sees on Billing details; audit rows; staff only; CSRF."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal.billing.collecting.collection import execute_attempt, open_attempt
from portal.models import AuditEvent, CreditEntry, Invoice, OutboxMessage, Refund, Subscription, utcnow

from ..helpers import POLICY, Browser, add_card, make_customer, make_invoice, make_staff, make_subscription, \
    staff_browser_on

US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}
NOW = datetime(2026, 11, 10, tzinfo=timezone.utc)


@pytest.fixture
def world(app, session, gateway, database):
    account, _ = make_customer(session, **US)
    add_card(session, gateway, account, default=True)
    staff = make_staff(session)
    paid = make_invoice(session, account, issued_at=NOW - timedelta(days=40))
    attempt = open_attempt(session, paid, trigger="renewal", now=NOW)
    session.commit()
    execute_attempt(database, gateway, attempt.id, now=NOW, policy=POLICY)
    open_ = make_invoice(session, account, issued_at=NOW - timedelta(days=5))
    session.expire_all()
    return {"account": account, "staff": staff, "paid": session.get(Invoice, paid.id), "open": open_}


@pytest.fixture
def staff_browser(app, world):
    return staff_browser_on(app, f"/staff/accounts/{world['account'].id}/actions")


def url(world, tail):
    return f"/staff/accounts/{world['account'].id}{tail}"


def audit_actions(session):
    return [(e.action, e.actor_user_id) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if not e.action.startswith(("card.", "login", "auth", "session"))]


def test_the_panel_lists_invoices_with_their_actions_and_the_credit_balance(staff_browser, world):
    body = staff_browser.get(url(world, "/actions")).get_data(as_text=True)
    paid, open_ = world["paid"], world["open"]
    row = re.search(rf'<tr id="action-invoice-{paid.id}">.*?</tr>', body, re.S).group(0)
    assert "Refund…" in row and 'value="21.25"' in row and "Void…" not in row
    row = re.search(rf'<tr id="action-invoice-{open_.id}">.*?</tr>', body, re.S).group(0)
    assert "Void…" in row and "Retry payment" in row and "Record wire transfer…" in row and "Refund…" not in row
    assert "Resend invoice e-mail" in row
    assert 'id="credit-balance">$0.00<' in body and 'name="csrf_token"' in body


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_partial_refund_to_the_card_shows_on_billing_details_with_its_status(
        app, staff_browser, session, world, htmx):
    paid = world["paid"]
    response = staff_browser.post(url(world, f"/invoices/{paid.id}/refund"),
                                  {"amount": "5.00", "reason": "Downtime on 3 Nov", "destination": "card",
                                   "request_key": "a" * 32}, htmx=htmx)
    if htmx:
        body = response.get_data(as_text=True)
        assert response.status_code == 200 and 'id="account-actions"' in body and "<html" not in body
        assert f"Refunded $5.00 of {paid.number} to the original payment." in body  # the toast
        assert "Partially refunded $5.00" in body
    else:
        assert response.status_code == 303
        assert response.headers["Location"].endswith(f"/staff/accounts/{world['account'].id}") or \
            response.headers["Location"].endswith(f"/staff/accounts/{world['account'].id}/actions")
    refund = session.scalar(select(Refund))
    assert (refund.amount_cents, refund.status, refund.created_by_user_id) == (500, "succeeded", world["staff"].id)
    assert ("refund.created", world["staff"].id) in audit_actions(session)
    customer = Browser(app.test_client())
    customer.login()
    page = customer.get("/billing").get_data(as_text=True)
    # The invoice's row, and under it the row listing its refunds.
    row = re.search(rf'<tr id="invoice-{paid.id}"[^>]*>.*?</tr>\s*<tr class="refunds-row">.*?</tr>', page, re.S).group(0)
    assert "Partially refunded $5.00" in row and "to your original payment method" in row
    assert ">Refunded<" in row and "5–10 business days" in row


def test_a_full_refund_says_refunded_on_billing_details(app, staff_browser, session, world):
    paid = world["paid"]
    staff_browser.post(url(world, f"/invoices/{paid.id}/refund"),
                       {"amount": "21.25", "reason": "Cancelled", "destination": "card"})
    customer = Browser(app.test_client())
    customer.login()
    row = re.search(rf'<tr id="invoice-{paid.id}"[^>]*>.*?</tr>', customer.get("/billing").get_data(as_text=True),
                    re.S).group(0)
    assert "Refunded $21.25" in row and "Partially" not in row


@pytest.mark.parametrize("form, field, message", [
    ({"amount": "30.00", "reason": "x"}, "amount", "At most $21.25 can still be refunded on"),
    ({"amount": "0", "reason": "x"}, "amount", "Enter an amount greater than zero."),
    ({"amount": "-3", "reason": "x"}, "amount", "Enter an amount greater than zero."),
    ({"amount": "5", "reason": ""}, "reason", "Enter the reason for this refund."),
])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_refused_refund_says_why_next_to_the_field(staff_browser, session, world, form, field, message, htmx):
    paid = world["paid"]
    response = staff_browser.post(url(world, f"/invoices/{paid.id}/refund"), {**form, "destination": "card"},
                                  htmx=htmx)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    error = re.search(rf'<p class="error" id="refund-{paid.id}-{field}-error">(.*?)</p>', body).group(1)
    assert error.startswith(message)
    assert ("<html" in body) != htmx
    assert session.scalar(select(func.count()).select_from(Refund)) == 0


def test_a_refund_as_account_credit_adds_to_the_balance_the_customer_sees(app, staff_browser, session, world):
    paid = world["paid"]
    response = staff_browser.post(url(world, f"/invoices/{paid.id}/refund"),
                                  {"amount": "10", "reason": "Outage", "destination": "credit"}, htmx=True)
    assert "as account credit" in response.get_data(as_text=True)
    assert 'id="credit-balance">$10.00<' in response.get_data(as_text=True)
    customer = Browser(app.test_client())
    customer.login()
    page = customer.get("/billing").get_data(as_text=True)
    credits = re.search(r'<section id="credits".*?</section>', page, re.S).group(0)
    assert 'id="credit-balance">$10.00<' in credits and "Credits never expire." in credits
    assert f"Outage (refund of {paid.number})" in credits and "+$10.00" in credits


def test_staff_grant_credit_and_the_customer_sees_the_balance_and_its_use(app, staff_browser, session, world):
    response = staff_browser.post(url(world, "/credits"), {"amount": "7.50", "reason": "Sorry for the trouble"})
    assert response.status_code == 303
    entry = session.scalar(select(CreditEntry))
    assert (entry.amount_cents, entry.reason, entry.created_by_user_id) == (750, "Sorry for the trouble",
                                                                            world["staff"].id)
    assert ("credit.granted", world["staff"].id) in audit_actions(session)
    next_invoice = make_invoice(session, world["account"], issued_at=NOW)
    assert next_invoice.credit_applied_cents == 750
    customer = Browser(app.test_client())
    customer.login()
    credits = re.search(r'<section id="credits".*?</section>', customer.get("/billing").get_data(as_text=True),
                        re.S).group(0)
    assert 'id="credit-balance">$0.00<' in credits
    assert "Credit granted: Sorry for the trouble" in credits and "+$7.50" in credits
    assert "Used on invoice" in credits and next_invoice.number in credits and "-$7.50" in credits


@pytest.mark.parametrize("form, field", [({"amount": "", "reason": "x"}, "amount"),
                                         ({"amount": "5", "reason": ""}, "reason")])
def test_a_credit_without_an_amount_or_reason_is_refused_next_to_the_field(staff_browser, session, world, form,
                                                                           field):
    response = staff_browser.post(url(world, "/credits"), form, htmx=True)
    assert response.status_code == 422
    assert f'id="credit-{field}-error"' in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(CreditEntry)) == 0


def test_void_an_open_invoice_with_a_reason(staff_browser, session, world):
    open_ = world["open"]
    missing = staff_browser.post(url(world, f"/invoices/{open_.id}/void"), {"reason": ""}, htmx=True)
    assert missing.status_code == 422 and f'id="void-{open_.id}-reason-error"' in missing.get_data(as_text=True)
    response = staff_browser.post(url(world, f"/invoices/{open_.id}/void"), {"reason": "Billed in error"})
    assert response.status_code == 303
    assert f"{open_.number} is void." in staff_browser.get(response.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    invoice = session.get(Invoice, open_.id)
    assert (invoice.status, invoice.void_reason) == ("void", "Billed in error")
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "invoice.voided"))
    assert event.actor_user_id == world["staff"].id and event.details["reason"] == "Billed in error"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_paid_invoice_cannot_be_voided_and_says_so(staff_browser, session, world, htmx):
    paid = world["paid"]
    response = staff_browser.post(url(world, f"/invoices/{paid.id}/void"), {"reason": "x"}, htmx=htmx)
    assert response.status_code == 409
    assert f"{paid.number} is paid, so it can&#39;t be voided. Refund it instead." in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Invoice, paid.id).status == "paid"


def test_record_a_wire_transfer_pays_the_invoice_restores_access_and_sends_the_receipt(
        staff_browser, session, world):
    account = world["account"]
    sub = make_subscription(session, account, status="past_due")
    open_ = make_invoice(session, account, subscription=sub, issued_at=NOW - timedelta(days=2))
    missing = staff_browser.post(url(world, f"/invoices/{open_.id}/wire"), {"reference": "", "received_on": ""},
                                 htmx=True)
    body = missing.get_data(as_text=True)
    assert missing.status_code == 422
    assert f'id="wire-{open_.id}-reference-error"' in body and f'id="wire-{open_.id}-received_on-error"' in body
    today = utcnow().date().isoformat()
    response = staff_browser.post(url(world, f"/invoices/{open_.id}/wire"),
                                  {"reference": "BANK-REF-4471", "received_on": today})
    assert response.status_code == 303
    told = f"{open_.number} is paid by wire transfer BANK-REF-4471."
    assert told in staff_browser.get(response.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    invoice = session.get(Invoice, open_.id)
    assert invoice.status == "paid" and invoice.amount_paid_cents == invoice.total_cents
    assert (invoice.payment_method_label, invoice.processor_transaction_id) == ("Wire transfer", "BANK-REF-4471")
    assert session.get(Subscription, sub.id).status == "active"
    receipt = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "payment_received",
                                                         OutboxMessage.dedupe_key == f"payment-received-{open_.id}"))
    assert "Wire transfer" in receipt.text_body and "BANK-REF-4471" in receipt.text_body
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "invoice.wire_payment_recorded"))
    assert event.actor_user_id == world["staff"].id and event.details["reference"] == "BANK-REF-4471"


def test_resend_queues_a_new_email_per_request_and_one_per_double_click(staff_browser, session, world):
    paid = world["paid"]
    for key in ("b" * 32, "b" * 32, "c" * 32):
        assert staff_browser.post(url(world, f"/invoices/{paid.id}/resend"), {"request_key": key}).status_code == 303
    messages = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "invoice_resent")).all()
    assert len(messages) == 2 and {m.to_address for m in messages} == {"billing@acme.example"}
    assert all(m.attachments == [{"type": "invoice_pdf", "invoice_id": paid.id}] for m in messages)
    assert audit_actions(session).count(("invoice.resent", world["staff"].id)) == 3


def test_retry_payment_of_an_open_invoice_charges_the_default_card(staff_browser, session, world):
    open_ = world["open"]
    response = staff_browser.post(url(world, f"/invoices/{open_.id}/retry"), htmx=True)
    assert response.status_code == 200 and f"Payment received for {open_.number}." in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Invoice, open_.id).status == "paid"
    assert ("invoice.payment_retried", world["staff"].id) in audit_actions(session)
    again = staff_browser.post(url(world, f"/invoices/{open_.id}/retry"), htmx=True)
    assert again.status_code == 409 and "nothing to collect" in again.get_data(as_text=True)


def test_retry_payment_with_a_declining_card_says_why(app, staff_browser, session, gateway, world):
    add_card(session, gateway, world["account"], number="4000000000000341", default=True)
    response = staff_browser.post(url(world, f"/invoices/{world['open'].id}/retry"), htmx=True)
    assert response.status_code == 402 and "Your card was declined." in response.get_data(as_text=True)


@pytest.mark.parametrize("method, tail", [
    ("get", "/actions"), ("post", "/credits"), ("post", "/invoices/{paid}/refund"), ("post", "/invoices/{open}/void"),
    ("post", "/invoices/{open}/retry"), ("post", "/invoices/{paid}/resend"), ("post", "/invoices/{open}/wire")])
def test_customers_get_404_on_every_staff_action(app, session, world, method, tail):
    customer = Browser(app.test_client())
    customer.login()
    path = url(world, tail.format(paid=world["paid"].id, open=world["open"].id))
    response = customer.get(path) if method == "get" else customer.post(
        path, {"amount": "5", "reason": "x", "reference": "r", "received_on": "2026-11-01"})
    assert response.status_code == 404
    assert session.scalar(select(func.count()).select_from(Refund)) == 0
    assert session.scalar(select(func.count()).select_from(CreditEntry)) == 0


def test_strangers_are_sent_to_log_in(app, world):
    client = app.test_client()
    assert "/login" in client.get(url(world, "/actions")).headers["Location"]


def test_every_staff_action_requires_a_csrf_token(staff_browser, session, world):
    for tail in ("/credits", f"/invoices/{world['paid'].id}/refund", f"/invoices/{world['open'].id}/void",
                 f"/invoices/{world['open'].id}/retry", f"/invoices/{world['paid'].id}/resend",
                 f"/invoices/{world['open'].id}/wire"):
        response = staff_browser.post(url(world, tail), {"amount": "5", "reason": "x", "reference": "r",
                                                         "received_on": "2026-11-01"}, csrf=False)
        assert response.status_code == 400, tail
    assert session.scalar(select(func.count()).select_from(Refund)) == 0
    assert session.scalar(select(func.count()).select_from(CreditEntry)) == 0
    session.expire_all()
    assert session.get(Invoice, world["open"].id).status == "open"


def test_an_invoice_of_another_account_is_not_found(staff_browser, session, world):
    other, _ = make_customer(session, email="eve@example.com", billing_email="eve@example.com", **US)
    theirs = make_invoice(session, other)
    response = staff_browser.post(url(world, f"/invoices/{theirs.id}/void"), {"reason": "x"})
    assert response.status_code == 404
    session.expire_all()
    assert session.get(Invoice, theirs.id).status == "open"


# --- amounts: ASCII digits, the currency's decimals, at most PORTAL_MAX_AMOUNT_CENTS ------------------

OUT_OF_BOUNDS = [
    ("999,999,999.99", "Enter at most $1,000,000.00."),
    ("99999999999999999999", "Enter at most $1,000,000.00."),
    ("١٢", "Enter the amount in USD, like 12.55."),  # Arabic-Indic twelve
    ("１２", "Enter the amount in USD, like 12.55."),  # full-width twelve
    ("5.125", "Enter the amount in USD, like 12.55."),
]
OUT_OF_BOUNDS_IDS = ["a-billion", "twenty-digits", "arabic-indic-digits", "full-width-digits", "three-decimals"]


def field_error(body: str, field_id: str) -> str:
    return re.search(rf'<p class="error" id="{field_id}-error">(.*?)</p>', body).group(1)


@pytest.mark.parametrize("amount, message", OUT_OF_BOUNDS, ids=OUT_OF_BOUNDS_IDS)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_refund_amount_out_of_bounds_is_refused_next_to_the_field(staff_browser, session, world, amount, message,
                                                                     htmx):
    paid = world["paid"]
    response = staff_browser.post(url(world, f"/invoices/{paid.id}/refund"),
                                  {"amount": amount, "reason": "Outage", "destination": "credit"}, htmx=htmx)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert field_error(body, f"refund-{paid.id}-amount") == message
    assert f'value="{amount}"' in body  # what was typed stays in the field to correct
    assert ("<html" in body) != htmx
    assert session.scalar(select(func.count()).select_from(Refund)) == 0
    assert session.scalar(select(func.count()).select_from(CreditEntry)) == 0


@pytest.mark.parametrize("amount, message", OUT_OF_BOUNDS, ids=OUT_OF_BOUNDS_IDS)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_credit_amount_out_of_bounds_is_refused_next_to_the_field_and_later_invoices_are_untouched(
        staff_browser, session, world, amount, message, htmx):
    response = staff_browser.post(url(world, "/credits"), {"amount": amount, "reason": "Sorry"}, htmx=htmx)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert field_error(body, "credit-amount") == message
    assert f'value="{amount}"' in body
    assert ("<html" in body) != htmx
    assert session.scalar(select(func.count()).select_from(CreditEntry)) == 0
    assert make_invoice(session, world["account"], issued_at=NOW).credit_applied_cents == 0


def test_a_credit_of_exactly_the_maximum_is_granted_and_one_cent_more_is_refused(staff_browser, session, world):
    above = staff_browser.post(url(world, "/credits"), {"amount": "1,000,000.01", "reason": "Goodwill"}, htmx=True)
    assert above.status_code == 422
    assert field_error(above.get_data(as_text=True), "credit-amount") == "Enter at most $1,000,000.00."
    assert session.scalar(select(func.count()).select_from(CreditEntry)) == 0

    exactly = staff_browser.post(url(world, "/credits"), {"amount": "1000000.00", "reason": "Goodwill"})
    assert exactly.status_code == 303
    assert session.scalar(select(CreditEntry.amount_cents)) == 100_000_000


def test_the_refund_form_enforces_the_maximum_the_operator_configured(app, staff_browser, session, world):
    from dataclasses import replace

    app.extensions["portal.settings"] = replace(app.extensions["portal.settings"], max_amount_cents=1000)
    paid = world["paid"]
    refund_url = url(world, f"/invoices/{paid.id}/refund")
    above = staff_browser.post(refund_url, {"amount": "10.01", "reason": "Outage", "destination": "card"}, htmx=True)
    assert above.status_code == 422
    assert field_error(above.get_data(as_text=True), f"refund-{paid.id}-amount") == "Enter at most $10.00."
    assert session.scalar(select(func.count()).select_from(Refund)) == 0

    exactly = staff_browser.post(refund_url, {"amount": "10.00", "reason": "Outage", "destination": "card"},
                                 htmx=True)
    assert exactly.status_code == 200
    assert session.scalar(select(Refund.amount_cents)) == 1000


def test_the_refund_form_says_the_customer_sees_the_reason(staff_browser, session, world):
    page = staff_browser.get(f"/staff/accounts/{world['account'].id}").get_data(as_text=True)
    assert "The customer sees this in the refund e-mail." in page
