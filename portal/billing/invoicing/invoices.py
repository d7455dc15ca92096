"""Invoices: building, issuing (numbers, snapshots), listing and reading them."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from ...bounds import parse_int
from ...documents.pdf import invoice_pdf
from ...errors import NotFound
from ...models import (Account, CreditEntry, Invoice, InvoiceLine, InvoiceNumberSequence, InvoiceTaxLine, Plan,
                       Subscription)
from ..customer import addresses
from .seller import Seller
from .tax import TaxError, calculate_tax, format_rate

PAGE_SIZE = 12


def billing_snapshot(account: Account) -> dict:
    """What the invoice says about the customer, frozen at issue."""
    return {"name": account.name, "address_line1": account.address_line1, "address_line2": account.address_line2,
            "city": account.city, "postal_code": account.postal_code, "region": account.region,
            "country": account.country, "country_name": addresses.country_name(account.country) if account.country else "",
            "email": account.billing_email, "vat_number": account.vat_number if account.vat_status == "valid" else "",
            "vat_status": account.vat_status}


def seller_snapshot(seller: Seller) -> dict:
    return {"name": seller.name, "address_lines": list(seller.address_lines), "country": seller.country,
            "vat_number": seller.vat_number}


def credit_balance(session: Session, account_id: int) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(CreditEntry.amount_cents), 0))
                              .where(CreditEntry.account_id == account_id)) or 0)


def credit_balances(session: Session, account_ids: list[int]) -> dict[int, int]:
    """``credit_balance`` of several accounts in one statement (0 for an account with no entries)."""
    found = dict(session.execute(select(CreditEntry.account_id, func.sum(CreditEntry.amount_cents))
                                 .where(CreditEntry.account_id.in_(account_ids))
                                 .group_by(CreditEntry.account_id)).all())
    return {account_id: int(found.get(account_id) or 0) for account_id in account_ids}


def build_subscription_invoice(session: Session, account: Account, subscription: Subscription, plan: Plan, *,
                               period_start: datetime, period_end: datetime, seller: Seller, now: datetime,
                               credit_available: int | None = None) -> Invoice:
    """A draft invoice for one period of a subscription, with credits applied first and then tax.

    ``credit_available``: the account's credit balance when the caller has read it already (a renewal batch
    reads every account's in one statement)."""
    interval = "Monthly" if plan.interval == "month" else "Annual"
    invoice = Invoice(account_id=account.id, subscription_id=subscription.id, currency=plan.currency,
                      period_start=period_start, period_end=period_end, status="draft", created_at=now)
    invoice.lines.append(InvoiceLine(position=0, description=f"{plan.name} plan ({interval.lower()})",
                                     period_start=period_start, period_end=period_end, quantity=1,
                                     unit_amount_cents=plan.price_cents, amount_cents=plan.price_cents))
    apply_totals(session, invoice, account, seller, credit_available=credit_available)
    session.add(invoice)
    return invoice


def apply_totals(session: Session, invoice: Invoice, account: Account, seller: Seller, *,
                 credit_available: int | None = None) -> None:
    """Subtotal from the lines; the credit balance is used first (partly when it is smaller); then tax on
    what remains, rounded half-up on the invoice total."""
    subtotal = sum(line.amount_cents for line in invoice.lines)
    balance = credit_balance(session, account.id) if credit_available is None else credit_available
    credit = max(0, min(balance, subtotal))
    taxable = subtotal - credit
    invoice.subtotal_cents, invoice.credit_applied_cents = subtotal, credit
    invoice.tax_lines.clear()
    try:
        tax = calculate_tax(seller_country=seller.country, seller_vat_number=seller.vat_number,
                            customer_country=account.country, customer_region=account.region,
                            customer_vat_number=account.vat_number, customer_vat_status=account.vat_status,
                            amount_cents=taxable, rates=seller.rates)
    except TaxError:
        # An address too incomplete for tax: bill without it rather than not at all, and say so.
        tax = None
    if tax is None:
        invoice.tax_cents = 0
    else:
        note = ""
        if tax.reverse_charge:
            note = (f"Reverse charge: VAT to be accounted for by the recipient (Article 196, Council Directive "
                    f"2006/112/EC). Supplier VAT {tax.seller_vat_number}, customer VAT {tax.customer_vat_number}.")
        if tax.kind != "none" or tax.reverse_charge:
            invoice.tax_lines.append(InvoiceTaxLine(label=tax.label, rate=format_rate(tax.rate), taxable_cents=taxable,
                                                    amount_cents=tax.amount_cents, reverse_charge=tax.reverse_charge,
                                                    note=note))
        invoice.tax_cents = tax.amount_cents
    invoice.total_cents = taxable + invoice.tax_cents


