"""Refunds with the sandbox processor: full and partial, bounds, written first, concurrency (SQLite and PostgreSQL),
refunds as account credit, refunds made in the processor's dashboard (``charge.refunded``), the PDF."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.billing.collecting import events, refunds
from portal.documents import pdf
from portal.audit import Actor
from portal.billing.collecting.collection import execute_attempt, open_attempt
from portal import errors
from portal.errors import InvalidInput
from portal.billing.invoicing.invoices import credit_balance
from portal.models import utcnow
from portal.models import AuditEvent, CreditEntry, Invoice, OutboxMessage, PaymentAttempt, Refund, SandboxObject
from portal.payments.gateway import ProcessorUnavailable

from ..helpers import POLICY, add_card, make_customer, make_invoice, make_staff, run_concurrently

US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}
NOW = datetime(2026, 11, 10, tzinfo=timezone.utc)


@pytest.fixture
def staff(session):
    return make_staff(session)


@pytest.fixture
def actor(staff):
    return Actor(user_id=staff.id, ip="10.0.0.1")


def paid_invoice(database, session, gateway, account, *, amount_cents=2000):
    """An invoice paid by charging the sandbox card, as a renewal would: 2000 + 6.25% MA tax = 2125."""
    invoice = make_invoice(session, account, amount_cents=amount_cents)
    attempt = open_attempt(session, invoice, trigger="renewal", now=NOW)
    session.commit()
    assert execute_attempt(database, gateway, attempt.id, now=NOW, policy=POLICY).status == "succeeded"
    session.expire_all()
    invoice = session.get(Invoice, invoice.id)
    assert invoice.status == "paid"
    return invoice


@pytest.fixture
def customer(session, gateway):
    account, _ = make_customer(session, **US)
    add_card(session, gateway, account, default=True)
    return account


@pytest.fixture
def invoice(database, session, gateway, customer):
    return paid_invoice(database, session, gateway, customer)


def refund(database, gateway, invoice, actor, amount, *, reason="Customer asked", destination="card", key=None):
    return refunds.refund_invoice(database, gateway, invoice.account_id, invoice.id, amount_cents=amount,
                                  reason=reason, destination=destination, actor=actor, now=NOW, request_key=key)


def sandbox_refunds(session):
    return session.scalars(select(SandboxObject).where(SandboxObject.kind == "refund")).all()


def pdf_text(content: bytes) -> str:
    """The PDF's text with runs of whitespace made single spaces."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).split())


def test_a_full_refund_goes_back_to_the_original_payment_and_the_invoice_says_refunded(
        database, session, gateway, invoice, actor, staff):
    version = invoice.status_version
    made = refund(database, gateway, invoice, actor, 2125, reason="Charged twice by mistake")
    assert made.status == "succeeded" and made.processor_refund_id.startswith("re_sbx_")
    assert made.destination == "card" and made.created_by_user_id == staff.id and made.settled_at is not None
    session.expire_all()
    invoice = session.get(Invoice, invoice.id)
    assert invoice.amount_refunded_cents == 2125 and invoice.status_version > version
    assert refunds.refund_phrase(invoice) == "Refunded $21.25"
    [processor] = sandbox_refunds(session)
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    assert processor.data["payment_intent"] == attempt.processor_payment_id and processor.data["amount"] == 2125
    assert processor.data["metadata"]["refund_id"] == str(made.id)
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "refund_issued"))
    assert mail.to_address == "billing@acme.example" and "$21.25" in mail.subject
    assert "5-10 business days" in mail.text_body and "Charged twice by mistake" in mail.text_body
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "refund.created"))
    assert event.actor_user_id == staff.id and event.account_id == invoice.account_id
    assert event.details["amount_cents"] == 2125 and event.details["reason"] == "Charged twice by mistake"


