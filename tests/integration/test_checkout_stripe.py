"""Pay now in Stripe mode: real stripe-python requests over HTTP to a Checkout stand-in in front of localstripe,
and Stripe's webhooks signed as Stripe signs them, delivered to /stripe/webhook.

The stand-in (``checkout_standin``) answers the Checkout Session endpoints localstripe lacks and forwards the
rest to localstripe; ``standin.pay`` and friends play the customer on Stripe's payment page. The webhook
security tests at the end run in sandbox mode: the signature check is the same in both.
"""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from portal import create_app
from portal.billing.collecting import checkout, events
from portal.config import load_settings
from portal.extensions import limiter
from portal.models import Account, Invoice, OutboxMessage, PaymentAttempt, ProcessorEvent, Subscription, utcnow
from portal.payments.gateway import ProcessorError, ProcessorUnavailable

from ..helpers import POLICY, Browser, make_customer, make_invoice, make_subscription
from .checkout_standin import signed_webhook, stripe_signature

WEBHOOK_SECRET = "whsec_test_portal_endpoint"
needs_stripe = pytest.mark.stripe


# --- set-up ---------------------------------------------------------------------------------------

@pytest.fixture
def stripe_overrides(stripe_overrides, standin):
    """Stripe mode through the stand-in, with a webhook signing secret."""
    return {**stripe_overrides, "stripe_api_base": standin.url, "stripe_webhook_secret": WEBHOOK_SECRET}


@pytest.fixture
def customer(session, stripe_browser):
    account, _ = make_customer(session)
    stripe_browser.login()
    return account


@pytest.fixture
def invoice(session, customer):
    return make_invoice(session, customer, amount_cents=2000)


def fresh(session, model, object_id):
    session.expire_all()
    return session.get(model, object_id)


def pay_now(browser, invoice, *, htmx=False):
    browser.get("/billing")
    return browser.post(f"/billing/invoices/{invoice.id}/pay", htmx=htmx)


def checkout_session_of(session, invoice) -> str:
    session.expire_all()
    return session.scalar(select(PaymentAttempt.checkout_session_id).where(PaymentAttempt.invoice_id == invoice.id)
                          .order_by(PaymentAttempt.attempt_number.desc()).limit(1))


def deliver(client, event, *, secret=WEBHOOK_SECRET, timestamp=None):
    body, headers = signed_webhook(event, secret, timestamp=timestamp)
    return client.post("/stripe/webhook", data=body, headers=headers)


def latest_attempt(session, invoice) -> PaymentAttempt:
    session.expire_all()
    return session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id)
                          .order_by(PaymentAttempt.attempt_number.desc()).limit(1))


def receipts(session) -> list[OutboxMessage]:
    session.expire_all()
    return session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "payment_received")).all()


def started_checkout(browser, session, standin, invoice) -> str:
    assert pay_now(browser, invoice).status_code == 303
    return checkout_session_of(session, invoice)


# --- starting Checkout ----------------------------------------------------------------------------

@needs_stripe
def test_pay_now_creates_a_checkout_session_for_the_amount_due_and_sends_the_browser_there(
        stripe_browser, session, standin, invoice):
    before = int(time.time())

    response = pay_now(stripe_browser, invoice)

    assert len(standin.session_creations) == 1
    request = standin.session_creations[0]
    created = standin.session(checkout_session_of(session, invoice))
    assert response.status_code == 303
    assert response.headers["Location"] == created["url"]
    assert created["url"].startswith("https://checkout.stripe.com/")

    params = request.params
    account = fresh(session, Account, invoice.account_id)
    assert params["mode"] == "payment"
    assert params["customer"] == account.processor_customer_id and params["customer"].startswith("cus_")
    assert params["line_items"] == [{"quantity": "1", "price_data": {
        "currency": "usd", "unit_amount": str(invoice.amount_due_cents),
        "product_data": {"name": f"Invoice {invoice.number}"}}}]
    metadata = {"invoice_id": str(invoice.id), "invoice_number": invoice.number, "attempt": "1"}
    assert params["metadata"] == metadata
    assert params["payment_intent_data"] == {"metadata": metadata}
    assert params["success_url"] == (f"http://localhost/billing/invoices/{invoice.id}/paid"
                                     "?session_id={CHECKOUT_SESSION_ID}")
    assert params["cancel_url"] == f"http://localhost/billing/invoices/{invoice.id}/checkout-canceled"
    assert before + 3600 - 5 <= int(params["expires_at"]) <= int(time.time()) + 3600
    # Stripe's dynamic payment methods choose what to offer; the portal does not narrow it to cards.
    assert "payment_method_types" not in params
    assert request.headers["idempotency-key"] == f"invoice-{invoice.id}-attempt-1"
    assert (created["amount_total"], created["currency"], created["status"]) == (invoice.amount_due_cents, "usd",
                                                                                 "open")


