"""What the product's servers do through the API, at the service level: the plan catalogue (a new price
bills from the next period), accounts by their id with the page's own checks, users without passwords, and
subscriptions whose first invoice comes from the renewal engine — now, at a later start, or at trial end."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portal.audit import Actor
from portal.auth import sessions
from portal.auth.passwords import _DUMMY_HASH, verify_password
from portal.auth.users import add_customer_user
from portal.billing.customer.accounts import find_account, put_account
from portal.billing.customer.billing_info import validate_billing_info
from portal.billing.subscriptions import plans
from portal.billing.subscriptions.access import paid_access
from portal.billing.subscriptions.renewals import run_renewals
from portal.billing.subscriptions.starting import start_subscription
from portal.errors import EmailTaken, InvalidInput, NotFound, PlanExists, SubscriptionExists
from portal.models import Account, AuditEvent, Invoice, InvoiceLine, PaymentAttempt, Subscription, User

from ..helpers import POLICY, add_card, make_plan, run_concurrently

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)
API = Actor.for_api_key("backend")
ADDRESS = {"address_line1": "1 Main St", "city": "Springfield", "postal_code": "01101", "region": "MA", "country": "US"}


def new_account(session, external_id="acme", **values):
    values = {"name": "Acme", "billing_email": "billing@acme.example", **ADDRESS, **values}
    return put_account(session, external_id, values, currency=None, actor=API, now=NOW).account


def start(session, database, sandbox, seller, account, **options):
    options.setdefault("plan_code", "pro-monthly")
    return start_subscription(session, database, sandbox, seller, account.id, actor=API, now=NOW, policy=POLICY,
                              **options)


# --- plans ---------------------------------------------------------------------------------------

def test_a_new_price_bills_from_the_next_period_and_the_issued_invoice_keeps_the_old_one(
        database, session, sandbox, seller):
    plans.create_plan(session, code="pro-monthly", name="Pro", interval="month", price_cents=2000, currency="USD",
                      actor=API, now=NOW)
    account = new_account(session)
    add_card(session, sandbox, account, default=True)
    first = start(session, database, sandbox, seller, account).subscription
    plans.update_plan(session, "pro-monthly", plans.PlanChanges(price_cents=3000), actor=API, now=NOW)
    session.expire_all()
    issued = session.scalar(select(Invoice).where(Invoice.subscription_id == first.id))
    assert (issued.subtotal_cents, issued.status) == (2000, "paid")
    run_renewals(database, sandbox, seller, now=NOW + timedelta(days=32), policy=POLICY)
    session.expire_all()
    subtotals = [(i.period_start.date(), i.subtotal_cents) for i in session.scalars(
        select(Invoice).where(Invoice.subscription_id == first.id).order_by(Invoice.id))]
    assert subtotals == [(date(2026, 12, 1), 2000), (date(2027, 1, 1), 3000)]
    assert [line.unit_amount_cents for line in session.scalars(
        select(InvoiceLine).where(InvoiceLine.invoice_id == issued.id))] == [2000]


def test_a_plan_code_is_unique_and_its_fields_are_checked(session):
    plans.create_plan(session, code="pro", name="Pro", interval="month", price_cents=2000, currency="USD",
                      actor=API, now=NOW)
    with pytest.raises(PlanExists):
        plans.create_plan(session, code="pro", name="Pro", interval="month", price_cents=1, currency="USD",
                          actor=API, now=NOW)
    with pytest.raises(InvalidInput) as refused:
        plans.create_plan(session, code="Pro Plan", name=" ", interval="week", price_cents=-5, currency="XYZ",
                          actor=API, now=NOW)
    assert set(refused.value.errors) == {"code", "name", "interval", "price", "currency"}
    with pytest.raises(NotFound):
        plans.update_plan(session, "nope", plans.PlanChanges(name="X"), actor=API, now=NOW)


def test_plan_changes_are_audited_with_the_api_keys_name(session):
    plans.create_plan(session, code="pro", name="Pro", interval="month", price_cents=2000, currency="USD",
                      actor=API, now=NOW)
    plans.update_plan(session, "pro", plans.PlanChanges(price_cents=2500, self_serve=False), actor=API, now=NOW)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "plan.updated"))
    assert event.details["api_key"] == "backend"
    assert event.details["before"]["price_cents"] == 2000 and event.details["after"]["price_cents"] == 2500


# --- accounts ------------------------------------------------------------------------------------

def test_putting_an_account_twice_creates_it_once_and_changes_nothing_the_second_time(session):
    account = new_account(session)
    again = put_account(session, "acme", {"name": "Acme", **ADDRESS}, currency="USD", actor=API, now=NOW)
    assert not again.created and again.account.id == account.id
    assert session.query(Account).count() == 1
    assert [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))] == \
        ["account.created", "billing_info.updated"]


def test_an_account_refuses_what_the_billing_details_page_refuses_with_the_same_messages(session):
    bad = {"name": "Acme", "billing_email": "not-an-address", **ADDRESS, "postal_code": "ABC", "vat_number": "123"}
    with pytest.raises(InvalidInput) as page:
        validate_billing_info(bad)
    with pytest.raises(InvalidInput) as api:
        put_account(session, "acme", bad, currency=None, actor=API, now=NOW)
    assert api.value.errors == page.value.errors
    assert {"billing_email", "postal_code", "vat_number"} <= set(api.value.errors)
    assert session.query(Account).count() == 0


def test_an_account_may_wait_for_its_address_but_a_given_one_is_checked_in_full(session):
    created = put_account(session, "acme", {"name": "Acme", "billing_email": "b@acme.example"}, currency="EUR",
                          actor=API, now=NOW)
    assert created.created and created.account.currency == "EUR" and created.account.address_line1 == ""
    with pytest.raises(InvalidInput) as refused:
        put_account(session, "acme", {"country": "US"}, currency=None, actor=API, now=NOW)
    assert {"address_line1", "city", "postal_code", "region"} <= set(refused.value.errors)
    with pytest.raises(InvalidInput) as vat_alone:
        put_account(session, "acme", {"vat_number": "IE6388047V"}, currency=None, actor=API, now=NOW)
    assert set(vat_alone.value.errors) == {"vat_number"}


def test_the_currency_is_fixed_once_the_account_is_billed(database, session, sandbox, seller):
    make_plan(session)
    account = new_account(session)
    assert put_account(session, "acme", {}, currency="EUR", actor=API, now=NOW).account.currency == "EUR"
    put_account(session, "acme", {}, currency="USD", actor=API, now=NOW)
    start(session, database, sandbox, seller, account, trial_days=14)
    with pytest.raises(InvalidInput) as refused:
        put_account(session, "acme", {}, currency="EUR", actor=API, now=NOW)
    assert "currency" in refused.value.errors


@pytest.mark.parametrize("external_id", ["nope", "", "a" * 101, "acme\x00", "../acme", "acme/users"])
def test_unknown_or_impossible_external_ids_are_not_found(session, external_id):
    new_account(session)
    with pytest.raises(NotFound):
        find_account(session, external_id)


# --- users ---------------------------------------------------------------------------------------

def test_a_user_added_by_email_has_no_password_and_no_password_logs_them_in(session):
    account = new_account(session)
    added = add_customer_user(session, account.id, "Ada@Acme.example", actor=API, now=NOW)
    assert added.created and added.user.password_hash == ""
    # The dummy hash's own password was the way in for an empty hash; nothing is now.
    for guess in ("not a real password", "", " ", "password"):
        assert sessions.authenticate(session, "Ada@Acme.example", guess) is None
        assert not verify_password("", guess)
    assert verify_password(_DUMMY_HASH, "not a real password")  # the dummy itself still works as a hash


def test_adding_the_same_user_again_finds_them_and_another_accounts_address_is_refused(session):
    account = new_account(session)
    other = new_account(session, "globex", name="Globex")
    first = add_customer_user(session, account.id, "ada@acme.example", actor=API, now=NOW)
    again = add_customer_user(session, account.id, "ada@acme.example", actor=API, now=NOW)
    assert not again.created and again.user.id == first.user.id
    with pytest.raises(EmailTaken):
        add_customer_user(session, other.id, "ada@acme.example", actor=API, now=NOW)
    with pytest.raises(InvalidInput) as refused:
        add_customer_user(session, account.id, "not an address", actor=API, now=NOW)
    assert list(refused.value.errors) == ["email"]
    assert session.query(User).count() == 1


# --- subscriptions -------------------------------------------------------------------------------

def test_starting_now_issues_and_charges_the_first_invoice_through_the_renewal_engine(
        database, session, sandbox, seller):
    make_plan(session)
    account = new_account(session)
    add_card(session, sandbox, account, default=True)
    started = start(session, database, sandbox, seller, account)
    assert started.invoiced
    sub = session.get(Subscription, started.subscription.id)
    assert sub.status == "active"
    assert (sub.current_period_start, sub.current_period_end) == (NOW.replace(microsecond=0),
                                                                  datetime(2027, 1, 1, 9, 30, tzinfo=timezone.utc))
    invoice = session.scalar(select(Invoice).where(Invoice.subscription_id == sub.id))
    assert invoice.status == "paid" and invoice.period_start == NOW
    attempts = session.scalars(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id)).all()
    assert [(a.trigger, a.status) for a in attempts] == [("renewal", "succeeded")]
    assert sandbox.count_charges() == 1
    # The worker's next pass finds nothing more to bill.
    assert run_renewals(database, sandbox, seller, now=NOW + timedelta(minutes=5), policy=POLICY).invoiced == 0


def test_starting_without_a_card_leaves_the_first_invoice_open_and_paid_access_off(database, session, sandbox, seller):
    make_plan(session)
    account = new_account(session)
    started = start(session, database, sandbox, seller, account)
    session.expire_all()
    assert session.get(Subscription, started.subscription.id).status == "past_due"
    assert paid_access(session, account.id).paid_access is False
    assert session.scalar(select(Invoice)).status == "open"


def test_a_trial_is_not_invoiced_until_it_ends_and_its_end_starts_the_first_period(database, session, sandbox, seller):
    make_plan(session)
    account = new_account(session)
    add_card(session, sandbox, account, default=True)
    started = start(session, database, sandbox, seller, account, trial_days=14)
    trial_end = NOW.replace(microsecond=0) + timedelta(days=14)
    assert not started.invoiced and started.subscription.trial_end == trial_end
    assert paid_access(session, account.id).paid_access is True
    assert run_renewals(database, sandbox, seller, now=trial_end - timedelta(minutes=1), policy=POLICY).invoiced == 0
    assert run_renewals(database, sandbox, seller, now=trial_end + timedelta(minutes=1), policy=POLICY).invoiced == 1
    session.expire_all()
    invoice = session.scalar(select(Invoice))
    assert (invoice.period_start, invoice.period_end, invoice.status) == (
        trial_end, datetime(2027, 1, 15, 9, 30, tzinfo=timezone.utc), "paid")
    sub = session.get(Subscription, started.subscription.id)
    assert (sub.current_period_start, sub.current_period_end) == (invoice.period_start, invoice.period_end)


def test_a_later_start_date_is_invoiced_by_the_worker_on_that_day(database, session, sandbox, seller):
    make_plan(session)
    account = new_account(session)
    add_card(session, sandbox, account, default=True)
    started = start(session, database, sandbox, seller, account, start=date(2026, 12, 10))
    assert not started.invoiced and session.query(Invoice).count() == 0
    assert run_renewals(database, sandbox, seller, now=datetime(2026, 12, 10, 0, 1, tzinfo=timezone.utc),
                        policy=POLICY).invoiced == 1
    assert session.scalar(select(Invoice)).period_start == datetime(2026, 12, 10, tzinfo=timezone.utc)


def test_one_live_subscription_per_account(database, session, sandbox, seller):
    make_plan(session)
    account = new_account(session)
    first = start(session, database, sandbox, seller, account, trial_days=7)
    with pytest.raises(SubscriptionExists):
        start(session, database, sandbox, seller, account)
    session.get(Subscription, first.subscription.id).status = "canceled"
    session.commit()
    assert start(session, database, sandbox, seller, account, trial_days=7).subscription.id != first.subscription.id


def test_a_start_is_refused_field_by_field_and_writes_nothing(database, session, sandbox, seller):
    make_plan(session)
    make_plan(session, code="pro-eur", currency="EUR")
    account = new_account(session)
    for options, field in (({"plan_code": "nope"}, "plan"), ({"plan_code": "pro-eur"}, "plan"),
                           ({"start": date(2026, 11, 30)}, "start_date"), ({"start": date(2028, 1, 1)}, "start_date"),
                           ({"trial_days": -1}, "trial_days"), ({"trial_days": 731}, "trial_days")):
        with pytest.raises(InvalidInput) as refused:
            start(session, database, sandbox, seller, account, **options)
        assert list(refused.value.errors) == [field], options
    assert session.query(Subscription).count() == 0 and session.query(Invoice).count() == 0


def test_four_starts_at_once_make_one_subscription_and_three_conflicts(database, session, sandbox, seller):
    make_plan(session)
    account = new_account(session)

    def start_one(_index):
        with database.session() as own:
            return start(own, database, sandbox, seller, account, trial_days=7).subscription.id

    outcomes = run_concurrently(start_one, 4)
    assert sum(outcome.ok for outcome in outcomes) == 1, outcomes
    assert all(isinstance(outcome.error, SubscriptionExists) for outcome in outcomes if not outcome.ok), outcomes
    assert session.query(Subscription).count() == 1


def test_four_puts_of_a_new_account_at_once_make_one_account(database, session):
    def put_one(index):
        with database.session() as own:
            return put_account(own, "acme", {"name": "Acme", "billing_email": f"b{index}@acme.example"},
                               currency=None, actor=API, now=NOW).account.id

    outcomes = run_concurrently(put_one, 4)
    assert all(outcome.ok for outcome in outcomes), outcomes
    assert len({outcome.value for outcome in outcomes}) == 1
    assert session.query(Account).count() == 1
