"""The console managing a customer's plan: change now or at the period end, cancel now or at the period end,
undo; each needs a reason and writes an audit row; the customer's reason shows; the reasons report; staff
only; CSRF; impersonation stays read-only."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal.dates import format_date
from portal.models import AuditEvent, Invoice, Plan, Subscription, utcnow

from ..helpers import add_card, make_customer, make_plan, make_staff, make_subscription, reload_subscription, \
    staff_browser_on


@pytest.fixture
def world(session, gateway):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_card(session, gateway, account, default=True)
    pro = make_plan(session)
    basic = Plan(code="basic", name="Basic", interval="month", price_cents=1000, currency="USD")
    enterprise = Plan(code="enterprise", name="Enterprise", interval="month", price_cents=9000, currency="USD",
                      self_serve=False)
    session.add_all([basic, enterprise])
    session.commit()
    sub = make_subscription(session, account, plan=pro, period_end=utcnow().replace(microsecond=0) + timedelta(days=15))
    make_staff(session)
    return {"account": account, "sub": sub, "pro": pro, "basic": basic, "enterprise": enterprise}


@pytest.fixture
def staff(app, world):
    return staff_browser_on(app, f"/staff/accounts/{world['account'].id}")


def url(world, action):
    return f"/staff/accounts/{world['account'].id}/subscription/{action}"


def fresh(session, world) -> Subscription:
    return reload_subscription(session, world["sub"])


def section(body: str) -> str:
    return re.search(r'<section id="staff-subscription".*?</section>', body, re.S).group(0)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_staff_schedule_a_downgrade_for_the_period_end_with_a_reason_and_an_audit_row(staff, session, world, htmx):
    response = staff.post(url(world, "plan"), {"plan_id": world["basic"].id, "when": "period_end",
                                               "note": "Ticket 42: asked to move down"}, htmx=htmx)
    body = response.get_data(as_text=True) if htmx else staff.get(f"/staff/accounts/{world['account'].id}").get_data(as_text=True)
    assert "Changes to Basic on" in section(body)
    assert fresh(session, world).scheduled_plan_id == world["basic"].id
    audit = session.query(AuditEvent).filter_by(action="subscription.plan_change_scheduled").one()
    assert audit.details["note"] == "Ticket 42: asked to move down" and audit.actor_user_id is not None


def test_staff_move_a_customer_to_a_sales_plan_now_charging_the_proration(staff, session, gateway, world):
    response = staff.post(url(world, "plan"), {"plan_id": world["enterprise"].id, "when": "now",
                                               "note": "Signed the enterprise order"}, htmx=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert fresh(session, world).plan_id == world["enterprise"].id
    invoice = session.query(Invoice).one()
    assert invoice.status == "paid" and [l.amount_cents for l in invoice.lines] == [-1000, 4500]


def test_staff_downgrade_now_credits_the_unused_time(staff, session, world):
    staff.post(url(world, "plan"), {"plan_id": world["basic"].id, "when": "now", "note": "Goodwill"})
    assert fresh(session, world).plan_id == world["basic"].id
    invoice = session.query(Invoice).one()
    assert invoice.total_cents == 0 and [l.amount_cents for l in invoice.lines] == [-1000, 500, 500]


@pytest.mark.parametrize("data, field, message", [
    ({"plan_id": "basic", "when": "period_end", "note": ""}, "note", "Enter the reason for this change."),
    ({"plan_id": "basic", "when": "tomorrow", "note": "x"}, "when", "Choose now or at the period end."),
    ({"plan_id": "", "when": "now", "note": "x"}, "plan_id", "Choose one of the plans listed."),
])
def test_a_staff_change_without_what_it_needs_says_so_next_to_the_field(staff, session, world, data, field, message):
    data = {k: world["basic"].id if v == "basic" else v for k, v in data.items()}
    response = staff.post(url(world, "plan"), data, htmx=True)
    assert response.status_code == 422
    assert f'id="plan-{field}-error">{message}</p>' in response.get_data(as_text=True)
    assert fresh(session, world).scheduled_plan_id is None and session.query(Invoice).count() == 0


@pytest.mark.parametrize("when, status", [("period_end", "active"), ("now", "canceled")])
def test_staff_cancel_now_or_at_the_period_end_keeps_the_customers_reason(staff, session, world, when, status):
    staff.post(url(world, "cancel"), {"when": when, "reason": "switched_service", "comment": "Went elsewhere",
                                      "note": "Phone call"})
    saved = fresh(session, world)
    assert saved.status == status and saved.cancel_reason == "switched_service: Went elsewhere"
    page = staff.get(f"/staff/accounts/{world['account'].id}").get_data(as_text=True)
    assert "I&#39;m switching to another service: “Went elsewhere”" in section(page)


def test_staff_cancel_without_a_reason_is_refused_next_to_both_fields(staff, session, world):
    response = staff.post(url(world, "cancel"), {"when": "now", "reason": "", "note": ""}, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="cancel-reason-code-error">Choose why you are canceling.' in body
    assert 'id="cancel-note-error">Enter the reason for this change.' in body
    assert fresh(session, world).status == "active"


def test_staff_undo_a_cancel_and_a_scheduled_change(staff, session, world):
    staff.post(url(world, "cancel"), {"when": "period_end", "reason": "unused", "note": "Asked"})
    staff.get(f"/staff/accounts/{world['account'].id}")
    staff.post(url(world, "keep"), {"note": "Changed their mind"})
    assert not fresh(session, world).cancel_at_period_end
    staff.post(url(world, "plan"), {"plan_id": world["basic"].id, "when": "period_end", "note": "Asked"})
    staff.post(url(world, "scheduled/cancel"), {"note": "Changed their mind"})
    assert fresh(session, world).scheduled_plan_id is None
    actions = {e.action for e in session.query(AuditEvent)}
    assert {"subscription.cancel_undone", "subscription.plan_change_canceled"} <= actions


def test_the_reasons_report_counts_cancels_by_month_and_reason(staff, session, world, browser):
    browser.login()
    browser.post("/billing/cancel", {"reason": "too_expensive"})
    browser.post("/billing/keep")
    browser.post("/billing/cancel", {"reason": "too_expensive"})
    body = staff.get("/staff/reports/cancellations").get_data(as_text=True)
    month = format_date(utcnow(), "MMMM y")  # "December 2026", never "2026-12"
    assert re.search(rf"<td class=\"nowrap\">{month}</td><td>It&#39;s too expensive</td><td class=\"num\">2</td>", body)


def test_customers_get_404_on_the_staff_plan_routes(browser, session, world):
    browser.login()
    assert browser.get("/staff/reports/cancellations").status_code == 404
    assert browser.post(url(world, "cancel"), {"when": "now", "reason": "unused", "note": "x"}).status_code == 404
    assert fresh(session, world).status == "active"


def test_staff_plan_forms_need_a_csrf_token(staff, session, world):
    response = staff.post(url(world, "cancel"), {"when": "now", "reason": "unused", "note": "x"}, csrf=False)
    assert response.status_code == 400 and fresh(session, world).status == "active"


def test_viewing_as_the_customer_cannot_cancel_or_change_plan(staff, session, world):
    account_id = world["account"].id
    started = staff.post(f"/staff/accounts/{account_id}/impersonate", {"reason": "Customer asked for help"})
    assert started.status_code == 303
    staff.get("/billing")
    assert staff.post("/billing/cancel", {"reason": "unused"}).status_code == 403
    assert staff.post("/billing/plan", {"plan_id": world["basic"].id, "confirm": "yes"}).status_code == 403
    assert fresh(session, world).status == "active" and fresh(session, world).scheduled_plan_id is None
