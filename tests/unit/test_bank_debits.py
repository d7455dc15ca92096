"""Bank debits (ACH, SEPA) settle days later: the renewal's attempt is *processing* until the bank's answer
arrives as an event, access continues meanwhile, and no path collects the invoice a second time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from portal.billing.collecting import checkout, collection
from portal.billing.collecting.events import deliver_sandbox_events
from portal.billing.subscriptions.access import paid_access
from portal.billing.subscriptions.renewals import run_renewals
from portal.errors import PaymentInProgress
from portal.models import Invoice, OutboxMessage, PaymentAttempt, Subscription
from portal.payments.sandbox import SandboxGateway
from portal.payments.sandbox.charges import BANK_DEBIT_DAYS

from ..helpers import POLICY, add_sandbox_method, make_customer, make_plan, make_subscription

DAY0 = datetime(2026, 12, 1, 1, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.now = DAY0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def bank(database, clock):
    """The sandbox on a clock the test moves, as ``--now`` runs move it."""
    return SandboxGateway(database, clock=clock)


def debit_customer(session, *, charge, type="us_bank_account"):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_sandbox_method(session, account, type=type, charge=charge, default=True)
    annual = make_plan(session, code="pro-annual", price_cents=20000, interval="year")
    sub = make_subscription(session, account, plan=annual, period_end=datetime(2026, 12, 1, tzinfo=timezone.utc))
    return account, sub


def worker_pass(database, bank, seller, clock, now):
    clock.now = now
    deliver_sandbox_events(database, bank, now=now, policy=POLICY)
    run_renewals(database, bank, seller, now=now, policy=POLICY)
    return collection.run_retries(database, bank, now=now, policy=POLICY)


def fresh(session, model, row_id):
    session.expire_all()
    return session.get(model, row_id)


def test_a_debit_is_processing_for_days_with_access_kept_and_then_pays_the_invoice_once(
        database, session, bank, seller, clock):
    account, sub = debit_customer(session, charge="debit_succeeds")
    worker_pass(database, bank, seller, clock, DAY0)
    invoice = session.query(Invoice).one()
    attempt = session.query(PaymentAttempt).one()
    assert (invoice.status, attempt.status) == ("open", "processing")
    assert fresh(session, Subscription, sub.id).status == "active"
    assert paid_access(session, account.id).paid_access

    # Every other path sees the debit in flight and collects nothing.
    with pytest.raises(PaymentInProgress, match="already being processed"):
        collection.retry_now(database, bank, account.id, now=DAY0 + timedelta(hours=1), policy=POLICY)
    with pytest.raises(PaymentInProgress, match="already being processed"):
        checkout.start_checkout(session, bank, account.id, invoice.id, success_url="http://x/ok",
                                cancel_url="http://x/no", now=DAY0 + timedelta(hours=1))
    for day in range(1, BANK_DEBIT_DAYS):
        worker_pass(database, bank, seller, clock, DAY0 + timedelta(days=day))
        assert fresh(session, Invoice, invoice.id).status == "open"
    assert session.query(PaymentAttempt).count() == 1 and session.query(Invoice).count() == 1

    worker_pass(database, bank, seller, clock, DAY0 + timedelta(days=BANK_DEBIT_DAYS))
    paid = fresh(session, Invoice, invoice.id)
    assert paid.status == "paid" and paid.amount_paid_cents == paid.total_cents
    assert paid.payment_method_label == "STRIPE TEST BANK •••• 6789"
    assert bank.count_charges() == 1 and bank.count_charges(status=None) == 1
    assert fresh(session, Subscription, sub.id).current_period_end == datetime(2027, 12, 1, tzinfo=timezone.utc)
    assert [m.kind for m in session.query(OutboxMessage).order_by(OutboxMessage.id)] == [
        "invoice_issued", "payment_received"]


def test_a_debit_that_fails_later_goes_through_the_failed_payment_flow(database, session, bank, seller, clock):
    account, sub = debit_customer(session, charge="debit_fails", type="sepa_debit")
    worker_pass(database, bank, seller, clock, DAY0)
    assert fresh(session, Subscription, sub.id).status == "active"
    failed_on = DAY0 + timedelta(days=BANK_DEBIT_DAYS)
    worker_pass(database, bank, seller, clock, failed_on)
    invoice = session.query(Invoice).one()
    assert invoice.status == "open" and invoice.next_retry_at == failed_on + timedelta(days=3)
    assert fresh(session, Subscription, sub.id).status == "past_due"
    assert not paid_access(session, account.id).paid_access
    notice = session.query(OutboxMessage).filter_by(kind="payment_failed").one()
    assert "your bank returned the debit" in notice.text_body
    # The retry on day 3 after the failure debits again, as a new attempt that is processing in its turn.
    worker_pass(database, bank, seller, clock, failed_on + timedelta(days=3))
    assert [a.status for a in session.query(PaymentAttempt).order_by(PaymentAttempt.attempt_number)] == [
        "failed", "processing"]


def test_a_bank_account_waiting_for_verification_is_never_charged(database, session, bank, seller, clock):
    account, _ = make_customer(session)
    add_sandbox_method(session, account, default=True, verification="pending")
    make_subscription(session, account, period_end=datetime(2026, 12, 1, tzinfo=timezone.utc))
    worker_pass(database, bank, seller, clock, DAY0)
    assert bank.count_charges(status=None) == 0
    assert session.query(PaymentAttempt).one().status == "failed"


def test_a_processing_webhook_keeps_the_attempt_in_flight(database, session, bank, seller, clock):
    """Stripe mode: ``payment_intent.processing`` (shape from Stripe's API reference: the PaymentIntent with
    ``status: processing``) marks the attempt processing, so Retry payment is refused."""
    from portal.billing.collecting.events import apply_event

    account, _ = debit_customer(session, charge="debit_succeeds")
    clock.now = DAY0
    run_renewals(database, bank, seller, now=DAY0, policy=POLICY)
    attempt = session.query(PaymentAttempt).one()
    attempt.status = "pending"  # as if the charge's answer had not been recorded yet
    session.commit()
    event = {"id": "evt_processing_1", "object": "event", "type": "payment_intent.processing",
             "data": {"object": {"id": attempt.processor_payment_id, "object": "payment_intent",
                                 "status": "processing", "amount": attempt.amount_cents, "currency": "usd",
                                 "customer": account.processor_customer_id,
                                 "metadata": {"invoice_id": str(attempt.invoice_id),
                                              "attempt": str(attempt.attempt_number)}}}}
    assert apply_event(database, bank, event, now=DAY0, policy=POLICY) == "processing"
    assert fresh(session, PaymentAttempt, attempt.id).status == "processing"



def test_a_debit_the_customer_started_that_fails_later_does_not_try_the_backup(database, session, bank, seller,
                                                                                clock):
    """The backup answers failed renewals and retries only: the customer's own Retry payment charges only the
    method asked for, even when its failure arrives days later."""
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_sandbox_method(session, account, type="card", charge="card_declined", default=True, last4="0341")
    add_sandbox_method(session, account, type="card", charge="card_declined", backup=True, last4="4444")
    bank_account = add_sandbox_method(session, account, type="sepa_debit", charge="debit_fails")
    make_subscription(session, account, period_end=datetime(2026, 12, 1, tzinfo=timezone.utc))
    # The renewal: the default declines, then the backup too; the customer then pays with the bank account.
    worker_pass(database, bank, seller, clock, DAY0)
    invoice = session.query(Invoice).one()

    clock.now = DAY0 + timedelta(hours=2)
    collection.retry_now(database, bank, account.id, now=clock.now, policy=POLICY, method_id=bank_account.id)
    assert fresh(session, Invoice, invoice.id).status == "open"
    # The bank's answer alone, without the retry that falls due on day 3 meanwhile.
    bank_answer_at = DAY0 + timedelta(hours=2, days=BANK_DEBIT_DAYS)
    clock.now = bank_answer_at
    assert deliver_sandbox_events(database, bank, now=bank_answer_at, policy=POLICY) >= 1
    session.expire_all()
    assert [(a.trigger, a.status) for a in session.query(PaymentAttempt).order_by(PaymentAttempt.id)] == [
        ("renewal", "failed"), ("backup", "failed"), ("customer", "failed")]
    assert fresh(session, Invoice, invoice.id).status == "open"
