"""Saving PayPal and bank accounts through the Stripe gateway.

Where each test's Stripe comes from, as its docstring says:

* localstripe, where it supports the type: it makes card and SEPA SetupIntents (``payment_method_types``
  ``sepa_debit``), so creating those is checked against it;
* otherwise the SetupIntent stand-in (``setup_standin``), whose request and object shapes are taken from
  Stripe's API reference (SetupIntents create/confirm/verify_microdeposits/list, PaymentMethod, Mandate):
  localstripe has no PayPal or US bank account methods, no ``payment_method_options``, no micro-deposits and
  no Mandate objects.

The browser's part (the Payment Element confirming with the publishable key and the client secret, PayPal's
approval page) is played by ``setup_standin.confirm`` and ``approve_paypal``.
"""
from __future__ import annotations

import pytest

from portal.payments.gateway import BankAccountDetails, CardDetails, CardError, ProcessorError
from portal.payments.stripe_gateway import StripeGateway

from .conftest import SECRET_KEY

pytestmark = pytest.mark.stripe

US_BANK = {"type": "us_bank_account", "billing_details": {"name": "Ada Lovelace", "email": "ada@example.com"},
           "us_bank_account": {"routing_number": "110000000", "account_number": "000123456789",
                               "account_holder_type": "individual"}}
SEPA = {"type": "sepa_debit", "billing_details": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "sepa_debit": {"iban": "DE89370400440532013000"}}
PAYPAL = {"type": "paypal", "billing_details": {}}


@pytest.fixture
def gateway(setup_standin) -> StripeGateway:
    return StripeGateway(secret_key=SECRET_KEY, api_base=setup_standin.url, max_network_retries=0)


def customer(gateway, key="customer-key") -> str:
    return gateway.create_customer(email="billing@acme.example", name="Acme", account_id=7, idempotency_key=key)


def setup(gateway, method_type, key="setup-key"):
    return gateway.create_setup_intent(customer_id=customer(gateway), metadata={"account_id": 7},
                                       idempotency_key=key, method_type=method_type)


def test_a_sepa_setup_intent_is_made_at_localstripe_for_sepa_debit_only(stripe_gateway, localstripe):
    """localstripe: it supports ``payment_method_types: ["sepa_debit"]`` SetupIntents."""
    intent = setup(stripe_gateway, "sepa_debit")

    assert intent.payment_method_type == "sepa_debit"
    assert intent.status == "requires_payment_method"
    assert localstripe.get(f"/v1/setup_intents/{intent.id}")["payment_method_types"] == ["sepa_debit"]


def test_raw_card_or_bank_details_are_refused_and_nothing_is_sent(gateway, setup_standin):
    """Stand-in: counts what reached "Stripe"."""
    cus = customer(gateway)
    bank = BankAccountDetails(type="us_bank_account", holder_name="Ada", routing_number="110000000",
                              account_number="000123456789")
    card = CardDetails(number="4242424242424242", exp_month=12, exp_year=2030, cvc="123", cardholder_name="Ada")
    for details in ({"bank": bank, "method_type": "us_bank_account"}, {"card": card}):
        with pytest.raises(ProcessorError) as refused:
            gateway.create_setup_intent(customer_id=cus, metadata={}, idempotency_key="k", **details)
        assert refused.value.code == "card_data_refused"
    assert setup_standin.received("POST", "/v1/setup_intents") == []


def test_a_us_bank_account_setup_asks_for_automatic_verification(gateway, setup_standin):
    """Stand-in (Stripe's "Create a SetupIntent": payment_method_options[us_bank_account][verification_method])."""
    intent = setup(gateway, "us_bank_account")

    sent = setup_standin.received("POST", "/v1/setup_intents")[-1].params
    assert sent["payment_method_types"] == ["us_bank_account"]
    assert sent["payment_method_options"] == {"us_bank_account": {"verification_method": "automatic"}}
    assert sent["usage"] == "off_session"
    assert (intent.payment_method_type, intent.status) == ("us_bank_account", "requires_payment_method")
    assert intent.client_secret.startswith(intent.id)
    # A double click sends the same key: one SetupIntent.
    assert setup(gateway, "us_bank_account").id == intent.id


