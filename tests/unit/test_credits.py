"""Account credit: grants by staff, the ledger and its balance, use on the next invoices (partly, carried
over), never expiring, and the credit applied shown on the invoice and its PDF."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from pypdf import PdfReader
from sqlalchemy import inspect, select

from portal.billing.collecting import credits
from portal.documents import pdf
from portal.audit import Actor
from portal.errors import InvalidInput
from portal.billing.invoicing.invoices import credit_balance
from portal.money import amount_text, parse_amount
from portal.models import AuditEvent, CreditEntry, OutboxMessage

from ..helpers import make_customer, make_invoice, make_plan, make_staff, make_subscription

NOW = datetime(2026, 11, 10, tzinfo=timezone.utc)
NO_TAX = {"country": "GB", "address_line1": "1 High St", "city": "London", "postal_code": "SW1A 1AA"}


@pytest.fixture
def staff(session):
    return make_staff(session)


@pytest.fixture
def actor(staff):
    return Actor(user_id=staff.id)


@pytest.fixture
def account(session):
    account, _ = make_customer(session, **NO_TAX)
    return account


def grant(session, account, actor, amount, reason="Goodwill for the outage", now=NOW):
    return credits.grant_credit(session, account.id, amount_cents=amount, reason=reason, actor=actor, now=now)


def invoices_in_a_row(session, account, count, *, amount_cents=2000):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [make_invoice(session, account, amount_cents=amount_cents, issued_at=start + timedelta(days=31 * n))
            for n in range(count)]



def amount_refusal(text: str, currency: str, *, max_cents: int) -> dict:
    """The field errors ``parse_amount`` refuses ``text`` with (fails the test if it accepts it)."""
    with pytest.raises(InvalidInput) as refused:
        parse_amount(text, currency, max_cents=max_cents)
    return refused.value.errors

def test_staff_grant_credit_with_a_reason_audited_and_confirmed_by_email(session, account, actor, staff):
    entry = grant(session, account, actor, 1500)
    assert (entry.amount_cents, entry.currency, entry.kind, entry.created_by_user_id) == (1500, "USD", "grant", staff.id)
    assert credit_balance(session, account.id) == 1500
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "credit.granted"))
    assert event.actor_user_id == staff.id and event.details["amount_cents"] == 1500
    assert event.details["reason"] == "Goodwill for the outage"
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "credit_granted"))
    assert mail.to_address == account.billing_email
    assert "$15.00" in mail.text_body and "never expire" in mail.text_body and "Goodwill" in mail.html_body


@pytest.mark.parametrize("amount", [0, -500, None])
def test_a_credit_must_be_more_than_zero(session, account, actor, amount):
    with pytest.raises(InvalidInput) as refused:
        grant(session, account, actor, amount)
    assert refused.value.errors == {"amount": "Enter an amount greater than zero."}
    assert credit_balance(session, account.id) == 0


def test_a_credit_needs_a_reason(session, account, actor):
    with pytest.raises(InvalidInput) as refused:
        grant(session, account, actor, 100, reason=" ")
    assert refused.value.errors == {"reason": "Enter the reason for this credit."}


def test_credits_are_kept_in_the_currency_of_the_accounts_plan(session, account, actor):
    make_subscription(session, account, plan=make_plan(session, code="pro-eur", currency="EUR"))
    assert grant(session, account, actor, 100).currency == "EUR"


def test_credits_never_expire_there_is_no_expiry_anywhere(session):
    assert not [c for c in inspect(CreditEntry).columns.keys() if "expir" in c]


def test_a_balance_smaller_than_an_invoice_is_used_up_and_the_rest_is_charged(session, account, actor):
    grant(session, account, actor, 500)
    first, second = invoices_in_a_row(session, account, 2)
    assert (first.credit_applied_cents, first.total_cents, first.status) == (500, 1500, "open")
    assert (second.credit_applied_cents, second.total_cents) == (0, 2000)
    assert credit_balance(session, account.id) == 0


def test_a_balance_larger_than_an_invoice_carries_over_to_the_next_ones(session, account, actor):
    grant(session, account, actor, 5000)
    first, second, third, fourth = invoices_in_a_row(session, account, 4)
    assert (first.credit_applied_cents, first.total_cents, first.status) == (2000, 0, "paid")
    assert (second.credit_applied_cents, second.total_cents, second.status) == (2000, 0, "paid")
    assert (third.credit_applied_cents, third.total_cents, third.status) == (1000, 1000, "open")
    assert (fourth.credit_applied_cents, fourth.total_cents) == (0, 2000)
    assert credit_balance(session, account.id) == 0
    summary = credits.credit_summary(session, account.id)
    uses = [(e.amount_cents, e.invoice_number) for e in summary.entries if e.kind == "applied"]
    assert sorted(uses) == sorted([(-2000, first.number), (-2000, second.number), (-1000, third.number)])
    assert summary.balance_cents == 0


def test_tax_is_charged_on_what_the_credit_leaves(session, actor):
    account, _ = make_customer(session, email="ma@example.com", address_line1="1 Main St", city="Boston",
                               postal_code="02101", region="MA")
    grant(session, account, actor, 500)
    [invoice] = invoices_in_a_row(session, account, 1)
    # 20.00 - 5.00 credit = 15.00 taxable; 6.25% of it is 0.9375, rounded half-up to 0.94.
    assert (invoice.credit_applied_cents, invoice.tax_cents, invoice.total_cents) == (500, 94, 1594)


def test_the_history_lists_grants_and_uses_newest_first_with_reasons_and_invoice_numbers(session, account, actor):
    # Granted before the invoice that uses it is issued (1 Jan 2026): each entry carries its own moment.
    grant(session, account, actor, 700, reason="Late delivery", now=datetime(2025, 12, 20, tzinfo=timezone.utc))
    [invoice] = invoices_in_a_row(session, account, 1)
    summary = credits.credit_summary(session, account.id)
    assert summary.balance_cents == 0 and summary.currency == "USD"
    used, granted = summary.entries
    assert (used.label, used.amount_cents, used.invoice_number) == ("Used on invoice", -700, invoice.number)
    assert (granted.label, granted.amount_cents, granted.reason) == ("Credit granted", 700, "Late delivery")


def test_the_invoice_pdf_shows_the_credit_applied(session, account, actor):
    grant(session, account, actor, 500)
    [invoice] = invoices_in_a_row(session, account, 1)
    reader = PdfReader(io.BytesIO(pdf.invoice_pdf(session, invoice, now=NOW)))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Subtotal $20.00 Credits applied −$5.00" in text and "Total $15.00" in text


MAX = 100_000_000  # PORTAL_MAX_AMOUNT_CENTS's default: $1,000,000.00


@pytest.mark.parametrize("text, cents", [("12.50", 1250), ("12", 1200), ("$1,012.5", 101250), (" 0.01 ", 1)])
def test_amounts_typed_in_dollars_become_exact_cents(text, cents):
    assert parse_amount(text, "USD", max_cents=MAX) == cents
    assert parse_amount(amount_text(cents, "USD"), "USD", max_cents=MAX) == cents


@pytest.mark.parametrize("text, message", [("", "Enter an amount."), ("0", "Enter an amount greater than zero."),
                                           ("-5", "Enter an amount greater than zero."),
                                           ("1.234", "Enter the amount in USD, like 12.55."),
                                           ("abc", "Enter the amount in USD, like 12.55.")])
def test_amounts_that_are_not_money_are_refused_next_to_the_field(text, message):
    assert amount_refusal(text, "USD", max_cents=MAX) == {"amount": message}


def test_yen_have_no_minor_units(session):
    assert parse_amount("1200", "JPY", max_cents=MAX) == 1200
    with pytest.raises(InvalidInput):
        parse_amount("12.5", "JPY", max_cents=MAX)


@pytest.mark.parametrize("text", ["١٢", "١٢.٥٠", "１２", "12.５", "۱۲", "१२"],
                         ids=["arabic-indic", "arabic-indic-decimals", "full-width", "full-width-decimal",
                              "persian", "devanagari"])
def test_digits_of_other_scripts_are_refused(text):
    assert amount_refusal(text, "USD", max_cents=MAX) == {"amount": "Enter the amount in USD, like 12.55."}


@pytest.mark.parametrize("text", ["12.500", "0.001", "1,000.999"])
def test_an_amount_with_three_decimals_is_refused(text):
    assert amount_refusal(text, "USD", max_cents=MAX) == {"amount": "Enter the amount in USD, like 12.55."}


def test_an_amount_of_exactly_the_maximum_is_accepted_and_one_cent_more_is_refused():
    assert parse_amount("1,000,000.00", "USD", max_cents=MAX) == MAX
    assert amount_refusal("1,000,000.01", "USD", max_cents=MAX) == {"amount": "Enter at most $1,000,000.00."}


@pytest.mark.parametrize("text", ["999,999,999.99", "99999999999999999999", "1" + "0" * 5000, "0001000000.01"],
                         ids=["a-billion", "twenty-digits", "five-thousand-digits", "leading-zeros"])
def test_an_amount_above_the_maximum_is_refused_however_many_digits_it_has(text):
    assert amount_refusal(text, "USD", max_cents=MAX) == {"amount": "Enter at most $1,000,000.00."}


def test_the_maximum_is_in_the_currencys_own_minor_units():
    assert parse_amount("100000000", "JPY", max_cents=MAX) == MAX
    assert amount_refusal("100000001", "JPY", max_cents=MAX) == {"amount": "Enter at most ¥100,000,000."}
