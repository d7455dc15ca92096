"""The backup method: the one saved method tried once when a renewal or retry charge on the default fails.

The mark is ours alone, so neither verb calls the processor: Stripe has no notion of a backup method (a
customer there has one default, ``invoice_settings.default_payment_method``), and the backup is charged
like any saved method, off session with its own PaymentMethod id, only when collection decides to
(``collecting/collection.py``, ``open_backup``). Setting or clearing it is one local transaction, audited.

The rules, each kept where the state changes:
- one backup per account (this module clears the old mark first; a unique partial index is the backstop);
- the default is never the backup: it can't be marked, and making the backup the default clears its mark
  (``cards.set_default_card``);
- a method still waiting for its verification (an ACH account before its micro-deposits) can't be marked,
  since it could not be charged when it is needed;
- deleting the backup clears its mark (``cards.delete_card``).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...errors import CardInUse
from ...models import PaymentMethod
from .cards import get_card, lock_marks


def backup_refusal(method: PaymentMethod) -> str | None:
    """Why ``method`` can't be the backup now, or None. The menu and the verb share this one rule."""
    if method.is_default:
        return f"{method.label} is your default payment method, so it can't also be the backup."
    if method.verification != "verified":
        return (f"{method.label} is waiting for its verification, so it can't be the backup yet: "
                "a backup must be ready to charge when the default fails.")
    return None


def set_backup_method(session: Session, account_id: int, method_id: int, *, actor: Actor,
                      now: datetime) -> PaymentMethod:
    """Mark one of the account's saved methods as its backup, replacing any earlier backup."""
    method = get_card(session, account_id, method_id)
    if method.is_backup:
        return method
    refusal = backup_refusal(method)
    if refusal:
        raise CardInUse(refusal, code="backup_not_allowed")
    lock_marks(session, account_id)
    previous = session.scalar(_backups(account_id))
    # Clear the old mark first and flush, so the one-backup index never sees two at once.
    session.execute(update(PaymentMethod).where(PaymentMethod.account_id == account_id,
                                                PaymentMethod.is_backup.is_(True)).values(is_backup=False))
    session.flush()
    method.is_backup = True
    audit.record(session, actor, "payment_method.backup_set", now=now, account_id=account_id, card_id=method.id,
                 card=method.label, previous=previous.label if previous is not None else None)
    session.commit()
    return method


def clear_backup_method(session: Session, account_id: int, method_id: int, *, actor: Actor,
                        now: datetime) -> PaymentMethod:
    """Stop using this method as the backup: a failed default is then a failed payment again."""
    method = get_card(session, account_id, method_id)
    if not method.is_backup:
        return method
    method.is_backup = False
    audit.record(session, actor, "payment_method.backup_cleared", now=now, account_id=account_id,
                 card_id=method.id, card=method.label)
    session.commit()
    return method


def _backups(account_id: int):
    return select(PaymentMethod).where(PaymentMethod.account_id == account_id, PaymentMethod.is_backup.is_(True),
                                       PaymentMethod.detached_at.is_(None))