def issue_invoice(session: Session, invoice: Invoice, account: Account, seller: Seller, *, now: datetime,
                  number: str | None = None) -> Invoice:
    """Give a draft its number and snapshots and open it; credits used are written to the ledger.

    Runs inside the caller's transaction: the number comes from a sequence row updated in that same
    transaction, so two processes issuing at once get consecutive numbers and a rollback leaves no gap.
    ``number``: one the caller took in this transaction for a flushed draft (``take_invoice_numbers``).
    """
    if invoice.status != "draft":
        raise ValueError(f"invoice {invoice.id} is already issued")
    if number is None:
        session.flush()
        number = next_invoice_number(session, f"INV-{now.year}")
    invoice.number = number
    invoice.billing_snapshot = billing_snapshot(account)
    invoice.seller_snapshot = seller_snapshot(seller)
    invoice.issued_at = now
    invoice.due_at = now
    if invoice.credit_applied_cents:
        session.add(CreditEntry(account_id=account.id, amount_cents=-invoice.credit_applied_cents,
                                currency=invoice.currency, kind="applied", invoice_id=invoice.id,
                                reason=f"Applied to {invoice.number}", created_at=now))
    if invoice.total_cents == 0:
        invoice.status, invoice.paid_at = "paid", now  # fully covered by credit: nothing to collect
    else:
        invoice.status = "open"
    return invoice


def next_invoice_number(session: Session, prefix: str) -> str:
    """``INV-2026-000123``: the next number for the prefix, locked until the caller commits."""
    value = session.scalar(update(InvoiceNumberSequence).where(InvoiceNumberSequence.prefix == prefix)
                           .values(next_value=InvoiceNumberSequence.next_value + 1)
                           .returning(InvoiceNumberSequence.next_value - 1))
    if value is None:
        try:
            with session.begin_nested():
                session.execute(insert(InvoiceNumberSequence).values(prefix=prefix, next_value=2))
            value = 1
        except IntegrityError:
            # Another process created the prefix first; take the next number the normal way.
            return next_invoice_number(session, prefix)
    return f"{prefix}-{value:06d}"


def take_invoice_numbers(session: Session, prefix: str, count: int) -> list[str]:
    """``count`` consecutive numbers for the prefix in one statement (a renewal batch's invoices), locked
    until the caller commits. Gap-free as ``next_invoice_number`` is: the counter moves by exactly the
    numbers the caller then gives, in the same transaction, so a rollback takes the move back with them."""
    if count <= 0:
        return []
    first = session.scalar(update(InvoiceNumberSequence).where(InvoiceNumberSequence.prefix == prefix)
                           .values(next_value=InvoiceNumberSequence.next_value + count)
                           .returning(InvoiceNumberSequence.next_value - count))
    if first is None:
        # The prefix's first invoice (a new year): made the usual way, which creates its row.
        first = int(next_invoice_number(session, prefix).rsplit("-", 1)[1])
        return [f"{prefix}-{first:06d}"] + take_invoice_numbers(session, prefix, count - 1)
    return [f"{prefix}-{first + n:06d}" for n in range(count)]


