"""Saving PayPal and bank accounts: the sandbox's answers for Stripe's documented test accounts, and the
service rules (bank accounts only on the intervals of the setting, ACH or SEPA by currency, a pending ACH
account never the default and never charged, micro-deposits)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from portal.audit import Actor
from portal.billing.payment_methods import bank_accounts, cards, paypal
from portal.billing.subscriptions.renewals import run_renewals
from portal.errors import CardSetupFailed, MethodNotOffered, MethodNotVerified
from portal.models import AuditEvent, PaymentAttempt, PaymentMethod, utcnow
from portal.payments.gateway import BankAccountDetails, CardError, MandateAcceptance, ProcessorError

from ..helpers import POLICY, make_customer, make_plan, make_subscription

MANDATE = MandateAcceptance(accepted_at=1_780_000_000, ip_address="203.0.113.9", user_agent="test")


def ach(account="000123456789", routing="110000000", verification="instant"):
    return BankAccountDetails(type="us_bank_account", holder_name="Ada", routing_number=routing,
                              account_number=account, verification_method=verification)


def sepa(iban="DE89370400440532013000"):
    return BankAccountDetails(type="sepa_debit", holder_name="Zoë", iban=iban, email="z@example.com")


@pytest.fixture
def customer_id(sandbox):
    return sandbox.create_customer(email="a@example.com", name="A", account_id=1, idempotency_key="cus")


def bank_setup(sandbox, customer_id, bank, key="k", mandate=MANDATE):
    return sandbox.create_setup_intent(customer_id=customer_id, metadata={}, idempotency_key=key,
                                       method_type=bank.type, bank=bank, mandate=mandate)


# --- the sandbox -------------------------------------------------------------------------------------------

def test_paypal_waits_for_approval_at_the_sandbox_page_then_saves_the_payers_email(sandbox, customer_id):
    intent = sandbox.create_setup_intent(customer_id=customer_id, metadata={}, idempotency_key="p",
                                         method_type="paypal", return_url="http://x/billing")
    assert (intent.status, intent.next_action, intent.payment_method_type) == ("requires_action", "redirect_to_url",
                                                                               "paypal")
    assert intent.redirect_url == f"/sandbox/setup-intents/{intent.id}/paypal" and intent.payment_method_id is None
    approved = sandbox.answer_paypal_setup(intent.id, approve=True, email="ada@example.com")
    assert approved.status == "succeeded"
    saved = sandbox.retrieve_card(approved.payment_method_id)
    assert (saved.type, saved.email, saved.customer_id) == ("paypal", "ada@example.com", customer_id)
    # Answering again changes nothing: the first answer stands.
    assert sandbox.answer_paypal_setup(intent.id, approve=False, email="").status == "succeeded"


def test_cancelling_paypal_leaves_no_method(sandbox, customer_id):
    intent = sandbox.create_setup_intent(customer_id=customer_id, metadata={}, idempotency_key="p",
                                         method_type="paypal", return_url="http://x/billing")
    cancelled = sandbox.answer_paypal_setup(intent.id, approve=False, email="")
    assert cancelled.status == "requires_payment_method" and cancelled.payment_method_id is None


@pytest.mark.parametrize("account, charge", [("000123456789", "debit_succeeds"), ("000111111116", "debit_fails"),
                                             ("000111111113", "debit_fails"), ("000222222227", "debit_fails")])
def test_stripes_ach_test_accounts_save_and_say_what_their_debits_will_do(sandbox, customer_id, account, charge):
    from portal.models import SandboxObject

    intent = bank_setup(sandbox, customer_id, ach(account))
    assert intent.status == "succeeded"
    saved = sandbox.retrieve_card(intent.payment_method_id)
    assert (saved.type, saved.last4, saved.verification, saved.country) == ("us_bank_account", account[-4:],
                                                                          "verified", "US")
    with sandbox.books.reading() as s:
        assert s.get(SandboxObject, saved.processor_id).data["charge"] == charge


@pytest.mark.parametrize("details, param", [
    (ach(routing="110000001"), "routing_number"),   # fails the ABA checksum
    (ach(routing="021000021"), "routing_number"),   # a real bank's number: not in test mode
    (ach(account="000999999999"), "account_number"),
    (sepa("DE89370400440532013001"), "iban"),        # one digit off: the checksum fails
    (sepa("XX00"), "iban"),
])
def test_bad_numbers_are_refused_with_the_field_named(sandbox, customer_id, details, param):
    with pytest.raises(CardError) as refused:
        bank_setup(sandbox, customer_id, details)
    assert refused.value.param == param


def test_sepa_needs_the_mandate_and_keeps_a_generated_reference(sandbox, customer_id):
    with pytest.raises(CardError) as refused:
        bank_setup(sandbox, customer_id, sepa(), mandate=None)
    assert refused.value.param == "mandate"
    intent = bank_setup(sandbox, customer_id, sepa("DE62 3704 0044 0532 0130 01"), key="s2")
    saved = sandbox.retrieve_card(intent.payment_method_id)
    assert (saved.type, saved.country, saved.last4) == ("sepa_debit", "DE", "3001")
    assert len(saved.mandate_reference) == 16
    other = sandbox.retrieve_card(bank_setup(sandbox, customer_id, sepa(), key="s3").payment_method_id)
    assert other.mandate_reference != saved.mandate_reference


def test_micro_deposits_verify_with_32_and_45_or_sm11aa_and_refuse_anything_else(sandbox, customer_id):
    intent = bank_setup(sandbox, customer_id, ach(verification="microdeposits"))
    assert (intent.status, intent.next_action) == ("requires_action", "verify_with_microdeposits")
    assert sandbox.retrieve_card(intent.payment_method_id).verification == "pending"
    with pytest.raises(CardError) as wrong:
        sandbox.verify_microdeposits(intent.id, amounts=[32, 46], idempotency_key="v1")
    assert wrong.value.param == "amounts"
    with pytest.raises(CardError) as wrong_code:
        sandbox.verify_microdeposits(intent.id, descriptor_code="SM00AA", idempotency_key="v2")
    assert wrong_code.value.param == "descriptor_code"
    assert sandbox.verify_microdeposits(intent.id, amounts=[45, 32], idempotency_key="v3").status == "succeeded"
    assert sandbox.retrieve_card(intent.payment_method_id).verification == "verified"

    by_code = bank_setup(sandbox, customer_id, ach(verification="microdeposits"), key="k2")
    assert sandbox.verify_microdeposits(by_code.id, descriptor_code="SM11AA", idempotency_key="v4").status == "succeeded"
    instant = bank_setup(sandbox, customer_id, ach(), key="k3")
    assert sandbox.verify_microdeposits(instant.id, amounts=[32, 45], idempotency_key="v5").status == "succeeded"


def test_a_replayed_setup_returns_the_first_answer(sandbox, customer_id):
    first = bank_setup(sandbox, customer_id, sepa(), key="same")
    assert bank_setup(sandbox, customer_id, sepa(), key="same").payment_method_id == first.payment_method_id


def test_an_unknown_type_is_refused(sandbox, customer_id):
    with pytest.raises(ProcessorError):
        sandbox.create_setup_intent(customer_id=customer_id, metadata={}, idempotency_key="x", method_type="ideal")


# --- the services ------------------------------------------------------------------------------------------

def account_on(session, *, interval="year", currency="USD", status="active", email="ada@example.com"):
    account, _ = make_customer(session, email=email, region="MA", postal_code="01101")
    account.currency = currency
    plan = make_plan(session, code=f"plan-{interval}-{currency}", interval=interval, currency=currency,
                     price_cents=20000)
    make_subscription(session, account, plan=plan, status=status)
    return account


@pytest.mark.parametrize("interval, currency, intervals, offered", [
    ("year", "USD", ("year",), "us_bank_account"),
    ("year", "EUR", ("year",), "sepa_debit"),
    ("month", "USD", ("year",), None),
    ("month", "USD", ("month", "year"), "us_bank_account"),
    ("year", "GBP", ("year",), None),
    ("year", "USD", (), None),
])
def test_bank_offer_follows_the_interval_setting_and_the_currency(session, interval, currency, intervals, offered):
    account = account_on(session, interval=interval, currency=currency)
    offer = bank_accounts.bank_offer(session, account.id, intervals=intervals)
    assert offer.method_type == offered
    assert (offer.refusal is None) == (offered is not None)


def test_a_canceled_subscription_is_offered_no_bank_account(session):
    account = account_on(session, status="canceled")
    assert "no active subscription" in bank_accounts.bank_offer(session, account.id, intervals=("year",)).refusal


def test_starting_a_bank_setup_is_refused_where_it_is_not_offered_and_nothing_reaches_the_processor(session, sandbox):
    account = account_on(session, interval="month")
    with pytest.raises(MethodNotOffered):
        bank_accounts.start_bank_setup(session, sandbox, account.id, intervals=("year",), bank=ach(), mandate=MANDATE,
                                       save_as_default=False, idempotency_key="b1")
    assert account.processor_customer_id is None  # not even a customer was created
    eur = account_on(session, currency="EUR", email="eve@example.com")
    with pytest.raises(MethodNotOffered):  # ACH details for a euro account
        bank_accounts.start_bank_setup(session, sandbox, eur.id, intervals=("year",), bank=ach(), mandate=MANDATE,
                                       save_as_default=False, idempotency_key="b2")


def save_bank(session, sandbox, account, bank, *, default=True, key="b"):
    intent = bank_accounts.start_bank_setup(session, sandbox, account.id, intervals=("year",), bank=bank,
                                            mandate=MANDATE, save_as_default=default, idempotency_key=key)
    return cards.complete_card_setup(session, sandbox, account.id, intent.id, actor=Actor.system(), now=utcnow())


def test_a_pending_ach_account_is_never_the_default_nor_charged_until_verified(database, session, sandbox, seller):
    account = account_on(session)
    pending = save_bank(session, sandbox, account, ach(verification="microdeposits"))
    assert (pending.verification, pending.is_default, pending.setup_intent_id is not None) == ("pending", False, True)
    with pytest.raises(MethodNotVerified):
        cards.set_default_card(session, sandbox, account.id, pending.id, actor=Actor.system(), now=utcnow())
    # The renewal finds nothing it may charge: no attempt reaches the processor.
    run_renewals(database, sandbox, seller, now=datetime(2026, 12, 1, 1, tzinfo=timezone.utc), policy=POLICY)
    session.expire_all()
    assert session.query(PaymentAttempt).filter(PaymentAttempt.status == "processing").count() == 0
    assert sandbox.count_charges(status=None) == 0

    with pytest.raises(CardSetupFailed) as wrong:
        bank_accounts.verify_microdeposits(session, sandbox, account.id, pending.id, amounts=[1, 2],
                                           descriptor_code=None, actor=Actor.system(), now=utcnow())
    assert wrong.value.field == "amounts"
    verified = bank_accounts.verify_microdeposits(session, sandbox, account.id, pending.id, amounts=[32, 45],
                                                  descriptor_code=None, actor=Actor.system(), now=utcnow())
    assert verified.verification == "verified"
    assert session.query(AuditEvent).filter_by(action="card.verified", account_id=account.id).count() == 1
    assert cards.set_default_card(session, sandbox, account.id, pending.id, actor=Actor.system(),
                                  now=utcnow()).card.is_default


def test_an_instantly_verified_ach_account_saved_as_default_is_debited_by_the_renewal(database, session, sandbox, seller):
    account = account_on(session)
    saved = save_bank(session, sandbox, account, ach())
    assert saved.is_default and saved.label == "STRIPE TEST BANK •••• 6789"
    assert sandbox.customer_default_card(account.processor_customer_id) == saved.processor_id
    run_renewals(database, sandbox, seller, now=datetime(2026, 12, 1, 1, tzinfo=timezone.utc), policy=POLICY)
    session.expire_all()
    [attempt] = session.query(PaymentAttempt).all()
    assert attempt.status == "processing" and attempt.payment_method_label == saved.label


def test_a_sepa_account_keeps_its_mandate_reference_and_when_it_was_accepted(session, sandbox):
    account = account_on(session, currency="EUR")
    saved = save_bank(session, sandbox, account, sepa())
    assert saved.type == "sepa_debit" and len(saved.mandate_reference) == 16 and saved.mandate_accepted_at


def test_paypal_setup_belongs_to_its_account_only(session, sandbox):
    mine = account_on(session)
    theirs = account_on(session, currency="EUR", email="eve@example.com")
    intent = paypal.start_paypal_setup(session, sandbox, mine.id, save_as_default=False, return_url="http://x",
                                       idempotency_key="pp")
    assert paypal.pending_paypal(session, sandbox, mine.id, intent.id).id == intent.id
    from portal.errors import NotFound
    with pytest.raises(NotFound):
        paypal.pending_paypal(session, sandbox, theirs.id, intent.id)
    sandbox.answer_paypal_setup(intent.id, approve=True, email="a@example.com")
    with pytest.raises(NotFound):  # answered: no longer pending
        paypal.pending_paypal(session, sandbox, mine.id, intent.id)
    saved = cards.complete_card_setup(session, sandbox, mine.id, intent.id, actor=Actor.system(), now=utcnow())
    assert saved.label == "PayPal · a@example.com" and saved.is_default  # the first method becomes the default
    assert session.query(PaymentMethod).filter_by(account_id=mine.id).count() == 1
