"""The sandbox processor answers like Stripe for its documented test cards."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from portal import cli
from portal.billing.collecting.dunning import RetryPolicy
from portal.billing.collecting.events import deliver_sandbox_events
from portal.models import Plan, SandboxIdempotencyKey, SandboxObject, Subscription
from portal.payments.gateway import CardDetails, CardError, ProcessorError, SandboxControls
from portal.payments.sandbox import SandboxGateway
from portal.payments.sandbox.checkout import ASYNC_DELAY
from portal.payments.stripe_gateway import StripeGateway
from portal.perf.seed import add_account, add_sandbox_card

from ..helpers import password_hash


@pytest.fixture
def sandbox(database):
    return SandboxGateway(database, clock=lambda: datetime(2026, 11, 22, tzinfo=timezone.utc))


def card(number="4242424242424242", month=12, year=2030, cvc="123"):
    return CardDetails(number=number, exp_month=month, exp_year=year, cvc=cvc, cardholder_name="Ada")


def setup(sandbox, customer, details, key="k1"):
    return sandbox.create_setup_intent(customer_id=customer, metadata={}, idempotency_key=key, card=details)


def test_a_good_card_is_saved_and_attached_to_the_customer(sandbox):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    intent = setup(sandbox, customer, card())
    assert intent.status == "succeeded"
    saved = sandbox.retrieve_card(intent.payment_method_id)
    assert (saved.brand, saved.last4, saved.customer_id) == ("visa", "4242", customer)


def test_the_same_idempotency_key_returns_the_first_answer(sandbox):
    first = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="same")
    second = sandbox.create_customer(email="b@example.com", name="B", account_id=2, idempotency_key="same")
    assert first == second
    customer = first
    assert setup(sandbox, customer, card(), key="s").id == setup(sandbox, customer, card(), key="s").id


def charge(sandbox, customer, pm, key, amount=1500):
    return sandbox.charge(customer_id=customer, payment_method_id=pm, amount_cents=amount, currency="USD",
                          idempotency_key=key, metadata={"invoice_id": 1})


def test_a_replayed_charge_answers_the_first_charge_and_charges_once(sandbox, session):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    pm = setup(sandbox, customer, card()).payment_method_id
    first = charge(sandbox, customer, pm, "charge-1")
    # A replay with another amount is still the first request: same intent, same amount.
    assert charge(sandbox, customer, pm, "charge-1", amount=9900) == first
    assert first.status == "succeeded" and first.amount_cents == 1500
    assert sandbox.count_charges() == 1
    assert session.scalar(select(SandboxIdempotencyKey.result).where(SandboxIdempotencyKey.key == "charge-1")) \
        == {"id": first.payment_id}


def test_a_replayed_charge_answers_the_first_charge_even_after_the_card_is_detached(sandbox):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    pm = setup(sandbox, customer, card()).payment_method_id
    first = charge(sandbox, customer, pm, "charge-1")
    sandbox.detach_card(pm, idempotency_key="x")
    assert charge(sandbox, customer, pm, "charge-1") == first
    with pytest.raises(ProcessorError):  # a new request with the detached card is refused
        charge(sandbox, customer, pm, "charge-2")
    assert sandbox.count_charges() == 1


def test_a_declined_card_raises_card_error_and_attaches_nothing(sandbox):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    with pytest.raises(CardError) as exc:
        setup(sandbox, customer, card("4000000000000002"))
    assert exc.value.code == "card_declined" and exc.value.message == "Your card was declined."


def test_the_three_d_secure_card_waits_for_the_bank_then_attaches_when_approved(sandbox):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    intent = setup(sandbox, customer, card("4000002500003155"))
    assert intent.status == "requires_action"
    assert sandbox.retrieve_card(intent.payment_method_id).customer_id is None
    approved = sandbox.authenticate_setup_intent(intent.id, approve=True)
    assert approved.status == "succeeded"
    assert sandbox.retrieve_card(approved.payment_method_id).customer_id == customer


def test_a_failed_three_d_secure_leaves_no_card(sandbox):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    intent = setup(sandbox, customer, card("4000002500003155"))
    failed = sandbox.authenticate_setup_intent(intent.id, approve=False)
    assert failed.status == "requires_payment_method" and failed.payment_method_id is None
    assert "authentication failed" in failed.error_message


@pytest.mark.parametrize("details, param", [
    (card("4242424242424241"), "number"), (card("9999999999999995"), "number"),
    (card(month=10, year=2026), "expiry"), (card(month=13), "expiry"), (card(cvc="1"), "cvc"),
])
def test_invalid_cards_name_the_field_at_fault(sandbox, details, param):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    with pytest.raises(CardError) as exc:
        setup(sandbox, customer, details)
    assert exc.value.param == param


def test_a_card_expiring_this_month_is_still_accepted(sandbox):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    assert setup(sandbox, customer, card(month=11, year=2026)).status == "succeeded"


def test_default_and_detach_keep_the_customer_consistent(sandbox):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    pm = setup(sandbox, customer, card()).payment_method_id
    sandbox.set_default_card(customer, pm, idempotency_key="d")
    assert sandbox.customer_default_card(customer) == pm
    sandbox.detach_card(pm, idempotency_key="x")
    assert sandbox.customer_default_card(customer) is None
    with pytest.raises(ProcessorError):
        sandbox.set_default_card(customer, pm, idempotency_key="d2")


def test_what_the_sandbox_writes_is_dated_by_its_clock_not_the_wall_clock(sandbox, session):
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    intent = setup(sandbox, customer, card())
    moment = datetime(2026, 11, 22, tzinfo=timezone.utc)
    assert session.get(SandboxObject, customer).created_at == moment
    assert session.get(SandboxObject, intent.payment_method_id).created_at == moment
    assert session.get(SandboxIdempotencyKey, "c1").created_at == moment


def test_events_queued_at_one_moment_are_delivered_in_the_order_they_fall_due(sandbox, session):
    # A fixed clock (a --now run) gives every event of a checkout the same created_at: the completion must
    # still reach the portal before the bank's later answer, for every session.
    customer = sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="c1")
    sessions = []
    for n in range(8):
        checkout = sandbox.create_checkout_session(
            customer_id=customer, amount_cents=1000, currency="usd", description="Invoice", metadata={},
            success_url="http://localhost/ok", cancel_url="http://localhost/no", expires_at=0,
            idempotency_key=f"cs{n}")
        sandbox.pay_checkout_session(checkout.id, method="ideal", outcome="processing")
        sessions.append(checkout.id)
    later = int(datetime(2026, 11, 22, tzinfo=timezone.utc).timestamp()) + ASYNC_DELAY

    due = sandbox.due_events(now=later)

    for checkout_id in sessions:
        kinds = [e["type"] for e in due if e["data"]["object"]["id"] == checkout_id]
        assert kinds == ["checkout.session.completed", "checkout.session.async_payment_succeeded"]


def test_a_processor_without_sandbox_controls_is_never_asked_for_events(database):
    stripe = StripeGateway(secret_key="sk_test_" + "x" * 24, api_base="http://127.0.0.1:9")
    assert not isinstance(stripe, SandboxControls)
    assert deliver_sandbox_events(database, stripe, now=datetime.now(timezone.utc), policy=RetryPolicy()) == 0


def test_a_billing_run_with_now_dates_the_sandbox_charge_at_that_moment(database, database_url, session,
                                                                       monkeypatch):
    end = datetime(2031, 3, 1, tzinfo=timezone.utc)
    plan = Plan(code="pro-monthly", name="Pro", interval="month", price_cents=2000, currency="USD")
    session.add(plan)
    account = add_account(session, "Customer", "c@example.com", password_hash())
    add_sandbox_card(session, account, 0, default=True)
    session.add(Subscription(account_id=account.id, plan=plan, status="active",
                             current_period_start=end - timedelta(days=28), current_period_end=end))
    session.commit()
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    monkeypatch.setenv("PORTAL_SECRET_KEY", "now-test-" + "k" * 32)

    result = CliRunner().invoke(cli.main, ["billing", "run", "--now", "2031-03-01T01:00:00+00:00"])

    assert result.exit_code == 0, result.output
    assert "1 invoiced, 1 paid" in result.output
    charge = session.scalars(select(SandboxObject).where(SandboxObject.kind == "payment_intent")).one()
    assert charge.created_at == datetime(2031, 3, 1, 1, tzinfo=timezone.utc)
