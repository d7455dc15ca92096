"""Ending a subscription: cancel at the period end with a reason, keep it after all, and the worker's lapse
at the period end.

A cancel keeps paid access until ``current_period_end``; the renewal engine then ends the subscription
instead of invoicing the next period (``lapse``), in the same claimed transaction that would have billed it,
so it happens exactly once however many workers run. A Past due or Suspended subscription has no paid
period left to keep, so its cancel takes effect at once: automatic retries of its open invoice stop, and
the invoice stays open on Billing details (it bills a period that had already begun; staff may void it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...dates import format_date
from ...errors import InvalidInput, NotFound, SubscriptionNotChangeable
from ...models import Account, Invoice, Subscription
from ...notifications import outbox
from ..collecting.collection import void_unpaid
from ..invoicing.invoices import begin_write, lock_invoice
from ..outcome import Done
from .access import current_subscription

# The fixed list customers choose from, as Stripe's portal offers it; the code is what is stored and counted.
REASONS = {
    "too_expensive": "It's too expensive",
    "missing_features": "Some features are missing",
    "switched_service": "I'm switching to another service",
    "unused": "I don't use it enough",
    "customer_service": "Customer service was less than expected",
    "too_complex": "It's too complex to use",
    "low_quality": "Quality was less than expected",
    "other": "Other reason",
}
COMMENT_MAX = 400


@dataclass(frozen=True)
class CancelReason:
    code: str
    comment: str

    @property
    def label(self) -> str:
        return REASONS.get(self.code, self.code)


def stored_reason(value: str) -> CancelReason | None:
    """``cancel_reason`` holds ``code`` or ``code: comment``; the code is always from REASONS."""
    if not value:
        return None
    code, _, comment = value.partition(":")
    return CancelReason(code=code.strip(), comment=comment.strip())


def parse_reason(reason: str | None, comment: str | None) -> CancelReason:
    """The reason must be one of the list; the comment is optional and short. Errors name the field."""
    reason, comment = (reason or "").strip(), (comment or "").strip()
    errors = {}
    if reason not in REASONS:
        errors["reason"] = "Choose why you are canceling."
    if len(comment) > COMMENT_MAX:
        errors["comment"] = f"Use at most {COMMENT_MAX} characters."
    if errors:
        raise InvalidInput(errors)
    return CancelReason(code=reason, comment=comment)


NOTE_MAX = 300
WHEN = {"now": True, "period_end": False}


def parse_when(value: str | None) -> bool | None:
    """Staff choose when a change applies: ``now`` or ``period_end``; customers follow the rule (None)."""
    if value is None:
        return None
    if value not in WHEN:
        raise InvalidInput({"when": "Choose now or at the period end."})
    return WHEN[value]


def require_note(note: str | None) -> str:
    """Staff say why they change a customer's subscription; the audit row keeps it."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput({"note": "Enter the reason for this change."})
    if len(note) > NOTE_MAX:
        raise InvalidInput({"note": f"Use at most {NOTE_MAX} characters."})
    return note


def live_subscription(session: Session, account_id: int) -> Subscription:
    """The account's subscription, locked for the change that follows; none at all is not found."""
    begin_write(session)
    subscription = current_subscription(session, account_id)
    if subscription is None:
        raise NotFound("You have no subscription.")
    if session.get_bind().dialect.name != "sqlite":
        # Lock the row alone (its plan is joined in, and FOR UPDATE may not reach an outer join), then read
        # it afresh under the lock.
        session.execute(select(Subscription.id).where(Subscription.id == subscription.id).with_for_update())
        session.refresh(subscription)
    return subscription


