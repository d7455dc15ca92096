"""The renewal engine: one invoice per period, tax and credits applied, the default card charged."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from portal.billing.subscriptions.renewals import add_interval, run_renewals
from portal.models import CreditEntry, Invoice, OutboxMessage, PaymentAttempt, Subscription

from ..helpers import POLICY, add_card, make_customer, make_subscription

NOW = datetime(2026, 12, 1, 0, 5, tzinfo=timezone.utc)
PERIOD_END = datetime(2026, 12, 1, tzinfo=timezone.utc)


def customer_with_card(session, sandbox, *, number="4242424242424242", email="ada@example.com", **fields):
    fields.setdefault("region", "MA")
    fields.setdefault("postal_code", "01101")
    account, _ = make_customer(session, email=email, billing_email=f"billing+{email}", **fields)
    add_card(session, sandbox, account, number=number, default=True)
    sub = make_subscription(session, account, period_end=PERIOD_END)
    return account, sub


def test_a_due_subscription_gets_one_paid_invoice_and_moves_to_the_next_period(database, session, sandbox, seller):
    account, sub = customer_with_card(session, sandbox)
    stats = run_renewals(database, sandbox, seller, now=NOW, policy=POLICY)
    assert (stats.invoiced, stats.paid, stats.failed) == (1, 1, 0)
    session.expire_all()
    invoice = session.query(Invoice).one()
    assert invoice.status == "paid" and invoice.number == "INV-2026-000001"
    assert (invoice.subtotal_cents, invoice.tax_cents, invoice.total_cents) == (2000, 125, 2125)  # MA 6.25%
    assert invoice.amount_paid_cents == 2125 and invoice.payment_method_label == "Visa •••• 4242"
    assert invoice.processor_transaction_id.startswith("ch_sbx_")
    assert (invoice.period_start, invoice.period_end) == (PERIOD_END, datetime(2027, 1, 1, tzinfo=timezone.utc))
    sub = session.get(Subscription, sub.id)
    assert sub.status == "active" and sub.current_period_end == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert sandbox.count_charges() == 1
    assert session.query(OutboxMessage).filter_by(kind="invoice_issued", to_address="billing+ada@example.com").count() == 1


def test_running_twice_bills_nothing_more(database, session, sandbox, seller):
    customer_with_card(session, sandbox)
    run_renewals(database, sandbox, seller, now=NOW, policy=POLICY)
    again = run_renewals(database, sandbox, seller, now=NOW, policy=POLICY)
    assert again.invoiced == 0
    assert session.query(Invoice).count() == 1 and sandbox.count_charges() == 1


def test_a_declined_renewal_leaves_the_invoice_open_and_the_subscription_past_due(database, session, sandbox, seller):
    account, sub = customer_with_card(session, sandbox, number="4000000000000341")
    stats = run_renewals(database, sandbox, seller, now=NOW, policy=POLICY)
    assert stats.failed == 1
    session.expire_all()
    invoice = session.query(Invoice).one()
    assert invoice.status == "open" and invoice.amount_due_cents == 2125
    assert session.get(Subscription, sub.id).status == "past_due"
    attempt = session.query(PaymentAttempt).one()
    assert (attempt.status, attempt.failure_code) == ("failed", "card_declined")


def test_without_a_default_card_the_invoice_stays_open_and_the_subscription_is_past_due(database, session, sandbox,
                                                                                       seller):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    sub = make_subscription(session, account, period_end=PERIOD_END)
    stats = run_renewals(database, sandbox, seller, now=NOW, policy=POLICY)
    assert stats.no_card == 1
    session.expire_all()
    assert session.query(Invoice).one().status == "open"
    assert session.get(Subscription, sub.id).status == "past_due"
    attempt = session.query(PaymentAttempt).one()  # recorded, so the retry schedule and notices follow
    assert (attempt.status, attempt.failure_code, attempt.payment_method_id) == ("failed", "no_card", None)
    assert session.query(OutboxMessage).filter_by(kind="payment_failed").count() == 1


def test_credits_are_used_first_and_what_is_left_carries_over(database, session, sandbox, seller):
    account, sub = customer_with_card(session, sandbox, country="JP", region="", postal_code="100-0001")
    session.add(CreditEntry(account_id=account.id, amount_cents=3500, currency="USD", kind="grant", reason="goodwill"))
    session.commit()
    run_renewals(database, sandbox, seller, now=NOW, policy=POLICY)
    first = session.query(Invoice).one()
    assert (first.credit_applied_cents, first.total_cents, first.status) == (2000, 0, "paid")
    run_renewals(database, sandbox, seller, now=datetime(2027, 1, 1, 0, 5, tzinfo=timezone.utc), policy=POLICY)
    second = session.query(Invoice).order_by(Invoice.id.desc()).first()
    assert (second.credit_applied_cents, second.total_cents, second.amount_paid_cents) == (1500, 500, 500)
    assert sum(e.amount_cents for e in session.query(CreditEntry)) == 0
    assert sandbox.count_charges() == 1


def test_invoice_numbers_are_sequential_without_gaps(database, session, sandbox, seller):
    for i in range(5):
        customer_with_card(session, sandbox, email=f"c{i}@example.com")
    run_renewals(database, sandbox, seller, now=NOW, batch=2, policy=POLICY)
    numbers = sorted(i.number for i in session.query(Invoice))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 6)]


def test_a_subscription_months_behind_is_caught_up_one_invoice_per_period(database, session, sandbox, seller):
    customer_with_card(session, sandbox)
    run_renewals(database, sandbox, seller, now=datetime(2027, 3, 15, tzinfo=timezone.utc), policy=POLICY)
    periods = [i.period_start.month for i in session.query(Invoice).order_by(Invoice.period_start)]
    assert periods == [12, 1, 2, 3]


@pytest.mark.parametrize("start, interval, end", [
    (datetime(2026, 1, 31, tzinfo=timezone.utc), "month", datetime(2026, 2, 28, tzinfo=timezone.utc)),
    (datetime(2026, 12, 15, tzinfo=timezone.utc), "month", datetime(2027, 1, 15, tzinfo=timezone.utc)),
    (datetime(2028, 2, 29, tzinfo=timezone.utc), "year", datetime(2029, 2, 28, tzinfo=timezone.utc)),
])
def test_billing_intervals_clamp_to_the_end_of_shorter_months(start, interval, end):
    assert add_interval(start, interval) == end
