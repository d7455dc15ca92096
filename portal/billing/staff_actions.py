"""What support staff do to an account's invoices from the console: void, retry payment, resend, record a
wire transfer; and what the console's action panel shows (refundable amounts, the credit balance).

Refunds and credits live in ``refunds`` and ``credits``. Every action here is audited with the staff member
as the actor, and each runs in a transaction of its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal

from babel.numbers import get_currency_precision
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import Database
from ..models import Account, Invoice, PaymentAttempt, Subscription, utcnow
from ..notifications import outbox
from .. import audit
from . import credits, refunds
from ..audit import Actor
from ..payments.gateway import PaymentGateway
from .collection import advance_after_payment, claim, collect_now, expire_open_checkouts, in_flight_message, settle_payment
from .dunning import RetryPolicy, outstanding_invoices, reason_text
from ..errors import InvalidInput, InvoiceNotOpen, NotFound, PaymentInProgress
from ..money import format_money

# ASCII digits only: ``\d`` and ``Decimal()`` also take other scripts' digits ("١٢", "１２") as numbers.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
# What people type around a number and may be dropped: spaces, thousands separators, currency signs.
_DECORATION = re.compile(r"[\s,$€£¥]")


# --- input --------------------------------------------------------------------------------------

def parse_amount(text: str | None, currency: str, *, max_cents: int, field: str = "amount") -> int:
    """``"12.50"`` (or ``"$1,012.50"``) in major units -> integer minor units, exactly; InvalidInput otherwise.

    Only ASCII digits, at most the currency's decimals (two for USD, none for JPY) and at most ``max_cents``
    (``PORTAL_MAX_AMOUNT_CENTS``): a typo of a few extra digits must not become a credit or a refund."""
    cleaned = _DECORATION.sub("", text or "")
    if not cleaned:
        raise InvalidInput({field: "Enter an amount."})
    if cleaned.startswith("-"):
        raise InvalidInput({field: "Enter an amount greater than zero."})
    currency = currency.upper()
    precision = get_currency_precision(currency)
    match = _AMOUNT.fullmatch(cleaned)
    if match is None or len(match.group(2) or "") > precision:
        example = "12" if precision == 0 else "12." + "5" * precision
        raise InvalidInput({field: f"Enter the amount in {currency}, like {example}."})
    whole, fraction = match.group(1).lstrip("0"), (match.group(2) or "").ljust(precision, "0")
    if len(whole) > len(str(max_cents)):
        cents = max_cents + 1  # more digits than the limit has: too much, without int() reading a long string
    else:
        cents = int(whole or "0") * 10**precision + int(fraction or "0")
    if cents <= 0:
        raise InvalidInput({field: "Enter an amount greater than zero."})
    if cents > max_cents:
        raise InvalidInput({field: f"Enter at most {format_money(max_cents, currency)}."})
    return cents


def amount_text(cents: int, currency: str) -> str:
    """Minor units as the plain number a form field shows (``2125`` -> ``"21.25"``)."""
    precision = get_currency_precision(currency.upper())
    return f"{Decimal(cents).scaleb(-precision):.{precision}f}"


# --- what the panel shows -----------------------------------------------------------------------

@dataclass
class InvoiceActions:
    invoice: Invoice
    refundable_cents: int
    refunds: list
    can_refund_to_card: bool

    @property
    def refund_phrase(self) -> str:
        return refunds.refund_phrase(self.invoice)


@dataclass
class AccountActions:
    account: Account
    currency: str
    credit: credits.CreditSummary
    invoices: list[InvoiceActions]


def account_actions(session: Session, account: Account, invoices: list[Invoice]) -> AccountActions:
    """What the console's action panel needs for an account and the invoices it lists."""
    by_invoice = refunds.refunds_by_invoice(session, [i.id for i in invoices])
    rows = []
    for invoice in invoices:
        used = sum(r.amount_cents for r in by_invoice.get(invoice.id, []) if r.counts)
        refundable = max(0, invoice.amount_paid_cents - used) if invoice.status == "paid" else 0
        rows.append(InvoiceActions(invoice=invoice, refundable_cents=refundable, refunds=by_invoice.get(invoice.id, []),
                                   can_refund_to_card=refundable > 0
                                   and refunds.original_payment_id(session, invoice) is not None))
    currency = credits.account_currency(session, account)
    return AccountActions(account=account, currency=currency, credit=credits.credit_summary(session, account.id,
                                                                                           currency=currency),
                          invoices=rows)


