"""Adding PayPal and a bank account in the browser, sandbox mode, JavaScript on: the type chooser, the test
PayPal approval page, an ACH account verified by micro-deposits, switching the default to PayPal and deleting
the old card; axe on every new form, with and without errors."""
from __future__ import annotations

from playwright.sync_api import expect

from portal.models import PaymentMethod

from ..helpers import add_card, make_plan, make_subscription
from .conftest import settled
from .test_accessibility import assert_accessible
from .test_cards_sandbox import customer, gateway, sign_in  # noqa: F401 (fixtures)


def saved(session, account):
    session.expire_all()
    return session.query(PaymentMethod).filter_by(account_id=account.id, detached_at=None).order_by(PaymentMethod.id).all()


def test_paypal_added_through_the_test_approval_page_then_made_default_and_the_old_card_deleted(
        page, live_server, session, gateway, customer):
    make_subscription(session, customer)
    card = add_card(session, gateway, customer, default=True)
    sign_in(page, live_server)
    section = page.locator("#payment-details")
    page.get_by_role("link", name="Add payment method").click()
    settled(page)
    chooser = page.get_by_role("navigation", name="Type of payment method")
    chooser.get_by_role("link", name="PayPal").click()
    settled(page)
    assert_accessible(page, "the PayPal form")
    page.get_by_role("button", name="Continue to PayPal").click()
    expect(page.get_by_role("heading", name="Approve PayPal for future payments")).to_be_visible()
    expect(page.locator(".test-note")).to_contain_text("Test mode PayPal page")
    assert_accessible(page, "the test PayPal approval page")
    page.get_by_label("PayPal e-mail address").fill("ada.paypal@example.com")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Billing details", level=1)).to_be_visible()
    expect(section).to_contain_text("PayPal · ada.paypal@example.com")
    paypal = next(m for m in saved(session, customer) if m.type == "paypal")

    page.locator('summary[aria-label="Actions for PayPal · ada.paypal@example.com"]').click()
    expect(page.get_by_role("menuitem", name="Edit")).to_have_count(0)  # only cards can be edited
    page.get_by_role("menuitem", name="Save as default card").click()
    settled(page)
    expect(page.locator("#subscription")).to_contain_text("PayPal · ada.paypal@example.com")
    page.locator('summary[aria-label="Actions for Visa ending in 4242"]').click()
    page.get_by_role("menuitem", name="Delete").click()
    settled(page)
    page.get_by_role("button", name="Delete card").click()
    settled(page)
    assert [m.id for m in saved(session, customer)] == [paypal.id]
    expect(section.locator(f"#card-{card.id}")).to_have_count(0)


def test_cancelling_paypal_saves_nothing_and_says_so(page, live_server, session, customer):
    make_subscription(session, customer)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/billing/payment-methods/paypal/new")
    page.get_by_role("button", name="Continue to PayPal").click()
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("PayPal was not added: you cancelled on PayPal's page. Nothing was saved.")).to_be_visible()
    assert saved(session, customer) == []


def test_a_us_bank_account_added_on_an_annual_plan_and_verified_by_micro_deposits(page, live_server, session, customer):
    plan = make_plan(session, code="pro-annual", interval="year", price_cents=20000)
    make_subscription(session, customer, plan=plan)
    sign_in(page, live_server)
    page.get_by_role("link", name="Add payment method").click()
    settled(page)
    page.get_by_role("navigation", name="Type of payment method").get_by_role("link", name="Bank account").click()
    settled(page)
    assert_accessible(page, "the bank account form")
    form = page.get_by_role("form", name="Add a bank account")
    form.get_by_label("Account holder name").fill("Ada Lovelace")
    form.get_by_label("Routing number").fill("021000021")
    form.get_by_label("Account number").fill("000123456789")
    form.get_by_label("By micro-deposits").check()
    form.get_by_role("button", name="Save bank account").click()
    settled(page)
    expect(form.locator("#mandate-error")).to_have_text("Tick the box to authorise the debits.")
    assert_accessible(page, "the bank account form with errors")
    form.get_by_label("I authorise these debits").check()
    form.get_by_label("By micro-deposits").check()
    form.get_by_role("button", name="Save bank account").click()
    settled(page)
    # The test bank knows one routing number: a real bank's is refused next to the field.
    expect(form.locator("#routing_number-error")).to_have_text("In test mode use the test routing number 110000000.")
    form.get_by_label("Routing number").fill("110000000")
    form.get_by_label("I authorise these debits").check()
    form.get_by_label("By micro-deposits").check()
    form.get_by_role("button", name="Save bank account").click()
    settled(page)
    section = page.locator("#payment-details")
    expect(section).to_contain_text("STRIPE TEST BANK •••• 6789")
    expect(section).to_contain_text("Verification pending")
    assert_accessible(page, "a bank account waiting for micro-deposits")
    verify = page.get_by_role("form", name="Verify STRIPE TEST BANK •••• 6789")
    verify.get_by_label("Deposit 1 (cents)").fill("12")
    verify.get_by_label("Deposit 2 (cents)").fill("34")
    verify.get_by_role("button", name="Verify").click()
    settled(page)
    expect(page.locator("#amount1-error")).to_have_text("Those amounts don't match the two deposits we sent.")
    assert_accessible(page, "the Verify form with an error")
    verify = page.get_by_role("form", name="Verify STRIPE TEST BANK •••• 6789")
    verify.get_by_label("Deposit 1 (cents)").fill("32")
    verify.get_by_label("Deposit 2 (cents)").fill("45")
    verify.get_by_role("button", name="Verify").click()
    settled(page)
    expect(section).not_to_contain_text("Verification pending")
    [bank] = saved(session, customer)
    assert (bank.type, bank.verification) == ("us_bank_account", "verified")


def test_a_sepa_account_shows_the_mandate_and_its_reference(page, live_server, session, customer):
    customer.currency = "EUR"
    session.commit()
    plan = make_plan(session, code="pro-annual-eur", interval="year", price_cents=20000, currency="EUR")
    make_subscription(session, customer, plan=plan)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/billing/payment-methods/bank/new")
    form = page.get_by_role("form", name="Add a bank account")
    expect(form).to_contain_text("SEPA Direct Debit")
    form.get_by_label("Account holder name").fill("Zoë Becker")
    form.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 01")
    form.get_by_label("I accept the SEPA Direct Debit mandate above").check()
    form.get_by_role("button", name="Save bank account").click()
    expect(page.locator("#iban-error")).to_have_text("The IBAN is incorrect: check it against your bank statement.")
    assert_accessible(page, "the SEPA form with an error")
    form = page.get_by_role("form", name="Add a bank account")
    form.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    form.get_by_label("I accept the SEPA Direct Debit mandate above").check()
    form.get_by_role("button", name="Save bank account").click()
    settled(page)
    [bank] = saved(session, customer)
    expect(page.locator("#payment-details")).to_contain_text(f"Mandate reference {bank.mandate_reference}")