def test_partial_refunds_add_up_until_the_paid_amount_and_say_partially_refunded(
        database, session, gateway, invoice, actor):
    refund(database, gateway, invoice, actor, 500)
    session.expire_all()
    assert refunds.refund_phrase(session.get(Invoice, invoice.id)) == "Partially refunded $5.00"
    refund(database, gateway, invoice, actor, 1625)
    session.expire_all()
    invoice = session.get(Invoice, invoice.id)
    assert invoice.amount_refunded_cents == 2125 and refunds.refund_phrase(invoice) == "Refunded $21.25"
    assert len(sandbox_refunds(session)) == 2
    assert session.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.kind == "refund_issued")) == 2


def test_more_than_is_still_refundable_is_refused_with_a_message_and_nothing_is_sent(
        database, session, gateway, invoice, actor):
    refund(database, gateway, invoice, actor, 2000)
    with pytest.raises(InvalidInput) as refused:
        refund(database, gateway, invoice, actor, 126)
    assert refused.value.errors == {"amount": f"At most $1.25 can still be refunded on {invoice.number}."}
    assert len(sandbox_refunds(session)) == 1
    assert session.scalar(select(func.count()).select_from(Refund)) == 1


@pytest.mark.parametrize("amount", [0, -100, None])
def test_a_zero_negative_or_missing_amount_is_refused(database, session, gateway, invoice, actor, amount):
    with pytest.raises(InvalidInput) as refused:
        refund(database, gateway, invoice, actor, amount)
    assert refused.value.errors["amount"] == "Enter an amount greater than zero."
    assert session.scalar(select(func.count()).select_from(Refund)) == 0


def test_a_reason_is_required(database, session, gateway, invoice, actor):
    with pytest.raises(InvalidInput) as refused:
        refund(database, gateway, invoice, actor, 100, reason="  ")
    assert refused.value.errors == {"reason": "Enter the reason for this refund."}


def test_only_paid_invoices_can_be_refunded(database, session, gateway, customer, actor):
    open_invoice = make_invoice(session, customer)
    with pytest.raises(errors.RefundRefused, match="only paid invoices can be refunded"):
        refund(database, gateway, open_invoice, actor, 100)


def test_the_same_form_submitted_twice_refunds_once(database, session, gateway, invoice, actor):
    first = refund(database, gateway, invoice, actor, 300, key="k" * 32)
    again = refund(database, gateway, invoice, actor, 300, key="k" * 32)
    assert first.id == again.id and len(sandbox_refunds(session)) == 1


def test_the_refund_row_is_committed_before_the_processor_is_called_and_a_lost_answer_is_settled_once(
        database, session, gateway, invoice, actor, monkeypatch):
    seen = []
    real = gateway.refund

    def unreachable(**request):
        with database.session() as other:  # another connection sees the committed intent
            row = other.scalar(select(Refund))
            seen.append((row.status, row.idempotency_key == request["idempotency_key"], row.amount_cents))
        real(**request)  # the processor did refund, but its answer is lost on the way back
        raise ProcessorUnavailable("timeout")

    monkeypatch.setattr(gateway, "refund", unreachable)
    made = refund(database, gateway, invoice, actor, 700)
    assert seen == [("pending", True, 700)]
    assert made.status == "pending" and made.processor_refund_id is None
    # Pending refunds hold their amount: only 2125 - 700 is left.
    session.expire_all()
    assert refunds.refundable_cents(session, session.get(Invoice, invoice.id)) == 1425
    monkeypatch.setattr(gateway, "refund", real)
    assert refunds.settle_pending_refunds(database, gateway, now=NOW + timedelta(minutes=10)) == 1
    session.expire_all()
    settled = session.get(Refund, made.id)
    assert settled.status == "succeeded" and settled.processor_refund_id.startswith("re_sbx_")
    assert len(sandbox_refunds(session)) == 1  # asked again with the same key: no second refund
    assert session.get(Invoice, invoice.id).amount_refunded_cents == 700