@needs_stripe
def test_pay_now_from_htmx_answers_with_an_hx_redirect_to_the_checkout_page(stripe_browser, session, standin,
                                                                             invoice):
    response = pay_now(stripe_browser, invoice, htmx=True)

    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == standin.session(checkout_session_of(session, invoice))["url"]
    assert len(standin.session_creations) == 1


@needs_stripe
def test_a_second_pay_now_resumes_the_open_checkout_session_instead_of_opening_another(
        stripe_browser, session, standin, invoice):
    first = pay_now(stripe_browser, invoice)
    again = pay_now(stripe_browser, invoice)

    assert again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert len(standin.session_creations) == 1
    assert len(standin.received("POST", "/v1/checkout/sessions")) == 1


@needs_stripe
@pytest.mark.parametrize("status, message", [("paid", "is already paid. Nothing was charged."),
                                             ("void", "was voided, so no payment is needed.")])
def test_a_paid_or_void_invoice_cannot_start_checkout(stripe_browser, session, standin, customer, status, message):
    invoice = make_invoice(session, customer, status=status)

    plain = pay_now(stripe_browser, invoice)
    page = stripe_browser.get(plain.headers["Location"]).get_data(as_text=True)
    htmx = pay_now(stripe_browser, invoice, htmx=True)

    assert plain.status_code == 303 and plain.headers["Location"].endswith("/billing#invoices")
    assert f"{invoice.number} {message}" in page
    assert htmx.status_code == 409 and f"{invoice.number} {message}" in htmx.get_data(as_text=True)
    assert "HX-Redirect" not in htmx.headers
    assert standin.received("POST", "/v1/checkout/sessions") == []
    assert latest_attempt(session, invoice) is None


@needs_stripe
def test_a_checkout_session_request_repeated_with_its_key_gets_the_first_session_and_other_details_are_refused(
        stripe_gateway, standin, localstripe):
    customer_id = stripe_gateway.create_customer(email="billing@acme.example", name="Acme", account_id=7,
                                                 idempotency_key="customer-7")
    request = dict(customer_id=customer_id, amount_cents=2000, currency="EUR", description="Invoice INV-0001",
                   metadata={"invoice_id": 7, "invoice_number": "INV-0001", "attempt": 1},
                   success_url="https://portal.example/paid", cancel_url="https://portal.example/canceled",
                   expires_at=int(time.time()) + 3600, idempotency_key="invoice-7-attempt-1")

    first = stripe_gateway.create_checkout_session(**request)
    again = stripe_gateway.create_checkout_session(**request)  # e.g. stripe-python retrying after a timeout
    with pytest.raises(ProcessorError) as refused:
        stripe_gateway.create_checkout_session(**{**request, "amount_cents": 2500})

    assert again == first
    assert (first.status, first.payment_status, first.payment_intent_id) == ("open", "unpaid", None)
    assert first.metadata == {"invoice_id": "7", "invoice_number": "INV-0001", "attempt": "1"}
    assert stripe_gateway.retrieve_checkout_session(first.id) == first
    assert len(standin.session_creations) == 1
    assert refused.value.code == "idempotency_error" and not isinstance(refused.value, ProcessorUnavailable)


