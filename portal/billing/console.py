"""The support console's read model: account search, and everything an account's console page shows.

Read only, in the caller's session; a fixed number of queries per page whatever the account's history (each
list is a server-side page of its own). The actions the page offers live with what they change (``refunds``,
``credits``, ``invoice_actions``, ``collection``); this module only says what they may be offered on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from math import ceil

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from ..models import Account, AuditEvent, CreditEntry, Invoice, OutboxMessage, PaymentAttempt, PaymentMethod, \
    Plan, Refund, Subscription, User
from .collecting import credits, refunds
from ..errors import NotFound
from ..money import amount_text
from .subscriptions.access import current_subscription
from .subscriptions.cancellation import REASONS as CANCEL_REASONS, CancelReason, stored_reason

SEARCH_PAGE_SIZE = 20
INVOICE_PAGE_SIZE = 10
MAIL_PAGE_SIZE = 10
AUDIT_PAGE_SIZE = 20
# Far beyond any real list; keeps OFFSET (and the number in the link) small whatever is asked for.
MAX_PAGE = 100_000


@dataclass(frozen=True)
class Page:
    """One page of a list: its items, where it is, and how many there are."""

    items: list
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def paginate(session: Session, stmt: Select, number: int, size: int) -> Page:
    """Page ``number`` (from 1) of ``stmt``; past the end is the last page, not an empty one."""
    number = max(1, min(number, MAX_PAGE))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    number = min(number, max(1, ceil(total / size)))
    items = list(session.scalars(stmt.offset((number - 1) * size).limit(size)))
    return Page(items, number, size, total)


# --- search -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountMatch:
    account: Account
    users: list[User]  # its users, oldest first


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_accounts(session: Session, query: str, page: int = 1) -> Page:
    """A page of AccountMatch: accounts whose name, billing e-mail, processor customer id, a user's e-mail, an
    invoice number or an invoice's bank-transfer reference contains ``query`` (any case, ``%`` and ``_``
    literally); all accounts when it is empty."""
    stmt = select(Account)
    query = query.strip()
    if query:
        like = _like(query)
        stmt = stmt.where(or_(
            Account.name.ilike(like, escape="\\"),
            Account.billing_email.ilike(like, escape="\\"),
            Account.processor_customer_id.ilike(like, escape="\\"),
            Account.id.in_(select(User.account_id).where(User.account_id.is_not(None),
                                                         User.email.ilike(like, escape="\\"))),
            Account.id.in_(select(Invoice.account_id).where(or_(
                Invoice.number.ilike(like, escape="\\"),
                # what a customer paying by bank transfer quotes, so staff can find whose wire arrived
                Invoice.transfer_reference.ilike(like, escape="\\")))),
        ))
    found = paginate(session, stmt.order_by(func.lower(Account.name), Account.id), page, SEARCH_PAGE_SIZE)
    users: dict[int, list[User]] = {}
    if found.items:
        for user in session.scalars(select(User).where(User.account_id.in_([a.id for a in found.items]))
                                    .order_by(User.id)):
            users.setdefault(user.account_id, []).append(user)
    matches = [AccountMatch(account, users.get(account.id, [])) for account in found.items]
    return Page(matches, found.number, found.size, found.total)


# --- one account --------------------------------------------------------------------------------

@dataclass(frozen=True)
class InvoiceActions:
    """One listed invoice in the action panel: what may still be refunded, and where to."""

    invoice: Invoice
    refundable_cents: int
    refunds: list[Refund]
    can_refund_to_card: bool

    @property
    def refund_phrase(self) -> str:
        return refunds.refund_phrase(self.invoice)

    @property
    def refundable_text(self) -> str:
        """What the refund form's amount field starts with: all that is left, as a plain number."""
        return amount_text(self.refundable_cents, self.invoice.currency)


@dataclass(frozen=True)
class ActionPanel:
    """The Billing actions panel: the credit balance and the actions on each listed invoice."""

    currency: str  # what credits are kept in
    credit: credits.CreditSummary
    invoices: list[InvoiceActions]


@dataclass(frozen=True)
class AccountView:
    account: Account
    customers: list[User]  # who "View as customer" can view as
    subscription: Subscription | None
    cards: list[PaymentMethod]  # saved, default first
    invoices: Page  # of issued invoices, newest first
    attempts: dict[int, list[PaymentAttempt]]  # of the listed invoices, by invoice id
    credits: list[CreditEntry]  # the whole ledger, newest first
    credit_balances: dict[str, int]  # by currency; the account's own currency always present
    mails: Page  # of OutboxMessage, newest first
    audit: Page  # of AuditEvent, newest first
    people: dict[int, User]  # everyone the audit page and the ledger name, by id
    actions: ActionPanel  # on the listed invoices
    plans: list[Plan] = field(default_factory=list)  # what staff may move the subscription to (its currency)
    cancel_reason: CancelReason | None = None  # why the customer canceled (kept after Keep, for the report)
    cancel_reasons: dict[str, str] = field(default_factory=lambda: dict(CANCEL_REASONS))

    @property
    def page_args(self) -> dict[str, int]:
        """Where each list is, so a link that moves one of them keeps the others in place."""
        return {"invoice_page": self.invoices.number, "mail_page": self.mails.number,
                "audit_page": self.audit.number}


