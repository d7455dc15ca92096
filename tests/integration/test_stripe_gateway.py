"""The Stripe gateway, and the card services on top of it, against a localstripe server.

The browser's part (Stripe.js confirming a SetupIntent with the publishable key, and the 3-D Secure modal) is
played by ``stripe_js``, which sends the same requests as localstripe's Stripe.js stand-in.
"""
from __future__ import annotations

import json
import socket

import pytest
from sqlalchemy import select

from portal.billing.payment_methods import cards
from portal.audit import Actor
from portal.errors import CardInUse, CardSetupFailed, NotFound
from portal.models import Account, PaymentMethod, utcnow
from portal.payments.gateway import CardDetails, CardError, ProcessorError, ProcessorUnavailable
from portal.payments.stripe_gateway import StripeGateway

from ..helpers import StandIn, make_customer, make_subscription
from .conftest import SECRET_KEY

pytestmark = pytest.mark.stripe

VISA = "4242424242424242"
THREE_D_SECURE = "4000002500003155"
DECLINED = "4000000000000002"


def new_customer(gateway, key="customer-key", **fields) -> str:
    values = {"email": "billing@acme.example", "name": "Acme Analytics Inc.", "account_id": 7, **fields}
    return gateway.create_customer(idempotency_key=key, **values)


def new_setup_intent(gateway, customer_id, key="setup-key", **metadata):
    return gateway.create_setup_intent(customer_id=customer_id, metadata=metadata or {"account_id": 7},
                                       idempotency_key=key)


def confirmed_card(gateway, stripe_js, customer_id, *, key="setup-key", number=VISA, **card) -> str:
    intent = new_setup_intent(gateway, customer_id, key=key)
    assert stripe_js.confirm_card_setup(intent.client_secret, number=number, **card).status_code == 200
    return gateway.retrieve_setup_intent(intent.id).payment_method_id


# --- the gateway ----------------------------------------------------------------------------------

def test_creating_a_customer_twice_with_one_idempotency_key_gives_one_customer(stripe_gateway, localstripe):
    first = new_customer(stripe_gateway, key="customer-7")
    again = new_customer(stripe_gateway, key="customer-7")
    other = new_customer(stripe_gateway, key="customer-8", account_id=8)

    assert first.startswith("cus_")
    assert again == first
    assert other != first
    customer = localstripe.get(f"/v1/customers/{first}")
    assert (customer["email"], customer["name"]) == ("billing@acme.example", "Acme Analytics Inc.")
    assert customer["metadata"] == {"account_id": "7"}


def test_an_idempotency_key_reused_for_different_details_is_refused_and_not_reported_as_an_outage(stripe_gateway):
    new_customer(stripe_gateway, key="customer-7")
    with pytest.raises(ProcessorError) as refused:
        new_customer(stripe_gateway, key="customer-7", email="someone-else@example.com")
    assert not isinstance(refused.value, ProcessorUnavailable)
    assert refused.value.code == "idempotency_error"


def test_a_setup_intent_is_created_for_the_customer_with_a_client_secret_for_stripe_js(stripe_gateway):
    customer_id = new_customer(stripe_gateway)
    intent = new_setup_intent(stripe_gateway, customer_id, account_id=7, save_as_default="1")

    assert intent.id.startswith("seti_")
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    assert intent.status == "requires_payment_method"
    assert intent.customer_id == customer_id
    assert intent.payment_method_id is None
    assert intent.metadata == {"account_id": "7", "save_as_default": "1"}
    assert new_setup_intent(stripe_gateway, customer_id, account_id=7, save_as_default="1").id == intent.id


def test_the_gateway_refuses_raw_card_data_and_creates_nothing_at_stripe(stripe_gateway, localstripe):
    customer_id = new_customer(stripe_gateway)
    card = CardDetails(number=VISA, exp_month=12, exp_year=2030, cvc="123", cardholder_name="Ada Lovelace")

    with pytest.raises(ProcessorError) as refused:
        stripe_gateway.create_setup_intent(customer_id=customer_id, metadata={}, idempotency_key="k", card=card)

    assert refused.value.code == "card_data_refused"
    assert localstripe.get("/v1/setup_intents")["data"] == []


def test_a_card_confirmed_by_stripe_js_makes_the_setup_intent_succeed_with_a_saved_card(stripe_gateway, stripe_js):
    customer_id = new_customer(stripe_gateway)
    intent = new_setup_intent(stripe_gateway, customer_id)

    answer = stripe_js.confirm_card_setup(intent.client_secret, number=VISA, exp_month="8", exp_year="2031",
                                          name="Ada Lovelace")

    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    confirmed = stripe_gateway.retrieve_setup_intent(intent.id)
    assert confirmed.status == "succeeded"
    assert confirmed.payment_method_id.startswith("pm_")
    card = stripe_gateway.retrieve_card(confirmed.payment_method_id)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 8, 2031)
    assert card.cardholder_name == "Ada Lovelace"
    assert card.customer_id == customer_id


