"""Webhook events: every billing path writes the events of its change, once, stamped with its own clock, in
the same transaction (a rolled-back change leaves none), with a delivery for each endpoint that wants them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portal.audit import Actor
from portal.billing.collecting import collection, events, invoice_actions, refunds
from portal.billing.collecting.checkout import start_checkout
from portal.billing.subscriptions.renewals import run_renewals
from portal.models import Account, Invoice, Subscription, WebhookDelivery, WebhookEvent
from portal.notifications.webhook_endpoints import create_endpoint, delete_endpoint

from ..helpers import POLICY, add_card, make_customer, make_invoice, make_staff, make_subscription

DAY0 = datetime(2030, 12, 1, tzinfo=timezone.utc)
DECLINES = "4000000000000341"


def on(day: float) -> datetime:
    return DAY0 + timedelta(days=day, hours=1)


def worker_pass(database, sandbox, seller, now):
    run_renewals(database, sandbox, seller, now=now, policy=POLICY)
    collection.run_retries(database, sandbox, now=now, policy=POLICY)


class Log:
    """The events written since the last look, as (type, created, the interesting part of the object)."""

    def __init__(self, session):
        self.session, self.seen = session, 0

    def new(self) -> list[tuple[str, datetime, object]]:
        self.session.expire_all()
        rows = self.session.scalars(select(WebhookEvent).where(WebhookEvent.id > self.seen)
                                    .order_by(WebhookEvent.id)).all()
        self.seen = rows[-1].id if rows else self.seen
        return [(row.type, row.created_at, _gist(row.payload)) for row in rows]


def _gist(payload: dict):
    return {"subscription": payload.get("status"), "invoice": payload.get("status"),
            "entitlements": payload.get("paid_access"), "refund": payload.get("amount")}[payload["object"]]


@pytest.fixture
def endpoint(session):
    return create_endpoint(session, url="https://product.example/hooks", event_types=None, now=DAY0).endpoint


@pytest.fixture
def customer(session, sandbox):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    account.external_id = "acct-42"
    session.commit()
    return account


def test_a_failed_renewal_its_retries_suspension_and_retry_payment_each_write_their_events_once(
        database, session, sandbox, seller, customer, endpoint):
    add_card(session, sandbox, customer, number=DECLINES, default=True)
    sub = make_subscription(session, customer, period_end=DAY0)
    log = Log(session)
    assert [(t, gist) for t, _, gist in log.new()] == [("subscription.created", "active"),
                                                        ("entitlements.updated", True)]

    worker_pass(database, sandbox, seller, on(0))  # the renewal is declined
    assert sorted(log.new()) == sorted([("invoice.issued", on(0), "open"), ("invoice.payment_failed", on(0), "open"),
                                        ("subscription.updated", on(0), "past_due"),
                                        ("entitlements.updated", on(0), False)])
    worker_pass(database, sandbox, seller, on(1))  # nothing is due
    assert log.new() == []
    worker_pass(database, sandbox, seller, on(3))  # first retry, declined: still past due, no flip
    assert log.new() == [("invoice.payment_failed", on(3), "open")]
    worker_pass(database, sandbox, seller, on(7))  # last retry, declined: suspended
    assert sorted(log.new()) == [("invoice.payment_failed", on(7), "open"),
                                 ("subscription.updated", on(7), "suspended")]

    add_card(session, sandbox, customer, number="4242424242424242", default=True)
    collection.retry_now(database, sandbox, customer.id, now=on(21), policy=POLICY)
    assert sorted(log.new()) == [("entitlements.updated", on(21), True), ("invoice.paid", on(21), "paid"),
                                 ("subscription.updated", on(21), "active")]

    # Each event carries the object as the API shows it, and has one delivery to the endpoint.
    paid = session.scalars(select(WebhookEvent).where(WebhookEvent.type == "invoice.paid")).one()
    invoice = session.scalars(select(Invoice)).one()
    assert paid.public_id.startswith("evt_") and paid.account_id == customer.id
    assert paid.payload["id"] == f"inv_{invoice.id}" and paid.payload["number"] == invoice.number
    assert paid.payload["account"] == "acct-42" and paid.payload["amount_paid"] == invoice.total_cents
    assert paid.payload["pdf_url"] == f"/billing/invoices/{invoice.id}.pdf"
    suspended = session.scalars(select(WebhookEvent).where(WebhookEvent.type == "subscription.updated")
                                .order_by(WebhookEvent.id)).all()[1]
    assert suspended.payload["id"] == f"sub_{sub.id}" and suspended.payload["plan"] == "pro-monthly"
    all_events = session.scalars(select(WebhookEvent)).all()
    assert len({e.public_id for e in all_events}) == len(all_events)
    deliveries = session.scalars(select(WebhookDelivery)).all()
    assert sorted(d.event_id for d in deliveries) == sorted(e.id for e in all_events)
    assert {(d.endpoint_id, d.status) for d in deliveries} == {(endpoint.id, "pending")}


def test_a_paid_renewal_writes_issued_and_paid_and_no_subscription_change(database, session, sandbox, seller,
                                                                           customer):
    add_card(session, sandbox, customer, default=True)
    make_subscription(session, customer, period_end=DAY0)
    log = Log(session)
    log.new()
    worker_pass(database, sandbox, seller, on(0))
    assert log.new() == [("invoice.issued", on(0), "open"), ("invoice.paid", on(0), "paid")]
    worker_pass(database, sandbox, seller, on(0))  # run again: nothing new happened, nothing new is told
    assert log.new() == []


def test_staff_voiding_the_invoice_that_made_a_subscription_past_due_tells_void_and_restored_access(
        database, session, sandbox, customer):
    sub = make_subscription(session, customer, status="past_due")
    invoice = make_invoice(session, customer, subscription=sub, period_start=sub.current_period_end)
    log = Log(session)
    log.new()
    actor = Actor(user_id=make_staff(session).id, ip="10.0.0.1")
    invoice_actions.void_invoice(database, sandbox, customer.id, invoice.id, reason="Billed by mistake",
                                 actor=actor, now=on(2))
    assert sorted(log.new()) == [("entitlements.updated", on(2), True), ("invoice.voided", on(2), "void"),
                                 ("subscription.updated", on(2), "active")]


def test_a_refund_writes_refund_created_with_its_amount(database, session, sandbox, customer):
    add_card(session, sandbox, customer, default=True)
    invoice = make_invoice(session, customer)
    log = Log(session)
    assert log.new() == [("invoice.issued", invoice.issued_at, "open")]
    attempt = collection.open_attempt(session, invoice, trigger="renewal", now=on(0))
    session.commit()
    collection.execute_attempt(database, sandbox, attempt.id, now=on(0), policy=POLICY)
    assert log.new() == [("invoice.paid", on(0), "paid")]
    refunds.refund_invoice(database, sandbox, customer.id, invoice.id, amount_cents=500, reason="Goodwill",
                           destination="card", actor=Actor.system(), now=on(1), request_key=None)
    assert log.new() == [("refund.created", on(1), 500)]
    event = session.scalars(select(WebhookEvent).where(WebhookEvent.type == "refund.created")).one()
    assert event.payload["invoice"] == invoice.number and event.payload["account"] == "acct-42"


def test_pay_now_paid_through_the_processors_event_restores_a_past_due_subscription_once(
        database, session, sandbox, customer):
    sub = make_subscription(session, customer, status="past_due")
    invoice = make_invoice(session, customer, subscription=sub, period_start=sub.current_period_end)
    log = Log(session)
    log.new()
    url = start_checkout(session, sandbox, customer.id, invoice.id, success_url="https://portal.example/ok",
                         cancel_url="https://portal.example/no", now=on(1))
    sandbox.pay_checkout_session(url.rsplit("/", 1)[-1], method="card", outcome="success")
    events.deliver_sandbox_events(database, sandbox, now=on(1), policy=POLICY)
    events.deliver_sandbox_events(database, sandbox, now=on(2), policy=POLICY)  # nothing left to apply twice
    assert sorted(log.new()) == [("entitlements.updated", on(1), True), ("invoice.paid", on(1), "paid"),
                                 ("subscription.updated", on(1), "active")]


def test_a_change_that_is_rolled_back_leaves_no_event(session, customer):
    sub = make_subscription(session, customer)
    log = Log(session)
    log.new()
    sub.status = "canceled"
    sub.canceled_at = on(0)
    session.flush()  # the listener wrote its events into this transaction...
    assert session.scalar(select(WebhookEvent.type).where(WebhookEvent.type == "subscription.updated"))
    session.rollback()  # ...and they go with it
    assert log.new() == []


def test_cancel_at_period_end_and_plan_changes_are_subscription_updates_stamped_by_the_service_clock(
        session, customer):
    from ..helpers import make_plan

    sub = make_subscription(session, customer)
    log = Log(session)
    log.new()
    annual = make_plan(session, code="pro-annual", interval="year", price_cents=20000)
    session.info["now"] = on(4)  # a change that writes no stamp of its own says when it happens
    sub.cancel_at_period_end = True
    session.commit()
    assert "now" not in session.info  # for that transaction only
    session.info["now"] = on(5)
    sub.plan = annual
    session.commit()
    updates = log.new()
    assert [(t, created) for t, created, _ in updates] == [("subscription.updated", on(4)),
                                                           ("subscription.updated", on(5)),
                                                           ("entitlements.updated", on(5))]
    rows = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    assert rows[-3].payload["cancel_at_period_end"] is True
    assert rows[-3].payload["cancel_at"] == rows[-3].payload["current_period_end"] is not None
    assert rows[-2].payload["plan"] == "pro-annual"
    assert rows[-1].payload["plan"] == "pro-annual" and rows[-1].payload["paid_access"] is True


def test_a_new_subscription_given_only_a_plan_id_names_its_plan(session, customer):
    from ..helpers import make_plan

    plan = make_plan(session)
    session.add(Subscription(account_id=customer.id, plan_id=plan.id, status="active", created_at=on(0),
                             current_period_start=on(0), current_period_end=on(30)))
    session.commit()
    created = session.scalars(select(WebhookEvent).where(WebhookEvent.type == "subscription.created")).one()
    assert created.payload["plan"] == "pro-monthly" and created.created_at == on(0)


def test_endpoints_get_deliveries_only_for_the_types_they_chose_and_none_once_deleted(database, session, customer):
    paid_only = create_endpoint(session, url="http://product.example/paid", event_types=["invoice.paid"],
                                now=DAY0).endpoint
    everything = create_endpoint(session, url="http://product.example/all", event_types=[], now=DAY0).endpoint
    make_invoice(session, customer, status="paid")
    delete_endpoint(session, everything.id, now=on(0))
    make_invoice(session, customer, status="paid")
    session.expire_all()
    got = {}
    for delivery in session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)):
        got.setdefault(delivery.endpoint_id, []).append((delivery.event.type, delivery.status))
    assert got[paid_only.id] == [("invoice.paid", "pending"), ("invoice.paid", "pending")]
    # The deleted endpoint's undelivered events are given up; later events are not addressed to it at all.
    assert got[everything.id] == [("invoice.issued", "failed"), ("invoice.paid", "failed")]
    assert session.scalar(select(Account.external_id).where(Account.id == customer.id)) == "acct-42"


def test_a_subscription_update_says_what_the_changed_fields_were_before(session, customer):
    """A receiver tells an upgrade from a downgrade, or past due from suspended, from the event alone."""
    from portal.notifications.webhooks import event_document
    from ..helpers import make_plan

    sub = make_subscription(session, customer)
    old_plan = sub.plan.code
    annual = make_plan(session, code="pro-annual", interval="year", price_cents=20000)
    log = Log(session)
    log.new()
    sub.plan_id = annual.id  # as the services change it (an upgrade paid, a scheduled change taking effect)
    sub.cancel_at_period_end = True
    session.commit()
    sub.status = "past_due"
    session.commit()
    rows = session.scalars(select(WebhookEvent).where(WebhookEvent.type == "subscription.updated")
                           .order_by(WebhookEvent.id)).all()[-2:]
    plan_change, status_change = (event_document(row, base_url="https://billing.example.com")["data"]
                                  for row in rows)
    assert plan_change["previous_attributes"] == {"plan": old_plan, "cancel_at_period_end": False}
    assert plan_change["object"]["plan"] == "pro-annual" and "previous_attributes" not in plan_change["object"]
    assert status_change["previous_attributes"] == {"status": "active"}
