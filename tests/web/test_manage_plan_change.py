"""Change plan on Billing details: the plan list, the preview, upgrades billed now through the one collection
path, downgrades scheduled for the period end with Cancel this change, and resubscribing."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal.billing.invoicing.seller import Seller
from portal.billing.subscriptions.access import paid_access
from portal.billing.subscriptions.renewals import run_renewals
from portal.models import AuditEvent, Invoice, Plan, Refund, utcnow

from ..helpers import (POLICY, add_card, make_invoice, make_plan,
                       reload_subscription as reload, subscription_section as section_of)


def plan(session, code, name, price_cents, interval="month", currency="USD", self_serve=True) -> Plan:
    row = Plan(code=code, name=name, price_cents=price_cents, interval=interval, currency=currency,
               self_serve=self_serve)
    session.add(row)
    session.commit()
    return row


@pytest.fixture
def plans(session):
    return {"pro": make_plan(session), "basic": plan(session, "basic-monthly", "Basic", 1000),
            "business": plan(session, "business-monthly", "Business", 5000),
            "annual": plan(session, "pro-annual", "Pro", 20000, interval="year"),
            "sales": plan(session, "enterprise", "Enterprise", 90000, self_serve=False),
            "euro": plan(session, "pro-eur", "Pro EUR", 1800, currency="EUR")}


@pytest.fixture
def customer(subscriber, plans):
    """Half way through a 30-day monthly period on Pro ($20), with a card that pays."""
    return subscriber(plan=plans["pro"], period_end=utcnow().replace(microsecond=0) + timedelta(days=15))


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_change_plan_lists_self_serve_plans_in_the_same_currency_with_the_current_one_marked(browser, customer, htmx):
    body = browser.get("/billing/plan", htmx=htmx).get_data(as_text=True)
    panel = section_of(body)
    assert "Basic" in panel and "Business" in panel and "$212.50 per year" in panel
    assert "Enterprise" not in panel and "Pro EUR" not in panel
    assert re.search(r'id="plan-\d+" value="\d+" checked>\s*<label[^>]*><strong>Pro</strong>\s*\$21.25 per month, '
                     r'incl\. sales tax 6\.25%\s*<span class="badge badge-default">Current plan', panel)
    assert ("<html" in body) is not htmx


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_choosing_an_upgrade_previews_each_part_with_its_period_and_changes_nothing(
        browser, session, customer, plans, htmx):
    account, sub = customer
    response = browser.post("/billing/plan", {"plan_id": plans["business"].id}, htmx=htmx)
    assert response.status_code == 200
    panel = section_of(response.get_data(as_text=True))
    assert "Unused time on Pro plan (monthly)" in panel and "-$10.00" in panel
    assert "Remaining time on Business plan (monthly)" in panel and "$25.00" in panel
    assert '<td class="num" id="due-today">$15.94</td>' in panel  # $15.00 + 6.25% sales tax
    assert "Confirm and pay $15.94" in panel
    assert "Then $53.13 every month" in panel
    assert reload(session, sub).plan_id == plans["pro"].id and session.query(Invoice).count() == 0


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_confirming_an_upgrade_charges_the_proration_at_once_and_moves_to_the_new_plan(
        browser, session, gateway, customer, plans, htmx):
    account, sub = customer
    response = browser.post("/billing/plan", {"plan_id": plans["business"].id, "confirm": "yes"}, htmx=htmx)
    body = response.get_data(as_text=True) if htmx else browser.get("/billing").get_data(as_text=True)
    assert "You&#39;re now on Business. $15.94 was charged" in body or "You're now on Business. $15.94" in body
    saved = reload(session, sub)
    assert saved.plan_id == plans["business"].id and saved.status == "active"
    invoice = session.query(Invoice).one()
    assert invoice.status == "paid" and invoice.total_cents == 1594 and invoice.plan_id == plans["business"].id
    assert [line.amount_cents for line in invoice.lines] == [-1000, 2500]
    assert all(line.period_end == saved.current_period_end for line in invoice.lines)
    assert gateway.count_charges() == 1
    assert session.query(AuditEvent).filter_by(action="subscription.upgraded").count() == 1


def test_a_declined_upgrade_leaves_the_old_plan_with_a_clear_message_and_nothing_owed(
        browser, session, gateway, customer, plans):
    account, sub = customer
    add_card(session, gateway, account, number="4000000000000341", default=True)
    response = browser.post("/billing/plan", {"plan_id": plans["business"].id, "confirm": "yes"}, htmx=True)
    assert response.status_code == 402
    body = response.get_data(as_text=True)
    assert "You are still on Pro; nothing was charged." in body and 'id="plan_id-error"' in body
    saved = reload(session, sub)
    assert saved.plan_id == plans["pro"].id and saved.status == "active"
    invoice = session.query(Invoice).one()
    assert invoice.status == "void" and invoice.amount_due_cents == 0
    assert paid_access(session, account.id).paid_access


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_downgrade_is_scheduled_for_the_period_end_and_can_be_canceled(browser, session, customer, plans, htmx):
    account, sub = customer
    ends = reload(session, sub).current_period_end
    preview = section_of(browser.post("/billing/plan", {"plan_id": plans["basic"].id}, htmx=htmx).get_data(as_text=True))
    assert "Nothing is charged today" in preview and "Then $10.63 every month" in preview
    browser.post("/billing/plan", {"plan_id": plans["basic"].id, "confirm": "yes"}, htmx=htmx)
    section = section_of(browser.get("/billing").get_data(as_text=True))
    date = f"{ends.day} {ends:%b %Y}"
    assert f"Changes to Basic on {date}" in section and "Cancel this change" in section
    assert "$10.63 on" in section  # the next charge is the new plan's
    saved = reload(session, sub)
    assert saved.plan_id == plans["pro"].id and saved.scheduled_plan_id == plans["basic"].id
    assert session.query(Invoice).count() == 0
    response = browser.post("/billing/plan/scheduled/cancel", htmx=htmx)
    body = response.get_data(as_text=True) if htmx else browser.get("/billing").get_data(as_text=True)
    assert "Your plan stays Pro." in body and "Changes to Basic" not in section_of(body)
    assert reload(session, sub).scheduled_plan_id is None


@pytest.mark.parametrize("data, message", [
    ({"plan_id": "nope"}, "Choose one of the plans listed."),
    ({}, "Choose one of the plans listed."),
    ({"plan_id": "999999"}, "Choose one of the plans listed."),
    ({"plan_id": "current"}, "You are already on this plan."),
    ({"plan_id": "sales"}, "Choose one of the plans listed."),
    ({"plan_id": "euro"}, "Choose one of the plans listed."),
])
@pytest.mark.parametrize("confirm", [False, True], ids=["review", "confirm"])
def test_a_wrong_choice_is_refused_next_to_the_plans_and_changes_nothing(browser, session, customer, plans, data,
                                                                         message, confirm):
    account, sub = customer
    names = {"current": plans["pro"].id, "sales": plans["sales"].id, "euro": plans["euro"].id}
    data = {k: names.get(v, v) for k, v in data.items()}
    if confirm:
        data["confirm"] = "yes"
    response = browser.post("/billing/plan", data, htmx=True)
    assert response.status_code == 422
    assert f'<p class="error" id="plan_id-error" role="alert">{message}</p>' in response.get_data(as_text=True)
    assert reload(session, sub).plan_id == plans["pro"].id and session.query(Invoice).count() == 0


def test_changing_plan_without_a_csrf_token_is_refused(browser, session, customer, plans):
    account, sub = customer
    response = browser.post("/billing/plan", {"plan_id": plans["business"].id, "confirm": "yes"}, csrf=False)
    assert response.status_code == 400 and reload(session, sub).plan_id == plans["pro"].id


def test_cancel_this_change_with_nothing_scheduled_is_a_clear_conflict(browser, customer):
    response = browser.post("/billing/plan/scheduled/cancel", htmx=True)
    assert response.status_code == 409 and "There is no plan change scheduled." in response.get_data(as_text=True)


def test_at_the_period_end_the_renewal_bills_the_scheduled_plan_once(app, browser, session, gateway, settings,
                                                                    customer, plans):
    account, sub = customer
    browser.post("/billing/plan", {"plan_id": plans["basic"].id, "confirm": "yes"})
    ends = reload(session, sub).current_period_end
    database, seller = app.extensions["portal.db"], Seller.from_settings(settings)
    run_renewals(database, gateway, seller, now=ends + timedelta(minutes=5), policy=POLICY)
    run_renewals(database, gateway, seller, now=ends + timedelta(days=1), policy=POLICY)
    saved = reload(session, sub)
    assert saved.plan_id == plans["basic"].id and saved.scheduled_plan_id is None
    invoice = session.query(Invoice).one()
    assert invoice.lines[0].description == "Basic plan (monthly)" and invoice.subtotal_cents == 1000


def test_a_canceled_customer_resubscribes_pays_now_and_has_access_at_once(browser, session, gateway, customer,
                                                                         plans):
    account, sub = customer
    browser.post("/billing/cancel", {"reason": "unused"})
    from portal.billing.subscriptions.cancellation import end_subscription
    row = reload(session, sub)
    end_subscription(session, row, now=utcnow())
    session.commit()
    section = section_of(browser.get("/billing").get_data(as_text=True))
    assert "Resubscribe" in section and "Change plan" not in section
    panel = section_of(browser.get("/billing/plan?plan_id=%d" % plans["basic"].id, htmx=True).get_data(as_text=True))
    assert "Basic, starting today" in panel and "Confirm and pay $10.63" in panel
    browser.post("/billing/plan", {"plan_id": plans["basic"].id, "confirm": "yes"})
    saved = reload(session, sub)
    assert saved.status == "active" and saved.plan_id == plans["basic"].id and not saved.cancel_at_period_end
    assert paid_access(session, account.id).paid_access
    assert saved.current_period_end - saved.current_period_start >= timedelta(days=28)


def test_an_upgrade_waiting_on_3d_secure_and_paid_after_a_cancel_never_brings_the_new_plan(
        browser, session, gateway, customer, plans):
    account, sub = customer
    add_card(session, gateway, account, number="4000002760003184", default=True)  # every charge asks for 3-D Secure
    browser.post("/billing/plan", {"plan_id": plans["business"].id, "confirm": "yes"})
    invoice = session.query(Invoice).one()
    assert invoice.status == "open" and invoice.plan_id == plans["business"].id
    # The customer opens Pay now for it, then cancels before paying, then pays on the page left open.
    page = browser.post(f"/billing/invoices/{invoice.id}/pay").headers["Location"]
    cs = re.search(r"/sandbox/checkout/(cs_sbx_\w+)", page).group(1)
    body = browser.post("/billing/cancel", {"reason": "too_expensive"}, htmx=True).get_data(as_text=True)
    assert "Your plan stays active until" in body
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "void"
    section = section_of(browser.get("/billing").get_data(as_text=True))
    assert "Cancels on" in section and "Pro" in section and "Business" not in section
    browser.post(f"/sandbox/checkout/{cs}", {"method": "card", "outcome": "success"})
    saved, voided = reload(session, sub), session.get(Invoice, invoice.id)
    assert saved.plan_id == plans["pro"].id and saved.cancel_at_period_end and saved.status == "active"
    assert voided.status == "void" and voided.amount_paid_cents - voided.amount_refunded_cents == 0
    assert session.query(Refund).filter_by(invoice_id=invoice.id).one().amount_cents == invoice.total_cents


def test_a_suspended_customer_who_resubscribes_is_told_and_not_billed_twice_for_the_old_invoice(
        browser, session, gateway, customer, plans):
    account, sub = customer
    row = reload(session, sub)
    row.status = "suspended"
    session.commit()
    old = make_invoice(session, account, subscription=row, issued_at=row.current_period_start,
                       period_start=row.current_period_start)
    old.auto_retry = False
    session.commit()
    panel = section_of(browser.get("/billing/plan?plan_id=%d" % plans["basic"].id, htmx=True).get_data(as_text=True))
    assert f"This replaces {old.number} ($21.25, unpaid): it is voided once you pay" in panel
    browser.post("/billing/plan", {"plan_id": plans["basic"].id, "confirm": "yes"})
    saved = reload(session, sub)
    assert saved.status == "active" and saved.plan_id == plans["basic"].id
    voided = session.get(Invoice, old.id)
    assert voided.status == "void" and voided.amount_due_cents == 0
    page = browser.get("/billing").get_data(as_text=True)
    assert f'/billing/invoices/{old.id}/pay' not in page  # nothing left to pay from before


def test_a_declined_resubscribe_leaves_the_old_invoice_open(browser, session, gateway, customer, plans):
    account, sub = customer
    row = reload(session, sub)
    row.status = "suspended"
    session.commit()
    old = make_invoice(session, account, subscription=row, issued_at=row.current_period_start,
                       period_start=row.current_period_start)
    add_card(session, gateway, account, number="4000000000000341", default=True)
    browser.post("/billing/plan", {"plan_id": plans["basic"].id, "confirm": "yes"})
    session.expire_all()
    assert session.get(Invoice, old.id).status == "open" and reload(session, sub).status == "suspended"


def test_a_customer_canceled_while_past_due_sees_the_old_invoice_stays_open_when_resubscribing(
        browser, session, gateway, customer, plans):
    account, sub = customer
    row = reload(session, sub)
    row.status = "past_due"
    session.commit()
    old = make_invoice(session, account, subscription=row, issued_at=row.current_period_start,
                       period_start=row.current_period_start)
    browser.post("/billing/cancel", {"reason": "unused"})
    panel = section_of(browser.get("/billing/plan?plan_id=%d" % plans["basic"].id, htmx=True).get_data(as_text=True))
    assert f"{old.number} ($21.25) stays open on this page: it bills time before you canceled." in panel
    browser.post("/billing/plan", {"plan_id": plans["basic"].id, "confirm": "yes"})
    session.expire_all()
    assert reload(session, sub).status == "active" and session.get(Invoice, old.id).status == "open"


def test_an_upgrade_shows_the_new_plan_and_its_proration_lines_in_entitlements_e_mail_and_pdf(
        browser, session, customer, plans):
    import io

    from pypdf import PdfReader

    from portal.models import OutboxMessage, WebhookEvent

    account, sub = customer
    browser.post("/billing/plan", {"plan_id": plans["business"].id, "confirm": "yes"})
    invoice = session.query(Invoice).one()
    lines = [line.description for line in invoice.lines]
    assert any("Pro" in d for d in lines) and any("Business" in d for d in lines)
    entitlements = session.query(WebhookEvent).filter_by(type="entitlements.updated").order_by(WebhookEvent.id).all()
    assert entitlements[-1].payload["plan"] == "business-monthly" and entitlements[-1].payload["paid_access"]
    mail = [m for m in session.query(OutboxMessage).filter_by(account_id=account.id) if invoice.number in m.text_body]
    assert mail and all(d in mail[0].text_body for d in lines)
    pdf = browser.get(f"/billing/invoices/{invoice.id}.pdf")
    text = " ".join(PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text().split())
    assert all(" ".join(d.split())[:30] in text for d in lines)