@needs_stripe
def test_when_stripe_refuses_to_open_the_payment_page_pay_now_says_so_and_the_attempt_is_closed(
        stripe_browser, session, standin, customer, invoice):
    customer.processor_customer_id = "cus_deleted_in_the_dashboard"
    session.commit()

    response = pay_now(stripe_browser, invoice)

    assert response.status_code == 303 and response.headers["Location"].endswith("/billing#invoices")
    page = stripe_browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "The payment page could not be opened. Please try again in a moment." in page
    assert latest_attempt(session, invoice).status == "failed"
    assert standin.session_creations == []
    assert standin.received("POST", "/v1/checkout/sessions")[0].status == 400


# --- the outcome, from Stripe's webhooks ----------------------------------------------------------

@needs_stripe
def test_a_paid_checkout_session_makes_the_invoice_paid_restores_the_subscription_and_queues_a_receipt(
        stripe_app, stripe_browser, session, standin, localstripe, customer):
    subscription = make_subscription(session, customer, status="past_due")
    invoice = make_invoice(session, customer, subscription=subscription)
    due = invoice.amount_due_cents
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)
    waiting = stripe_browser.get(f"/billing/invoices/{invoice.id}/paid?session_id={checkout_id}")
    assert "Payment processing…" in waiting.get_data(as_text=True)  # the return URL alone proves nothing

    completed = standin.pay(checkout_id, method="card")
    response = deliver(stripe_app.test_client(), completed)

    assert response.status_code == 200
    paid = fresh(session, Invoice, invoice.id)
    intent = localstripe.get(f"/v1/payment_intents/{completed['data']['object']['payment_intent']}")
    assert paid.status == "paid"
    assert paid.amount_paid_cents == due == 2000
    assert paid.payment_method_label == "Visa •••• 4242"
    assert paid.processor_transaction_id == intent["latest_charge"]["id"]
    assert paid.processor_transaction_id.startswith("ch_")
    assert fresh(session, Subscription, subscription.id).status == "active"
    assert [(m.to_address, m.subject) for m in receipts(session)] == [
        ("billing@acme.example", "Payment received: your subscription is active again")]
    page = stripe_browser.get(f"/billing/invoices/{invoice.id}/paid?session_id={checkout_id}").get_data(as_text=True)
    assert "Payment received" in page and "Visa •••• 4242" in page and paid.processor_transaction_id in page


@needs_stripe
@pytest.mark.parametrize("method, label", [("apple_pay", "Visa •••• 1881 (Apple Pay)"),
                                           ("google_pay", "Mastercard •••• 4444 (Google Pay)"),
                                           ("ideal", "iDEAL"), ("bancontact", "Bancontact")])
def test_an_invoice_paid_with_a_wallet_or_a_bank_redirect_names_how_it_was_paid(
        stripe_app, stripe_browser, session, standin, invoice, method, label):
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)

    completed = standin.pay(checkout_id, method=method)
    assert deliver(stripe_app.test_client(), completed).status_code == 200

    paid = fresh(session, Invoice, invoice.id)
    charge = standin.payment_intents[completed["data"]["object"]["payment_intent"]]["latest_charge"]
    assert (paid.status, paid.payment_method_label) == ("paid", label)
    assert paid.processor_transaction_id == charge["id"]


@needs_stripe
def test_a_delayed_payment_keeps_the_invoice_open_until_the_bank_confirms_it(
        stripe_app, stripe_browser, session, standin, invoice):
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)
    webhook = stripe_app.test_client()

    assert deliver(webhook, standin.pay(checkout_id, method="sepa_debit")).status_code == 200

    assert fresh(session, Invoice, invoice.id).status == "open"
    assert latest_attempt(session, invoice).status == "processing"
    page = stripe_browser.get(f"/billing/invoices/{invoice.id}/paid").get_data(as_text=True)
    assert "Payment processing…" in page
    assert receipts(session) == []
    # Processing is not a reason to open a second payment page for the same invoice.
    assert "already being processed" in pay_now(stripe_browser, invoice, htmx=True).get_data(as_text=True)

    assert deliver(webhook, standin.settle(checkout_id, succeeded=True)).status_code == 200

    paid = fresh(session, Invoice, invoice.id)
    assert (paid.status, paid.payment_method_label) == ("paid", "SEPA Direct Debit •••• 3000")
    assert latest_attempt(session, invoice).status == "succeeded"
    assert len(receipts(session)) == 1
    assert "Payment received" in stripe_browser.get(f"/billing/invoices/{invoice.id}/paid").get_data(as_text=True)


