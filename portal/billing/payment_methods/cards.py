"""Saved cards: add (with 3-D Secure), edit, set default, delete.

Each verb is one transaction. Processor calls come before our commit and carry idempotency keys; if
the processor refuses, nothing of ours has changed, and if our commit fails after the processor said
yes, running the verb again converges (every processor call here is safe to repeat).
"""
from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...errors import CardInUse, CardSetupFailed, MethodNotVerified, NotFound, ProcessorDown
from ...models import BILLABLE_STATUSES, METHOD_TYPES, Account, PaymentMethod, Subscription
from ...payments.gateway import (CardDetails, CardError, CardInfo, PaymentGateway, ProcessorError,
                                 ProcessorUnavailable, SetupIntent)


def list_cards(session: Session, account_id: int) -> list[PaymentMethod]:
    """The account's saved cards, default first, then newest."""
    return list(session.scalars(_account_cards(), {"account_id": account_id}))


@functools.cache
def _account_cards():
    """Built once per process: Billing details and every card answer run it."""
    return (select(PaymentMethod)
            .where(PaymentMethod.account_id == bindparam("account_id"), PaymentMethod.detached_at.is_(None))
            .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at.desc(), PaymentMethod.id.desc()))


def get_card(session: Session, account_id: int, card_id: int) -> PaymentMethod:
    """One of the account's cards; another account's card is simply not found."""
    card = session.scalar(select(PaymentMethod).where(
        PaymentMethod.id == card_id, PaymentMethod.account_id == account_id, PaymentMethod.detached_at.is_(None)))
    if card is None:
        raise NotFound("That card does not exist or has been removed.")
    return card


def _default_cards():
    return select(PaymentMethod).where(PaymentMethod.is_default.is_(True), PaymentMethod.detached_at.is_(None))


def default_card(session: Session, account_id: int) -> PaymentMethod | None:
    return session.scalar(_default_cards().where(PaymentMethod.account_id == account_id))


def default_cards_of(session: Session, account_ids: list[int]) -> list[PaymentMethod]:
    """The default methods of these accounts, in one statement (a renewal batch)."""
    return list(session.scalars(_default_cards().where(PaymentMethod.account_id.in_(account_ids))))


def default_cards(session: Session) -> list[PaymentMethod]:
    """Every account's default card at once, for jobs that go through them all (expiry reminders)."""
    return list(session.scalars(_default_cards().order_by(PaymentMethod.id)))


def ensure_processor_customer(session: Session, gateway: PaymentGateway, account: Account) -> str:
    """The account's customer at the processor, created on first need.

    The key is stable per account, so two first requests racing each other get the same customer; the
    account's creation time is in it so two installations sharing one Stripe account never collide.
    """
    if account.processor_customer_id:
        return account.processor_customer_id
    customer_id = _processor(gateway.create_customer, email=account.billing_email, name=account.name,
                             account_id=account.id,
                             idempotency_key=f"customer-{account.id}-{account.created_at.timestamp():.0f}")
    account.processor_customer_id = customer_id
    session.commit()
    return customer_id


def start_card_setup(session: Session, gateway: PaymentGateway, account_id: int, *, save_as_default: bool,
                     idempotency_key: str, card: CardDetails | None = None, method_type: str = "card",
                     return_url: str | None = None) -> SetupIntent:
    """Begin saving a payment method of ``method_type`` (card, paypal, us_bank_account, sepa_debit): a
    SetupIntent at the processor.

    In Stripe mode ``card`` is None and the browser confirms the intent with Stripe.js (PayPal's approval
    returns to ``return_url``). In sandbox mode the test card comes along and the intent is confirmed at once,
    or waits for the 3-D Secure step.
    """
    if method_type not in METHOD_TYPES:
        raise CardSetupFailed("Choose a card, PayPal or a bank account.", field="method_type",
                              code="method_type_unknown")
    account = _account(session, account_id)
    customer_id = ensure_processor_customer(session, gateway, account)
    extra = {"method_type": method_type, "return_url": return_url} if method_type != "card" or return_url else {}
    return _processor(gateway.create_setup_intent, customer_id=customer_id, card=card,
                      idempotency_key=idempotency_key,
                      metadata={"account_id": account_id, "save_as_default": "1" if save_as_default else "0"},
                      **extra)


def complete_card_setup(session: Session, gateway: PaymentGateway, account_id: int, setup_intent_id: str,
                        *, actor: Actor, now: datetime) -> PaymentMethod:
    """Save the card of a SetupIntent that has succeeded. Safe to call twice (page and webhook).
    ``now`` is the request's clock unless the caller passes its own."""
    card = save_confirmed_card(session, gateway, account_id, setup_intent_id, actor=actor, now=now)
    session.commit()
    return card


