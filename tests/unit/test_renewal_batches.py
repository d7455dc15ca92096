"""Renewals in batches: what a batch costs in SQL statements whatever its size, and what happens when one of
its periods was billed by someone else meanwhile."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import event, select

from portal.billing.subscriptions import renewals
from portal.billing.subscriptions.renewals import run_renewals
from portal.models import CreditEntry, Invoice, OutboxMessage, PaymentAttempt, Subscription

from ..helpers import POLICY, add_card, make_customer, make_plan, make_subscription

NOW = datetime(2026, 12, 1, 0, 5, tzinfo=timezone.utc)
PERIOD_END = datetime(2026, 12, 1, tzinfo=timezone.utc)
SANDBOX_TABLES = ("sandbox_",)  # the processor's own books: one charge is one request, whatever we batch


def due_customers(session, sandbox, count: int, *, start: int = 0) -> list[Subscription]:
    plan = make_plan(session)
    subscriptions = []
    for n in range(start, start + count):
        account, _ = make_customer(session, email=f"user{n}@example.com", billing_email=f"billing{n}@example.com",
                                   region="MA", postal_code="01101")
        add_card(session, sandbox, account, default=True)
        subscriptions.append(make_subscription(session, account, plan=plan, period_end=PERIOD_END))
    return subscriptions


def statements_of_one_pass(database, sandbox, seller, *, batch: int) -> dict[str, int]:
    """The pass's SQL statements: the portal's reads and updates, its inserts, and the sandbox's."""
    counts = {"portal": 0, "inserts": 0, "sandbox": 0}

    def count(conn, cursor, statement, parameters, context, executemany):
        text = " ".join(statement.split()).lower()
        if any(f" {table}" in text for table in SANDBOX_TABLES):
            counts["sandbox"] += 1
        elif text.startswith("insert"):
            counts["inserts"] += 1
        else:
            counts["portal"] += 1

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        stats = run_renewals(database, sandbox, seller, now=NOW, policy=POLICY, batch=batch)
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    assert (stats.invoiced, stats.paid) == (batch, batch)
    return counts


def test_a_batch_reads_and_updates_with_the_same_statements_for_4_invoices_as_for_16(database, session, sandbox,
                                                                                     seller):
    due_customers(session, sandbox, 1)
    statements_of_one_pass(database, sandbox, seller, batch=1)  # the year's first invoice makes its counter row
    due_customers(session, sandbox, 4, start=1)
    small = statements_of_one_pass(database, sandbox, seller, batch=4)
    due_customers(session, sandbox, 16, start=5)
    large = statements_of_one_pass(database, sandbox, seller, batch=16)
    # Everything but the rows written takes a fixed number of statements per batch, not per invoice.
    assert large["portal"] == small["portal"], (small, large)
    # The rows: an invoice, its line and tax line, its payment attempt, two e-mails and two webhook events
    # (issued, paid). PostgreSQL sends a batch's rows of one table in one statement; SQLite one row each.
    assert large["inserts"] <= 8 * 16, large
    # The sandbox processor answers each charge on its own: a request of ours is one charge, not a batch.
    assert large["sandbox"] <= 5 * 16, large
    session.expire_all()
    numbers = sorted(int(i.number.rsplit("-", 1)[1]) for i in session.query(Invoice))
    assert numbers == list(range(1, 22))  # one UPDATE per batch, and still every number once, in order
    assert session.query(OutboxMessage).filter_by(kind="invoice_issued").count() == 21
    assert session.query(OutboxMessage).filter_by(kind="payment_received").count() == 21
    received = session.query(OutboxMessage).filter_by(kind="payment_received", to_address="billing7@example.com").one()
    assert "Hello," in received.text_body  # a billing inbox, not a user's address: nobody to greet by name


def test_a_period_another_worker_billed_meanwhile_is_skipped_and_the_rest_of_the_batch_still_bills(
        database, session, sandbox, seller, monkeypatch):
    subscriptions = due_customers(session, sandbox, 4)
    taken = subscriptions[1]
    # Another process issued one period after our claim read it as due (two claims that overlapped): the
    # claim is made to overlap by leaving out its "not invoiced yet" condition, so only the unique
    # (subscription, period start) constraint stands between the batch and a second invoice.
    session.add(Invoice(account_id=taken.account_id, subscription_id=taken.id, currency="USD",
                        period_start=PERIOD_END, period_end=datetime(2027, 1, 1, tzinfo=timezone.utc),
                        status="draft", created_at=NOW))
    session.commit()
    monkeypatch.setattr(renewals, "_due_query", lambda now, only=None: (
        select(Subscription.id).where(Subscription.status == "active", Subscription.current_period_end <= now)
        .order_by(Subscription.id)))
    stats = run_renewals(database, sandbox, seller, now=NOW, policy=POLICY, batch=4)
    assert (stats.invoiced, stats.paid) == (3, 3) and stats.skipped >= 1
    session.expire_all()
    ours = session.query(Invoice).filter(Invoice.status != "draft").all()
    assert sorted(i.subscription_id for i in ours) == sorted(s.id for s in subscriptions if s.id != taken.id)
    assert sorted(i.number for i in ours) == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]  # no gap
    assert session.query(PaymentAttempt).count() == 3 and sandbox.count_charges() == 3


def test_two_subscriptions_of_one_account_in_a_batch_use_its_credit_once(database, session, sandbox, seller):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_card(session, sandbox, account, default=True)
    plan = make_plan(session)
    make_subscription(session, account, plan=plan, period_end=PERIOD_END)
    make_subscription(session, account, plan=plan, period_end=PERIOD_END)
    session.add(CreditEntry(account_id=account.id, amount_cents=3000, currency="USD", kind="grant", reason="goodwill"))
    session.commit()
    stats = run_renewals(database, sandbox, seller, now=NOW, policy=POLICY, batch=10)
    assert stats.invoiced == 2
    session.expire_all()
    used = sorted(i.credit_applied_cents for i in session.query(Invoice))
    assert used == [1000, 2000]  # the first takes its whole $20.00, the second the $10.00 left
    balance = sum(e.amount_cents for e in session.query(CreditEntry).filter_by(account_id=account.id))
    assert balance == 0