@needs_stripe
def test_a_delayed_payment_the_bank_refuses_leaves_the_invoice_open_and_says_so(
        stripe_app, stripe_browser, session, standin, invoice):
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)
    webhook = stripe_app.test_client()
    deliver(webhook, standin.pay(checkout_id, method="sepa_debit"))

    assert deliver(webhook, standin.settle(checkout_id, succeeded=False)).status_code == 200

    assert fresh(session, Invoice, invoice.id).status == "open"
    assert latest_attempt(session, invoice).status == "failed"
    assert receipts(session) == []
    page = stripe_browser.get(f"/billing/invoices/{invoice.id}/paid").get_data(as_text=True)
    assert "The payment did not go through" in page and f"{invoice.number} is still open" in page


@needs_stripe
def test_an_expired_checkout_session_leaves_the_invoice_open_and_pay_now_opens_a_new_one(
        stripe_app, stripe_browser, session, standin, invoice):
    first_id = started_checkout(stripe_browser, session, standin, invoice)

    assert deliver(stripe_app.test_client(), standin.expire(first_id)).status_code == 200

    assert fresh(session, Invoice, invoice.id).status == "open"
    assert latest_attempt(session, invoice).status == "expired"
    assert "The payment page expired" in stripe_browser.get(f"/billing/invoices/{invoice.id}/paid").get_data(
        as_text=True)
    again = pay_now(stripe_browser, invoice)
    second_id = checkout_session_of(session, invoice)
    assert second_id != first_id
    assert again.headers["Location"] == standin.session(second_id)["url"]
    assert [r.headers["idempotency-key"] for r in standin.session_creations] == [
        f"invoice-{invoice.id}-attempt-1", f"invoice-{invoice.id}-attempt-2"]


@needs_stripe
def test_the_same_event_delivered_twice_is_answered_200_both_times_and_applied_once(
        stripe_app, stripe_browser, session, standin, invoice):
    due = invoice.amount_due_cents
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)
    completed = standin.pay(checkout_id)
    webhook = stripe_app.test_client()

    first = deliver(webhook, completed)
    paid_at = fresh(session, Invoice, invoice.id).paid_at
    second = deliver(webhook, completed)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.get_json()["outcome"] == "duplicate"
    after = fresh(session, Invoice, invoice.id)
    assert (after.status, after.paid_at, after.amount_paid_cents) == ("paid", paid_at, due)
    assert len(receipts(session)) == 1
    assert session.scalar(select(func.count()).select_from(ProcessorEvent)) == 1


@needs_stripe
def test_a_delayed_payments_success_arriving_before_its_completion_event_still_leaves_the_invoice_paid(
        stripe_app, stripe_browser, session, standin, invoice):
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)
    completed = standin.pay(checkout_id, method="sepa_debit")
    succeeded = standin.settle(checkout_id, succeeded=True)
    webhook = stripe_app.test_client()

    assert deliver(webhook, succeeded).status_code == 200
    assert deliver(webhook, completed).status_code == 200  # payment_status "unpaid": older news

    assert fresh(session, Invoice, invoice.id).status == "paid"
    assert latest_attempt(session, invoice).status == "succeeded"
    assert len(receipts(session)) == 1


@needs_stripe
def test_an_expiry_arriving_after_the_payment_does_not_take_the_invoice_back_to_open(
        stripe_app, stripe_browser, session, standin, invoice):
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)
    completed = standin.pay(checkout_id)
    webhook = stripe_app.test_client()
    stale_expiry = standin.event("checkout.session.expired", checkout_id, status="expired", payment_status="unpaid")

    assert deliver(webhook, completed).status_code == 200
    assert deliver(webhook, stale_expiry).status_code == 200

    assert fresh(session, Invoice, invoice.id).status == "paid"
    assert latest_attempt(session, invoice).status == "succeeded"