def begin_write(session: Session) -> None:
    """Make the caller's transaction a write transaction now, before it reads what it will decide on.

    On PostgreSQL row locks (``FOR UPDATE``) do this per row. SQLite has one writer for the whole file and
    its default transactions start as readers, so two requests could both read "nothing in flight" and then
    both write: ``BEGIN IMMEDIATE`` takes the write lock first (waiting for it up to the busy timeout), so the
    check and the write that follows it are one step. Never call a processor while holding it: the sandbox
    processor writes to the same file from its own connection.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def lock_invoice(session: Session, invoice_id: int, *, account_id: int | None = None) -> Invoice:
    """The one invoice lock: the issued invoice, locked until the caller commits (``FOR UPDATE`` on
    PostgreSQL, the database's write lock on SQLite), read afresh. Every path that collects, voids, refunds
    or records money for an invoice takes it first; another account's invoice is not found."""
    begin_write(session)
    query = select(Invoice).where(Invoice.id == invoice_id, Invoice.status != "draft")
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    if account_id is not None:
        query = query.where(Invoice.account_id == account_id)
    invoice = session.scalar(query.execution_options(populate_existing=True))
    if invoice is None:
        raise NotFound("That invoice does not exist.")
    return invoice


def lock_invoices(session: Session, invoice_ids: list[int]) -> dict[int, Invoice]:
    """``lock_invoice`` for several invoices in one statement (a renewal batch's outcomes), in id order so two
    processes locking overlapping sets never wait on each other in a circle."""
    begin_write(session)
    query = select(Invoice).where(Invoice.id.in_(invoice_ids), Invoice.status != "draft").order_by(Invoice.id)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    invoices = {i.id: i for i in session.scalars(query.execution_options(populate_existing=True))}
    if len(invoices) != len(set(invoice_ids)):
        raise NotFound("That invoice does not exist.")
    return invoices


@dataclass(frozen=True)
class PaymentApplied:
    """What a payment did to an invoice: how much of it counted, whether that paid the invoice in full,
    and what is left over (money that must go back to the customer)."""

    applied_cents: int
    paid_in_full: bool
    surplus_cents: int


def apply_payment(invoice: Invoice, *, amount_cents: int, currency: str, now: datetime,
                  payment_method_label: str = "", transaction_id: str = "") -> PaymentApplied:
    """Apply money received to an invoice. Paid means paid in full: less than what is due is a partial
    payment (amount paid grows, the rest stays due); more, money for an invoice that is already Paid or
    Void, or money in another currency is surplus for the caller to send back."""
    amount_cents = max(0, int(amount_cents))
    if invoice.status != "open" or (currency or "").upper() != invoice.currency.upper():
        return PaymentApplied(applied_cents=0, paid_in_full=False, surplus_cents=amount_cents)
    applied = min(amount_cents, invoice.amount_due_cents)
    invoice.amount_paid_cents = invoice.amount_paid_cents + applied
    invoice.payment_method_label = payment_method_label or invoice.payment_method_label
    invoice.processor_transaction_id = transaction_id or invoice.processor_transaction_id
    invoice.status_version = invoice.status_version + 1
    paid = invoice.amount_paid_cents >= invoice.total_cents
    if paid:
        invoice.status = "paid"
        invoice.paid_at = now
        invoice.next_retry_at = None
    return PaymentApplied(applied_cents=applied, paid_in_full=paid, surplus_cents=amount_cents - applied)


def mark_paid(invoice: Invoice, *, amount_cents: int, now: datetime, payment_method_label: str = "",
              transaction_id: str = "") -> bool:
    """Record a payment of the whole amount due (seeding and tests). Returns False when it was already
    paid; like ``apply_payment`` it never marks Paid for less than the total."""
    if invoice.status == "paid":
        return False
    if invoice.status == "void":
        raise ValueError(f"invoice {invoice.number} is void")
    return apply_payment(invoice, amount_cents=amount_cents, currency=invoice.currency, now=now,
                         payment_method_label=payment_method_label, transaction_id=transaction_id).paid_in_full


@dataclass
class InvoicePage:
    invoices: list[Invoice]
    next_cursor: str | None  # "issued_at_iso|id" of the last row, when more exist


def list_invoices(session: Session, account_id: int, *, cursor: str | None = None,
                  limit: int = PAGE_SIZE) -> InvoicePage:
    """Issued invoices, newest first, a page at a time (keyset pagination: page 100 costs what page 1 does)."""
    # The lines (the list's short description) come in the same statement: SQLAlchemy joins them to the
    # limited page of invoices as a subquery, so the page costs one statement however many invoices exist.
    if not cursor:
        rows = list(session.scalars(_first_invoice_page(limit + 1), {"account_id": account_id}).unique())
        return _invoice_page(rows, limit)
    query = (select(Invoice).options(joinedload(Invoice.lines))
             .where(Invoice.account_id == account_id, Invoice.status != "draft")
             .order_by(Invoice.issued_at.desc(), Invoice.id.desc()).limit(limit + 1))
    if cursor:
        try:
            when_text, id_text = cursor.split("|", 1)
            # Both bounded to what the columns hold, or the query itself would fail: the id to an Integer,
            # the time to an aware one that converts to UTC (ours always do; a naive or year-1 one doesn't).
            when, last_id = datetime.fromisoformat(when_text), parse_int(id_text)
            when = when.astimezone(timezone.utc) if when.tzinfo is not None else None
        except (ValueError, OverflowError):
            when, last_id = None, None
        if when is not None and last_id is not None:
            query = query.where(or_(Invoice.issued_at < when, and_(Invoice.issued_at == when, Invoice.id < last_id)))
    return _invoice_page(list(session.scalars(query).unique()), limit)


@functools.lru_cache(maxsize=8)
def _first_invoice_page(rows: int):
    """The first page's statement for ``rows`` rows, built once per process: Billing details runs it on every
    view, and building it cost more than running it."""
    return (select(Invoice).options(joinedload(Invoice.lines))
            .where(Invoice.account_id == bindparam("account_id"), Invoice.status != "draft")
            .order_by(Invoice.issued_at.desc(), Invoice.id.desc()).limit(rows))


def _invoice_page(rows: list[Invoice], limit: int) -> InvoicePage:
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = f"{rows[-1].issued_at.isoformat()}|{rows[-1].id}" if more and rows else None
    return InvoicePage(invoices=rows, next_cursor=next_cursor)


@dataclass(frozen=True)
class InvoiceFile:
    filename: str
    content: bytes


def download_invoice_pdf(session: Session, account_id: int, invoice_id: int, *, now: datetime) -> InvoiceFile:
    """The PDF of one of the account's invoices: rendered once per status and kept (committed here, so the
    next download is served from the cache), then read back."""
    invoice = get_invoice(session, account_id, invoice_id)
    content = invoice_pdf(session, invoice, now=now)
    session.commit()
    return InvoiceFile(invoice.filename, content)


def get_invoice(session: Session, account_id: int, invoice_id: int) -> Invoice:
    """One of the account's issued invoices with its lines; anyone else's is not found."""
    invoice = session.scalar(select(Invoice).options(selectinload(Invoice.lines), selectinload(Invoice.tax_lines))
                             .where(Invoice.id == invoice_id, Invoice.account_id == account_id,
                                    Invoice.status != "draft"))
    if invoice is None:
        raise NotFound("That invoice does not exist.")
    return invoice


def send_invoice_copy(session: Session, account_id: int, invoice_id: int, *, to: str, request_key: str,
                      now: datetime) -> Invoice:
    """Queue a copy of an invoice (with its PDF) to ``to``, the asking user's own e-mail."""
    from ...notifications import outbox

    invoice = get_invoice(session, account_id, invoice_id)
    account = session.get(Account, account_id)
    outbox.invoice_copy(session, invoice, account, to=to, request_key=request_key, now=now)
    session.commit()
    return invoice
