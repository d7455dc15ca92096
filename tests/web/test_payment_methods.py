"""Adding PayPal and bank accounts on Billing details (sandbox mode), through the test client: the type
chooser, PayPal's test approval page, ACH and SEPA by the account's currency, the annual-only rule, and
verifying micro-deposits. Each as a full page and as an HTMX partial, with errors next to their fields."""
from __future__ import annotations

import html
import re

import pytest

from portal.models import AuditEvent, PaymentMethod

from ..helpers import add_card, make_customer, make_plan, make_subscription


@pytest.fixture
def customer(session, browser):
    account, _ = make_customer(session)
    browser.login()
    return account


def annual(session, account, *, currency="USD"):
    plan = make_plan(session, code=f"pro-annual-{currency.lower()}", interval="year", price_cents=20000,
                     currency=currency)
    account.currency = currency
    session.commit()
    return make_subscription(session, account, plan=plan)


def methods_of(session, account):
    session.expire_all()
    return session.query(PaymentMethod).filter_by(account_id=account.id, detached_at=None) \
        .order_by(PaymentMethod.id).all()


def field_error(body: str, field: str) -> str | None:
    match = re.search(rf'id="{field}-error">([^<]+)<', body)
    return html.unescape(match.group(1)) if match else None


def key_of(body: str) -> str:
    return re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f]{32})"', body).group(1)


def ach(**fields):
    data = {"holder_name": "Ada Lovelace", "routing_number": "110000000", "account_number": "000123456789",
            "account_holder_type": "individual", "verification_method": "instant", "mandate": "y",
            "idempotency_key": "a" * 32}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def sepa(**fields):
    data = {"holder_name": "Zoë Becker", "iban": "DE89 3704 0044 0532 0130 00", "mandate": "y",
            "idempotency_key": "b" * 32}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


# --- the chooser ----------------------------------------------------------------------------------------

def test_add_payment_method_opens_a_chooser_whose_types_are_links_that_work_without_javascript(browser, customer):
    page = browser.get("/billing").get_data(as_text=True)
    assert "Add payment method" in page and 'hx-get="/billing/cards/new">Add payment method' in page
    opened = browser.get("/billing/cards/new").get_data(as_text=True)
    assert 'aria-label="Type of payment method"' in opened
    for path in ("cards/new", "payment-methods/paypal/new", "payment-methods/bank/new"):
        assert f'href="/billing/{path}#payment-details"' in opened
    assert "Add a new card" in opened and 'name="number"' in opened  # the card form is the first one open
    paypal = browser.get("/billing/payment-methods/paypal/new").get_data(as_text=True)
    assert "Continue to PayPal" in paypal and 'name="number"' not in paypal
    assert "<html" in paypal  # a plain GET answers the whole page


def test_each_types_form_as_an_htmx_partial_is_the_section_alone(browser, customer):
    partial = browser.get("/billing/payment-methods/paypal/new", htmx=True).get_data(as_text=True)
    assert partial.lstrip().startswith("<section id=\"payment-details\"") or 'id="payment-details"' in partial
    assert "<html" not in partial and "Continue to PayPal" in partial


# --- PayPal ----------------------------------------------------------------------------------------------

def start_paypal(browser, *, htmx=False, default=False):
    body = browser.get("/billing/payment-methods/paypal/new").get_data(as_text=True)
    data = {"idempotency_key": key_of(body)}
    if default:
        data["save_as_default"] = "y"
    return browser.post("/billing/payment-methods/paypal", data, htmx=htmx)


def test_paypal_sends_the_customer_to_a_marked_test_approval_page_and_approve_saves_it(browser, session, customer):
    response = start_paypal(browser)
    assert response.status_code == 303
    approval_url = response.headers["Location"]
    assert "/sandbox/setup-intents/" in approval_url and approval_url.endswith("/paypal")
    page = browser.get(approval_url).get_data(as_text=True)
    assert "Test mode PayPal page" in page and "Approve" in page and "Cancel" in page
    assert 'value="billing@acme.example"' in page  # the account's billing e-mail, to start with
    assert methods_of(session, customer) == []  # nothing saved before approval

    done = browser.post(approval_url, {"email": "ada.paypal@example.com", "decision": "approve"})
    assert done.status_code == 303
    [saved] = methods_of(session, customer)
    assert (saved.type, saved.label, saved.is_default) == ("paypal", "PayPal · ada.paypal@example.com", True)
    billing = browser.get("/billing").get_data(as_text=True)
    assert "PayPal · ada.paypal@example.com was added" in billing
    assert "img/brands/paypal.svg" in billing and "PayPal account" in billing
    assert session.query(AuditEvent).filter_by(action="card.added", account_id=customer.id).count() == 1


