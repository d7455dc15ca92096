"""Changing plan: the plans a customer may pick, the preview, and applying it; also resubscribing.

The preview and the bill are one piece of code: ``draft_change_invoice`` builds the invoice the change would
issue (its proration lines, credits applied, tax) and the preview shows that draft without saving it, so
what the customer confirms is what they are charged.

- An upgrade (``proration.is_upgrade``) is billed now: the invoice is issued and its first attempt written
  in one transaction, then charged through the one collection path (``collection.execute_attempt``). The
  subscription moves to the new plan only when that invoice is paid in full (``advance_after_payment``), so
  a decline changes nothing: the invoice is voided, any credit it used is given back, and the customer stays
  where they were. A bank asking for 3-D Secure leaves the invoice open for Pay now.
- A downgrade is scheduled: ``scheduled_plan_id``, applied by the renewal engine at the period end.
- Resubscribing (Canceled or Suspended) is the same path with a whole new period starting today.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ... import audit
from ...audit import Actor
from ...dates import format_date
from ...db import Database
from ...errors import InvalidInput, NothingToPay, PaymentInProgress, PlanChangeDeclined, SubscriptionNotChangeable
from ...models import Account, CreditEntry, Invoice, InvoiceLine, PaymentAttempt, Plan, Subscription
from ...money import format_money
from ...payments.gateway import PaymentGateway
from ..collecting.collection import advance_after_payment, execute_attempt, open_attempt, void_unpaid
from ..collecting.credits import credit_balance
from ..collecting.dunning import RetryPolicy, reason_text
from ..invoicing.invoices import apply_totals, issue_invoice, lock_invoice
from ..invoicing.periods import add_interval
from ..invoicing.pricing import Quote, quote
from ..invoicing.seller import Seller
from ..outcome import Done
from ..payment_methods.cards import default_card
from .cancellation import live_subscription, parse_when, require_note
from .proration import SURPLUS_LINE, Part, Proration, Terms, is_upgrade, prorate

RESUBSCRIBE_STATUSES = ("canceled", "suspended")
PLAN_FIELD = "plan_id"


def terms(plan: Plan) -> Terms:
    return Terms(name=plan.name, interval=plan.interval, price_cents=plan.price_cents)


@dataclass(frozen=True)
class PlanOption:
    plan: Plan
    current: bool
    price: Quote  # the price per interval with tax as this customer pays it (before credits)


@dataclass
class ChangePreview:
    current: Plan
    new: Plan
    kind: str  # upgrade | downgrade | resubscribe
    invoice: Invoice | None  # the draft that would be issued today (not saved); None for a downgrade
    takes_effect: datetime
    renews_on: datetime
    renewal: Quote
    # A resubscribe's unpaid invoices from before: Suspended, they are voided once this is paid (it buys the
    # same days again); Canceled, they stay open (they bill time before the cancel).
    unpaid: list[Invoice] = field(default_factory=list)
    current_status: str = ""

    @property
    def replaces_unpaid(self) -> bool:
        return self.current_status == "suspended"

    @property
    def due_today_cents(self) -> int:
        return self.invoice.total_cents if self.invoice is not None else 0

    @property
    def surplus_cents(self) -> int:
        """What goes to the credit balance rather than being charged (never refunded by surprise)."""
        return _surplus(self.invoice) if self.invoice is not None else 0


@dataclass
class PlanPanel:
    """What the Change plan panel shows: the choices, and the preview of the chosen one (or why not)."""

    options: list[PlanOption]
    chosen: int | None = None
    preview: ChangePreview | None = None
    errors: dict[str, str] = field(default_factory=dict)
    notice: str = ""  # why no change can be made right now (Past due)


def plan_options(session: Session, account: Account, subscription: Subscription, seller: Seller, *,
                 staff: bool = False) -> list[PlanOption]:
    """Self-serve plans in the subscription's currency, plus the current plan even when it is not self-serve;
    staff may also choose the plans kept for sales."""
    query = select(Plan).where(Plan.currency == subscription.plan.currency)
    if not staff:
        query = query.where(Plan.self_serve.is_(True) | (Plan.id == subscription.plan_id))
    plans = session.scalars(query.order_by(Plan.interval, Plan.price_cents, Plan.id)).all()
    return [PlanOption(plan=p, current=p.id == subscription.plan_id and subscription.status not in RESUBSCRIBE_STATUSES,
                       price=quote(account, p, seller)) for p in plans]


def parse_plan_id(value) -> int:
    try:
        plan_id = int(str(value or "").strip())
    except ValueError:
        plan_id = 0
    if not 0 < plan_id < 2**31:
        raise InvalidInput({PLAN_FIELD: "Choose one of the plans listed."})
    return plan_id


def _kind(subscription: Subscription, new: Plan, immediate: bool | None = None) -> str:
    if subscription.status in RESUBSCRIBE_STATUSES:
        return "resubscribe"
    if immediate is not None and new.id != subscription.plan_id and subscription.status == "active" \
            and not subscription.cancel_at_period_end:
        return "upgrade" if immediate else "downgrade"
    if subscription.status == "past_due":
        raise SubscriptionNotChangeable("Your last payment failed: pay the open invoice first, then change plan.")
    if subscription.cancel_at_period_end:
        raise SubscriptionNotChangeable("Your subscription is set to cancel: choose Keep my subscription first.")
    if new.id == subscription.plan_id:
        raise InvalidInput({PLAN_FIELD: "You are already on this plan."})
    return "upgrade" if is_upgrade(terms(subscription.plan), terms(new)) else "downgrade"


def _proration(subscription: Subscription, new: Plan, kind: str, now: datetime) -> Proration:
    """The parts of the change; ``kind`` "upgrade" means billed now (by the rule, or because staff said so)."""
    if kind == "resubscribe":
        end = add_interval(now, new.interval)
        return Proration(upgrade=True, parts=(Part(terms(new).label, now, end, new.price_cents, "new_period"),),
                         period_start=now, period_end=end)
    return prorate(terms(subscription.plan), terms(new), period_start=subscription.current_period_start,
                   period_end=subscription.current_period_end, now=now, immediate=kind == "upgrade")


def draft_change_invoice(session: Session, account: Account, subscription: Subscription, new: Plan,
                         proration: Proration, seller: Seller, *, now: datetime) -> Invoice:
    """The invoice a change issues, as a draft not yet in the session: one line per part, each with its
    period, then credits and tax exactly as every invoice gets them (``apply_totals``)."""
    invoice = Invoice(account_id=account.id, subscription_id=subscription.id, plan_id=new.id, currency=new.currency,
                      period_start=now, period_end=proration.period_end, status="draft", created_at=now,
                      amount_paid_cents=0, amount_refunded_cents=0)
    for position, part in enumerate(proration.parts):
        invoice.lines.append(InvoiceLine(position=position, description=part.description,
                                         period_start=part.period_start, period_end=part.period_end, quantity=1,
                                         unit_amount_cents=part.amount_cents, amount_cents=part.amount_cents))
    apply_totals(session, invoice, account, seller)
    return invoice


def _preview(session: Session, account: Account, subscription: Subscription, plan_id: int, seller: Seller, *,
             now: datetime, immediate: bool | None = None, staff: bool = False) -> ChangePreview:
    new = session.get(Plan, plan_id)
    allowed = {o.plan.id for o in plan_options(session, account, subscription, seller, staff=staff)}
    if new is None or new.id not in allowed:
        raise InvalidInput({PLAN_FIELD: "Choose one of the plans listed."})
    kind = _kind(subscription, new, immediate)
    if kind == "downgrade":
        when = subscription.current_period_end
        return ChangePreview(current=subscription.plan, new=new, kind=kind, invoice=None, takes_effect=when,
                             renews_on=when, renewal=quote(account, new, seller,
                                                           credit_balance_cents=credit_balance(session, account.id)))
    proration = _proration(subscription, new, kind, now)
    invoice = draft_change_invoice(session, account, subscription, new, proration, seller, now=now)
    left = credit_balance(session, account.id) - invoice.credit_applied_cents + _surplus(invoice)
    unpaid = [] if kind != "resubscribe" else list(session.scalars(
        select(Invoice).where(Invoice.subscription_id == subscription.id, Invoice.status == "open")
        .order_by(Invoice.id)))
    return ChangePreview(current=subscription.plan, new=new, kind=kind, invoice=invoice, takes_effect=now,
                         renews_on=proration.period_end,
                         renewal=quote(account, new, seller, credit_balance_cents=max(0, left)),
                         unpaid=unpaid, current_status=subscription.status)


def _surplus(invoice: Invoice) -> int:
    return sum(line.amount_cents for line in invoice.lines if line.description == SURPLUS_LINE)


def plan_panel(session: Session, account: Account, subscription: Subscription, seller: Seller, *,
               plan_id: str | None, now: datetime) -> PlanPanel:
    """The Change plan panel's data; a wrong choice becomes a message next to the plan list, never an error page."""
    panel = PlanPanel(options=plan_options(session, account, subscription, seller))
    if subscription.status == "past_due":
        panel.notice = "Your last payment failed: pay the open invoice first, then change plan."
    if plan_id is None:
        return panel
    try:
        panel.chosen = parse_plan_id(plan_id)
        panel.preview = _preview(session, account, subscription, panel.chosen, seller, now=now)
    except InvalidInput as exc:
        panel.errors = exc.errors
    except SubscriptionNotChangeable as exc:
        panel.errors = {PLAN_FIELD: exc.message}
    return panel


