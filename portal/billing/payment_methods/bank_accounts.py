"""Bank accounts saved for debits: verifying a US account (ACH) by the micro-deposits it received.

An ACH account entered by hand is saved as pending (``cards.save_confirmed_card``) while two small deposits,
or one with a six-character code, travel to it; the customer types what the statement shows and the
processor's SetupIntent decides. Like the card verbs: the processor call first, with its idempotency key,
then our commit; a wrong answer changes nothing of ours and comes back on the field that was typed.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ...audit import Actor
from ...errors import CardSetupFailed
from ...models import PaymentMethod
from ...payments.gateway import PaymentGateway
from .cards import _key, _processor, get_card, mark_verified


def verify_bank_account(session: Session, gateway: PaymentGateway, account_id: int, card_id: int, *,
                        amounts: list[int] | None = None, descriptor_code: str | None = None, actor: Actor,
                        now: datetime) -> PaymentMethod:
    """Verify a pending ACH account with the two amounts in cents or the code from the statement. Verified
    already: returned as it is (a second press after the first succeeded)."""
    method = get_card(session, account_id, card_id)
    if method.verification != "pending":
        return method
    if method.type != "us_bank_account" or not method.setup_intent_id:
        raise CardSetupFailed("This payment method does not need verifying.", code="not_verifiable")
    intent = _processor(gateway.verify_microdeposits, method.setup_intent_id, amounts=amounts,
                        descriptor_code=descriptor_code, idempotency_key=_key("verify", method.setup_intent_id))
    if intent.status != "succeeded":
        raise CardSetupFailed(intent.error_message or "The bank account could not be verified yet. Please try "
                              "again later.", code="verification_not_succeeded")
    mark_verified(session, gateway, method, actor=actor, now=now)
    session.commit()
    return method