def cancel(session: Session, account_id: int, *, reason: str | None, comment: str | None, actor: Actor,
           now: datetime, when: str | None = None, staff_note: str | None = None) -> Done[Subscription]:
    """Cancel the subscription: at the period end (it stays active until then), or at once when staff ask
    for it (``when="now"``, with ``staff_note``, their reason) or when it is Past due or Suspended (no paid
    period is left)."""
    errors = {}
    at_period_end = True
    try:
        at_period_end = not parse_when(when) if when is not None else True
    except InvalidInput as exc:
        errors.update(exc.errors)
    try:
        why = parse_reason(reason, comment)
    except InvalidInput as exc:
        errors.update(exc.errors)
    note = {}
    if staff_note is not None:
        try:
            note = {"note": require_note(staff_note)}
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors)
    subscription = live_subscription(session, account_id)
    if subscription.status == "canceled":
        raise SubscriptionNotChangeable("Your subscription is already canceled.")
    if subscription.cancel_at_period_end and at_period_end:
        raise SubscriptionNotChangeable(
            f"Your subscription already cancels on {format_date(subscription.current_period_end)}.")
    subscription.cancel_reason = f"{why.code}: {why.comment}" if why.comment else why.code
    subscription.cancel_requested_at = now
    subscription.scheduled_plan = None  # a cancel replaces any scheduled plan change
    for invoice in unpaid_changes(session, subscription):
        # An upgrade (or resubscribe) still waiting on 3-D Secure: paying it later must not bring the
        # subscription back on the new plan, so it is owed no longer. A payment that still arrives for it
        # is refunded automatically, as for every void invoice.
        void_unpaid(session, invoice, now=now,
                    reason="The subscription was canceled before this plan change was paid; "
                           "the plan did not change.")
    immediate = not at_period_end or subscription.status in ("past_due", "suspended")
    audit.record(session, actor, "subscription.cancel_requested", now=now, account_id=account_id,
                 subscription_id=subscription.id, reason=why.code, comment=why.comment,
                 at_period_end=not immediate, **note)
    if immediate:
        end_subscription(session, subscription, now=now)
        message = "Your subscription is canceled."
    else:
        subscription.cancel_at_period_end = True
        message = f"Your plan stays active until {format_date(subscription.current_period_end)}."
    session.commit()
    return Done(subscription, message)


def keep(session: Session, account_id: int, *, actor: Actor, now: datetime,
         staff_note: str | None = None) -> Done[Subscription]:
    """Undo a cancel at the period end, while the period still runs: renewals go on as before."""
    note = {"note": require_note(staff_note)} if staff_note is not None else {}
    subscription = live_subscription(session, account_id)
    if not subscription.cancel_at_period_end or subscription.status == "canceled":
        raise SubscriptionNotChangeable("Your subscription is not set to cancel.")
    subscription.cancel_at_period_end = False
    audit.record(session, actor, "subscription.cancel_undone", now=now, account_id=account_id,
                 subscription_id=subscription.id, **note)
    session.commit()
    return Done(subscription, f"Your subscription continues; it renews on {format_date(subscription.current_period_end)}.")


def unpaid_changes(session: Session, subscription: Subscription) -> list[Invoice]:
    """The subscription's open plan-change invoices (``plan_id`` set): an upgrade or resubscribe not yet paid;
    each under the invoice lock, as every path that voids one takes it."""
    ids = session.scalars(select(Invoice.id).where(Invoice.subscription_id == subscription.id,
                                                   Invoice.status == "open", Invoice.plan_id.is_not(None))).all()
    return [invoice for invoice in (lock_invoice(session, i) for i in ids) if invoice.status == "open"]


def end_subscription(session: Session, subscription: Subscription, *, now: datetime) -> None:
    """The subscription ends: paid access stops, nothing renews, automatic retries of what it still owes
    stop, and the billing e-mail is told (once: the notice's key is the subscription)."""
    ended_at = min(now, subscription.current_period_end) if subscription.cancel_at_period_end else now
    subscription.status, subscription.canceled_at = "canceled", ended_at
    subscription.cancel_at_period_end, subscription.scheduled_plan = False, None
    for invoice in session.scalars(select(Invoice).where(Invoice.subscription_id == subscription.id,
                                                         Invoice.status == "open")):
        invoice.auto_retry, invoice.next_retry_at = False, None
    account = session.get(Account, subscription.account_id)
    outbox.subscription_ended(session, subscription, account, now=now)


def lapse(session: Session, subscription: Subscription, *, now: datetime) -> None:
    """The renewal engine's step for a subscription set to cancel whose period is over (caller holds it)."""
    end_subscription(session, subscription, now=now)
    audit.record(session, Actor.system(), "subscription.ended", now=now, account_id=subscription.account_id,
                 subscription_id=subscription.id, reason=(stored_reason(subscription.cancel_reason) or
                                                          CancelReason("", "")).code)
