"""The webhook events every billing change writes, from one place no path can forget.

Why a flush listener rather than calls in the services: a subscription's status is changed in several
places (dunning, every way an invoice gets paid, void, the plan changes), invoices are issued, paid and
voided by renewals, Pay now, retries, wire transfers and processor events. A call at each of them is a call
someone forgets on the next path; the listener looks at what a flush actually writes instead, so every path,
present and future, writes its events, in the same transaction as the change, exactly once (each flush
sees each change once; a rollback takes the events with it).

It runs after the flush has written the rows (``after_flush``), when new rows have their ids and each
attribute's history still says what it was before. The events it adds are written by the next flush, which
``commit`` runs before it commits.

The clock: an event is stamped with its own row's stamp where it has one (``issued_at``, ``paid_at``,
``voided_at``, a failed attempt's ``completed_at``, a refund's or subscription's ``created_at``). A status or
plan change takes the latest stamp the same flush writes (its audit record, the attempt, the invoice), which
every service sets from its ``now``; when the change is flushed on its own, the latest stamp an earlier flush
of the same transaction wrote (the failed attempt a past-due status follows from). ``session.info["now"]``
overrides both, for a service whose change writes no stamp at all (it lasts until the transaction ends).
Only rows made with no stamp anywhere (seeds, fixtures) fall back to the column default's clock, as those
rows themselves do.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, get_history

from .. import api_objects
from ..models import (Account, Invoice, PaymentAttempt, Plan, Refund, Subscription, WebhookDelivery,
                      WebhookEvent, utcnow)
from ..notifications.webhooks import write_events
from .subscriptions.access import REASONS

# Columns that record when something happened (as opposed to when something is due or ends).
STAMPS = ("created_at", "occurred_at", "completed_at", "issued_at", "paid_at", "voided_at", "canceled_at",
          "settled_at", "cancel_requested_at", "delivered_at", "used_at", "last_used_at", "disabled_at")
WATCHED = (Subscription, Invoice, PaymentAttempt, Refund)
SUBSCRIPTION_FIELDS = ("status", "plan_id", "cancel_at_period_end", "scheduled_plan_id")
OWN_ROWS = (WebhookEvent, WebhookDelivery)
# The object's names for the fields that are ids in the row (the object names plans by their codes).
PUBLIC_NAMES = {"plan_id": "plan", "scheduled_plan_id": "scheduled_plan"}
PREVIOUS = "previous_attributes"  # the payload key webhooks.event_document moves into ``data``


def _history(obj, key: str) -> tuple[object, object, bool]:
    """(value before this flush, value after, changed?) of one attribute."""
    # get_history rather than inspect(obj).attrs[key]: ``attrs`` builds a view of every attribute per call.
    history = get_history(obj, key, passive=PASSIVE_NO_INITIALIZE)
    after = history.added[0] if history.added else getattr(obj, key)
    before = history.deleted[0] if history.deleted else (None if history.added else after)
    return before, after, bool(history.added) and before != after


CLOCK = "webhook_events.clock"  # session.info key: the latest stamp this transaction has written so far


def _flush_clock(session: Session, new: list, dirty: list) -> datetime | None:
    """The moment of the changes in this flush: ``session.info["now"]`` when a service set it, else the latest
    stamp written by this flush or an earlier one of the same transaction (a status change is often flushed
    on its own, after the attempt that caused it)."""
    if session.info.get("now") is not None:
        return session.info["now"]
    stamps = [session.info.get(CLOCK)]
    for obj in new:
        stamps += [getattr(obj, key, None) for key in STAMPS]
    for obj in dirty:
        state = inspect(obj)
        stamps += [value for key in STAMPS if key in state.mapper.attrs for value in get_history(obj, key, passive=PASSIVE_NO_INITIALIZE).added]
    stamps = [stamp for stamp in stamps if isinstance(stamp, datetime)]
    session.info[CLOCK] = max(stamps) if stamps else None
    return session.info[CLOCK]


@event.listens_for(Session, "after_transaction_end")
def _forget_clock(session: Session, transaction) -> None:
    # Both belong to one transaction: the next one, in a long-lived session, has a moment of its own.
    if transaction.parent is None:
        session.info.pop(CLOCK, None)
        session.info.pop("now", None)


class _Events:
    """The events one flush writes, each stamped when it is added."""

    def __init__(self, session: Session, clock: datetime | None):
        self.session, self.clock, self.pending = session, clock, []
        self._external_ids: dict[int, str | None] = {}

    def read_accounts(self, account_ids: set[int | None]) -> None:
        """The accounts' external ids in one statement for the whole flush (a renewal batch's flush holds
        many accounts' changes), rather than one each."""
        wanted = [i for i in account_ids if i is not None and i not in self._external_ids]
        if wanted:
            self._external_ids.update(self.session.execute(
                select(Account.id, Account.external_id).where(Account.id.in_(wanted))).all())

    def external_id(self, account_id: int | None) -> str | None:
        if account_id not in self._external_ids:
            account = self.session.get(Account, account_id) if account_id is not None else None
            self._external_ids[account_id] = account.external_id if account is not None else None
        return self._external_ids[account_id]

    def add(self, type: str, account_id: int | None, payload: dict, stamp: datetime | None = None) -> None:
        # utcnow: the column default's clock, for rows made with no stamp at all (see the module docstring).
        self.pending.append((type, account_id, payload, stamp or self.clock or utcnow()))

    def plans(self, subscription: Subscription) -> tuple[Plan, Plan | None]:
        """The plans the row names by id now: a service that set only ``plan_id`` or ``scheduled_plan_id`` (a
        new row, an upgrade paid, a downgrade scheduled) has relationships that still show the old ones."""
        scheduled = subscription.scheduled_plan_id
        return (self.session.get(Plan, subscription.plan_id),
                self.session.get(Plan, scheduled) if scheduled is not None else None)

    def subscription(self, type: str, subscription: Subscription, stamp: datetime | None = None,
                     previous: dict | None = None) -> None:
        plan, scheduled = self.plans(subscription)
        payload = api_objects.subscription_object(subscription, external_id=self.external_id(subscription.account_id),
                                                  plan=plan, scheduled=scheduled)
        if previous:
            # Kept with the object and sent as the event's ``data.previous_attributes`` (as Stripe's are), so a
            # receiver can tell an upgrade from a downgrade without having stored the last event.
            payload[PREVIOUS] = previous
        self.add(type, subscription.account_id, payload, stamp)

    def plan_code(self, plan_id: int | None) -> str | None:
        return self.session.get(Plan, plan_id).code if plan_id is not None else None

    def entitlements(self, subscription: Subscription, stamp: datetime | None = None) -> None:
        status = subscription.status
        self.add("entitlements.updated", subscription.account_id, api_objects.entitlements_object(
            external_id=self.external_id(subscription.account_id), paid_access=status == "active", status=status,
            reason=REASONS.get(status, status), plan=self.plans(subscription)[0].code,
            current_period_end=subscription.current_period_end), stamp)

    def invoice(self, type: str, invoice: Invoice, stamp: datetime | None) -> None:
        self.add(type, invoice.account_id, api_objects.invoice_object(
            invoice, external_id=self.external_id(invoice.account_id),
            # A path: made absolute with the portal's address when the event is sent or read.
            pdf_url=f"/billing/invoices/{invoice.id}.pdf"), stamp)


