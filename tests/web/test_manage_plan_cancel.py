"""Cancel at the period end on Billing details: the reason form, Cancels on …, Keep my subscription, and the
worker ending it at the period end (page and HTMX partial alike)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from portal.billing.invoicing.seller import Seller
from portal.billing.subscriptions.access import paid_access
from portal.billing.subscriptions.renewals import run_renewals
from portal.models import AuditEvent, Invoice, OutboxMessage, WebhookEvent

from ..helpers import (POLICY, add_card, bearer, make_api_key, make_customer, make_subscription,
                       reload_subscription as reload, subscription_section as section_of)

PERIOD_END = datetime(2027, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def customer(subscriber):
    return subscriber(period_end=PERIOD_END)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_cancel_opens_the_reason_form_in_page_and_as_partial(browser, customer, htmx):
    body = browser.get("/billing/cancel", htmx=htmx).get_data(as_text=True)
    form = section_of(body)
    assert "Why are you canceling?" in form and "It&#39;s too expensive" in form
    assert "Your plan stays active until <strong>1 Jan 2027</strong>" in form
    assert ("<html" in body) is not htmx


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_cancel_with_a_reason_keeps_access_until_the_period_end_and_says_so(browser, session, customer, htmx):
    account, sub = customer
    browser.get("/billing/cancel")
    response = browser.post("/billing/cancel", {"reason": "too_expensive", "comment": "Budget cuts"}, htmx=htmx)
    if htmx:
        assert response.status_code == 200
        body = response.get_data(as_text=True)
    else:
        assert response.status_code == 303
        body = browser.get("/billing").get_data(as_text=True)
    assert "Your plan stays active until 1 Jan 2027." in body
    section = section_of(body)
    assert "Cancels on 1 Jan 2027" in section and "Keep my subscription" in section
    assert "Next charge" not in section and ">Cancel subscription<" not in section
    saved = reload(session, sub)
    assert saved.cancel_at_period_end and saved.status == "active"
    assert saved.cancel_reason == "too_expensive: Budget cuts"
    assert paid_access(session, account.id).paid_access
    audit = session.query(AuditEvent).filter_by(action="subscription.cancel_requested").one()
    assert audit.details["reason"] == "too_expensive"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
@pytest.mark.parametrize("data, field, message", [
    ({}, "reason", "Choose why you are canceling."),
    ({"reason": "because"}, "reason", "Choose why you are canceling."),
    ({"reason": "other", "comment": "x" * 401}, "comment", "Use at most 400 characters."),
])
def test_a_cancel_without_a_valid_reason_says_why_next_to_the_field_and_changes_nothing(
        browser, session, customer, htmx, data, field, message):
    account, sub = customer
    response = browser.post("/billing/cancel", data, htmx=htmx)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert f'<p class="error" id="{field}-error">{message}</p>' in body
    assert not reload(session, sub).cancel_at_period_end


def test_cancel_without_a_csrf_token_is_refused(browser, session, customer):
    account, sub = customer
    response = browser.post("/billing/cancel", {"reason": "unused"}, csrf=False)
    assert response.status_code == 400
    assert not reload(session, sub).cancel_at_period_end


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_keep_my_subscription_undoes_the_cancel(browser, session, customer, htmx):
    account, sub = customer
    browser.post("/billing/cancel", {"reason": "unused"})
    response = browser.post("/billing/keep", htmx=htmx)
    body = response.get_data(as_text=True) if htmx else browser.get("/billing").get_data(as_text=True)
    assert "Your subscription continues; it renews on 1 Jan 2027." in body
    section = section_of(body)
    assert "Cancels on" not in section and "Next charge" in section and "Cancel subscription" in section
    assert not reload(session, sub).cancel_at_period_end


def test_keep_when_nothing_is_set_to_cancel_is_a_clear_conflict(browser, customer):
    response = browser.post("/billing/keep", htmx=True)
    assert response.status_code == 409
    assert "Your subscription is not set to cancel." in response.get_data(as_text=True)


def test_canceling_twice_says_it_already_cancels(browser, customer):
    browser.post("/billing/cancel", {"reason": "unused"})
    response = browser.post("/billing/cancel", {"reason": "unused"}, htmx=True)
    assert response.status_code == 409 and "already cancels on 1 Jan 2027" in response.get_data(as_text=True)


def test_at_the_period_end_the_worker_ends_it_once_without_a_renewal_invoice(app, browser, session, customer,
                                                                          gateway, settings):
    account, sub = customer
    browser.post("/billing/cancel", {"reason": "switched_service"})
    database, seller = app.extensions["portal.db"], Seller.from_settings(settings)
    stats = run_renewals(database, gateway, seller, now=PERIOD_END + timedelta(hours=1), policy=POLICY)
    again = run_renewals(database, gateway, seller, now=PERIOD_END + timedelta(days=2), policy=POLICY)
    assert (stats.ended, stats.invoiced, again.ended, again.invoiced) == (1, 0, 0, 0)
    saved = reload(session, sub)
    assert saved.status == "canceled" and saved.canceled_at == PERIOD_END
    assert session.query(Invoice).count() == 0
    assert not paid_access(session, account.id).paid_access
    notice = session.query(OutboxMessage).filter_by(kind="subscription_ended").one()
    assert notice.to_address == "billing@acme.example" and "ended on 1 Jan 2027" in notice.text_body
    section = section_of(browser.get("/billing").get_data(as_text=True))
    assert "Ended on" in section and "1 Jan 2027" in section and "Keep my subscription" not in section


def test_another_accounts_subscription_is_never_touched(browser, session, customer, gateway):
    stranger, _ = make_customer(session, email="eve@example.com", name="Eve Corp")
    theirs = make_subscription(session, stranger, period_end=PERIOD_END)
    browser.post("/billing/cancel", {"reason": "unused"})
    assert not reload(session, theirs).cancel_at_period_end


def test_a_past_due_customer_who_cancels_ends_at_once_and_still_sees_the_open_invoice(
        app, browser, session, gateway, settings):
    account, _ = make_customer(session, email="bo@example.com", region="MA", postal_code="01101")
    add_card(session, gateway, account, number="4000000000000341", default=True)
    sub = make_subscription(session, account, period_end=datetime(2026, 11, 20, tzinfo=timezone.utc))
    run_renewals(app.extensions["portal.db"], gateway, Seller.from_settings(settings),
                 now=datetime(2026, 11, 20, 1, tzinfo=timezone.utc), policy=POLICY)
    browser.login("bo@example.com")
    form = section_of(browser.get("/billing/cancel").get_data(as_text=True))
    assert "Your subscription ends at once" in form
    body = browser.post("/billing/cancel", {"reason": "too_expensive"}, htmx=True).get_data(as_text=True)
    assert "Your subscription is canceled." in body
    saved = reload(session, sub)
    assert saved.status == "canceled"
    invoice = session.query(Invoice).one()
    assert invoice.status == "open" and not invoice.auto_retry and invoice.next_retry_at is None
    page = browser.get("/billing").get_data(as_text=True)
    assert invoice.number in page and "Pay now" in page


def test_the_product_sees_the_cancellation_date_in_the_api_and_the_webhook_event(browser, client, session, customer):
    account, sub = customer
    account.external_id = "acme-7"
    session.commit()
    browser.post("/billing/cancel", {"reason": "unused"})
    answer = client.get("/api/v1/accounts/acme-7/subscriptions", headers=bearer(make_api_key(session))).get_json()
    (shown,) = answer["data"]
    assert shown["cancel_at_period_end"] is True and shown["cancel_at"] == "2027-01-01T00:00:00+00:00"
    event = session.query(WebhookEvent).filter_by(type="subscription.updated").order_by(WebhookEvent.id.desc()).first()
    assert event.payload["cancel_at"] == "2027-01-01T00:00:00+00:00"
    browser.post("/billing/keep")
    again = client.get("/api/v1/accounts/acme-7/subscriptions", headers=bearer(make_api_key(session))).get_json()
    assert again["data"][0]["cancel_at"] is None
