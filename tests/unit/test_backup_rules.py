"""The backup method's rules (one per account, never the default, never a method still being verified, cleared
when it becomes the default or is deleted) and what the customer reads when it was tried: the invoice's
details and the receipt when it paid, the failed-payment notice and the banner when it did not."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from portal.audit import Actor
from portal.billing.invoice_details import invoice_details
from portal.billing.overview import payment_problem
from portal.billing.payment_methods import backup, cards
from portal.billing.subscriptions.renewals import run_renewals
from portal.errors import CardInUse
from portal.models import AuditEvent, Invoice, OutboxMessage, PaymentMethod

from ..helpers import POLICY, add_sandbox_method, make_customer, make_subscription

DAY0 = datetime(2026, 12, 1, 1, tzinfo=timezone.utc)
NOW = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
WHO = Actor.system()


@pytest.fixture
def account(session):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    return account


def card(session, account, last4, **kwargs):
    return add_sandbox_method(session, account, type="card", last4=last4, **kwargs)


def marked(session, account):
    session.expire_all()
    return [m.last4 for m in session.query(PaymentMethod).filter_by(account_id=account.id, is_backup=True)]


def test_one_backup_per_account_the_new_one_replaces_the_old(session, account):
    card(session, account, "0341", default=True)
    first, second = card(session, account, "4444"), card(session, account, "0005")
    backup.set_backup_method(session, account.id, first.id, actor=WHO, now=NOW)
    backup.set_backup_method(session, account.id, second.id, actor=WHO, now=NOW)
    assert marked(session, account) == ["0005"]
    event = session.query(AuditEvent).filter_by(action="payment_method.backup_set").order_by(AuditEvent.id.desc()).first()
    assert event.details["previous"] == "Visa •••• 4444"


def test_the_database_refuses_a_second_backup_even_if_a_bug_writes_one(session, account):
    card(session, account, "4444", backup=True)
    with pytest.raises(IntegrityError):
        card(session, account, "0005", backup=True)
    session.rollback()


def test_the_default_cannot_be_marked_and_nothing_changes(session, account):
    default = card(session, account, "0341", default=True)
    with pytest.raises(CardInUse, match="is your default payment method, so it can't also be the backup"):
        backup.set_backup_method(session, account.id, default.id, actor=WHO, now=NOW)
    assert marked(session, account) == []


def test_a_bank_account_still_being_verified_cannot_be_marked(session, account):
    pending = add_sandbox_method(session, account, type="us_bank_account", verification="pending")
    with pytest.raises(CardInUse, match="waiting for its verification"):
        backup.set_backup_method(session, account.id, pending.id, actor=WHO, now=NOW)
    assert marked(session, account) == []


def test_a_verified_bank_account_can_be_the_backup(session, account):
    card(session, account, "0341", default=True)
    bank = add_sandbox_method(session, account, type="sepa_debit")
    assert backup.set_backup_method(session, account.id, bank.id, actor=WHO, now=NOW).is_backup
    assert marked(session, account) == ["3000"]


def test_making_the_backup_the_default_clears_its_mark(session, sandbox, account):
    card(session, account, "0341", default=True)
    other = card(session, account, "4444", backup=True)
    cards.set_default_card(session, sandbox, account.id, other.id, actor=WHO, now=NOW)
    assert marked(session, account) == []
    assert session.get(PaymentMethod, other.id).is_default


def test_deleting_the_backup_clears_its_mark(session, sandbox, account):
    card(session, account, "0341", default=True)
    other = card(session, account, "4444", backup=True)
    cards.delete_card(session, sandbox, account.id, other.id, actor=WHO, now=NOW)
    assert marked(session, account) == [] and session.get(PaymentMethod, other.id).detached_at == NOW


def test_clearing_is_audited_and_clearing_twice_changes_nothing(session, account):
    other = card(session, account, "4444", backup=True)
    backup.clear_backup_method(session, account.id, other.id, actor=WHO, now=NOW)
    backup.clear_backup_method(session, account.id, other.id, actor=WHO, now=NOW)
    assert marked(session, account) == []
    assert session.query(AuditEvent).filter_by(action="payment_method.backup_cleared").count() == 1


# --- what the customer reads -------------------------------------------------------------------

def renew(database, session, sandbox, seller, account, *, default_charge, backup_charge):
    card(session, account, "0341", charge=default_charge, default=True)
    card(session, account, "4444", charge=backup_charge, backup=True)
    sub = make_subscription(session, account, period_end=datetime(2026, 12, 1, tzinfo=timezone.utc))
    run_renewals(database, sandbox, seller, now=DAY0, policy=POLICY)
    session.expire_all()
    return sub, session.query(Invoice).one()


def test_when_the_backup_paid_the_invoice_details_name_it_and_the_declined_default(database, session, sandbox,
                                                                                   seller, account):
    _, invoice = renew(database, session, sandbox, seller, account, default_charge="card_declined",
                       backup_charge="ok")
    details = invoice_details(session, account.id, invoice.id)
    assert details.paid_with == "Paid with Visa •••• 4444 (your backup method) after Visa •••• 0341 was declined"


def test_an_invoice_the_default_paid_just_says_paid_with_it(database, session, sandbox, seller, account):
    _, invoice = renew(database, session, sandbox, seller, account, default_charge="ok", backup_charge="ok")
    assert invoice_details(session, account.id, invoice.id).paid_with == "Paid with Visa •••• 0341"
    assert sandbox.count_charges() == 1


def test_when_neither_paid_the_notice_and_the_banner_say_the_backup_was_tried_too(database, session, sandbox,
                                                                                   seller, account):
    sub, invoice = renew(database, session, sandbox, seller, account, default_charge="card_declined",
                         backup_charge="insufficient_funds")
    notice = session.query(OutboxMessage).filter_by(kind="payment_failed").one()
    sentence = ("We also tried your backup payment method, Visa •••• 4444, and it did not go through either: "
                "the card has insufficient funds.")
    assert sentence in notice.text_body and sentence in notice.html_body
    assert "your bank declined the charge" in notice.text_body  # the default's own reason comes first
    problem = payment_problem(session, account.id, "past_due")
    assert problem.backup_tried == "Visa •••• 4444"


def test_without_a_backup_the_notice_says_nothing_of_one(database, session, sandbox, seller, account):
    card(session, account, "0341", charge="card_declined", default=True)
    make_subscription(session, account, period_end=datetime(2026, 12, 1, tzinfo=timezone.utc))
    run_renewals(database, sandbox, seller, now=DAY0, policy=POLICY)
    notice = session.query(OutboxMessage).filter_by(kind="payment_failed").one()
    assert "backup" not in notice.text_body
    assert payment_problem(session, account.id, "past_due").backup_tried is None
