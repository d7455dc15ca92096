"""The renewal engine under real concurrency and real crashes, in separate operating-system processes."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from portal.perf.seed import add_account, add_sandbox_card
from portal.models import Invoice, PaymentAttempt, Plan, Subscription
from portal.payments.sandbox import SandboxGateway

from ..helpers import OWN_PROCESSES, password_hash

pytestmark = OWN_PROCESSES

END = datetime(2026, 12, 1, tzinfo=timezone.utc)
NOW = "2026-12-01T01:00:00+00:00"


def seed_due(session, count: int) -> None:
    plan = Plan(code="pro-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
    session.add(plan)
    for i in range(count):
        account = add_account(session, f"Customer {i}", f"c{i}@example.com", password_hash())
        add_sandbox_card(session, account, 0, default=True)
        session.add(Subscription(account_id=account.id, plan=plan, status="active",
                                 current_period_start=END - timedelta(days=30), current_period_end=END))
    session.commit()


def portal_env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PORTAL_"))}
    env.update(PORTAL_DATABASE_URL=database_url, PORTAL_SECRET_KEY="worker-test-" + "k" * 32)
    return env


def test_four_workers_on_postgresql_issue_exactly_one_invoice_and_one_charge_per_subscription(database, database_url,
                                                                                            session):
    if database.is_sqlite:
        pytest.skip("several workers are a PostgreSQL set-up; SQLite runs one")
    seed_due(session, 500)
    workers = [subprocess.Popen([sys.executable, "-m", "portal.cli", "billing", "run", "--now", NOW, "--batch", "20"],
                                env=portal_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    invoiced = [int(out.split(": ", 1)[1].split(" invoiced")[0]) for out, _ in outputs]
    assert sum(invoiced) == 500
    assert sum(1 for n in invoiced if n) >= 2, f"the work was not shared between workers: {invoiced}"
    session.expire_all()
    assert session.query(Invoice).count() == 500
    assert session.query(PaymentAttempt).count() == 500
    assert session.query(Invoice).filter_by(status="paid").count() == 500
    assert SandboxGateway(database).count_charges(status=None) == 500
    numbers = sorted(int(i.number.rsplit("-", 1)[1]) for i in session.query(Invoice))
    assert numbers == list(range(1, 501))


CRASH_AFTER_CHARGE = textwrap.dedent("""
    import os
    from datetime import datetime
    from portal.billing.collecting import collection
    from portal.cli import _services
    from portal.billing.subscriptions.renewals import run_renewals

    def crash(*args, **kwargs):
        os._exit(9)  # the processor has charged; our commit never happens

    collection.record_outcome = crash
    collection.record_outcomes = crash  # a renewal batch records its charges' outcomes together
    from portal.billing.collecting.dunning import RetryPolicy

    settings, database, gateway, seller = _services()
    run_renewals(database, gateway, seller, now=datetime.fromisoformat("{now}"), policy=RetryPolicy())
""")


def test_a_run_killed_between_the_charge_and_the_commit_is_finished_by_the_next_run_without_charging_again(
        database, database_url, session):
    seed_due(session, 1)
    env = portal_env(database_url)
    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_CHARGE.format(now=NOW)], env=env, capture_output=True,
                             text=True, timeout=120)
    assert crashed.returncode == 9, crashed.stderr
    sandbox = SandboxGateway(database)
    assert sandbox.count_charges() == 1
    session.expire_all()
    attempt = session.query(PaymentAttempt).one()
    assert attempt.status == "pending"  # we don't know what happened yet
    assert session.query(Invoice).one().status == "open"

    later = "2026-12-01T01:10:00+00:00"  # past the settle-after delay, so the attempt is not in flight
    rerun = subprocess.run([sys.executable, "-m", "portal.cli", "billing", "run", "--now", later], env=env,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 earlier attempts settled" in rerun.stdout
    session.expire_all()
    assert session.query(Invoice).one().status == "paid"
    assert session.query(PaymentAttempt).one().status == "succeeded"
    assert session.query(Invoice).count() == 1
    assert sandbox.count_charges() == 1


def test_a_second_worker_on_sqlite_fails_safe_and_bills_nothing_twice(database, database_url, session):
    if not database.is_sqlite:
        pytest.skip("the SQLite set-up: one worker, and a second must not do harm")
    seed_due(session, 30)
    workers = [subprocess.Popen([sys.executable, "-m", "portal.cli", "billing", "run", "--now", NOW, "--batch", "5"],
                                env=portal_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    session.expire_all()
    # Whether the second one waited its turn or gave up on the lock, nothing is doubled and nothing lost.
    assert session.query(Invoice).count() == 30
    assert session.query(PaymentAttempt).count() == 30
    assert SandboxGateway(database).count_charges(status=None) == 30
    assert any(w.returncode == 0 for w in workers), outputs
