"""Saving a bank account (ACH in the US, SEPA in the euro area) and verifying one by micro-deposits.

The seed's rule: a bank account may be added only while the subscription is on one of the plan intervals
of ``PORTAL_BANK_ACCOUNT_INTERVALS`` (annual by default), and which kind is offered follows the account's
currency (USD: ACH, EUR: SEPA). ``bank_offer`` is the one rule, read by the page (to say why not) and by
``start_bank_setup`` (to refuse).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...audit import Actor
from ...errors import CardSetupFailed, MethodNotOffered
from ...models import BILLABLE_STATUSES, PaymentMethod, Subscription
from ...payments.gateway import BankAccountDetails, MandateAcceptance, PaymentGateway, SetupIntent
from .cards import _account, _key, _processor, complete_card_setup, ensure_processor_customer, get_card, mark_verified

# Which debit scheme an account's currency is collected with.
BANK_TYPE_BY_CURRENCY = {"USD": "us_bank_account", "EUR": "sepa_debit"}
INTERVAL_WORDS = {"year": "annual", "month": "monthly"}


@dataclass(frozen=True)
class BankOffer:
    """Whether this account may save a bank account now: ``method_type`` when it may, else ``refusal``."""

    method_type: str | None
    refusal: str | None = None
    currency: str = "USD"  # what the account is billed in: Stripe's Payment Element is set up for it


def bank_offer(session: Session, account_id: int, *, intervals: tuple[str, ...]) -> BankOffer:
    account = _account(session, account_id)
    subscription = session.scalar(select(Subscription).where(
        Subscription.account_id == account_id, Subscription.status.in_(BILLABLE_STATUSES))
        .order_by(Subscription.id.desc()).limit(1))
    currency = ((subscription.plan.currency if subscription else None) or account.currency or "USD").upper()
    allowed = " or ".join(INTERVAL_WORDS.get(i, i) for i in intervals) or "no"
    if not intervals:
        return BankOffer(None, "Bank accounts are not offered as a payment method. Pay by card or PayPal.",
                         currency)
    if subscription is None or subscription.plan.interval not in intervals:
        now = (f"your plan is billed {INTERVAL_WORDS.get(subscription.plan.interval, subscription.plan.interval)}"
               if subscription else "you have no active subscription")
        return BankOffer(None, f"Bank accounts can be added only to {allowed} plans, and {now}. "
                               "Pay by card or PayPal instead.", currency)
    method_type = BANK_TYPE_BY_CURRENCY.get(currency)
    if method_type is None:
        return BankOffer(None, f"Bank accounts are offered for plans billed in US dollars (ACH) or euros (SEPA "
                               f"Direct Debit); yours is billed in {currency}. Pay by card or PayPal instead.",
                         currency)
    return BankOffer(method_type, currency=currency)


def start_bank_setup(session: Session, gateway: PaymentGateway, account_id: int, *, intervals: tuple[str, ...],
                     bank: BankAccountDetails, mandate: MandateAcceptance | None, save_as_default: bool,
                     idempotency_key: str) -> SetupIntent:
    """Begin saving a bank account: refused unless ``bank_offer`` allows this kind now. Sandbox mode only
    (the test account's details come along); the intent succeeds at once or waits for micro-deposits."""
    offer = bank_offer(session, account_id, intervals=intervals)
    if offer.method_type is None:
        raise MethodNotOffered(offer.refusal)
    if bank.type != offer.method_type:
        raise MethodNotOffered("That kind of bank account is not offered for this account.")
    customer_id = ensure_processor_customer(session, gateway, _account(session, account_id))
    return _processor(gateway.create_setup_intent, customer_id=customer_id, method_type=bank.type, bank=bank,
                      mandate=mandate, idempotency_key=idempotency_key,
                      metadata={"account_id": account_id, "save_as_default": "1" if save_as_default else "0"})


def add_bank_account(session: Session, gateway: PaymentGateway, account_id: int, *, intervals: tuple[str, ...],
                     bank: BankAccountDetails, mandate: MandateAcceptance | None, save_as_default: bool,
                     idempotency_key: str, actor: Actor, now: datetime) -> PaymentMethod:
    """Sandbox mode's whole add: the setup, then the saved account (verified, or pending its micro-deposits)."""
    intent = start_bank_setup(session, gateway, account_id, intervals=intervals, bank=bank, mandate=mandate,
                              save_as_default=save_as_default, idempotency_key=idempotency_key)
    return complete_card_setup(session, gateway, account_id, intent.id, actor=actor, now=now)


def verify_microdeposits(session: Session, gateway: PaymentGateway, account_id: int, method_id: int, *,
                         amounts: list[int] | None = None, descriptor_code: str | None = None, actor: Actor,
                         now: datetime) -> PaymentMethod:
    """Confirm an ACH account with what the customer read on their statement (two amounts in cents, or the
    code), in either mode: the sandbox checks them itself, Stripe on the SetupIntent. Wrong answers are
    refused next to the field, the account staying pending. Already verified (a second press after the first
    succeeded, or Stripe's hosted verification page got there first): returned as it is."""
    method = get_card(session, account_id, method_id)
    if method.verification == "verified":
        return method
    if not method.setup_intent_id:
        raise CardSetupFailed("This bank account can't be verified here. Delete it and add it again.")
    # A wrong answer changes nothing of ours (the processor counts the attempts, as Stripe does).
    intent = _processor(gateway.verify_microdeposits, method.setup_intent_id, amounts=amounts,
                        descriptor_code=descriptor_code, idempotency_key=_key("verify", method.processor_id))
    if intent.status != "succeeded":
        raise CardSetupFailed(intent.error_message or "The bank account could not be verified yet. Please try "
                              "again later.", code="verification_not_succeeded")
    mark_verified(session, gateway, method, actor=actor, now=now)
    session.commit()
    return method