def test_a_refund_the_processor_refuses_fails_and_gives_its_amount_back(database, session, gateway, customer, actor):
    # Paid, but with a transaction id the processor has never seen: it refuses the refund.
    invoice = make_invoice(session, customer, status="paid")
    with pytest.raises(errors.RefundFailed, match="Nothing was refunded"):
        refund(database, gateway, invoice, actor, 500)
    session.expire_all()
    failed = session.scalar(select(Refund))
    assert failed.status == "failed" and failed.failure_message
    assert refunds.refundable_cents(session, session.get(Invoice, invoice.id)) == invoice.amount_paid_cents
    assert session.get(Invoice, invoice.id).amount_refunded_cents == 0


def test_a_refund_as_account_credit_makes_no_processor_call_and_grants_credit_with_the_reason(
        database, session, gateway, invoice, actor, monkeypatch):
    monkeypatch.setattr(gateway, "refund", lambda **kw: pytest.fail("a credit refund must not call the processor"))
    made = refund(database, gateway, invoice, actor, 1000, reason="Service outage", destination="credit")
    assert made.status == "succeeded" and made.destination == "credit" and made.processor_refund_id is None
    entry = session.scalar(select(CreditEntry).where(CreditEntry.kind == "refund_as_credit"))
    assert entry.amount_cents == 1000 and entry.invoice_id == invoice.id
    assert entry.reason == f"Service outage (refund of {invoice.number})"
    assert credit_balance(session, invoice.account_id) == 1000
    session.expire_all()
    assert session.get(Invoice, invoice.id).amount_refunded_cents == 1000
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "refund_issued"))
    assert "as account credit" in mail.subject and "Credits never expire" in mail.text_body
    # Still bounded by what is refundable, card and credit refunds together.
    with pytest.raises(InvalidInput, match="Please correct"):
        refund(database, gateway, invoice, actor, 1126, destination="credit")
    assert credit_balance(session, invoice.account_id) == 1000


def test_an_invoice_paid_by_wire_transfer_is_refunded_as_credit_not_to_a_card(database, session, gateway, customer,
                                                                               actor):
    invoice = make_invoice(session, customer)
    from portal.billing.collecting.collection import record_wire_payment

    record_wire_payment(database, gateway, customer.id, invoice.id, reference="WIRE-1",
                        received_on=NOW.date().isoformat(), actor=actor, now=NOW)
    with pytest.raises(InvalidInput) as refused:
        refund(database, gateway, invoice, actor, 500)
    assert "Wire transfer" in refused.value.errors["destination"]
    assert refund(database, gateway, invoice, actor, 500, destination="credit").status == "succeeded"


def test_concurrent_refunds_never_exceed_the_paid_amount(database, session, gateway, invoice, actor):
    """Six refunds of $8.00 at once on a $21.25 invoice: exactly two fit, the rest are refused."""
    outcomes = run_concurrently(lambda n: refund(database, gateway, invoice, actor, 800, key=f"{n:032x}"), 6)

    made = [o for o in outcomes if o.ok and o.value.status == "succeeded"]
    refused = [o for o in outcomes if isinstance(o.error, InvalidInput)
               and o.error.errors.get("amount", "").startswith("At most $5.25 can still be refunded")]
    assert len(made) == 2 and len(refused) == 4, outcomes
    session.expire_all()
    assert session.get(Invoice, invoice.id).amount_refunded_cents == 1600
    assert sum(r.data["amount"] for r in sandbox_refunds(session)) == 1600


# --- refunds made in the processor's dashboard ------------------------------------------------------

def charge_refunded_event(gateway, session, event_id=None):
    [row] = [r for r in session.scalars(select(SandboxObject).where(SandboxObject.kind == "event")).all()
             if r.data["event"]["type"] == "charge.refunded"][-1:]
    event = dict(row.data["event"])
    if event_id:
        event["id"] = event_id
    return event


