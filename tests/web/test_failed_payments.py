"""Past due on Billing details: the banner, Retry payment, the offer after a new card, /api/entitlements."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from portal.billing.subscriptions.renewals import run_renewals
from portal.billing.invoicing.seller import Seller
from portal.models import PaymentAttempt, Subscription

from ..helpers import POLICY, Browser, add_card, make_customer, make_subscription

DAY0 = datetime(2026, 11, 20, tzinfo=timezone.utc)


@pytest.fixture
def past_due(app, browser, session, gateway, settings):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_card(session, gateway, account, number="4000000000000341", default=True)
    sub = make_subscription(session, account, period_end=DAY0)
    run_renewals(app.extensions["portal.db"], gateway, Seller.from_settings(settings), now=DAY0 + timedelta(hours=1), policy=POLICY)
    browser.login()
    return account, sub


def test_billing_details_shows_the_failure_the_next_retry_and_both_actions(browser, past_due):
    body = browser.get("/billing").get_data(as_text=True)
    banner = re.search(r'<div class="banner banner-danger" role="alert".*?</div>\s*</div>', body, re.S).group(0)
    assert "Payment failed on 20 Nov 2026" in banner and "your bank declined the charge" in banner
    assert "retry automatically on 23 Nov 2026" in banner and "Paid features are paused" in banner
    assert "Update payment method" in banner and "Retry payment: $21.25 with Visa •••• 0341" in banner
    assert ">Past due<" in body


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_retry_payment_with_the_same_declining_card_says_so_and_changes_nothing(browser, session, past_due, htmx):
    account, sub = past_due
    response = browser.post("/billing/retry-payment", htmx=htmx)
    if htmx:
        assert response.status_code == 402
        body = response.get_data(as_text=True)
        assert "failed: Your card was declined. Try another card" in body and 'id="subscription"' in body
    else:
        assert response.status_code == 303
        assert "failed: Your card was declined." in browser.get("/billing").get_data(as_text=True)
    session.expire_all()
    assert session.get(Subscription, sub.id).status == "past_due"


def test_a_new_default_card_offers_to_pay_and_retry_payment_restores_access_at_once(browser, session, gateway,
                                                                                   past_due):
    account, sub = past_due
    added = browser.post("/billing/cards", {"cardholder_name": "Ada", "number": "4242 4242 4242 4242",
                                            "expiry": "12/30", "cvc": "123", "save_as_default": "y",
                                            "idempotency_key": "c" * 32}, htmx=True).get_data(as_text=True)
    assert "Pay $21.25 now with Visa •••• 4242" in added  # one click, in the answer itself
    assert "Retry payment: $21.25 with Visa •••• 4242" in added  # the banner, swapped out of band
    done = browser.post("/billing/retry-payment", htmx=True)
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "Your subscription is active again." in body
    assert "banner-danger" not in body and ">Active<" in body
    assert 'id="invoices"' in body and ">Paid<" in body  # the invoice row, out of band
    session.expire_all()
    assert session.get(Subscription, sub.id).status == "active"
    assert browser.client.get("/api/entitlements").get_json()["paid_access"] is True


def test_retry_payment_is_rate_limited(browser, past_due):
    codes = [browser.post("/billing/retry-payment", htmx=True).status_code for _ in range(6)]
    assert codes[:5] == [402] * 5 and codes[5] == 429


def test_retry_payment_needs_a_csrf_token(browser, session, past_due):
    assert browser.post("/billing/retry-payment", csrf=False).status_code == 400
    assert session.query(PaymentAttempt).count() == 1


def test_entitlements_tell_the_product_whether_paid_features_are_on(app, browser, session, past_due):
    answer = browser.client.get("/api/entitlements")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    data = answer.get_json()
    assert data["paid_access"] is False and data["status"] == "past_due" and "payment failed" in data["reason"].lower()
    assert app.test_client().get("/api/entitlements").status_code == 401


def test_entitlements_of_an_active_account(app, session, gateway):
    account, _ = make_customer(session, email="ok@example.com", billing_email="ok@example.com")
    make_subscription(session, account)
    browser = Browser(app.test_client())
    browser.login("ok@example.com")
    data = browser.client.get("/api/entitlements").get_json()
    assert data == {"paid_access": True, "status": "active", "reason": "The subscription is active and paid.",
                    "plan": "pro-monthly", "current_period_end": "2026-12-01T00:00:00+00:00"}
