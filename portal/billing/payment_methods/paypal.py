"""Saving a PayPal account: the customer approves it at PayPal (in sandbox mode, on the sandbox's own test
approval page), then it is saved like any other method by ``cards.complete_card_setup``."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ...errors import NotFound
from ...payments.gateway import PaymentGateway, SetupIntent
from .cards import _account, _processor, ensure_processor_customer, pending_setup


def start_paypal_setup(session: Session, gateway: PaymentGateway, account_id: int, *, save_as_default: bool,
                       return_url: str, idempotency_key: str) -> SetupIntent:
    """A SetupIntent for ``paypal`` waiting for the customer's approval at its ``redirect_url``."""
    customer_id = ensure_processor_customer(session, gateway, _account(session, account_id))
    return _processor(gateway.create_setup_intent, customer_id=customer_id, method_type="paypal",
                      return_url=return_url, idempotency_key=idempotency_key,
                      metadata={"account_id": account_id, "save_as_default": "1" if save_as_default else "0"})


def pending_paypal(session: Session, gateway: PaymentGateway, account_id: int, setup_intent_id: str) -> SetupIntent:
    """This account's PayPal setup, still waiting for approval; anything else is not found."""
    intent = pending_setup(session, gateway, account_id, setup_intent_id)
    if intent.payment_method_type != "paypal" or intent.status != "requires_action":
        raise NotFound("That PayPal approval does not exist or has been answered.")
    return intent
