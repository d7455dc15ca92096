"""Failed payments over time: notices, retries on schedule, suspension and recovery, with a moving clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from portal.billing.collecting import collection, dunning
from portal.billing.subscriptions.access import paid_access
from portal.billing.subscriptions.renewals import run_renewals
from portal.models import Invoice, OutboxMessage, PaymentAttempt, Subscription

from ..helpers import POLICY, add_card, make_customer, make_subscription, run_concurrently

DAY0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def subscribed(session, sandbox, number):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_card(session, sandbox, account, number=number, default=True)
    sub = make_subscription(session, account, period_end=DAY0)
    return account, sub


def on(day: float, hours: float = 1) -> datetime:
    return DAY0 + timedelta(days=day, hours=hours)


def worker_pass(database, sandbox, seller, now, policy=POLICY):
    run_renewals(database, sandbox, seller, now=now, policy=policy)
    return collection.run_retries(database, sandbox, now=now, policy=policy)


def emails(session):
    session.expire_all()
    return [m.kind for m in session.query(OutboxMessage).order_by(OutboxMessage.id)]


def status(session, sub):
    session.expire_all()
    return session.get(Subscription, sub.id).status


def test_fail_retry_retry_suspend_then_a_new_card_and_retry_payment_restore_access(database, session, sandbox, seller):
    account, sub = subscribed(session, sandbox, "4000000000000341")
    worker_pass(database, sandbox, seller, on(0))
    assert status(session, sub) == "past_due"
    assert not paid_access(session, account.id).paid_access
    invoice = session.query(Invoice).one()
    assert invoice.status == "open" and invoice.next_retry_at == on(3)  # 3 days after the failure
    failed_mail = session.query(OutboxMessage).filter_by(kind="payment_failed").one()
    assert "your bank declined the charge" in failed_mail.text_body
    assert "$21.25" in failed_mail.text_body and "4 Dec 2026" in failed_mail.text_body
    assert "/billing#payment-details" in failed_mail.text_body and "/billing#invoices" in failed_mail.html_body

    assert worker_pass(database, sandbox, seller, on(1))["retried"] == 0  # nothing due before day 3
    assert worker_pass(database, sandbox, seller, on(3))["retried"] == 1
    assert status(session, sub) == "past_due"
    assert worker_pass(database, sandbox, seller, on(5))["retried"] == 0
    assert worker_pass(database, sandbox, seller, on(7))["retried"] == 1
    assert status(session, sub) == "suspended"
    assert worker_pass(database, sandbox, seller, on(20))["retried"] == 0  # no retries after suspension
    assert session.query(Invoice).one().status == "open"

    good = add_card(session, sandbox, account, number="4242424242424242", default=True)
    result = collection.retry_now(database, sandbox, account.id, now=on(21), policy=POLICY)
    assert result.paid == [invoice.number] and not result.failed
    session.expire_all()
    sub_now = session.get(Subscription, sub.id)
    assert sub_now.status == "active" and paid_access(session, account.id).paid_access
    # Reactivated from Suspended: the new period starts on the day of payment.
    assert sub_now.current_period_start.date() == on(21).date()
    assert sub_now.current_period_end.date() == datetime(2027, 1, 22).date()
    paid = session.query(Invoice).one()
    assert paid.status == "paid" and paid.payment_method_label == good.label
    automatic = session.query(PaymentAttempt).filter(PaymentAttempt.trigger.in_(("renewal", "retry"))).all()
    assert [a.status for a in automatic] == ["failed", "failed", "failed"]
    assert sandbox.count_charges(status="failed") == 3 and sandbox.count_charges() == 1
    assert emails(session) == ["invoice_issued", "payment_failed", "payment_failed", "subscription_suspended",
                               "payment_received"]
    receipt = session.query(OutboxMessage).filter_by(kind="payment_received").one()
    assert "active again" in receipt.subject


def test_a_new_default_card_before_day_3_is_what_the_day_3_retry_charges(database, session, sandbox, seller):
    account, sub = subscribed(session, sandbox, "4000000000000341")
    worker_pass(database, sandbox, seller, on(0))
    good = add_card(session, sandbox, account, number="5555555555554444", default=True)
    assert worker_pass(database, sandbox, seller, on(3)) == {"retried": 1, "paid": 1, "failed": 0}
    assert status(session, sub) == "active"
    invoice = session.query(Invoice).one()
    assert invoice.status == "paid" and invoice.payment_method_label == good.label and invoice.next_retry_at is None
    assert worker_pass(database, sandbox, seller, on(7))["retried"] == 0  # the remaining retry was cancelled
    assert emails(session) == ["invoice_issued", "payment_failed", "payment_received"]


def test_a_charge_that_needs_3d_secure_stops_retries_and_asks_the_customer_to_pay_on_the_portal(database, session,
                                                                                              sandbox, seller):
    account, sub = subscribed(session, sandbox, "4000002760003184")
    worker_pass(database, sandbox, seller, on(0))
    invoice = session.query(Invoice).one()
    assert invoice.status == "open" and invoice.auto_retry is False and invoice.next_retry_at is None
    assert status(session, sub) == "past_due"
    attempt = session.query(PaymentAttempt).one()
    assert attempt.status == "requires_action"
    assert worker_pass(database, sandbox, seller, on(3))["retried"] == 0
    assert worker_pass(database, sandbox, seller, on(7))["retried"] == 0
    assert status(session, sub) == "past_due"
    notice = session.query(OutboxMessage).filter_by(kind="payment_action_required").one()
    assert "/billing#invoices" in notice.text_body and "confirm" in notice.subject
    assert emails(session) == ["invoice_issued", "payment_action_required"]


def test_a_renewal_without_any_card_follows_the_same_schedule(database, session, sandbox, seller):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    sub = make_subscription(session, account, period_end=DAY0)
    worker_pass(database, sandbox, seller, on(0))
    assert "there is no card on file" in session.query(OutboxMessage).filter_by(kind="payment_failed").one().text_body
    worker_pass(database, sandbox, seller, on(3))
    worker_pass(database, sandbox, seller, on(7))
    assert status(session, sub) == "suspended"


def test_a_custom_schedule_is_followed(database, session, sandbox, seller):
    policy = dunning.RetryPolicy((1, 2, 4))
    account, sub = subscribed(session, sandbox, "4000000000000341")
    worker_pass(database, sandbox, seller, on(0), policy)
    retried = [worker_pass(database, sandbox, seller, on(day), policy)["retried"] for day in (1, 2, 3, 4)]
    assert retried == [1, 1, 0, 1]
    assert status(session, sub) == "suspended"


def test_retry_payment_refuses_while_a_charge_is_in_flight(database, session, sandbox, seller):
    account, sub = subscribed(session, sandbox, "4000000000000341")
    worker_pass(database, sandbox, seller, on(0))
    invoice = session.query(Invoice).one()
    card = session.query(PaymentAttempt).filter_by(invoice_id=invoice.id).first().payment_method_id
    session.add(PaymentAttempt(invoice_id=invoice.id, attempt_number=9, idempotency_key="in-flight",
                               trigger="customer", status="pending", amount_cents=1, currency="USD",
                               payment_method_id=card, created_at=on(1)))
    session.commit()
    charges = sandbox.count_charges(status=None)
    with pytest.raises(collection.PaymentInProgress):
        collection.retry_now(database, sandbox, account.id, now=on(1), policy=POLICY)
    assert sandbox.count_charges(status=None) == charges


def test_four_concurrent_retry_payment_clicks_charge_once_and_each_gets_a_clear_answer(database, session, sandbox,
                                                                                        seller):
    account, sub = subscribed(session, sandbox, "4000000000000341")
    worker_pass(database, sandbox, seller, on(0))
    add_card(session, sandbox, account, number="4242424242424242", default=True)
    charges_before = sandbox.count_charges()

    outcomes = run_concurrently(
        lambda n: collection.retry_now(database, sandbox, account.id, now=on(1), policy=POLICY), 4)

    paid = [o for o in outcomes if o.ok and isinstance(o.value, collection.RetryResult) and o.value.paid]
    refused = [o for o in outcomes if isinstance(o.error, (collection.PaymentInProgress, collection.InvoiceNotOpen,
                                                           collection.NothingToPay))]
    unexpected = [o for o in outcomes if o not in paid and o not in refused]
    assert not unexpected, f"a click ended in something other than a payment or a clear refusal: {unexpected!r}"
    assert len(paid) == 1 and len(refused) == 3, outcomes
    assert sandbox.count_charges() - charges_before == 1
    session.expire_all()
    assert session.query(PaymentAttempt).filter_by(trigger="customer", status="succeeded").count() == 1


def test_the_default_card_gets_one_expiry_reminder_30_days_ahead(database, session, sandbox):
    account, _ = make_customer(session)
    card = add_card(session, sandbox, account, exp_month=1, exp_year=2027, default=True)
    add_card(session, sandbox, account, number="5555555555554444", exp_month=1, exp_year=2027)  # not the default
    assert dunning.send_card_expiry_reminders(database, now=datetime(2026, 12, 31, tzinfo=timezone.utc)) == 0
    assert dunning.send_card_expiry_reminders(database, now=datetime(2027, 1, 1, tzinfo=timezone.utc)) == 1
    assert dunning.send_card_expiry_reminders(database, now=datetime(2027, 1, 10, tzinfo=timezone.utc)) == 0
    reminder = session.query(OutboxMessage).filter_by(kind="card_expiring").one()
    assert card.label in reminder.subject and "31 Jan 2027" in reminder.text_body
    card.exp_year = 2029  # the bank sent a new card with a new date: that expiry gets its own reminder later
    session.commit()
    assert dunning.send_card_expiry_reminders(database, now=datetime(2029, 1, 5, tzinfo=timezone.utc)) == 1