@needs_stripe
def test_reconcile_settles_a_paid_checkout_whose_webhook_never_arrived_without_charging_again(
        stripe_app, stripe_browser, stripe_gateway, database, session, standin, localstripe, invoice):
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)
    standin.pay(checkout_id)  # paid at Stripe; the webhook is lost
    standin.requests.clear()

    too_soon = events.reconcile(database, stripe_gateway, now=utcnow(), policy=POLICY)
    counts = events.reconcile(database, stripe_gateway, now=utcnow() + timedelta(minutes=15), policy=POLICY)

    assert too_soon == {"checked": 0, "settled": 0}
    assert counts == {"checked": 1, "settled": 1}
    paid = fresh(session, Invoice, invoice.id)
    assert (paid.status, paid.payment_method_label) == ("paid", "Visa •••• 4242")
    assert paid.processor_transaction_id.startswith("ch_")
    assert len(receipts(session)) == 1
    # It only read: the session and the payment. Nothing was created, so nothing was charged.
    assert [r.method for r in standin.requests if r.method != "GET"] == []
    assert len(localstripe.get("/v1/payment_intents")["data"]) == 1
    assert events.reconcile(database, stripe_gateway, now=utcnow() + timedelta(minutes=30), policy=POLICY) == {
        "checked": 0, "settled": 0}


@needs_stripe
def test_a_payment_intent_event_of_another_customer_does_not_pay_the_invoice_its_metadata_names(
        stripe_app, stripe_browser, session, standin, invoice):
    # Invoice ids repeat across installations (a developer's laptop and staging sharing one Stripe test
    # account, whose webhooks each receive every event): metadata alone must not settle an invoice.
    started_checkout(stripe_browser, session, standin, invoice)
    account = fresh(session, Account, invoice.account_id)
    metadata = {"invoice_id": str(invoice.id), "invoice_number": invoice.number, "attempt": "1"}
    webhook = stripe_app.test_client()
    strangers = standin.card_payment(standin.new_customer(), 2000, "usd", metadata)

    assert deliver(webhook, standin.payment_intent_event(strangers)).status_code == 200

    assert fresh(session, Invoice, invoice.id).status == "open"
    assert latest_attempt(session, invoice).status == "pending"
    ours = standin.card_payment(account.processor_customer_id, 2000, "usd", metadata)
    assert deliver(webhook, standin.payment_intent_event(ours)).status_code == 200
    assert fresh(session, Invoice, invoice.id).status == "paid"


class Crash(BaseException):
    """The process dies (a deploy, the OOM killer) after Stripe answered and before the portal recorded it."""


@needs_stripe
def test_a_pay_now_that_crashed_before_recording_its_session_is_closed_by_reconcile_and_can_be_paid_again(
        stripe_gateway, stripe_browser, database, session, standin, invoice):
    class CrashesAfterStripeAnswers:
        def __getattr__(self, name):
            return getattr(stripe_gateway, name)

        def create_checkout_session(self, **request):
            stripe_gateway.create_checkout_session(**request)
            raise Crash()

    with pytest.raises(Crash), database.session() as crashing:
        checkout.start_checkout(crashing, CrashesAfterStripeAnswers(), invoice.account_id, invoice.id,
                                success_url="http://localhost/paid", cancel_url="http://localhost/canceled",
                                now=utcnow())
    assert (latest_attempt(session, invoice).status, latest_attempt(session, invoice).checkout_session_id) == (
        "pending", None)
    # The customer never got the payment page's address, so it cannot have been paid: nothing to wait for.
    assert "is being opened in another window" in pay_now(stripe_browser, invoice, htmx=True).get_data(as_text=True)
    standin.requests.clear()

    events.reconcile(database, stripe_gateway, now=utcnow() + timedelta(minutes=15), policy=POLICY)

    assert standin.received("POST", "/v1/payment_intents") == []
    assert latest_attempt(session, invoice).status != "pending"
    assert fresh(session, Invoice, invoice.id).status == "open"
    again = pay_now(stripe_browser, invoice)
    assert again.status_code == 303 and again.headers["Location"].startswith("https://checkout.stripe.com/")


# --- localstripe's own webhook deliveries, to a live portal ---------------------------------------

@pytest.fixture
def live_portal(stripe_app):
    from ..conftest import LiveServer

    # The portal on a loopback port, so that localstripe can POST its webhooks to it.
    portal = LiveServer(lambda url: stripe_app)  # its links need not lead back: nobody follows them here
    yield portal
    portal.stop()


