"""One invoice, one collection: every path passes the same guard, open payment pages are closed before another
path pays or voids the invoice, Paid means paid in full, and money the invoice cannot take goes back by itself.

Each test plays a sequence a hostile tester found (or the race it stands for) with the sandbox processor and
counts what the processor actually did, so a missing guard shows up as a second charge.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from portal.billing.collecting import checkout, collection
from portal.billing.collecting import invoice_actions
from portal.audit import Actor
from portal.errors import InvoiceNotOpen, PaymentInProgress
from portal.billing.collecting.events import apply_event, deliver_sandbox_events
from portal.models import Invoice, OutboxMessage, PaymentAttempt, Refund, Subscription, utcnow

from ..helpers import (POLICY, add_card, make_customer, make_invoice, make_staff, make_subscription,
                       run_concurrently)

US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}


@pytest.fixture
def customer(session, sandbox):
    account, _ = make_customer(session, **US)
    add_card(session, sandbox, account, default=True)
    return account


@pytest.fixture
def staff(session):
    return Actor(user_id=make_staff(session).id, ip="127.0.0.1")


def open_page(session, sandbox, account, invoice) -> str:
    url = checkout.start_checkout(session, sandbox, account.id, invoice.id, success_url="https://portal.test/ok",
                                  cancel_url="https://portal.test/cancel", now=utcnow())
    return url.rsplit("/", 1)[-1]


def fresh(session, model, id_):
    session.expire_all()
    return session.get(model, id_)


def pay_on_page_and_deliver(database, sandbox, checkout_id):
    page, declined = sandbox.pay_checkout_session(checkout_id, method="card", outcome="success")
    deliver_sandbox_events(database, sandbox, now=utcnow() + timedelta(seconds=1), policy=POLICY)
    return page


def retry_by_customer(database, sandbox, session, account, invoice, staff):
    collection.retry_now(database, sandbox, account.id, now=utcnow(), policy=POLICY)


def retry_by_staff(database, sandbox, session, account, invoice, staff):
    collection.retry_invoice_payment(database, sandbox, account.id, invoice.id, actor=staff, now=utcnow(),
                                     policy=POLICY)


def automatic_retry(database, sandbox, session, account, invoice, staff):
    row = session.get(Invoice, invoice.id)
    row.next_retry_at = utcnow() - timedelta(minutes=1)
    session.commit()
    assert collection.run_retries(database, sandbox, now=utcnow(), policy=POLICY)["paid"] == 1


def wire_transfer(database, sandbox, session, account, invoice, staff):
    collection.record_wire_payment(database, sandbox, account.id, invoice.id, reference="WIRE-77",
                                   received_on=utcnow().date().isoformat(), actor=staff, now=utcnow())


@pytest.mark.parametrize("pay_another_way", [retry_by_customer, retry_by_staff, automatic_retry, wire_transfer])
def test_paying_another_way_while_a_payment_page_is_open_closes_the_page_so_it_cannot_charge_again(
        database, session, sandbox, customer, staff, pay_another_way):
    subscription = make_subscription(session, customer, status="past_due")
    invoice = make_invoice(session, customer, subscription=subscription)
    page_id = open_page(session, sandbox, customer, invoice)
    charges = sandbox.count_charges()

    pay_another_way(database, sandbox, session, customer, invoice, staff)

    assert sandbox.retrieve_checkout_session(page_id).status == "expired"
    page = pay_on_page_and_deliver(database, sandbox, page_id)  # the customer comes back to the old tab
    assert page.status == "expired"
    paid = fresh(session, Invoice, invoice.id)
    assert paid.status == "paid" and paid.amount_paid_cents == paid.total_cents
    assert sandbox.count_charges() - charges == (0 if pay_another_way is wire_transfer else 1)
    assert session.query(Refund).count() == 0
    assert session.query(PaymentAttempt).filter_by(checkout_session_id=page_id).one().status == "expired"


def test_voiding_an_invoice_closes_its_open_payment_page_first(database, session, sandbox, customer, staff):
    invoice = make_invoice(session, customer)
    page_id = open_page(session, sandbox, customer, invoice)
    invoice_actions.void_invoice(database, sandbox, customer.id, invoice.id, reason="Billed in error", actor=staff,
                                 now=utcnow())
    assert sandbox.retrieve_checkout_session(page_id).status == "expired"
    assert pay_on_page_and_deliver(database, sandbox, page_id).status == "expired"
    assert fresh(session, Invoice, invoice.id).status == "void"
    assert sandbox.count_charges() == 0


def test_a_page_the_customer_has_just_paid_stops_another_collection(database, session, sandbox, customer, staff):
    invoice = make_invoice(session, customer)
    page_id = open_page(session, sandbox, customer, invoice)
    sandbox.pay_checkout_session(page_id, method="card", outcome="success")  # its event is not delivered yet
    with pytest.raises(PaymentInProgress):
        collection.retry_now(database, sandbox, customer.id, now=utcnow(), policy=POLICY)
    with pytest.raises(PaymentInProgress):
        invoice_actions.void_invoice(database, sandbox, customer.id, invoice.id, reason="x", actor=staff,
                                     now=utcnow())
    deliver_sandbox_events(database, sandbox, now=utcnow() + timedelta(seconds=1), policy=POLICY)
    assert fresh(session, Invoice, invoice.id).status == "paid"
    assert sandbox.count_charges() == 1


def test_a_debit_still_processing_refuses_every_other_collection(database, session, sandbox, customer, staff):
    invoice = make_invoice(session, customer)
    page_id = open_page(session, sandbox, customer, invoice)
    sandbox.pay_checkout_session(page_id, method="ideal", outcome="processing")
    deliver_sandbox_events(database, sandbox, now=utcnow(), policy=POLICY)  # completed, money not there yet
    assert session.query(PaymentAttempt).filter_by(status="processing").count() == 1
    for attempt in (lambda: collection.retry_now(database, sandbox, customer.id, now=utcnow(), policy=POLICY),
                    lambda: retry_by_staff(database, sandbox, session, customer, invoice, staff),
                    lambda: wire_transfer(database, sandbox, session, customer, invoice, staff),
                    lambda: open_page(session, sandbox, customer, invoice)):
        with pytest.raises(PaymentInProgress):
            attempt()
    assert fresh(session, Invoice, invoice.id).status == "open"
    assert sandbox.count_charges() == 0


def checkout_events(database, sandbox, page_id, **changes):
    """Pay on the sandbox page and hand back its events, with ``changes`` made to the session object (the
    shape a processor could send, signed, in a race or by mistake)."""
    sandbox.pay_checkout_session(page_id, method="card", outcome="success")
    events = sandbox.due_events(now=int((utcnow() + timedelta(seconds=1)).timestamp()))
    for event in events:
        sandbox.mark_delivered(event["id"])
        event["data"]["object"].update(changes)
    return events


def test_a_checkout_that_collected_one_cent_is_a_partial_payment_and_never_paid(database, session, sandbox,
                                                                                 customer):
    invoice = make_invoice(session, customer, amount_cents=15000)
    page_id = open_page(session, sandbox, customer, invoice)
    for event in checkout_events(database, sandbox, page_id, amount_total=1):
        apply_event(database, sandbox, event, now=utcnow(), policy=POLICY)
    partly = fresh(session, Invoice, invoice.id)
    assert partly.status == "open"
    assert (partly.amount_paid_cents, partly.amount_due_cents) == (1, partly.total_cents - 1)
    mail = session.query(OutboxMessage).filter_by(kind="payment_partial").one()
    assert "is still due" in mail.text_body
    assert session.query(OutboxMessage).filter_by(kind="payment_received").count() == 0
    # The rest can be paid, and only then is it Paid.
    rest_page = open_page(session, sandbox, customer, partly)
    assert sandbox.checkout_details(rest_page)["amount"] == partly.total_cents - 1
    pay_on_page_and_deliver(database, sandbox, rest_page)
    assert fresh(session, Invoice, invoice.id).status == "paid"


def test_a_payment_in_another_currency_is_refunded_automatically_and_the_invoice_stays_open(
        database, session, sandbox, customer):
    invoice = make_invoice(session, customer)
    page_id = open_page(session, sandbox, customer, invoice)
    for event in checkout_events(database, sandbox, page_id, currency="eur"):
        apply_event(database, sandbox, event, now=utcnow(), policy=POLICY)
    still = fresh(session, Invoice, invoice.id)
    assert still.status == "open" and still.amount_paid_cents == 0
    refund = session.query(Refund).one()
    assert (refund.kind, refund.status, refund.amount_cents, refund.currency) == ("surplus", "succeeded",
                                                                                   still.total_cents, "EUR")
    assert "billed in USD" in refund.reason


def test_paying_more_than_is_due_pays_the_invoice_and_sends_the_difference_back(database, session, sandbox,
                                                                                 customer):
    invoice = make_invoice(session, customer)
    page_id = open_page(session, sandbox, customer, invoice)
    total = fresh(session, Invoice, invoice.id).total_cents
    for event in checkout_events(database, sandbox, page_id, amount_total=total + 500):
        apply_event(database, sandbox, event, now=utcnow(), policy=POLICY)
    paid = fresh(session, Invoice, invoice.id)
    assert paid.status == "paid" and paid.amount_paid_cents == total
    refund = session.query(Refund).one()
    assert (refund.kind, refund.amount_cents, refund.status) == ("surplus", 500, "succeeded")
    assert paid.amount_refunded_cents == 0  # what was paid for the invoice is untouched


def test_money_that_still_arrives_for_a_paid_invoice_is_refunded_to_where_it_came_from_and_e_mailed(
        database, session, sandbox, customer, staff):
    """The race the portal cannot prevent: the processor expired the page and the customer paid on it in the
    same instant, the expiry reached us first, and the invoice was paid by wire meanwhile."""
    invoice = make_invoice(session, customer)
    page_id = open_page(session, sandbox, customer, invoice)
    events = checkout_events(database, sandbox, page_id)
    attempt = session.query(PaymentAttempt).filter_by(checkout_session_id=page_id).one()
    attempt.status = "expired"  # as a crossing checkout.session.expired left it
    session.commit()
    wire_transfer(database, sandbox, session, customer, invoice, staff)
    for event in events:
        apply_event(database, sandbox, event, now=utcnow(), policy=POLICY)

    paid = fresh(session, Invoice, invoice.id)
    assert paid.status == "paid" and paid.amount_paid_cents == paid.total_cents  # counted once
    refund = session.query(Refund).one()
    assert (refund.kind, refund.status, refund.amount_cents) == ("surplus", "succeeded", paid.total_cents)
    assert "already paid" in refund.reason
    payment_id = session.get(PaymentAttempt, attempt.id).processor_payment_id
    assert [r.amount for r in sandbox.list_refunds(payment_id)] == [paid.total_cents]
    mail = session.query(OutboxMessage).filter_by(kind="refund_issued").one()
    assert mail.to_address == customer.billing_email and "more than was due" in mail.text_body
    # Delivered again, the event changes nothing and refunds nothing more.
    for event in events:
        assert apply_event(database, sandbox, event, now=utcnow(), policy=POLICY) == "duplicate"
    assert len(sandbox.list_refunds(payment_id)) == 1


def test_four_concurrent_pay_now_clicks_open_one_page_and_each_gets_a_clear_answer(database, session, sandbox,
                                                                                   customer):
    invoice = make_invoice(session, customer)

    def click(n):
        with database.session() as own:
            return checkout.start_checkout(own, sandbox, customer.id, invoice.id, success_url="https://p/ok",
                                           cancel_url="https://p/no", now=utcnow())

    outcomes = run_concurrently(click, 4)

    # Each click either opens (or resumes) the one payment page, or is told a payment is under way.
    pages = [o for o in outcomes if o.ok and isinstance(o.value, str)]
    refused = [o for o in outcomes if isinstance(o.error, PaymentInProgress)]
    assert len(pages) + len(refused) == 4, f"a click ended in something else: {outcomes!r}"
    assert len(pages) >= 1 and len({o.value for o in pages}) == 1, outcomes
    assert session.query(PaymentAttempt).filter_by(invoice_id=invoice.id).count() == 1


def test_a_paid_invoice_refuses_every_collection_path(database, session, sandbox, customer, staff):
    invoice = make_invoice(session, customer, status="paid")
    with pytest.raises(InvoiceNotOpen):
        retry_by_staff(database, sandbox, session, customer, invoice, staff)
    with pytest.raises(InvoiceNotOpen):
        wire_transfer(database, sandbox, session, customer, invoice, staff)
    assert sandbox.count_charges() == 0


def test_a_partial_payment_and_a_surplus_refund_show_on_billing_details_and_in_the_console(
        app, database, session, gateway):
    from ..helpers import Browser

    account, _ = make_customer(session, **US)
    add_card(session, gateway, account, default=True)
    invoice = make_invoice(session, account, amount_cents=15000)
    other = make_invoice(session, account)
    for target, change in ((invoice, {"amount_total": 100}), (other, {"currency": "eur"})):
        page_id = open_page(session, gateway, account, target)
        for event in checkout_events(database, gateway, page_id, **change):
            apply_event(database, gateway, event, now=utcnow(), policy=POLICY)
    customer = Browser(app.test_client())
    customer.login()
    page = customer.get("/billing").get_data(as_text=True)
    assert "Partly paid: $1.00" in page and "still due" in page
    assert "sent back to the payment method it came from" in page and "billed in USD" in page
    make_staff(session)
    agent = Browser(app.test_client())
    agent.login("sam@support.example")
    console = agent.get(f"/staff/accounts/{account.id}").get_data(as_text=True)
    assert "Partly paid" in console and "sent back automatically" in console and "(received $1.00)" in console
