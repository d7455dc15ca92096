"""Cancels and scheduled plan changes at the period end under several real workers (``portal billing run
--now`` in separate processes, on PostgreSQL): each is honoured exactly once."""
from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from portal.models import Invoice, OutboxMessage, Plan, Subscription

from ..helpers import OWN_PROCESSES
from .test_renewal_workers import END, NOW, portal_env, seed_due

pytestmark = OWN_PROCESSES  # four worker processes: they run while no other test competes for the cores

COUNT = 120


def test_four_workers_end_each_canceled_subscription_once_and_bill_each_scheduled_plan_once(database, database_url,
                                                                                          session):
    if database.is_sqlite:
        pytest.skip("several workers are a PostgreSQL set-up; SQLite runs one")
    seed_due(session, COUNT)
    basic = Plan(code="basic-monthly", name="Basic", interval="month", price_cents=1000, currency="USD")
    session.add(basic)
    session.flush()
    subscriptions = session.query(Subscription).order_by(Subscription.id).all()
    for index, subscription in enumerate(subscriptions):
        if index % 3 == 0:
            subscription.cancel_at_period_end, subscription.cancel_reason = True, "unused"
            subscription.cancel_requested_at = END - timedelta(days=3)
        elif index % 3 == 1:
            subscription.scheduled_plan_id = basic.id
    session.commit()
    workers = [subprocess.Popen([sys.executable, "-m", "portal.cli", "billing", "run", "--now", NOW, "--batch", "10"],
                                env=portal_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    session.expire_all()
    subscriptions = session.query(Subscription).order_by(Subscription.id).all()
    ended = [s for i, s in enumerate(subscriptions) if i % 3 == 0]
    moved = [s for i, s in enumerate(subscriptions) if i % 3 == 1]
    assert all(s.status == "canceled" and s.canceled_at == END for s in ended)
    assert session.query(Invoice).filter(Invoice.subscription_id.in_([s.id for s in ended])).count() == 0
    assert session.query(OutboxMessage).filter_by(kind="subscription_ended").count() == len(ended)
    assert all(s.plan_id == basic.id and s.scheduled_plan_id is None for s in moved)
    billed = session.query(Invoice).filter(Invoice.subscription_id.in_([s.id for s in moved])).all()
    assert len(billed) == len(moved) and {i.subtotal_cents for i in billed} == {1000}
    assert session.query(Invoice).count() == COUNT - len(ended)
