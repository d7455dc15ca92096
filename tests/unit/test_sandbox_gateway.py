"""The sandbox processor answers like Stripe for its documented test cards."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from portal.payments.gateway import CardDetails, CardError, ProcessorError
from portal.payments.sandbox import SandboxGateway


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