# --- applying it --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChangeResult:
    message: str
    status: str  # scheduled | changed | requires_action | pending
    invoice_id: int | None = None


def change_plan(database: Database, gateway: PaymentGateway, account_id: int, plan_id, *, seller: Seller,
                actor: Actor, now: datetime, policy: RetryPolicy, when: str | None = None,
                staff_note: str | None = None) -> ChangeResult:
    """Apply the change the preview showed: schedule a downgrade, or bill an upgrade (or a resubscribe) now.

    Staff pass ``when`` (``now`` or ``period_end``, overriding the rule) and ``staff_note``, their reason,
    which the audit row keeps; they may also choose plans that are not self-serve."""
    staff = staff_note is not None
    errors = {}
    try:
        chosen = parse_plan_id(plan_id)
    except InvalidInput as exc:
        errors.update(exc.errors)
    try:
        immediate = parse_when(when)
    except InvalidInput as exc:
        errors.update(exc.errors)
    if staff:
        try:
            staff_note = require_note(staff_note)
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors)
    note = {"note": staff_note} if staff else {}
    with database.session() as session:
        subscription = live_subscription(session, account_id)
        account = session.get(Account, account_id)
        preview = _preview(session, account, subscription, chosen, seller, now=now, immediate=immediate, staff=staff)
        if preview.kind == "downgrade":
            subscription.scheduled_plan_id = preview.new.id
            audit.record(session, actor, "subscription.plan_change_scheduled", now=now, account_id=account_id,
                         subscription_id=subscription.id, from_plan=preview.current.code, to_plan=preview.new.code,
                         takes_effect=preview.takes_effect.isoformat(), **note)
            session.commit()
            return ChangeResult(f"Your plan changes to {preview.new.name} on {format_date(preview.takes_effect)}.",
                                "scheduled")
        invoice = preview.invoice
        if invoice.total_cents > 0 and default_card(session, account_id) is None:
            raise NothingToPay("There is no default card to charge. Add a card and set it as default first.")
        session.add(invoice)
        issue_invoice(session, invoice, account, seller, now=now)
        surplus = _surplus(invoice)
        if surplus:
            session.add(CreditEntry(account_id=account_id, amount_cents=surplus, currency=invoice.currency,
                                    kind="proration", invoice_id=invoice.id,
                                    reason=f"Unused time on {preview.current.name} ({invoice.number})", created_at=now))
        audit.record(session, actor, f"subscription.{'resubscribed' if preview.kind == 'resubscribe' else 'upgraded'}",
                     now=now, account_id=account_id, subscription_id=subscription.id, from_plan=preview.current.code,
                     to_plan=preview.new.code, invoice_number=invoice.number, amount_cents=invoice.total_cents,
                     currency=invoice.currency, **note)
        new_name, number, total = preview.new.name, invoice.number, format_money(invoice.total_cents, invoice.currency)
        if invoice.status == "paid":  # nothing to charge: credit covered it
            advance_after_payment(subscription, invoice, now=now)
            session.commit()
            return ChangeResult(f"You're now on {new_name}. Nothing was charged: {number} is covered by credit.",
                                "changed", invoice.id)
        attempt = open_attempt(session, invoice, trigger="plan_change", now=now)
        try:
            session.commit()
        except IntegrityError as exc:
            # The same change a moment ago (a double click): its invoice for this very moment exists.
            session.rollback()
            raise PaymentInProgress("This change is already being made. Please wait a moment.") from exc
        attempt_id, invoice_id = attempt.id, invoice.id
    outcome = execute_attempt(database, gateway, attempt_id, now=now, policy=policy)
    if outcome.status == "succeeded":
        return ChangeResult(f"You're now on {new_name}. {total} was charged ({number}).", "changed", invoice_id)
    if outcome.status == "requires_action":
        return ChangeResult(f"Your bank needs you to confirm {total} for {number}. Your plan changes to {new_name} "
                            "as soon as it is paid.", "requires_action", invoice_id)
    if outcome.status in ("pending", "processing"):
        return ChangeResult(f"Your payment of {total} is being processed. Your plan changes to {new_name} as soon "
                            "as it completes.", "pending", invoice_id)
    reason = _void_declined(database, invoice_id, attempt_id, now=now)
    raise PlanChangeDeclined(f"The payment of {total} failed: {reason}. You are still on {preview.current.name}; "
                             "nothing was charged.", field=PLAN_FIELD)


