"""Manage plan in Chromium: change plan with its preview and cancel with a reason, with JavaScript on (HTMX
swaps the Current subscription section) and off (plain forms and redirects); axe on every new panel."""
from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portal.models import Plan, Subscription, utcnow

from ..helpers import PASSWORD, add_card, make_customer, make_plan, make_subscription
from .conftest import settled
from .test_accessibility import assert_accessible

# Set to a directory to keep screenshots of each panel at desktop and phone widths (for reviewing the design).
SHOTS = os.environ.get("PORTAL_TEST_SCREENSHOTS")


def shoot(page, name: str) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator("#subscription").screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"))
    page.set_viewport_size({"width": 1100, "height": 900})


@pytest.fixture
def customer(page, live_server, session):
    gateway = live_server.app.extensions["portal.gateway"]
    account, _ = make_customer(session, address_line1="1 Main St", city="Boston", postal_code="02101", region="MA")
    pro = make_plan(session)
    session.add_all([Plan(code="basic", name="Basic", interval="month", price_cents=1000, currency="USD"),
                     Plan(code="business", name="Business", interval="month", price_cents=5000, currency="USD"),
                     Plan(code="pro-annual", name="Pro", interval="year", price_cents=20000, currency="USD")])
    session.commit()
    sub = make_subscription(session, account, plan=pro, period_end=utcnow().replace(microsecond=0) + timedelta(days=15))
    add_card(session, gateway, account, default=True)
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/billing$"))
    return sub


def subscription_row(session, sub) -> Subscription:
    session.expire_all()
    return session.get(Subscription, sub.id)


def test_change_plan_previews_then_upgrades_in_place(page, customer, session):
    section = page.locator("#subscription")
    page.get_by_role("link", name="Change plan").click()
    settled(page)
    expect(section.get_by_text("Choose a plan")).to_be_visible()
    assert_accessible(page, "the Change plan panel")
    shoot(page, "change-plan")
    section.get_by_label(re.compile(r"^Business")).check()
    section.get_by_role("button", name="Review").click()
    settled(page)
    expect(section.locator("#due-today")).to_have_text("$15.94")
    expect(section.get_by_text("Remaining time on Business plan (monthly)")).to_be_visible()
    assert_accessible(page, "the upgrade preview")
    shoot(page, "upgrade-preview")
    section.get_by_role("button", name="Confirm and pay $15.94").click()
    settled(page)
    expect(page.get_by_text(re.compile("You're now on Business"))).to_be_visible()
    expect(section.locator("dl.facts dd").first).to_contain_text("Business")
    assert page.url.endswith("/billing")  # swapped in place, no reload
    assert subscription_row(session, customer).plan.name == "Business"


def test_a_downgrade_shows_the_date_it_takes_effect_and_can_be_canceled(page, customer, session):
    section = page.locator("#subscription")
    page.get_by_role("link", name="Change plan").click()
    settled(page)
    section.get_by_label(re.compile(r"^Basic")).check()
    section.get_by_role("button", name="Review").click()
    settled(page)
    expect(section.get_by_text("Nothing is charged today")).to_be_visible()
    shoot(page, "downgrade-preview")
    section.get_by_role("button", name=re.compile("Confirm change on")).click()
    settled(page)
    expect(section.get_by_text(re.compile(r"Changes to Basic on \d+ \w+ \d{4}"))).to_be_visible()
    assert_accessible(page, "a scheduled downgrade")
    shoot(page, "scheduled-change")
    section.get_by_role("button", name="Cancel this change").click()
    settled(page)
    expect(section.get_by_text(re.compile("Changes to Basic"))).to_have_count(0)
    assert subscription_row(session, customer).scheduled_plan_id is None