def test_paypal_over_htmx_leaves_the_page_for_the_approval_page(browser, customer):
    response = start_paypal(browser, htmx=True)
    assert response.status_code == 200 and response.headers["HX-Redirect"].endswith("/paypal")


def test_cancelling_paypal_goes_back_with_a_message_and_saves_nothing(browser, session, customer):
    approval_url = start_paypal(browser).headers["Location"]
    browser.get(approval_url)
    back = browser.post(approval_url, {"email": "", "decision": "cancel"})
    assert back.status_code == 303 and back.headers["Location"].startswith("/billing")
    assert "you cancelled on PayPal&#39;s page. Nothing was saved." in browser.get("/billing").get_data(as_text=True)
    assert methods_of(session, customer) == []
    # The approval is answered: the page is gone, and approving afterwards saves nothing.
    assert browser.get(approval_url).status_code == 404
    assert browser.post(approval_url, {"email": "x@example.com", "decision": "approve"}).status_code == 404
    assert methods_of(session, customer) == []


def test_the_approval_page_refuses_a_bad_email_next_to_the_field(browser, session, customer):
    approval_url = start_paypal(browser).headers["Location"]
    browser.get(approval_url)
    refused = browser.post(approval_url, {"email": "not-an-email", "decision": "approve"})
    assert refused.status_code == 422
    assert field_error(refused.get_data(as_text=True), "email") == "Enter a valid e-mail address."
    assert methods_of(session, customer) == []


def test_another_accounts_paypal_approval_is_not_found(app, browser, session, customer):
    approval_url = start_paypal(browser).headers["Location"]
    other, _ = make_customer(session, email="eve@example.com", billing_email="eve@x.example")
    from ..helpers import Browser
    eve = Browser(app.test_client())
    eve.login("eve@example.com")
    assert eve.get(approval_url).status_code == 404
    assert eve.post(approval_url, {"email": "eve@example.com", "decision": "approve"}).status_code == 404
    assert methods_of(session, customer) == [] and methods_of(session, other) == []


def test_switching_types_add_paypal_set_it_default_then_delete_the_old_card(browser, session, gateway, customer):
    make_subscription(session, customer)
    card = add_card(session, gateway, customer, default=True)
    approval_url = start_paypal(browser).headers["Location"]
    browser.get(approval_url)
    browser.post(approval_url, {"email": "ada@example.com", "decision": "approve"})
    paypal = next(m for m in methods_of(session, customer) if m.type == "paypal")
    assert not paypal.is_default
    # While the card is the default a subscription relies on, Delete says why not.
    assert browser.post(f"/billing/cards/{card.id}/delete").status_code == 409
    assert browser.post(f"/billing/cards/{paypal.id}/default", htmx=True).status_code == 200
    deleted = browser.post(f"/billing/cards/{card.id}/delete", htmx=True)
    assert deleted.status_code == 200
    [left] = methods_of(session, customer)
    assert left.id == paypal.id and left.is_default
    body = browser.get("/billing").get_data(as_text=True)
    assert "Charged to" in body and "PayPal · ada@example.com" in body
    # PayPal has no Edit: only cards can change their details.
    assert f"/billing/cards/{paypal.id}/edit" not in body


# --- bank accounts: the seed's rules ------------------------------------------------------------------------

def test_a_monthly_plan_is_not_offered_a_bank_account_and_the_page_says_why(browser, session, customer):
    make_subscription(session, customer)  # monthly
    for htmx in (False, True):
        body = browser.get("/billing/payment-methods/bank/new", htmx=htmx).get_data(as_text=True)
        assert "Bank accounts can be added only to annual plans, and your plan is billed monthly." in body
        assert 'name="routing_number"' not in body and 'name="iban"' not in body
    refused = browser.post("/billing/payment-methods/bank", ach())
    assert refused.status_code == 409 and "only to annual plans" in refused.get_data(as_text=True)
    assert methods_of(session, customer) == []