def _void_declined(database: Database, invoice_id: int, attempt_id: int, *, now: datetime) -> str:
    """A declined change leaves nothing behind: its invoice is voided and any credit it used is given back."""
    with database.session() as session:
        invoice = lock_invoice(session, invoice_id)
        attempt = session.get(PaymentAttempt, attempt_id)
        reason = attempt.failure_message or reason_text(attempt.failure_code)
        if invoice.status == "open":
            void_unpaid(session, invoice, now=now,
                        reason="The payment for this plan change was declined; the plan did not change.")
        session.commit()
    return reason.rstrip(".")


def cancel_scheduled_change(session: Session, account_id: int, *, actor: Actor, now: datetime,
                            staff_note: str | None = None) -> Done[Subscription]:
    """Cancel this change: the scheduled downgrade is dropped and the current plan renews as before."""
    note = {"note": require_note(staff_note)} if staff_note is not None else {}
    subscription = live_subscription(session, account_id)
    if subscription.scheduled_plan_id is None:
        raise SubscriptionNotChangeable("There is no plan change scheduled.")
    scheduled = subscription.scheduled_plan
    subscription.scheduled_plan = None
    audit.record(session, actor, "subscription.plan_change_canceled", now=now, account_id=account_id,
                 subscription_id=subscription.id, to_plan=scheduled.code if scheduled else None, **note)
    session.commit()
    return Done(subscription, f"Your plan stays {subscription.plan.name}.")