def test_cancel_asks_why_then_keeps_access_until_the_period_end_and_can_be_undone(page, customer, session):
    section = page.locator("#subscription")
    page.get_by_role("link", name="Cancel subscription").click()
    settled(page)
    section.get_by_role("button", name="Cancel subscription").click()
    settled(page)
    expect(section.locator("#reason-error")).to_have_text("Choose why you are canceling.")
    assert_accessible(page, "the cancel form with its error")
    shoot(page, "cancel-form")
    section.get_by_label("I don't use it enough").check()
    section.get_by_label(re.compile("Anything you'd like to tell us")).fill("Seasonal work")
    section.get_by_role("button", name="Cancel subscription").click()
    settled(page)
    expect(page.get_by_text(re.compile(r"Your plan stays active until \d+ \w+ \d{4}\."))).to_be_visible()
    expect(section.get_by_text(re.compile(r"Cancels on \d+ \w+ \d{4}"))).to_be_visible()
    assert_accessible(page, "a subscription set to cancel")
    shoot(page, "cancels-on")
    section.get_by_role("button", name="Keep my subscription").click()
    settled(page)
    expect(section.get_by_text(re.compile("Cancels on"))).to_have_count(0)
    assert not subscription_row(session, customer).cancel_at_period_end


@pytest.mark.nojs
def test_without_javascript_change_plan_and_cancel_work_as_plain_pages(page, customer, session, live_server):
    section = page.locator("#subscription")
    page.get_by_role("link", name="Change plan").click()
    expect(page).to_have_url(re.compile(r"/billing/plan"))
    section.get_by_label(re.compile(r"^Basic")).check()
    section.get_by_role("button", name="Review").click()
    section.get_by_role("button", name=re.compile("Confirm change on")).click()
    expect(page).to_have_url(re.compile(r"/billing#subscription$"))
    expect(section.get_by_text(re.compile(r"Changes to Basic on"))).to_be_visible()
    page.get_by_role("link", name="Cancel subscription").click()
    section.get_by_label("It's too expensive").check()
    section.get_by_role("button", name="Cancel subscription").click()
    expect(page.get_by_text(re.compile(r"Your plan stays active until \d+ \w+ \d{4}\."))).to_be_visible()
    row = subscription_row(session, customer)
    assert row.cancel_at_period_end and row.cancel_reason == "too_expensive" and row.scheduled_plan_id is None


def test_a_canceled_customer_resubscribes_and_pays_in_place(page, customer, session):
    from portal.billing.subscriptions.cancellation import end_subscription

    end_subscription(session, subscription_row(session, customer), now=utcnow())
    session.commit()
    page.reload()
    section = page.locator("#subscription")
    section.get_by_role("link", name="Resubscribe").click()
    settled(page)
    section.get_by_label(re.compile(r"^Basic")).check()
    section.get_by_role("button", name="Review").click()
    settled(page)
    expect(section.get_by_text("Basic, starting today")).to_be_visible()
    assert_accessible(page, "the resubscribe preview")
    shoot(page, "resubscribe-preview")
    section.get_by_role("button", name=re.compile(r"^Confirm and pay \$10\.63$")).click()
    settled(page)
    expect(page.get_by_text(re.compile("You're now on Basic"))).to_be_visible()
    expect(section.get_by_role("link", name="Resubscribe")).to_have_count(0)
    saved = subscription_row(session, customer)
    assert saved.status == "active" and saved.plan.name == "Basic"


def test_screenshots_of_the_staff_subscription_panel_and_the_cancellations_report(page, customer, session,
                                                                                  live_server):
    """For reviewing the design only (PORTAL_TEST_SCREENSHOTS): the console's side of Manage plan."""
    if not SHOTS:
        pytest.skip("screenshots only when PORTAL_TEST_SCREENSHOTS is set")
    from ..helpers import make_staff

    page.get_by_role("link", name="Cancel subscription").click()
    settled(page)
    page.get_by_label("It's too expensive").check()
    page.get_by_role("button", name=re.compile("^Cancel subscription")).click()
    settled(page)
    make_staff(session, email="agent@support.example")
    page.context.clear_cookies()
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill("agent@support.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Support console", level=1)).to_be_visible()
    for path, selector, name in ((f"/staff/accounts/{customer.account_id}", "#staff-subscription", "staff-subscription"),
                                 ("/staff/reports/cancellations", "main", "cancellations-report")):
        page.goto(live_server.url + path)
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.locator(selector).screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"))