def test_a_3d_secure_card_waits_for_authentication_and_succeeds_once_approved(stripe_gateway, stripe_js):
    intent = new_setup_intent(stripe_gateway, new_customer(stripe_gateway))

    stripe_js.confirm_card_setup(intent.client_secret, number=THREE_D_SECURE)
    waiting = stripe_gateway.retrieve_setup_intent(intent.id)
    assert waiting.status == "requires_action"

    assert stripe_js.complete_authentication(intent.client_secret).status_code == 200
    approved = stripe_gateway.retrieve_setup_intent(intent.id)
    assert approved.status == "succeeded"
    assert stripe_gateway.retrieve_card(approved.payment_method_id).last4 == "3155"


def test_a_3d_secure_card_whose_authentication_fails_does_not_succeed(stripe_gateway, stripe_js):
    intent = new_setup_intent(stripe_gateway, new_customer(stripe_gateway))

    stripe_js.confirm_card_setup(intent.client_secret, number=THREE_D_SECURE)
    assert stripe_js.fail_authentication(intent.client_secret).status_code == 200

    # Stripe would say requires_payment_method; localstripe's stand-in cancels the intent instead.
    assert stripe_gateway.retrieve_setup_intent(intent.id).status == "canceled"


def test_a_declined_card_is_refused_to_stripe_js_with_a_message_and_the_setup_intent_does_not_succeed(
        stripe_gateway, stripe_js):
    intent = new_setup_intent(stripe_gateway, new_customer(stripe_gateway))

    answer = stripe_js.confirm_card_setup(intent.client_secret, number=DECLINED)

    assert answer.status_code == 402
    assert answer.json()["error"]["message"] == "Your card was declined."
    assert stripe_gateway.retrieve_setup_intent(intent.id).status != "succeeded"


def test_a_decline_answered_to_our_server_becomes_a_card_error_with_a_message(stripe_gateway):
    intent = new_setup_intent(stripe_gateway, new_customer(stripe_gateway))

    # The gateway never confirms with the secret key itself; this is the one request to which localstripe
    # answers our server with Stripe's card error (HTTP 402), so it is how the translation is checked.
    with pytest.raises(CardError) as declined:
        stripe_gateway._call(stripe_gateway.client.v1.setup_intents.confirm, intent.id,
                             params={"payment_method": "pm_card_visa_chargeDeclined"})

    assert declined.value.message == "Your card was declined."
    assert declined.value.code == "card_declined"


def test_updating_a_card_changes_its_expiry_and_name_and_keeps_its_number(stripe_gateway, stripe_js, localstripe):
    pm_id = confirmed_card(stripe_gateway, stripe_js, new_customer(stripe_gateway), exp_month="12", exp_year="2030")

    updated = stripe_gateway.update_card(pm_id, exp_month=3, exp_year=2033, cardholder_name="Ada King",
                                         idempotency_key="update-1")

    assert (updated.last4, updated.exp_month, updated.exp_year, updated.cardholder_name) == ("4242", 3, 2033,
                                                                                            "Ada King")
    stored = stripe_gateway.retrieve_card(pm_id)
    assert (stored.brand, stored.last4, stored.exp_month, stored.exp_year) == ("visa", "4242", 3, 2033)
    assert stored.cardholder_name == "Ada King"
    assert localstripe.get(f"/v1/payment_methods/{pm_id}")["billing_details"]["address"] == {"postal_code": "10001"}


def test_setting_the_default_card_changes_the_customers_default_payment_method(stripe_gateway, stripe_js, localstripe):
    customer_id = new_customer(stripe_gateway)
    first = confirmed_card(stripe_gateway, stripe_js, customer_id, key="setup-1")
    second = confirmed_card(stripe_gateway, stripe_js, customer_id, key="setup-2", number="5555555555554444")

    def default_at_stripe():
        return localstripe.get(f"/v1/customers/{customer_id}")["invoice_settings"]["default_payment_method"]

    assert default_at_stripe() is None
    stripe_gateway.set_default_card(customer_id, first, idempotency_key="default-1")
    assert default_at_stripe() == first
    stripe_gateway.set_default_card(customer_id, second, idempotency_key="default-2")
    assert default_at_stripe() == second