@pytest.fixture
def localstripe_webhook(localstripe):
    """Register a webhook endpoint at localstripe; it is switched off again afterwards (localstripe keeps its
    endpoints across its data resets and offers no way to delete one)."""
    def register(url: str, events: list[str]):
        requests.post(f"{localstripe.url}/_config/webhooks/portal-test", timeout=5,
                      json={"url": url, "secret": WEBHOOK_SECRET, "events": events}).raise_for_status()

    yield register
    register("http://127.0.0.1:9/", ["no.such.event"])


@needs_stripe
def test_a_payment_intent_event_signed_and_sent_by_localstripe_pays_the_invoice_on_the_live_portal(
        stripe_browser, session, standin, localstripe, live_portal, localstripe_webhook, invoice):
    # Checkout's own webhook is lost here; the PaymentIntent's event names the invoice through the metadata the
    # portal put in payment_intent_data, and that alone settles it.
    localstripe_webhook(f"{live_portal.url}/stripe/webhook", ["payment_intent.succeeded"])
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)

    intent_id = standin.pay(checkout_id)["data"]["object"]["payment_intent"]

    deadline = time.monotonic() + 10
    while fresh(session, Invoice, invoice.id).status != "paid" and time.monotonic() < deadline:
        time.sleep(0.1)
    paid = fresh(session, Invoice, invoice.id)
    assert paid.status == "paid", "localstripe's payment_intent.succeeded webhook was not applied"
    assert paid.payment_method_label == "Visa •••• 4242"
    assert paid.processor_transaction_id == localstripe.get(f"/v1/payment_intents/{intent_id}")["latest_charge"]["id"]
    # (An earlier test's events may reach this endpoint too: localstripe sends them a second after they happen.)
    applied = session.scalars(select(ProcessorEvent).where(ProcessorEvent.outcome == "succeeded")).all()
    assert [(e.type, e.source) for e in applied] == [("payment_intent.succeeded", "stripe")]
    assert applied[0].id.startswith("evt_")


# --- webhook security (sandbox mode; the signature check does not depend on the processor) -------

def sandbox_app(database, database_url, tmp_path, **overrides):
    settings = load_settings(overrides={
        "database_url": database_url, "secret_key": "test-secret-key", "testing": True, "secure_cookies": False,
        "instance_path": tmp_path / "instance", "ratelimit_storage_url": "memory://", **overrides})
    app = create_app(settings, database=database)
    limiter.reset()
    return app


@pytest.fixture
def signed_app(database, database_url, tmp_path):
    app = sandbox_app(database, database_url, tmp_path, stripe_webhook_secret=WEBHOOK_SECRET)
    yield app
    limiter.reset()


@pytest.fixture
def sandbox_checkout(signed_app, session):
    """A sandbox Pay now in progress and the checkout.session.completed event that would pay it."""
    account, _ = make_customer(session)
    invoice = make_invoice(session, account)
    browser = Browser(signed_app.test_client())
    browser.login()
    assert pay_now(browser, invoice).status_code == 303
    checkout_id = checkout_session_of(session, invoice)
    event = {"id": "evt_security_1", "object": "event", "type": "checkout.session.completed", "created": 0,
             "livemode": False, "data": {"object": {
                 "id": checkout_id, "object": "checkout.session", "status": "complete", "payment_status": "paid",
                 "payment_intent": None, "amount_total": invoice.amount_due_cents, "currency": "usd",
                 "metadata": {"invoice_id": str(invoice.id)}}}}
    return invoice, event, browser


def nothing_changed(session, invoice):
    assert fresh(session, Invoice, invoice.id).status == "open"
    assert session.scalar(select(func.count()).select_from(ProcessorEvent)) == 0
    assert latest_attempt(session, invoice).status == "pending"