def save_confirmed_card(session: Session, gateway: PaymentGateway, account_id: int, setup_intent_id: str,
                        *, actor: Actor, now: datetime) -> PaymentMethod:
    """``complete_card_setup`` inside the caller's transaction (the webhook handler commits it together
    with the event it came from)."""
    account = _account(session, account_id)
    intent = _processor(gateway.retrieve_setup_intent, setup_intent_id)
    # The intent id comes from the browser: only believe it if it is this account's customer's.
    if not account.processor_customer_id or intent.customer_id != account.processor_customer_id:
        raise NotFound("That card setup does not belong to this account.")
    # An ACH account entered by hand is saved while its micro-deposits are on the way, as pending, so its
    # Verify form has a row: it is neither charged nor made the default until the customer verifies it.
    pending = (intent.status == "requires_action" and intent.next_action == "verify_with_microdeposits"
               and intent.payment_method_id is not None)
    if (intent.status != "succeeded" and not pending) or not intent.payment_method_id:
        raise CardSetupFailed(intent.error_message or "The card could not be confirmed. Please try again.",
                              code="setup_not_succeeded")
    existing = session.scalar(select(PaymentMethod).where(PaymentMethod.processor_id == intent.payment_method_id))
    if existing is not None:
        if existing.verification == "pending" and intent.status == "succeeded":
            # Verified since it was saved (our verify form, or Stripe's hosted verification page).
            mark_verified(session, gateway, existing, actor=actor, now=now)
        return existing
    info = _processor(gateway.retrieve_card, intent.payment_method_id)
    if pending:
        info = replace(info, verification="pending")
    make_default = info.verification == "verified" and (intent.metadata.get("save_as_default") == "1"
                                                         or default_card(session, account_id) is None)
    if make_default:
        _processor(gateway.set_default_card, account.processor_customer_id, info.processor_id,
                   idempotency_key=f"default-{info.processor_id}")
        _clear_default(session, account_id)
    card = _new_card(account_id, info, is_default=make_default, now=now)
    card.setup_intent_id = intent.id
    session.add(card)
    session.flush()
    audit.record(session, actor, "card.added", now=now, account_id=account_id, card_id=card.id, card=card.label,
                 default=make_default, **({"verification": "pending"} if pending else {}))
    return card


def mark_verified(session: Session, gateway: PaymentGateway, method: PaymentMethod, *, actor: Actor,
                  now: datetime) -> None:
    """A pending bank account the processor has verified: it may be charged now, and becomes the default
    when the account has none (renewals need one)."""
    # The processor is told first, before any change of ours (which would also hold SQLite's write lock
    # while the sandbox writes through its own connection).
    if default_card(session, method.account_id) is None:
        account = _account(session, method.account_id)
        _processor(gateway.set_default_card, account.processor_customer_id, method.processor_id,
                   idempotency_key=f"default-{method.processor_id}")
        method.is_default = True
    method.verification = "verified"
    session.flush()
    audit.record(session, actor, "card.verified", now=now, account_id=method.account_id, card_id=method.id,
                 card=method.label, default=method.is_default)


def update_card(session: Session, gateway: PaymentGateway, account_id: int, card_id: int, *, exp_month: int,
                exp_year: int, cardholder_name: str, actor: Actor, now: datetime) -> PaymentMethod:
    """Change a card's expiry or cardholder name (what a processor allows to change on a saved card)."""
    card = get_card(session, account_id, card_id)
    before = {"exp": f"{card.exp_month:02d}/{card.exp_year}", "name": card.cardholder_name}
    info = _processor(gateway.update_card, card.processor_id, exp_month=exp_month, exp_year=exp_year,
                      cardholder_name=cardholder_name, idempotency_key=_key("update", card.processor_id))
    card.exp_month, card.exp_year, card.cardholder_name = info.exp_month, info.exp_year, info.cardholder_name
    audit.record(session, actor, "card.updated", now=now, account_id=account_id, card_id=card.id, card=card.label,
                 before=before, after={"exp": f"{card.exp_month:02d}/{card.exp_year}", "name": card.cardholder_name})
    session.commit()
    return card


@dataclass(frozen=True)
class DefaultChange:
    """What setting a default changed: the new default and the card that was the default before (None when
    there was none, or when the card already was the default and nothing changed)."""

    card: PaymentMethod
    previous: PaymentMethod | None


def set_default_card(session: Session, gateway: PaymentGateway, account_id: int, card_id: int, *,
                     actor: Actor, now: datetime) -> DefaultChange:
    """Make this card the one renewals charge, here and at the processor."""
    card = get_card(session, account_id, card_id)
    if card.is_default:
        return DefaultChange(card, None)
    if card.verification != "verified":
        # Renewals charge the default: an account whose micro-deposits are not verified can't be debited yet.
        raise MethodNotVerified(f"{card.label} can't be your default until it is verified: enter the two "
                                "deposit amounts first.")
    account = _account(session, account_id)
    customer_id = ensure_processor_customer(session, gateway, account)
    _processor(gateway.set_default_card, customer_id, card.processor_id,
               idempotency_key=_key("default", card.processor_id))
    lock_marks(session, account_id)
    previous = default_card(session, account_id)
    _clear_default(session, account_id)
    card.is_default = True
    # The default is never also the backup (a backup that is the default would be tried twice for nothing).
    was_backup, card.is_backup = card.is_backup, False
    audit.record(session, actor, "card.default_set", now=now, account_id=account_id, card_id=card.id, card=card.label,
                 previous=previous.label if previous else None, **({"backup_cleared": True} if was_backup else {}))
    session.commit()
    return DefaultChange(card, previous)