def test_detaching_a_card_takes_it_off_the_customer(stripe_gateway, stripe_js, localstripe):
    customer_id = new_customer(stripe_gateway)
    pm_id = confirmed_card(stripe_gateway, stripe_js, customer_id)
    assert localstripe.get(f"/v1/payment_methods/{pm_id}")["customer"] == customer_id

    stripe_gateway.detach_card(pm_id, idempotency_key="detach-1")

    assert localstripe.get(f"/v1/payment_methods/{pm_id}")["customer"] is None


def test_an_unreachable_stripe_api_becomes_processor_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gateway = StripeGateway(secret_key=SECRET_KEY, api_base=f"http://127.0.0.1:{closed_port}", max_network_retries=0)

    with pytest.raises(ProcessorUnavailable) as unavailable:
        new_customer(gateway)

    assert "could not reach the payment processor" in unavailable.value.message


class SlowStripe(StandIn):
    """Answers every request with a customer, but only after ``delay`` seconds: longer than the timeout the
    test injects, far shorter than Stripe's default one."""

    def __init__(self, monkeypatch, delay: float = 1.5):
        self.requests: list[str] = []
        self.delay = delay
        super().__init__(self.answer, monkeypatch)

    def answer(self, path: str, body: bytes):
        self.requests.append(path)
        self.release.wait(self.delay)
        return 200, json.dumps({"id": "cus_slow", "object": "customer"}).encode()


def test_a_stripe_api_slower_than_the_timeout_becomes_processor_unavailable_without_retries(monkeypatch):
    slow = SlowStripe(monkeypatch)
    try:
        gateway = StripeGateway(secret_key=SECRET_KEY, api_base=slow.url, max_network_retries=0, timeout=0.2)
        # Were the timeout ignored, the late answer would arrive and a customer be returned.
        with pytest.raises(ProcessorUnavailable) as unavailable:
            new_customer(gateway)
    finally:
        slow.stop()

    assert "could not reach the payment processor" in unavailable.value.message
    assert slow.requests == ["/v1/customers"]  # asked once: no retries were configured


# --- the card services with the Stripe gateway ---------------------------------------------------

def start_setup(session, gateway, account, *, default=False, key="form-key"):
    return cards.start_card_setup(session, gateway, account.id, save_as_default=default,
                                  idempotency_key=f"setup-{account.id}-{key}")


def save_card(session, gateway, stripe_js, account, *, number=VISA, default=False, key="form-key"):
    intent = start_setup(session, gateway, account, default=default, key=key)
    assert stripe_js.confirm_card_setup(intent.client_secret, number=number).status_code == 200
    return cards.complete_card_setup(session, gateway, account.id, intent.id, actor=Actor.system(), now=utcnow())


def saved_cards(session, account):
    session.expire_all()
    return list(session.scalars(select(PaymentMethod).where(PaymentMethod.account_id == account.id)
                                .order_by(PaymentMethod.id)))


def test_saving_a_card_through_the_services_stores_what_stripe_knows_of_it(
        session, stripe_gateway, stripe_js, localstripe):
    account, _ = make_customer(session)

    intent = start_setup(session, stripe_gateway, account)
    session.refresh(account)
    assert account.processor_customer_id == intent.customer_id
    stripe_js.confirm_card_setup(intent.client_secret, number=VISA, exp_month="9", exp_year="2032")
    card = cards.complete_card_setup(session, stripe_gateway, account.id, intent.id, actor=Actor.system(), now=utcnow())

    assert card.processor_id.startswith("pm_")
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 9, 2032)
    assert card.cardholder_name == "Ada Lovelace"
    assert card.is_default, "an account's first card becomes its default"
    customer = localstripe.get(f"/v1/customers/{account.processor_customer_id}")
    assert customer["invoice_settings"]["default_payment_method"] == card.processor_id
    # The page and a webhook may both complete the same intent: the second is a no-op.
    again = cards.complete_card_setup(session, stripe_gateway, account.id, intent.id, actor=Actor.system(),
                                      now=utcnow())
    assert again.id == card.id
    assert len(saved_cards(session, account)) == 1


def test_a_3d_secure_card_is_saved_only_once_authentication_is_complete(session, stripe_gateway, stripe_js):
    account, _ = make_customer(session)
    intent = start_setup(session, stripe_gateway, account)
    stripe_js.confirm_card_setup(intent.client_secret, number=THREE_D_SECURE)

    with pytest.raises(CardSetupFailed):
        cards.complete_card_setup(session, stripe_gateway, account.id, intent.id, actor=Actor.system(), now=utcnow())
    assert saved_cards(session, account) == []

    stripe_js.complete_authentication(intent.client_secret)
    card = cards.complete_card_setup(session, stripe_gateway, account.id, intent.id, actor=Actor.system(), now=utcnow())
    assert card.last4 == "3155"