def test_a_refund_made_in_the_dashboard_creates_history_once_even_when_delivered_twice(
        app, database, session, gateway, invoice):
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    gateway.dashboard_refund(attempt.processor_payment_id, 600)
    assert events.deliver_sandbox_events(database, gateway, now=utcnow(), policy=POLICY) == 1
    event = charge_refunded_event(gateway, session)
    assert events.apply_event(database, gateway, event, now=NOW, source="sandbox", policy=POLICY) == "duplicate"
    # The same facts in an event with another id (Stripe may send several): matched by refund id.
    assert events.apply_event(database, gateway, charge_refunded_event(gateway, session, "evt_again"), now=NOW,
                              source="sandbox", policy=POLICY).startswith("0 new refund(s)")
    session.expire_all()
    [row] = session.scalars(select(Refund)).all()
    assert (row.origin, row.destination, row.status, row.amount_cents) == ("processor", "card", "succeeded", 600)
    assert row.processor_refund_id.startswith("re_sbx_") and row.reason == refunds.DASHBOARD_REASON
    assert session.get(Invoice, invoice.id).amount_refunded_cents == 600
    assert session.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.kind == "refund_issued")) == 1


def test_the_event_for_our_own_refund_adds_nothing(database, session, gateway, invoice, actor):
    refund(database, gateway, invoice, actor, 900)
    assert events.deliver_sandbox_events(database, gateway, now=utcnow(), policy=POLICY) == 1
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Refund)) == 1
    assert session.get(Invoice, invoice.id).amount_refunded_cents == 900


def test_an_event_for_our_refund_arriving_before_its_answer_was_recorded_is_matched_by_its_metadata(
        database, session, gateway, invoice, actor, monkeypatch):
    real = gateway.refund

    def lost(**request):
        real(**request)
        raise ProcessorUnavailable("timeout")

    monkeypatch.setattr(gateway, "refund", lost)
    made = refund(database, gateway, invoice, actor, 400)
    events.deliver_sandbox_events(database, gateway, now=utcnow(), policy=POLICY)
    session.expire_all()
    [row] = session.scalars(select(Refund)).all()
    assert row.id == made.id and row.status == "succeeded" and row.processor_refund_id.startswith("re_sbx_")


def test_without_a_refund_list_the_missing_amount_is_recorded_once(database, session, gateway, invoice, monkeypatch):
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))

    def no_list(_):
        raise events.ProcessorError("not available")

    monkeypatch.setattr(gateway, "list_refunds", no_list)
    charge = {"id": invoice.processor_transaction_id, "payment_intent": attempt.processor_payment_id,
              "amount": 2125, "amount_refunded": 1000}
    for n in range(2):
        events.apply_event(database, gateway, {"id": f"evt_{n}", "type": "charge.refunded",
                                               "data": {"object": charge}}, now=NOW, policy=POLICY)
    session.expire_all()
    [row] = session.scalars(select(Refund)).all()
    assert row.amount_cents == 1000 and row.origin == "processor"
    assert session.get(Invoice, invoice.id).amount_refunded_cents == 1000


# --- the PDF ------------------------------------------------------------------------------------------

def test_the_pdf_shows_refunds_and_credit_notes_and_re_renders_after_a_refund(
        database, session, gateway, invoice, actor):
    before = pdf_text(pdf.invoice_pdf(session, invoice, now=NOW))
    session.commit()
    assert "Refunded" not in before
    refund(database, gateway, invoice, actor, 500, reason="Goodwill")
    refund(database, gateway, invoice, actor, 300, reason="Outage", destination="credit")
    session.expire_all()
    invoice = session.get(Invoice, invoice.id)
    text = pdf_text(pdf.invoice_pdf(session, invoice, now=NOW))
    assert "Partially refunded $8.00" in text and "Amount refunded $8.00" in text
    assert "REFUNDS AND CREDIT NOTES" in text
    assert "Refund to the original payment · Goodwill Refunded $5.00" in text
    assert "Credit note: refunded as account credit · Outage Credited $3.00" in text