# --- actions ------------------------------------------------------------------------------------

def void_invoice(database: Database, gateway: PaymentGateway, account_id: int, invoice_id: int, *, reason: str,
                 actor: Actor, now: datetime) -> Invoice:
    """Void an Open invoice: nothing is owed any more, automatic retries stop, and a subscription that was
    Past due or Suspended only for it is active again. A paid invoice can't be voided (refund it instead).

    Its open payment pages are expired at the processor first, so none can take money for a void invoice;
    a payment in flight refuses the void until its outcome is known.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput({"reason": "Enter the reason for voiding this invoice."})
    if len(reason) > 300:
        raise InvalidInput({"reason": "Use at most 300 characters."})
    with database.session() as session:
        _open_invoice(session, invoice_id, account_id, now=now, paid_message="{number} is paid, so it can't be "
                      "voided. Refund it instead.")
    expire_open_checkouts(database, gateway, invoice_id, now=now, account_id=account_id,
                          why="Closed: the invoice was voided.")
    with database.session() as session:
        invoice = _open_invoice(session, invoice_id, account_id, now=now, paid_message="{number} is paid, so it "
                                "can't be voided. Refund it instead.", verb="voiding the invoice")
        invoice.status, invoice.voided_at, invoice.void_reason = "void", now, reason
        invoice.auto_retry, invoice.next_retry_at = False, None
        invoice.status_version = invoice.status_version + 1
        subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
        if subscription is not None and subscription.status in ("past_due", "suspended"):
            session.flush()
            if not outstanding_invoices(session, invoice.account_id):
                advance_after_payment(subscription, invoice, now=now)
        audit.record(session, actor, "invoice.voided", now=now, account_id=invoice.account_id, invoice_id=invoice.id,
                     invoice_number=invoice.number, amount_cents=invoice.total_cents, currency=invoice.currency,
                     reason=reason)
        session.commit()
        return invoice


def _open_invoice(session: Session, invoice_id: int, account_id: int, *, now: datetime, paid_message: str,
                  verb: str | None = None) -> Invoice:
    """The locked invoice, refused unless it is Open (and, with ``verb``, unless nothing is collecting it)."""
    found = claim(session, invoice_id, now=now, account_id=account_id)
    invoice = found.invoice
    if invoice.status == "paid":
        raise InvoiceNotOpen(paid_message.format(number=invoice.number))
    if invoice.status != "open":
        raise InvoiceNotOpen(f"{invoice.number} is already {invoice.status_label.lower()}.")
    if verb is not None and (found.in_flight is not None or found.open_pages):
        attempt = found.in_flight or found.open_pages[0]
        raise PaymentInProgress(f"{in_flight_message(invoice, attempt)} Wait for its outcome before {verb}.")
    return invoice


@dataclass
class RetryOutcome:
    invoice_number: str
    status: str
    message: str


def retry_invoice_payment(database: Database, gateway: PaymentGateway, account_id: int, invoice_id: int, *,
                          actor: Actor, now: datetime, policy: RetryPolicy) -> RetryOutcome:
    """Charge one Open invoice now with the account's default card (the one collection path), audited."""
    outcome = collect_now(database, gateway, invoice_id, trigger="staff", now=now, policy=policy,
                          account_id=account_id, actor=actor)
    with database.session() as session:
        attempt = session.get(PaymentAttempt, outcome.attempt_id)
        number = attempt.invoice.number
        if outcome.status == "succeeded":
            return RetryOutcome(number, "succeeded", f"Payment received for {number}.")
        if outcome.status == "pending":
            return RetryOutcome(number, "pending", f"The payment for {number} is being processed.")
        why = attempt.failure_message or reason_text(attempt.failure_code)
        return RetryOutcome(number, outcome.status, f"The payment for {number} failed: {why}")


