"""Refunds in Stripe mode against localstripe: the refund goes to the original PaymentIntent with our
idempotency key, a repeat refunds once, and a refund made in Stripe's dashboard reaches our history once
through ``charge.refunded`` (delivered twice)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import func, select

from portal.billing.payment_methods import cards
from portal.billing.collecting import events, refunds
from portal.audit import Actor
from portal.billing.collecting.collection import open_attempt, record_outcome
from portal import errors
from portal.errors import InvalidInput
from portal.models import Invoice, PaymentAttempt, PaymentMethod, Refund, utcnow

from ..helpers import POLICY, make_customer, make_invoice, make_staff
from .conftest import SECRET_KEY

pytestmark = pytest.mark.stripe

NOW = datetime(2026, 11, 10, tzinfo=timezone.utc)
US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}


@pytest.fixture
def paid(session, database, stripe_gateway, stripe_js):
    """An invoice paid with a card saved through Stripe.js and charged off-session at localstripe."""
    account, _ = make_customer(session, **US)
    intent = cards.start_card_setup(session, stripe_gateway, account.id, save_as_default=True,
                                    idempotency_key=f"setup-{account.id}")
    assert stripe_js.confirm_card_setup(intent.client_secret).status_code == 200
    cards.complete_card_setup(session, stripe_gateway, account.id, intent.id, actor=Actor.system(), now=utcnow())
    invoice = make_invoice(session, account)
    attempt = open_attempt(session, invoice, trigger="renewal", now=NOW)
    session.commit()
    card = session.get(PaymentMethod, attempt.payment_method_id)
    # The charge as collection makes it (localstripe refuses a PaymentIntent ``description``, so without one).
    result = stripe_gateway.charge(customer_id=account.processor_customer_id, payment_method_id=card.processor_id,
                                   amount_cents=attempt.amount_cents, currency="USD",
                                   idempotency_key=attempt.idempotency_key, metadata={"invoice_id": invoice.id})
    assert result.status == "succeeded"
    record_outcome(session, attempt.id, result, now=NOW, policy=POLICY)
    session.commit()
    session.expire_all()
    attempt = session.get(PaymentAttempt, attempt.id)
    return session.get(Invoice, invoice.id), attempt.processor_payment_id


@pytest.fixture
def actor(session):
    return Actor(user_id=make_staff(session).id)


def stripe_refunds(localstripe, payment_id):
    response = requests.get(f"{localstripe.url}/v1/refunds", params={"payment_intent": payment_id},
                            auth=(SECRET_KEY, ""), timeout=5)
    response.raise_for_status()
    return response.json()["data"]


def test_a_partial_refund_goes_to_the_payment_intent_at_stripe(session, database, stripe_gateway, localstripe,
                                                               paid, actor):
    invoice, payment_id = paid
    assert payment_id.startswith("pi_")
    made = refunds.refund_invoice(database, stripe_gateway, invoice.account_id, invoice.id, amount_cents=725,
                                  reason="Partial outage", destination="card", actor=actor, now=NOW,
                                  request_key="d" * 32)
    assert made.status == "succeeded" and made.processor_refund_id.startswith("re_")
    [at_stripe] = stripe_refunds(localstripe, payment_id)
    assert at_stripe["id"] == made.processor_refund_id and at_stripe["amount"] == 725
    assert at_stripe["metadata"]["refund_id"] == str(made.id)
    assert at_stripe["metadata"]["invoice_number"] == invoice.number
    session.expire_all()
    invoice = session.get(Invoice, invoice.id)
    assert invoice.amount_refunded_cents == 725 and refunds.refund_phrase(invoice) == "Partially refunded $7.25"


def test_the_same_idempotency_key_refunds_once_at_stripe(session, database, stripe_gateway, localstripe, paid):
    invoice, payment_id = paid
    first = stripe_gateway.refund(payment_id, 500, "refund-key-1", {"refund_id": 1})
    again = stripe_gateway.refund(payment_id, 500, "refund-key-1", {"refund_id": 1})
    assert first.id == again.id and first.status == "succeeded" and first.amount == 500
    assert len(stripe_refunds(localstripe, payment_id)) == 1
    assert [r.id for r in stripe_gateway.list_refunds(payment_id)] == [first.id]


def test_a_full_refund_then_nothing_more_can_be_refunded(session, database, stripe_gateway, localstripe, paid, actor):
    invoice, payment_id = paid
    with pytest.raises(InvalidInput) as refused:
        refunds.refund_invoice(database, stripe_gateway, invoice.account_id, invoice.id, amount_cents=2126,
                               reason="Too much", destination="card", actor=actor, now=NOW)
    assert refused.value.errors == {"amount": f"At most $21.25 can still be refunded on {invoice.number}."}
    refunds.refund_invoice(database, stripe_gateway, invoice.account_id, invoice.id, amount_cents=2125,
                           reason="Cancelled", destination="card", actor=actor, now=NOW)
    with pytest.raises(errors.RefundRefused, match="Nothing is left to refund"):
        refunds.refund_invoice(database, stripe_gateway, invoice.account_id, invoice.id, amount_cents=1,
                               reason="Again", destination="card", actor=actor, now=NOW)
    assert sum(r["amount"] for r in stripe_refunds(localstripe, payment_id)) == 2125
    session.expire_all()
    assert refunds.refund_phrase(session.get(Invoice, invoice.id)) == "Refunded $21.25"


def test_a_refund_made_in_the_stripe_dashboard_reaches_the_history_once(session, database, stripe_gateway,
                                                                       localstripe, paid):
    invoice, payment_id = paid
    dashboard = requests.post(f"{localstripe.url}/v1/refunds", data={"payment_intent": payment_id, "amount": 300},
                              auth=(SECRET_KEY, ""), timeout=5)
    dashboard.raise_for_status()
    charge = localstripe.get(f"/v1/charges/{invoice.processor_transaction_id}")
    # Stripe leaves ``refunds`` out of webhook charges: the handler lists them through the API.
    charge.pop("refunds", None)
    for event_id in ("evt_1", "evt_1", "evt_2"):
        events.apply_event(database, stripe_gateway, {"id": event_id, "type": "charge.refunded",
                                                      "data": {"object": charge}}, now=NOW, policy=POLICY)
    session.expire_all()
    [row] = session.scalars(select(Refund)).all()
    assert (row.processor_refund_id, row.amount_cents, row.status, row.origin) == (
        dashboard.json()["id"], 300, "succeeded", "processor")
    assert session.get(Invoice, invoice.id).amount_refunded_cents == 300
    assert session.scalar(select(func.count()).select_from(Refund)) == 1