def customers_of(session: Session, account_id: int) -> list[User]:
    """The account's customer users, oldest first (staff have no account, so never appear)."""
    return list(session.scalars(select(User).where(User.account_id == account_id, User.role == "customer")
                                .order_by(User.id)))


def account_view(session: Session, account_id: int, *, invoice_page: int = 1, mail_page: int = 1,
                 audit_page: int = 1) -> AccountView:
    """Everything the console shows of one account; NotFound for an id that is no account."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    invoices = paginate(session, select(Invoice).where(Invoice.account_id == account.id, Invoice.number.is_not(None))
                        .order_by(Invoice.issued_at.desc(), Invoice.id.desc()), invoice_page, INVOICE_PAGE_SIZE)
    attempts: dict[int, list[PaymentAttempt]] = {}
    if invoices.items:
        for attempt in session.scalars(select(PaymentAttempt)
                                       .where(PaymentAttempt.invoice_id.in_([i.id for i in invoices.items]))
                                       .order_by(PaymentAttempt.invoice_id, PaymentAttempt.attempt_number)):
            attempts.setdefault(attempt.invoice_id, []).append(attempt)
    ledger = list(session.scalars(select(CreditEntry).where(CreditEntry.account_id == account.id)
                                  .order_by(CreditEntry.created_at.desc(), CreditEntry.id.desc())))
    balances = dict(session.execute(select(CreditEntry.currency, func.sum(CreditEntry.amount_cents))
                                    .where(CreditEntry.account_id == account.id)
                                    .group_by(CreditEntry.currency)).all())
    balances.setdefault(account.currency, 0)
    mails = paginate(session, select(OutboxMessage).where(OutboxMessage.account_id == account.id)
                     .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()), mail_page, MAIL_PAGE_SIZE)
    audit = paginate(session, select(AuditEvent).where(AuditEvent.account_id == account.id)
                     .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()), audit_page, AUDIT_PAGE_SIZE)
    people_ids = {e.actor_user_id for e in audit.items} | {e.on_behalf_of_user_id for e in audit.items}
    people_ids |= {c.created_by_user_id for c in ledger}
    people_ids.discard(None)
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(people_ids)))} if people_ids else {}
    cards = list(session.scalars(select(PaymentMethod)
                                 .where(PaymentMethod.account_id == account.id, PaymentMethod.detached_at.is_(None))
                                 .order_by(PaymentMethod.is_default.desc(), PaymentMethod.id)))
    subscription = current_subscription(session, account.id)
    plans = list(session.scalars(select(Plan).where(Plan.currency == subscription.plan.currency)
                                 .order_by(Plan.interval, Plan.price_cents, Plan.id))) if subscription else []
    return AccountView(account=account, customers=customers_of(session, account.id),
                       subscription=subscription, cards=cards, invoices=invoices,
                       attempts=attempts, credits=ledger, credit_balances=balances, mails=mails, audit=audit,
                       people=people, actions=action_panel(session, account, invoices.items), plans=plans,
                       cancel_reason=stored_reason(subscription.cancel_reason) if subscription else None)


@dataclass(frozen=True)
class ReasonCount:
    month: date  # its first day; pages print it with Babel ("November 2026")
    reason: str  # the label customers chose
    count: int


def cancellation_reasons(session: Session, *, months: int = 12, today: date) -> list[ReasonCount]:
    """Why customers canceled, counted by month (of the request) and reason, newest month first: every
    cancel request counts once, also one later undone with Keep my subscription."""
    index = today.year * 12 + today.month - 1 - (months - 1)  # the first month shown, counted in months
    since = datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)
    counts: dict[tuple[date, str], int] = {}
    for occurred_at, details in session.execute(
            select(AuditEvent.occurred_at, AuditEvent.details)
            .where(AuditEvent.action == "subscription.cancel_requested", AuditEvent.occurred_at >= since)):
        key = (occurred_at.date().replace(day=1), CANCEL_REASONS.get((details or {}).get("reason", ""), "Other reason"))
        counts[key] = counts.get(key, 0) + 1
    rows = [ReasonCount(month, reason, n) for (month, reason), n in counts.items()]
    # Newest month first; within a month the most common reason first.
    return sorted(rows, key=lambda row: (-row.month.toordinal(), -row.count, row.reason))


def action_panel(session: Session, account: Account, invoices: list[Invoice]) -> ActionPanel:
    """The panel's data for ``invoices``: refundable amounts (pending refunds count against them), whether a
    refund can go back to a card, and the credit balance."""
    by_invoice = refunds.refunds_by_invoice(session, [i.id for i in invoices])
    rows = []
    for invoice in invoices:
        made = by_invoice.get(invoice.id, [])
        used = sum(r.amount_cents for r in made if r.counts)
        refundable = max(0, invoice.amount_paid_cents - used) if invoice.status == "paid" else 0
        rows.append(InvoiceActions(invoice=invoice, refundable_cents=refundable, refunds=made,
                                   can_refund_to_card=refundable > 0
                                   and refunds.original_payment_id(session, invoice) is not None))
    currency = credits.account_currency(session, account)
    return ActionPanel(currency=currency, credit=credits.credit_summary(session, account.id, currency=currency),
                       invoices=rows)
