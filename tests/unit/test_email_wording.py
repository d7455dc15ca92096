"""E-mails read as a customer reads them. Every kind is queued the way the portal queues it, for a company
whose name ends in a full stop ("Acme Analytics Inc."), and both parts of each are read: no "..", no
sentence that starts in lower case after the greeting, no raw ISO date, no "None", no template left
unrendered, and the reader greeted by name when the address is a user's."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.config import Settings
from portal.audit import Actor
from portal.billing.collecting.credits import grant_credit
from portal.models import OutboxMessage, PaymentAttempt, PaymentMethod, Refund
from portal.notifications import outbox

from ..helpers import make_customer, make_invoice, make_plan, make_subscription

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
TEMPLATES = {p.stem for p in (Path(__file__).parents[2] / "templates" / "email").glob("*.txt")}
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b20\d{2}-\d{2}\b")
TAGS = re.compile(r"<[^>]+>")


def queue_every_kind(session, account, user) -> dict[str, str]:
    """Queue one e-mail of each kind (and each branch that words its first sentence differently);
    returns kind -> template."""
    plan = make_plan(session)
    subscription = make_subscription(session, account, plan=plan, period_end=NOW)
    invoice = make_invoice(session, account, status="open", subscription=subscription)
    paid = make_invoice(session, account, status="paid", issued_at=NOW - timedelta(days=40))
    attempt = PaymentAttempt(invoice_id=invoice.id, amount_cents=invoice.amount_due_cents,
                             currency="USD", status="failed", trigger="renewal", attempt_number=1,
                             idempotency_key="wording-1", failure_code="card_declined", created_at=NOW)
    card = PaymentMethod(account_id=account.id, processor_id="pm_wording", brand="visa", last4="4242",
                         exp_month=12, exp_year=2026, is_default=True)
    session.add_all([attempt, card])
    session.flush()
    reason = "your bank declined the charge"
    outbox.invoice_issued(session, invoice, account, now=NOW)
    outbox.invoice_copy(session, paid, account, to=user.email, request_key="k", now=NOW)
    outbox.payment_received(session, paid, account, restored=True, now=NOW)
    outbox.payment_received(session, invoice, account, restored=False, partial_key="p", now=NOW)
    outbox.payment_failed(session, invoice, account, attempt, reason=reason, next_retry=NOW + timedelta(days=3),
                          final=False, now=NOW)
    outbox.action_required(session, invoice, account, now=NOW)
    invoice.transfer_reference = f"{invoice.number}-K7Q2"
    outbox.bank_transfer_details(session, invoice, account, bank_details=Settings.seller_bank_details, now=NOW)
    outbox.subscription_suspended(session, invoice, account, reason=reason, now=NOW)
    outbox.card_expiring(session, card, account, expires=NOW + timedelta(days=30), now=NOW)
    subscription.canceled_at = NOW
    outbox.subscription_ended(session, subscription, account, now=NOW)
    for kind, destination in (("refund", "card"), ("refund", "credit"), ("surplus", "card")):
        refund = Refund(invoice_id=paid.id, account_id=account.id, amount_cents=500, currency="USD",
                        reason="Billed twice", destination=destination, kind=kind, status="succeeded",
                        idempotency_key=f"wording-{kind}-{destination}")
        session.add(refund)
        session.flush()
        outbox.enqueue(session, dedupe_key=f"refund-{refund.id}", kind=f"refund_issued_{kind}_{destination}",
                       to=account.billing_email, account_id=account.id, subject="Refund", template="refund_issued",
                       context={"refund": refund, "invoice": paid, "account": account}, now=NOW)
    session.commit()
    grant_credit(session, account.id, amount_cents=1000, reason="Sorry for the outage", actor=Actor(user_id=None),
                 now=NOW)
    outbox.enqueue(session, dedupe_key="sign-in", kind="sign_in_link", to=user.email, subject="Your sign-in link",
                   template="sign_in_link", account_id=account.id, now=NOW,
                   context={"url": "http://127.0.0.1:5000/sign-in/abc", "minutes": 15})
    session.commit()
    return {m.kind: m for m in session.scalars(select(OutboxMessage))}


@pytest.fixture
def messages(session):
    # The billing e-mail is the user's own address, so every e-mail can greet them by name.
    account, user = make_customer(session, billing_email="ada@example.com")
    return queue_every_kind(session, account, user)


def parts(message: OutboxMessage) -> dict[str, str]:
    html = TAGS.sub(" ", message.html_body).replace("&nbsp;", " ")
    return {"text": message.text_body, "html": " ".join(html.split())}


def test_every_e_mail_template_is_among_the_kinds_checked(messages):
    assert len(messages) == 15  # the 12 templates, refunds in their three wordings, receipts in two
    used = {"invoice_issued", "invoice_copy", "payment_received", "payment_failed", "payment_action_required",
            "subscription_suspended", "card_expiring", "subscription_ended", "refund_issued", "credit_granted",
            "sign_in_link", "bank_transfer_details"}
    assert used == TEMPLATES


@pytest.mark.parametrize("part", ["text", "html"])
def test_no_e_mail_has_a_double_full_stop_a_raw_date_none_or_template_syntax(messages, part):
    for kind, message in messages.items():
        body = parts(message)[part]
        assert ".." not in body, f"{kind}: {body!r}"
        assert not ISO_DATE.search(body.replace("http://127.0.0.1:5000", "")), f"{kind}: {body!r}"
        assert "None" not in body and "{{" not in body and "{%" not in body, f"{kind}: {body!r}"


@pytest.mark.parametrize("part", ["text", "html"])
def test_each_e_mail_greets_the_reader_by_name_and_its_first_sentence_starts_with_a_capital(messages, part):
    for kind, message in messages.items():
        body = parts(message)[part]
        assert body.lstrip().startswith("Hello Ada Lovelace,"), f"{kind}: {body[:80]!r}"
        after = body.split("Hello Ada Lovelace,", 1)[1].strip()
        assert after[0].isupper() or not after[0].isalpha(), f"{kind}: {after[:80]!r}"


def test_a_shared_billing_inbox_is_greeted_without_a_name(session):
    account, user = make_customer(session, billing_email="billing@acme.example")
    invoice = make_invoice(session, account)
    message = outbox.invoice_issued(session, invoice, account, now=NOW)
    assert message.text_body.startswith("Hello,\n\nInvoice ")
    assert "<p>Hello,</p>" in message.html_body