def test_the_intervals_offered_a_bank_account_are_a_setting(app, browser, session, customer):
    make_subscription(session, customer)  # monthly
    settings = app.extensions["portal.settings"]
    from dataclasses import replace
    app.extensions["portal.settings"] = replace(settings, bank_account_intervals=("month", "year"))
    try:
        body = browser.get("/billing/payment-methods/bank/new").get_data(as_text=True)
    finally:
        app.extensions["portal.settings"] = settings
    assert 'name="routing_number"' in body


def test_an_annual_usd_plan_gets_the_ach_form_and_an_eur_plan_the_sepa_form(browser, session, customer):
    sub = annual(session, customer, currency="USD")
    body = browser.get("/billing/payment-methods/bank/new").get_data(as_text=True)
    assert 'name="routing_number"' in body and 'name="account_number"' in body and 'name="iban"' not in body
    assert "verify by micro-deposits" in body.lower() or "By micro-deposits" in body
    sub.status = "canceled"
    session.commit()
    annual(session, customer, currency="EUR")
    body = browser.get("/billing/payment-methods/bank/new", htmx=True).get_data(as_text=True)
    assert 'name="iban"' in body and 'name="routing_number"' not in body
    assert "SEPA Direct Debit mandate" in body and "within 8 weeks" in body


def test_a_currency_without_a_bank_debit_scheme_is_told_why(browser, session, customer):
    annual(session, customer, currency="GBP")
    body = browser.get("/billing/payment-methods/bank/new").get_data(as_text=True)
    assert "US dollars (ACH) or euros (SEPA" in body and "yours is billed in GBP" in body


# --- ACH ---------------------------------------------------------------------------------------------------

def test_ach_with_instant_verification_is_saved_verified(browser, session, customer):
    annual(session, customer)
    response = browser.post("/billing/payment-methods/bank", ach(save_as_default="y"), htmx=True)
    assert response.status_code == 200
    [saved] = methods_of(session, customer)
    assert (saved.type, saved.verification, saved.last4, saved.is_default) == ("us_bank_account", "verified", "6789", True)
    body = response.get_data(as_text=True)
    assert "STRIPE TEST BANK •••• 6789 was added" in body and "US bank account (ACH)" in body
    assert "img/brands/bank.svg" in body


@pytest.mark.parametrize("fields, field, message", [
    ({"routing_number": "123456789"}, "routing_number", "The routing number is incorrect: it has 9 digits."),
    ({"routing_number": "021000021"}, "routing_number", "In test mode use the test routing number 110000000."),
    ({"routing_number": "12345"}, "routing_number", "The routing number has 9 digits."),
    ({"account_number": "000999999999"}, "account_number",
     "In test mode use one of the test account numbers, such as 000123456789."),
    ({"holder_name": ""}, "holder_name", "Enter the account holder's name."),
    ({"mandate": None}, "mandate", "Tick the box to authorise the debits."),
])
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_ach_details_are_refused_next_to_the_field(browser, session, customer, fields, field, message, htmx):
    annual(session, customer)
    refused = browser.post("/billing/payment-methods/bank", ach(**fields), htmx=htmx)
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert field_error(body, field) == message
    assert ("<html" in body) is not htmx
    assert methods_of(session, customer) == []


def test_micro_deposits_leave_the_account_pending_until_the_right_amounts_verify_it(browser, session, gateway, customer):
    annual(session, customer)
    add_card(session, gateway, customer, default=True)
    response = browser.post("/billing/payment-methods/bank", ach(verification_method="microdeposits", save_as_default="y"))
    assert response.status_code == 303
    pending = next(m for m in methods_of(session, customer) if m.is_bank)
    assert pending.verification == "pending" and not pending.is_default  # never default while pending
    page = browser.get("/billing").get_data(as_text=True)
    assert "Two small deposits will arrive" in page and "Verification pending" in page
    assert f'/billing/payment-methods/{pending.id}/verify' in page
    assert f'/billing/cards/{pending.id}/default"' not in page  # no "Save as default" while pending
    refused = browser.post(f"/billing/cards/{pending.id}/default", htmx=True)
    assert refused.status_code == 409 and "can&#39;t be your default until it is verified" in refused.get_data(as_text=True)

    wrong = browser.post(f"/billing/payment-methods/{pending.id}/verify", {"amount1": "10", "amount2": "45"}, htmx=True)
    assert wrong.status_code == 422
    assert field_error(wrong.get_data(as_text=True), "amount1") == "Those amounts don't match the two deposits we sent."
    assert methods_of(session, customer)[-1].verification == "pending"

    right = browser.post(f"/billing/payment-methods/{pending.id}/verify", {"amount1": "45", "amount2": "32"})
    assert right.status_code == 303
    assert methods_of(session, customer)[-1].verification == "verified"
    page = browser.get("/billing").get_data(as_text=True)
    assert "is verified" in page and "Verification pending" not in page
    assert session.query(AuditEvent).filter_by(action="card.verified", account_id=customer.id).count() == 1
    assert browser.post(f"/billing/cards/{pending.id}/default", htmx=True).status_code == 200
    assert next(m for m in methods_of(session, customer) if m.is_default).id == pending.id