def test_a_card_whose_authentication_failed_is_not_saved(session, stripe_gateway, stripe_js):
    account, _ = make_customer(session)
    intent = start_setup(session, stripe_gateway, account)
    stripe_js.confirm_card_setup(intent.client_secret, number=THREE_D_SECURE)
    stripe_js.fail_authentication(intent.client_secret)

    with pytest.raises(CardSetupFailed) as failed:
        cards.complete_card_setup(session, stripe_gateway, account.id, intent.id, actor=Actor.system(), now=utcnow())

    assert failed.value.message
    assert saved_cards(session, account) == []


def test_a_setup_intent_of_another_account_saves_nothing(session, stripe_gateway, stripe_js):
    account, _ = make_customer(session)
    other, _ = make_customer(session, email="eve@example.com", name="Other Corp", billing_email="eve@other.example")
    start_setup(session, stripe_gateway, account)
    theirs = start_setup(session, stripe_gateway, other)
    stripe_js.confirm_card_setup(theirs.client_secret)

    with pytest.raises(NotFound):
        cards.complete_card_setup(session, stripe_gateway, account.id, theirs.id, actor=Actor.system(), now=utcnow())

    assert saved_cards(session, account) == [] and saved_cards(session, other) == []


def test_setting_another_card_as_default_moves_the_default_here_and_at_stripe(
        session, stripe_gateway, stripe_js, localstripe):
    account, _ = make_customer(session)
    first = save_card(session, stripe_gateway, stripe_js, account, key="one")
    second = save_card(session, stripe_gateway, stripe_js, account, number="5555555555554444", key="two")
    assert first.is_default and not second.is_default

    cards.set_default_card(session, stripe_gateway, account.id, second.id, actor=Actor.system(), now=utcnow())

    assert [(c.last4, c.is_default) for c in saved_cards(session, account)] == [("4242", False), ("4444", True)]
    customer_id = session.get(Account, account.id).processor_customer_id
    customer = localstripe.get(f"/v1/customers/{customer_id}")
    assert customer["invoice_settings"]["default_payment_method"] == second.processor_id


def test_a_new_card_saved_as_default_takes_over_from_the_old_default(session, stripe_gateway, stripe_js, localstripe):
    account, _ = make_customer(session)
    save_card(session, stripe_gateway, stripe_js, account, key="one")
    newer = save_card(session, stripe_gateway, stripe_js, account, number="5555555555554444", default=True, key="two")

    assert [(c.last4, c.is_default) for c in saved_cards(session, account)] == [("4242", False), ("4444", True)]
    customer = localstripe.get(f"/v1/customers/{session.get(Account, account.id).processor_customer_id}")
    assert customer["invoice_settings"]["default_payment_method"] == newer.processor_id


def test_the_default_card_of_an_active_subscription_cannot_be_deleted_and_stays_at_stripe(
        session, stripe_gateway, stripe_js, localstripe):
    account, _ = make_customer(session)
    card = save_card(session, stripe_gateway, stripe_js, account)
    make_subscription(session, account, status="active")

    with pytest.raises(CardInUse):
        cards.delete_card(session, stripe_gateway, account.id, card.id, actor=Actor.system(), now=utcnow())

    assert [c.detached_at for c in saved_cards(session, account)] == [None]
    assert localstripe.get(f"/v1/payment_methods/{card.processor_id}")["customer"] is not None


def test_a_card_no_subscription_relies_on_is_deleted_here_and_detached_at_stripe(
        session, stripe_gateway, stripe_js, localstripe):
    account, _ = make_customer(session)
    save_card(session, stripe_gateway, stripe_js, account, key="one")
    spare = save_card(session, stripe_gateway, stripe_js, account, number="5555555555554444", key="two")
    make_subscription(session, account, status="active")

    cards.delete_card(session, stripe_gateway, account.id, spare.id, actor=Actor.system(), now=utcnow())

    assert [c.last4 for c in cards.list_cards(session, account.id)] == ["4242"]
    assert localstripe.get(f"/v1/payment_methods/{spare.processor_id}")["customer"] is None


def test_an_off_session_charge_of_a_saved_card_succeeds_once_per_idempotency_key(stripe_gateway, stripe_js):
    customer = new_customer(stripe_gateway)
    card = confirmed_card(stripe_gateway, stripe_js, customer)
    request = dict(customer_id=customer, payment_method_id=card, amount_cents=2125, currency="USD",
                   idempotency_key="invoice-1-attempt-1", metadata={"invoice_id": 1, "attempt": 1})
    first = stripe_gateway.charge(**request)
    again = stripe_gateway.charge(**request)
    assert first.succeeded and (first.amount_cents, first.currency) == (2125, "USD")
    assert again.payment_id == first.payment_id  # the repeat is the same payment, not a second charge
    assert stripe_gateway.retrieve_payment(first.payment_id).succeeded