def resend_invoice(session: Session, account_id: int, invoice_id: int, *, actor: Actor, request_key: str,
                   now: datetime | None = None) -> Invoice:
    """E-mail the invoice (with its PDF) to the billing e-mail again: a new message per request."""
    now = now or utcnow()
    invoice = session.scalar(select(Invoice).where(Invoice.id == invoice_id, Invoice.account_id == account_id,
                                                   Invoice.status != "draft"))
    if invoice is None:
        raise NotFound("That invoice does not exist.")
    account = session.get(Account, account_id)
    outbox.enqueue(session, dedupe_key=f"invoice-resent-{invoice.id}-{request_key}", kind="invoice_resent",
                   to=account.billing_email, account_id=account.id,
                   subject=f"Invoice {invoice.number} from {invoice.seller_snapshot.get('name', '')}".strip(),
                   template="invoice_copy", context={"invoice": invoice, "account": account},
                   attachments=[{"type": "invoice_pdf", "invoice_id": invoice.id}], now=now)
    audit.record(session, actor, "invoice.resent", now=now, account_id=account.id, invoice_id=invoice.id,
                 invoice_number=invoice.number, to=account.billing_email)
    session.commit()
    return invoice


def parse_date(text: str | None, *, field: str, today: date) -> date:
    try:
        value = date.fromisoformat((text or "").strip())
    except ValueError:
        raise InvalidInput({field: "Enter the date the money arrived, as YYYY-MM-DD."}) from None
    if value > today:
        raise InvalidInput({field: "The date can't be in the future."})
    return value


def record_wire_payment(database: Database, gateway: PaymentGateway, account_id: int, invoice_id: int, *,
                        reference: str, received_on: date, actor: Actor, now: datetime) -> Invoice:
    """A payment that arrived by wire transfer: the invoice becomes Paid the one usual way (access restored,
    receipt sent), labelled "Wire transfer" with the bank's reference as its transaction id. Open payment
    pages are expired first and a payment in flight refuses it, like every other collection."""
    reference = (reference or "").strip()
    if not reference:
        raise InvalidInput({"reference": "Enter the bank's reference of the transfer."})
    if len(reference) > 80:
        raise InvalidInput({"reference": "Use at most 80 characters."})
    wire_message = "{number} is paid: only an Open invoice can be paid by wire transfer."
    with database.session() as session:
        _open_invoice(session, invoice_id, account_id, now=now, paid_message=wire_message)
    expire_open_checkouts(database, gateway, invoice_id, now=now, account_id=account_id,
                          why="Closed: the invoice was paid by wire transfer.")
    with database.session() as session:
        invoice = _open_invoice(session, invoice_id, account_id, now=now, paid_message=wire_message,
                                verb="recording the transfer")
        amount = invoice.amount_due_cents
        paid_at = min(datetime.combine(received_on, time(12, 0), tzinfo=timezone.utc), now)
        subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
        settle_payment(session, invoice, subscription, amount_cents=amount, currency=invoice.currency, now=paid_at,
                       label="Wire transfer", transaction_id=reference)
        audit.record(session, actor, "invoice.wire_payment_recorded", now=now, account_id=invoice.account_id,
                     invoice_id=invoice.id, invoice_number=invoice.number, amount_cents=amount,
                     currency=invoice.currency, reference=reference, received_on=received_on.isoformat())
        session.commit()
        return invoice