def test_micro_deposits_verify_by_descriptor_code_and_a_wrong_code_is_refused_next_to_it(browser, session, customer):
    annual(session, customer)
    browser.post("/billing/payment-methods/bank", ach(verification_method="microdeposits"))
    [pending] = methods_of(session, customer)
    wrong = browser.post(f"/billing/payment-methods/{pending.id}/verify", {"descriptor_code": "SM99ZZ"})
    assert wrong.status_code == 422
    assert field_error(wrong.get_data(as_text=True), "descriptor_code").startswith("That code doesn't match")
    empty = browser.post(f"/billing/payment-methods/{pending.id}/verify", {}, htmx=True)
    assert empty.status_code == 422 and field_error(empty.get_data(as_text=True), "amount2") == \
        "Enter both deposit amounts, or the code."
    ok = browser.post(f"/billing/payment-methods/{pending.id}/verify", {"descriptor_code": "sm11aa"}, htmx=True)
    assert ok.status_code == 200 and methods_of(session, customer)[0].verification == "verified"


# --- SEPA --------------------------------------------------------------------------------------------------

def test_sepa_saves_the_account_with_its_mandate_reference_shown(browser, session, customer):
    annual(session, customer, currency="EUR")
    response = browser.post("/billing/payment-methods/bank", sepa(), htmx=True)
    assert response.status_code == 200
    [saved] = methods_of(session, customer)
    assert (saved.type, saved.country, saved.last4) == ("sepa_debit", "DE", "3000")
    assert re.fullmatch(r"[0-9A-F]{16}", saved.mandate_reference) and saved.mandate_accepted_at is not None
    body = response.get_data(as_text=True)
    assert f"Mandate reference <span class=\"nowrap\">{saved.mandate_reference}</span>" in body
    assert "SEPA Direct Debit" in body


@pytest.mark.parametrize("fields, field, message", [
    ({"iban": "DE89 3704 0044 0532 0130 01"}, "iban", "The IBAN is incorrect: check it against your bank statement."),
    ({"iban": "hello"}, "iban", None),
    ({"mandate": None}, "mandate", "Accept the mandate to save this account."),
])
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_sepa_details_are_refused_next_to_the_field(browser, session, customer, fields, field, message, htmx):
    annual(session, customer, currency="EUR")
    refused = browser.post("/billing/payment-methods/bank", sepa(**fields), htmx=htmx)
    assert refused.status_code == 422
    error = field_error(refused.get_data(as_text=True), field)
    assert error and (message is None or error == message)
    assert methods_of(session, customer) == []


def test_a_sepa_iban_that_fails_later_is_saved_and_its_debits_fail(browser, session, gateway, customer):
    annual(session, customer, currency="EUR")
    browser.post("/billing/payment-methods/bank", sepa(iban="DE62370400440532013001"))
    [saved] = methods_of(session, customer)
    assert gateway.retrieve_card(saved.processor_id).type == "sepa_debit"
    from portal.models import SandboxObject
    assert session.get(SandboxObject, saved.processor_id).data["charge"] == "debit_fails"


def test_bank_and_paypal_forms_need_a_csrf_token(browser, session, customer):
    annual(session, customer)
    assert browser.post("/billing/payment-methods/bank", ach(), csrf=False).status_code == 400
    assert browser.post("/billing/payment-methods/paypal", {"idempotency_key": "c" * 32}, csrf=False).status_code == 400
    assert methods_of(session, customer) == []