def delete_card(session: Session, gateway: PaymentGateway, account_id: int, card_id: int, *,
                actor: Actor, now: datetime) -> PaymentMethod:
    """Remove a card, unless it is the default card an active or past-due subscription relies on."""
    card = check_deletable(session, account_id, card_id)
    _processor(gateway.detach_card, card.processor_id, idempotency_key=_key("detach", card.processor_id))
    card.detached_at = now
    card.is_default = False
    card.is_backup = False  # a deleted method is never tried; the account simply has no backup now
    audit.record(session, actor, "card.deleted", now=now, account_id=account_id, card_id=card.id, card=card.label)
    session.commit()
    return card


def delete_refusal(card: PaymentMethod, cards: list[PaymentMethod], *, billable: bool) -> str | None:
    """Why ``card`` can't be deleted now (it is the default card a billable subscription relies on), or None.
    Said up front, before anyone confirms, and with the way out that fits: another saved card, or a new one."""
    if not (card.is_default and billable):
        return None
    others = any(c.id != card.id for c in cards)
    return (f"{card.label} is the default card for your subscription, so it can't be deleted. "
            + ("Set another card as default first." if others else "Add a different card and set it as default first."))


def check_deletable(session: Session, account_id: int, card_id: int) -> PaymentMethod:
    """The card, if it may be deleted; CardInUse with the reason otherwise."""
    card = get_card(session, account_id, card_id)
    refusal = delete_refusal(card, list_cards(session, account_id),
                             billable=card.is_default and has_billable_subscription(session, account_id))
    if refusal:
        raise CardInUse(refusal)
    return card


def has_billable_subscription(session: Session, account_id: int) -> bool:
    return bool(session.scalar(select(exists().where(
        Subscription.account_id == account_id, Subscription.status.in_(BILLABLE_STATUSES)))))


# --- helpers --------------------------------------------------------------------------------------

def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    return account


def lock_marks(session: Session, account_id: int) -> None:
    """Take the account's lock on its Default and Backup marks until the caller commits.

    Two requests moving a mark at once (two tabs, a customer and an agent) would each clear the old holder
    and set their own, and the one-default/one-backup index would refuse the second with an error. On
    PostgreSQL the account row is locked (``FOR UPDATE``), so the second waits, and its next statements
    see what the first committed. SQLite has one writer for the whole file already; its write lock is not
    taken here because a set-default has just called the processor, which writes to that file too."""
    if session.get_bind().dialect.name != "sqlite":
        session.execute(select(Account.id).where(Account.id == account_id).with_for_update())


def _clear_default(session: Session, account_id: int) -> None:
    session.execute(update(PaymentMethod).where(PaymentMethod.account_id == account_id,
                                                PaymentMethod.is_default.is_(True)).values(is_default=False))
    session.flush()


def _new_card(account_id: int, info: CardInfo, *, is_default: bool, now: datetime) -> PaymentMethod:
    return PaymentMethod(account_id=account_id, processor_id=info.processor_id, type=info.type, brand=info.brand,
                         last4=info.last4, exp_month=info.exp_month, exp_year=info.exp_year,
                         cardholder_name=info.cardholder_name, email=info.email, bank_name=info.bank_name,
                         country=info.country, mandate_reference=info.mandate_reference,
                         mandate_accepted_at=now if info.mandate_reference else None,
                         verification=info.verification, is_default=is_default, created_at=now)


def _key(operation: str, subject: str) -> str:
    """A fresh key per user action: retries of one call (stripe-python's network retries) share it."""
    return f"{operation}-{subject}-{secrets.token_hex(8)}"


def _processor(call, *args, **kwargs):
    """Call the processor and turn its refusals into domain errors with messages a customer can act on."""
    try:
        return call(*args, **kwargs)
    except CardError as exc:
        raise CardSetupFailed(exc.message, field=exc.param, code=exc.code) from exc
    except ProcessorUnavailable as exc:
        raise ProcessorDown(exc.message) from exc
    except ProcessorError as exc:
        raise CardSetupFailed(exc.message, code=exc.code) from exc


def pending_setup(session: Session, gateway: PaymentGateway, account_id: int, setup_intent_id: str) -> SetupIntent:
    """A SetupIntent of this account's that is waiting for 3-D Secure; anything else is not found."""
    account = _account(session, account_id)
    try:
        intent = gateway.retrieve_setup_intent(setup_intent_id)
    except ProcessorError as exc:
        raise NotFound("That card setup does not exist.") from exc
    if not account.processor_customer_id or intent.customer_id != account.processor_customer_id:
        raise NotFound("That card setup does not exist.")
    return intent
