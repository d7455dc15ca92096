"""The backup method: tried once, in the same pass, when a renewal or retry charge on the default is declined."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from portal.billing.collecting import collection
from portal.billing.subscriptions.renewals import run_renewals
from portal.models import Invoice, OutboxMessage, PaymentAttempt, Subscription

from ..helpers import POLICY, add_sandbox_method, make_customer, make_subscription

DAY0 = datetime(2026, 12, 1, 1, tzinfo=timezone.utc)


def customer(session, *, default_charge, backup_charge=None):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    default = add_sandbox_method(session, account, type="card", charge=default_charge, default=True, last4="0341")
    backup = None
    if backup_charge is not None:
        backup = add_sandbox_method(session, account, type="card", charge=backup_charge, backup=True, last4="4242")
    sub = make_subscription(session, account, period_end=datetime(2026, 12, 1, tzinfo=timezone.utc))
    return account, sub, default, backup


def attempts(session):
    session.expire_all()
    return [(a.trigger, a.status, a.payment_method_label)
            for a in session.query(PaymentAttempt).order_by(PaymentAttempt.attempt_number)]


def mails(session):
    return [m.kind for m in session.query(OutboxMessage).order_by(OutboxMessage.id)]


def test_a_declined_renewal_is_paid_by_the_backup_in_the_same_pass_and_says_so(database, session, sandbox, seller):
    account, sub, default, backup = customer(session, default_charge="card_declined", backup_charge="ok")
    stats = run_renewals(database, sandbox, seller, now=DAY0, policy=POLICY)
    assert stats.paid == 1 and stats.failed == 0
    assert attempts(session) == [("renewal", "failed", "Visa •••• 0341"), ("backup", "succeeded", "Visa •••• 4242")]
    keys = [a.idempotency_key for a in session.query(PaymentAttempt).order_by(PaymentAttempt.attempt_number)]
    assert len(set(keys)) == 2
    invoice = session.query(Invoice).one()
    assert invoice.status == "paid" and invoice.payment_method_label == "Visa •••• 4242"
    assert session.get(Subscription, sub.id).status == "active"
    assert mails(session) == ["invoice_issued", "payment_received"]  # no failure notice: it was paid
    receipt = session.query(OutboxMessage).filter_by(kind="payment_received").one()
    assert ("Visa •••• 0341 was declined, so we charged your backup payment method, Visa •••• 4242."
            in receipt.text_body)
    assert sandbox.count_charges() == 1 and sandbox.count_charges(status="failed") == 1


def test_without_a_backup_a_decline_is_a_failed_payment_as_before(database, session, sandbox, seller):
    account, sub, default, _ = customer(session, default_charge="card_declined")
    run_renewals(database, sandbox, seller, now=DAY0, policy=POLICY)
    assert attempts(session) == [("renewal", "failed", "Visa •••• 0341")]
    assert session.get(Subscription, sub.id).status == "past_due"
    assert mails(session) == ["invoice_issued", "payment_failed"]


def test_a_charge_that_needs_the_customer_does_not_try_the_backup(database, session, sandbox, seller):
    customer(session, default_charge="authentication_required", backup_charge="ok")
    run_renewals(database, sandbox, seller, now=DAY0, policy=POLICY)
    assert attempts(session) == [("renewal", "requires_action", "Visa •••• 0341")]
    assert sandbox.count_charges() == 0
    assert mails(session) == ["invoice_issued", "payment_action_required"]


def test_the_backup_is_tried_once_per_declined_charge_and_then_the_failure_counts(database, session, sandbox,
                                                                                  seller):
    account, sub, _, _ = customer(session, default_charge="card_declined", backup_charge="insufficient_funds")
    run_renewals(database, sandbox, seller, now=DAY0, policy=POLICY)
    # The same pass's retry step finds nothing due: the decline scheduled the first retry for day 3.
    assert collection.run_retries(database, sandbox, now=DAY0, policy=POLICY)["retried"] == 0
    assert attempts(session) == [("renewal", "failed", "Visa •••• 0341"), ("backup", "failed", "Visa •••• 4242")]
    invoice = session.query(Invoice).one()
    assert invoice.next_retry_at == DAY0 + timedelta(days=3)
    assert session.get(Subscription, sub.id).status == "past_due"
    assert mails(session) == ["invoice_issued", "payment_failed"]
    # Asking again (a re-run, a settle pass) changes nothing: the outcomes are recorded.
    assert collection.settle_pending_attempts(database, sandbox, now=DAY0 + timedelta(hours=1), policy=POLICY) == 0

    # The retry on day 3: the default first, the backup once more after its decline, then the schedule.
    collection.run_retries(database, sandbox, now=DAY0 + timedelta(days=3), policy=POLICY)
    assert [t for t, _, _ in attempts(session)] == ["renewal", "backup", "retry", "backup"]
    session.expire_all()
    assert session.query(Invoice).one().next_retry_at == DAY0 + timedelta(days=7)
    assert mails(session) == ["invoice_issued", "payment_failed", "payment_failed"]


def test_a_customers_own_retry_payment_does_not_try_the_backup(database, session, sandbox, seller):
    account, _, _, _ = customer(session, default_charge="card_declined", backup_charge="card_declined")
    run_renewals(database, sandbox, seller, now=DAY0, policy=POLICY)
    collection.retry_now(database, sandbox, account.id, now=DAY0 + timedelta(hours=2), policy=POLICY)
    assert [t for t, _, _ in attempts(session)] == ["renewal", "backup", "customer"]


class Crash(Exception):
    """The worker dies after the processor charged the backup, before our commit."""


class CrashingAfterBackupCharge:
    def __init__(self, sandbox):
        self.sandbox = sandbox

    def __getattr__(self, name):
        return getattr(self.sandbox, name)

    def charge(self, **request):
        result = self.sandbox.charge(**request)
        if request["payment_method_id"] == self.backup_id:
            raise Crash()
        return result


def test_a_crash_after_the_backups_attempt_is_written_settles_by_asking_again_with_the_same_key(
        database, session, sandbox, seller):
    account, sub, _, backup = customer(session, default_charge="card_declined", backup_charge="ok")
    crashing = CrashingAfterBackupCharge(sandbox)
    crashing.backup_id = backup.processor_id
    with pytest.raises(Crash):
        run_renewals(database, crashing, seller, now=DAY0, policy=POLICY)
    assert attempts(session) == [("renewal", "failed", "Visa •••• 0341"), ("backup", "pending", "Visa •••• 4242")]
    assert session.get(Subscription, sub.id).status == "active"  # the decline does not count yet

    settled = collection.settle_pending_attempts(database, sandbox, now=DAY0 + timedelta(minutes=10), policy=POLICY)
    assert settled == 1
    assert attempts(session)[-1] == ("backup", "succeeded", "Visa •••• 4242")
    assert session.query(Invoice).one().status == "paid"
    assert sandbox.count_charges() == 1  # asked again with the same key: charged once