def test_paypal_waits_for_the_customers_approval_then_is_saved_with_the_payers_email(gateway, setup_standin):
    """Stand-in: PayPal SetupIntents, ``next_action.redirect_to_url`` and the ``paypal`` PaymentMethod hash."""
    intent = setup(gateway, "paypal")
    assert setup_standin.confirm(intent.client_secret, PAYPAL,
                                 return_url="http://portal.test/billing/cards/return").status_code == 200

    waiting = gateway.retrieve_setup_intent(intent.id)
    assert (waiting.status, waiting.next_action) == ("requires_action", "redirect_to_url")
    assert waiting.redirect_url.startswith(setup_standin.url)

    setup_standin.approve_paypal(intent.id, payer_email="ada@example.com")
    done = gateway.retrieve_setup_intent(intent.id)
    info = gateway.retrieve_card(done.payment_method_id)
    assert (done.status, done.payment_method_type) == ("succeeded", "paypal")
    assert (info.type, info.email, info.last4, info.exp_year) == ("paypal", "ada@example.com", "", 0)
    assert info.customer_id == done.customer_id


def test_a_us_bank_account_linked_instantly_is_verified_with_its_bank_and_last_four(gateway, setup_standin):
    """Stand-in: the ``us_bank_account`` PaymentMethod hash (bank_name, last4)."""
    intent = setup(gateway, "us_bank_account")
    setup_standin.confirm(intent.client_secret, US_BANK, instant=True)

    done = gateway.retrieve_setup_intent(intent.id)
    info = gateway.retrieve_card(done.payment_method_id)
    assert done.status == "succeeded"
    assert (info.type, info.bank_name, info.last4, info.country, info.verification) == (
        "us_bank_account", "STRIPE TEST BANK", "6789", "US", "verified")


def test_micro_deposits_are_verified_with_the_right_amounts_and_wrong_ones_are_refused_on_the_field(
        gateway, setup_standin):
    """Stand-in: ``verify_with_microdeposits`` and "Verify microdeposits on a SetupIntent" (test amounts 32 and
    45, code SM11AA, Stripe's ``payment_method_microdeposit_verification_*`` error codes)."""
    intent = setup(gateway, "us_bank_account")
    setup_standin.confirm(intent.client_secret, US_BANK)
    waiting = gateway.retrieve_setup_intent(intent.id)
    assert (waiting.status, waiting.next_action) == ("requires_action", "verify_with_microdeposits")
    assert waiting.payment_method_id

    with pytest.raises(CardError) as wrong:
        gateway.verify_microdeposits(intent.id, amounts=[10, 11], idempotency_key="v1")
    assert wrong.value.param == "amounts"
    assert "don't match" in wrong.value.message
    with pytest.raises(CardError) as wrong_code:
        gateway.verify_microdeposits(intent.id, descriptor_code="SM0000", idempotency_key="v2")
    assert wrong_code.value.param == "descriptor_code"

    verified = gateway.verify_microdeposits(intent.id, amounts=[32, 45], idempotency_key="v3")
    assert verified.status == "succeeded" and verified.next_action is None
    sent = setup_standin.received("POST", rf"/v1/setup_intents/{intent.id}/verify_microdeposits")
    assert [r.params for r in sent] == [{"amounts": ["10", "11"]}, {"descriptor_code": "SM0000"},
                                        {"amounts": ["32", "45"]}]


def test_the_descriptor_code_verifies_too(gateway, setup_standin):
    """Stand-in, as above, with the six-character code instead of the amounts."""
    intent = setup(gateway, "us_bank_account")
    setup_standin.confirm(intent.client_secret, US_BANK)

    assert gateway.verify_microdeposits(intent.id, descriptor_code="SM11AA", idempotency_key="v").status == "succeeded"


def test_a_sepa_account_keeps_its_mandate_reference_from_the_mandate(gateway, setup_standin):
    """Stand-in: the SEPA SetupIntent's ``mandate`` and the Mandate's ``payment_method_details.sepa_debit.
    reference``, read through "List all SetupIntents" with ``payment_method`` and ``expand[]=data.mandate``."""
    intent = setup(gateway, "sepa_debit")
    setup_standin.confirm(intent.client_secret, SEPA)

    done = gateway.retrieve_setup_intent(intent.id)
    info = gateway.retrieve_card(done.payment_method_id)
    mandate = setup_standin.mandates[setup_standin.setup_intent(intent.id)["mandate"]]
    assert (info.type, info.last4, info.country) == ("sepa_debit", "3000", "DE")
    assert info.bank_name == "Bank 37040044"
    assert info.mandate_reference == mandate["payment_method_details"]["sepa_debit"]["reference"] != ""
    listed = setup_standin.received("GET", "/v1/setup_intents")[-1]
    assert listed.params["payment_method"] == done.payment_method_id
    assert listed.params["expand"] == ["data.mandate"]


def test_an_unknown_method_type_is_refused_before_anything_is_sent(gateway, setup_standin):
    """Stand-in: counts what reached "Stripe"."""
    cus = customer(gateway)
    with pytest.raises(ProcessorError):
        gateway.create_setup_intent(customer_id=cus, metadata={}, idempotency_key="k", method_type="klarna")
    assert setup_standin.received("POST", "/v1/setup_intents") == []
