"""Everything the Billing details page shows, gathered in a fixed, small number of queries."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..models import BILLABLE_STATUSES, Account, Invoice, PaymentAttempt, PaymentMethod, Plan, Refund, Subscription
from .collecting.bank_transfer import TransferTerms, transfer_offers
from .collecting.credits import CreditSummary, credit_summary
from .collecting.dunning import reason_text
from .collecting.refunds import refunds_by_invoice
from .customer import addresses
from .invoicing.invoices import InvoicePage, credit_balance, list_invoices
from .invoicing.pricing import Quote, quote
from .invoicing.seller import Seller
from .payment_methods import cards
from .subscriptions.access import current_subscription
from .subscriptions.changes import PlanPanel, plan_panel


@dataclass
class SubscriptionSummary:
    subscription: Subscription
    next_billing_date: date | None
    next_charge: Quote | None  # None unless the subscription section is asked for (it alone shows it)
    scheduled_plan: Plan | None = None  # a downgrade that takes effect at the period end

    @property
    def status_label(self) -> str:
        return self.subscription.status_label


@dataclass
class PaymentProblem:
    """Why the subscription is Past due or Suspended, for the banner on Billing details."""

    status: str
    amount_due_cents: int
    currency: str
    invoice_count: int
    failed_at: datetime | None
    reason: str
    next_retry_at: datetime | None
    needs_action: bool
    # The backup method was tried after the default and failed too (its label), so the banner says so.
    backup_tried: str | None = None


# The page's sections, named as the template's blocks. An HTMX answer swaps one or a few of them, and only
# those are gathered: setting a default card must not read 2,000 invoices to throw them away.
SECTIONS = frozenset({"subscription", "payment_details", "address", "invoices", "credits"})
# What each section reads. The subscription's next charge needs the credit balance (a sum, not the history
# the Credits section lists) and its "Charged to" the cards; Delete on a card depends on whether the subscription is billable.
_NEEDS = {
    "subscription": {"subscription", "credit_balance", "cards"},
    "payment_details": {"subscription", "cards"},
    "address": set(),
    "invoices": {"invoices"},
    "credits": {"credits"},
}


@dataclass
class BillingOverview:
    """What the asked-for sections show. A part no asked-for section needs is None, so a template block
    that reads a part it was not built with fails at once instead of showing an empty list."""

    account: Account
    subscription: SubscriptionSummary | None
    cards: list[PaymentMethod] | None
    today: date
    invoices: InvoicePage | None
    credits: CreditSummary | None
    refunds: dict[int, list[Refund]] | None  # of the listed invoices, by invoice id
    problem: PaymentProblem | None = None
    plans: PlanPanel | None = None  # the Change plan panel, when it is open
    processing: frozenset[int] = frozenset()  # listed invoices whose bank debit has not settled yet
    transfer_offers: frozenset[int] = frozenset()  # listed invoices that may be paid by bank transfer

    @property
    def default_card(self) -> PaymentMethod | None:
        return next((c for c in self.cards if c.is_default), None)

    def delete_refusal(self, card: PaymentMethod) -> str | None:
        """Why the card's menu can't offer Delete now, or None."""
        billable = self.subscription is not None and self.subscription.subscription.status in BILLABLE_STATUSES
        return cards.delete_refusal(card, self.cards, billable=billable)

    @property
    def countries(self) -> list[tuple[str, str]]:
        return [(c.code, c.name) for c in addresses.countries()]


def billing_overview(session: Session, account_id: int, *, today: date, seller: Seller,
                     invoice_cursor: str | None = None, plan_panel_at: datetime | None = None,
                     plan_choice: str | None = None, sections: frozenset[str] | None = None,
                     transfer_terms: TransferTerms | None = None) -> BillingOverview:
    """The whole page, or with ``sections`` (names from SECTIONS) only what those sections show. With
    ``plan_panel_at`` (the request's time) also the Change plan panel, previewing ``plan_choice``."""
    unknown = set(sections or ()) - SECTIONS
    if unknown:
        raise ValueError(f"unknown Billing details sections: {sorted(unknown)}")
    needs = set().union(*(_NEEDS[name] for name in (SECTIONS if sections is None else sections)))
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    subscription = current_subscription(session, account_id) if "subscription" in needs else None
    credit = credit_summary(session, account_id, currency=account.currency) if "credits" in needs else None
    summary = None
    if subscription is not None:
        billing_date = subscription.current_period_end.date() if subscription.status != "canceled" else None
        scheduled = session.get(Plan, subscription.scheduled_plan_id) if subscription.scheduled_plan_id else None
        next_charge = None
        if "credit_balance" in needs:  # only the subscription section shows the next charge
            balance = credit.balance_cents if credit is not None else credit_balance(session, account_id)
            next_charge = quote(account, scheduled or subscription.plan, seller, credit_balance_cents=balance)
        summary = SubscriptionSummary(subscription=subscription, next_billing_date=billing_date,
                                      next_charge=next_charge, scheduled_plan=scheduled)
    problem = None
    if subscription is not None and subscription.status in ("past_due", "suspended"):
        problem = payment_problem(session, account_id, subscription.status)
    plans = None
    if plan_panel_at is not None and subscription is not None:
        plans = plan_panel(session, account, subscription, seller, plan_id=plan_choice, now=plan_panel_at)
    invoices = refunds = None
    processing = offers = frozenset()
    if "invoices" in needs:
        invoices = list_invoices(session, account_id, cursor=invoice_cursor)
        refunds = refunds_by_invoice(session, [i.id for i in invoices.invoices])
        processing = processing_invoices(session, [i.id for i in invoices.invoices if i.status == "open"])
        offers = transfer_offers(session, [i for i in invoices.invoices if i.id not in processing], transfer_terms)
    return BillingOverview(account=account, subscription=summary,
                           cards=cards.list_cards(session, account_id) if "cards" in needs else None,
                           today=today, invoices=invoices, credits=credit, refunds=refunds, problem=problem,
                           plans=plans, processing=processing, transfer_offers=offers)


def processing_invoices(session: Session, invoice_ids: list[int]) -> frozenset[int]:
    """Of these invoices, those with a payment still processing (a bank debit takes days to settle): they
    show Processing instead of Pay now. One query, and none when no invoice is open."""
    if not invoice_ids:
        return frozenset()
    return frozenset(session.scalars(select(PaymentAttempt.invoice_id).where(
        PaymentAttempt.invoice_id.in_(invoice_ids), PaymentAttempt.status == "processing")))


def payment_problem(session: Session, account_id: int, status: str) -> PaymentProblem | None:
    open_invoices = list(session.scalars(select(Invoice).where(Invoice.account_id == account_id,
                                                               Invoice.status == "open")))
    if not open_invoices:
        return None
    last_failure = session.scalar(
        select(PaymentAttempt).join(Invoice, Invoice.id == PaymentAttempt.invoice_id)
        .where(Invoice.account_id == account_id, Invoice.status == "open",
               PaymentAttempt.status.in_(("failed", "requires_action")))
        .order_by(PaymentAttempt.completed_at.desc(), PaymentAttempt.id.desc()).limit(1))
    retries = [i.next_retry_at for i in open_invoices if i.next_retry_at and i.auto_retry]
    return PaymentProblem(status=status, amount_due_cents=sum(i.amount_due_cents for i in open_invoices),
                          currency=open_invoices[0].currency, invoice_count=len(open_invoices),
                          failed_at=last_failure.completed_at if last_failure else None,
                          reason=reason_text(last_failure.failure_code) if last_failure else "",
                          next_retry_at=min(retries) if retries and status == "past_due" else None,
                          needs_action=any(not i.auto_retry for i in open_invoices)
                          or (last_failure is not None and last_failure.status == "requires_action"),
                          # The backup is charged right after the default's decline, so it is the last failure.
                          backup_tried=last_failure.payment_method_label
                          if last_failure is not None and last_failure.trigger == "backup" else None)