def forged(event, how: str) -> tuple[bytes, dict]:
    body, headers = signed_webhook(event, WEBHOOK_SECRET)
    if how == "missing header":
        del headers["Stripe-Signature"]
    elif how == "wrong secret":
        body, headers = signed_webhook(event, "whsec_someone_else")
    elif how == "tampered payload":
        other, _ = signed_webhook({**event, "type": "checkout.session.expired"}, WEBHOOK_SECRET)
        headers["Stripe-Signature"] = stripe_signature(other, WEBHOOK_SECRET)
    elif how == "too old":
        headers["Stripe-Signature"] = stripe_signature(body, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    return body, headers


@pytest.mark.parametrize("how", ["missing header", "wrong secret", "tampered payload", "too old"])
def test_a_webhook_without_a_valid_recent_signature_is_refused_and_changes_nothing(
        signed_app, session, sandbox_checkout, how):
    invoice, event, _ = sandbox_checkout
    webhook = signed_app.test_client()

    body, headers = forged(event, how)
    refused = webhook.post("/stripe/webhook", data=body, headers=headers)

    assert refused.status_code == 400
    nothing_changed(session, invoice)
    # The very same event, properly signed, is accepted: the refusal was about the signature alone.
    assert deliver(webhook, event).status_code == 200
    assert fresh(session, Invoice, invoice.id).status == "paid"


def test_a_signature_just_inside_stripes_five_minute_tolerance_is_accepted(signed_app, session, sandbox_checkout):
    invoice, event, _ = sandbox_checkout

    response = deliver(signed_app.test_client(), event, timestamp=int(time.time()) - 290)

    assert response.status_code == 200
    assert fresh(session, Invoice, invoice.id).status == "paid"


def test_without_a_webhook_secret_configured_every_webhook_is_refused(app, session):
    account, _ = make_customer(session)
    invoice = make_invoice(session, account)
    browser = Browser(app.test_client())
    browser.login()
    pay_now(browser, invoice)
    event = {"id": "evt_unconfigured", "object": "event", "type": "checkout.session.completed", "data": {"object": {
        "id": checkout_session_of(session, invoice), "payment_status": "paid", "payment_intent": None}}}

    for secret in ("", WEBHOOK_SECRET):
        assert deliver(app.test_client(), event, secret=secret).status_code == 400

    nothing_changed(session, invoice)


def test_the_webhook_needs_no_csrf_token_even_with_a_logged_in_session(signed_app, session, sandbox_checkout):
    invoice, event, browser = sandbox_checkout
    body, headers = signed_webhook(event, WEBHOOK_SECRET)

    # The customer's own browser session (cookie included) still gets no CSRF check on this route.
    response = browser.client.post("/stripe/webhook", data=body, headers=headers)

    assert response.status_code == 200
    assert fresh(session, Invoice, invoice.id).status == "paid"


def test_every_other_post_route_still_refuses_a_request_without_a_csrf_token(signed_app, session, sandbox_checkout):
    _, _, browser = sandbox_checkout
    checked = []

    for rule in signed_app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint == "webhooks.stripe_webhook":
            continue
        _, path = rule.build({name: 1 for name in rule.arguments})
        response = browser.post(path, {}, csrf=False)
        if rule.endpoint.startswith("api_v1_"):
            # The server-to-server API reads no cookie: without its bearer key the browser's session gets 401.
            assert response.status_code == 401, f"{rule.rule} answered {response.status_code} without a key"
            continue
        assert response.status_code == 400, f"{rule.rule} answered {response.status_code} without a CSRF token"
        assert "did not come from this site" in response.get_data(as_text=True), rule.rule
        checked.append(rule.rule)

    assert len(checked) >= 15 and "/billing/invoices/<int:invoice_id>/pay" in checked
    assert latest_attempt(session, sandbox_checkout[0]).attempt_number == 1


@needs_stripe
def test_a_signed_checkout_completed_for_one_cent_is_a_partial_payment_not_paid(stripe_app, stripe_browser, session,
                                                                                standin, invoice):
    checkout_id = started_checkout(stripe_browser, session, standin, invoice)
    event = standin.pay(checkout_id)
    event["data"]["object"]["amount_total"] = 1  # correctly signed, but one cent
    assert deliver(stripe_app.test_client(), event).status_code == 200
    partly = fresh(session, Invoice, invoice.id)
    assert partly.status == "open"
    assert (partly.amount_paid_cents, partly.amount_due_cents) == (1, partly.total_cents - 1)
    assert receipts(session) == []
