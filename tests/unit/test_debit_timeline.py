"""Bank debits over days, each step a ``portal worker --once --now …`` run as an operator moving the clock
would make it: an ACH debit processing then succeeded; a SEPA debit that fails later and makes the
subscription Past due. Also the seed's bank-transfer rules (annual plans, a minimum total)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from portal import cli
from portal.billing.collecting.bank_transfer import TransferTerms
from portal.billing.invoice_details import invoice_details
from portal.billing.subscriptions.access import paid_access
from portal.models import Invoice, OutboxMessage, PaymentAttempt, Subscription
from portal.payments.sandbox.charges import BANK_DEBIT_DAYS

from ..helpers import add_sandbox_method, make_customer, make_plan, make_subscription

RENEWAL = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.fixture
def worker(database_url, monkeypatch):
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    monkeypatch.setenv("PORTAL_SECRET_KEY", "timeline-" + "k" * 32)

    def run(moment: datetime) -> str:
        result = CliRunner().invoke(cli.main, ["worker", "--once", "--now", moment.isoformat()])
        assert result.exit_code == 0, result.output
        return result.output
    return run


def annual_customer(session, *, type, charge):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_sandbox_method(session, account, type=type, charge=charge, default=True)
    plan = make_plan(session, code="pro-annual", interval="year", price_cents=20000)
    return account, make_subscription(session, account, plan=plan, period_end=RENEWAL)


def state(session, account, sub):
    session.expire_all()
    invoice = session.query(Invoice).one()
    return (invoice.status, [a.status for a in session.query(PaymentAttempt).order_by(PaymentAttempt.id)],
            session.get(Subscription, sub.id).status, paid_access(session, account.id).paid_access)


def test_an_ach_debit_is_processing_for_days_then_succeeds(session, worker):
    account, sub = annual_customer(session, type="us_bank_account", charge="debit_succeeds")
    worker(RENEWAL + timedelta(hours=1))
    assert state(session, account, sub) == ("open", ["processing"], "active", True)
    worker(RENEWAL + timedelta(days=2))
    assert state(session, account, sub) == ("open", ["processing"], "active", True)
    worker(RENEWAL + timedelta(days=BANK_DEBIT_DAYS, hours=1))
    assert state(session, account, sub) == ("paid", ["succeeded"], "active", True)
    assert session.query(OutboxMessage).filter_by(kind="payment_received").count() == 1


def test_a_sepa_debit_fails_days_later_and_the_subscription_becomes_past_due(session, worker):
    account, sub = annual_customer(session, type="sepa_debit", charge="debit_fails")
    worker(RENEWAL + timedelta(hours=1))
    assert state(session, account, sub) == ("open", ["processing"], "active", True)
    worker(RENEWAL + timedelta(days=BANK_DEBIT_DAYS, hours=1))
    assert state(session, account, sub) == ("open", ["failed"], "past_due", False)
    notice = session.query(OutboxMessage).filter_by(kind="payment_failed").one()
    assert "your bank returned the debit" in notice.text_body


@pytest.mark.parametrize("interval, total, offered", [
    ("year", 10_000, True), ("year", 9_999, False), ("month", 50_000, False), ("year", 250_000, True)])
def test_bank_transfer_is_for_annual_plans_from_the_minimum(interval, total, offered):
    invoice = Invoice(status="open", total_cents=total, amount_paid_cents=0, currency="USD")
    assert TransferTerms(min_cents=10_000, intervals=("year",)).allows(invoice, interval) is offered


def test_bank_transfer_is_never_offered_on_a_paid_or_void_invoice():
    terms = TransferTerms()
    for status in ("paid", "void", "draft"):
        assert not terms.allows(Invoice(status=status, total_cents=50_000, amount_paid_cents=0, currency="USD"), "year")


# --- a late failure on the default with a backup method ---------------------------------------------

def with_backup_card(session, account, charge):
    return add_sandbox_method(session, account, type="card", charge=charge, backup=True, last4="4444")


def attempts(session):
    session.expire_all()
    return [(a.trigger, a.status, a.payment_method_label)
            for a in session.query(PaymentAttempt).order_by(PaymentAttempt.attempt_number)]


def test_a_sepa_debit_that_fails_later_is_paid_by_the_backup_in_the_pass_that_hears_of_it(session, worker, sandbox):
    """A returned debit is a failed charge on the default, like a decline: the backup is tried once, as its own
    attempt with its own key, in the worker pass that delivers the failure."""
    account, sub = annual_customer(session, type="sepa_debit", charge="debit_fails")
    with_backup_card(session, account, "ok")
    worker(RENEWAL + timedelta(hours=1))
    assert attempts(session) == [("renewal", "processing", "Test Bank AG •••• 3000")]
    worker(RENEWAL + timedelta(days=BANK_DEBIT_DAYS, hours=1))
    assert attempts(session) == [("renewal", "failed", "Test Bank AG •••• 3000"),
                                 ("backup", "succeeded", "Visa •••• 4444")]
    assert len({a.idempotency_key for a in session.query(PaymentAttempt)}) == 2
    assert state(session, account, sub)[::2] == ("paid", "active")
    assert session.query(OutboxMessage).filter_by(kind="payment_failed").count() == 0
    receipt = session.query(OutboxMessage).filter_by(kind="payment_received").one()
    assert ("Test Bank AG •••• 3000 was returned by your bank, so we charged your backup payment method, Visa •••• 4444."
            in receipt.text_body)
    # Later passes change nothing: the backup was tried once.
    worker(RENEWAL + timedelta(days=BANK_DEBIT_DAYS + 3, hours=1))
    assert len(attempts(session)) == 2
    assert sandbox.count_charges(status="succeeded") == 1 and sandbox.count_charges(status=None) == 2


def test_a_late_failure_whose_backup_fails_too_makes_the_subscription_past_due_and_says_so(session, worker):
    account, sub = annual_customer(session, type="sepa_debit", charge="debit_fails")
    with_backup_card(session, account, "card_declined")
    worker(RENEWAL + timedelta(hours=1))
    worker(RENEWAL + timedelta(days=BANK_DEBIT_DAYS, hours=1))
    assert [t for t, _, _ in attempts(session)] == ["renewal", "backup"]
    assert state(session, account, sub) == ("open", ["failed", "failed"], "past_due", False)
    notice = session.query(OutboxMessage).filter_by(kind="payment_failed").one()
    assert "your bank returned the debit" in notice.text_body
    assert "We also tried your backup payment method, Visa •••• 4444, and it did not go through either" \
        in notice.text_body
    details = invoice_details(session, account.id, session.query(Invoice).one().id)
    assert details.paid_with is None  # still open: nothing paid it


def test_the_invoice_paid_by_the_backup_after_a_returned_debit_says_so(session, worker):
    account, _ = annual_customer(session, type="sepa_debit", charge="debit_fails")
    with_backup_card(session, account, "ok")
    worker(RENEWAL + timedelta(hours=1))
    worker(RENEWAL + timedelta(days=BANK_DEBIT_DAYS, hours=1))
    session.expire_all()
    details = invoice_details(session, account.id, session.query(Invoice).one().id)
    assert details.paid_with == ("Paid with Visa •••• 4444 (your backup method) after Test Bank AG •••• 3000 "
                                 "was returned by your bank")