def _subscription_changes(events: _Events, subscription: Subscription, is_new: bool) -> None:
    if is_new:
        events.subscription("subscription.created", subscription, subscription.created_at)
        if subscription.status == "active":
            events.entitlements(subscription, subscription.created_at)
        return
    changes = {key: _history(subscription, key) for key in SUBSCRIPTION_FIELDS}
    if not any(changed for _, _, changed in changes.values()):
        return
    before, after, _ = changes["status"]
    stamp = subscription.canceled_at if after == "canceled" and before != "canceled" else None
    events.subscription("subscription.updated", subscription, stamp, previous=_previous(events, changes))
    # Entitlements name the plan: a plan change while active changes them as much as access does.
    if (before == "active") != (after == "active") or (after == "active" and changes["plan_id"][2]):
        events.entitlements(subscription, stamp)


def _previous(events: _Events, changes: dict[str, tuple[object, object, bool]]) -> dict:
    """What the changed fields were before, under the names the subscription object uses."""
    previous = {}
    for key, (before, _, changed) in changes.items():
        if changed:
            name = PUBLIC_NAMES.get(key, key)
            previous[name] = events.plan_code(before) if key in PUBLIC_NAMES else before
    return previous


def _invoice_changes(events: _Events, invoice: Invoice) -> None:
    before, after, changed = _history(invoice, "status")
    if not changed and before is not None:
        return
    before = before if changed else None  # a new row: it was nothing before
    if after in ("open", "paid") and before in (None, "draft"):
        events.invoice("invoice.issued", invoice, invoice.issued_at)
    if after == "paid" and before != "paid":
        events.invoice("invoice.paid", invoice, invoice.paid_at)
    if after == "void" and before != "void":
        events.invoice("invoice.voided", invoice, invoice.voided_at)


def _attempt_changes(events: _Events, attempt: PaymentAttempt) -> None:
    before, after, changed = _history(attempt, "status")
    if after == "failed" and (changed or before is None) and before != "failed":
        invoice = attempt.invoice or events.session.get(Invoice, attempt.invoice_id)
        events.invoice("invoice.payment_failed", invoice, attempt.completed_at)


def _refund_created(events: _Events, refund: Refund) -> None:
    invoice = events.session.get(Invoice, refund.invoice_id)
    events.add("refund.created", refund.account_id, api_objects.refund_object(
        refund, external_id=events.external_id(refund.account_id),
        invoice_number=invoice.number if invoice is not None else None), refund.created_at)


@event.listens_for(Session, "after_flush")
def write_webhook_events(session: Session, flush_context) -> None:
    everything = [obj for obj in (*session.new, *session.dirty) if not isinstance(obj, OWN_ROWS)]
    # Every flush moves the transaction's clock on, so a later flush with a change but no stamp knows it.
    clock = _flush_clock(session, [o for o in everything if o in session.new],
                         [o for o in everything if o not in session.new])
    new = [obj for obj in session.new if isinstance(obj, WATCHED)]
    dirty = [obj for obj in session.dirty if isinstance(obj, WATCHED) and session.is_modified(obj)]
    if not new and not dirty:
        return
    events = _Events(session, clock)
    events.read_accounts({getattr(obj, "account_id", None) for obj in (*new, *dirty)})
    # Subscriptions first, then invoices in the order they were issued: the order a receiver replays them in.
    for obj in sorted((*new, *dirty), key=lambda o: (WATCHED.index(type(o)), o.id or 0)):
        is_new = obj in session.new
        if isinstance(obj, Subscription):
            _subscription_changes(events, obj, is_new)
        elif isinstance(obj, Invoice):
            _invoice_changes(events, obj)
        elif isinstance(obj, PaymentAttempt):
            _attempt_changes(events, obj)
        elif isinstance(obj, Refund) and is_new:
            _refund_created(events, obj)
    # In two INSERTs (events, deliveries), not a statement per row as the next flush would write them.
    write_events(session, [(type_, account_id, payload, now) for type_, account_id, payload, now in events.pending])
