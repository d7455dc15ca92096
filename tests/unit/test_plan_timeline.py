"""Plan changes over time, each step at its own moment (as ``portal billing run --now`` moves the clock):
upgrade mid-period, downgrade at the period end, cancel then keep, cancel then lapse, resubscribe."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from portal.audit import Actor
from portal.billing.subscriptions import cancellation, changes
from portal.billing.subscriptions.access import paid_access
from portal.billing.subscriptions.renewals import run_renewals
from portal.models import CreditEntry, Invoice, OutboxMessage, Plan, Subscription

from ..helpers import POLICY, add_card, make_customer, make_plan, make_subscription

NOV1 = datetime(2026, 11, 1, tzinfo=timezone.utc)
NOV16 = datetime(2026, 11, 16, tzinfo=timezone.utc)
DEC1 = datetime(2026, 12, 1, tzinfo=timezone.utc)
JAN1 = datetime(2027, 1, 1, tzinfo=timezone.utc)
ME = Actor(user_id=None)


@pytest.fixture
def world(session, sandbox):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    add_card(session, sandbox, account, default=True)
    pro = make_plan(session)  # $20 a month
    basic = Plan(code="basic", name="Basic", interval="month", price_cents=1000, currency="USD")
    business = Plan(code="business", name="Business", interval="month", price_cents=5000, currency="USD")
    annual = Plan(code="pro-annual", name="Pro", interval="year", price_cents=20000, currency="USD")
    session.add_all([basic, business, annual])
    session.commit()
    sub = make_subscription(session, account, plan=pro, period_end=DEC1)
    sub.current_period_start = NOV1
    session.commit()
    return {"account": account, "sub": sub, "pro": pro, "basic": basic, "business": business, "annual": annual}


def change(database, sandbox, seller, world, plan, now):
    return changes.change_plan(database, sandbox, world["account"].id, world[plan].id, seller=seller, actor=ME,
                               now=now, policy=POLICY)


def fresh(session, world) -> Subscription:
    session.expire_all()
    return session.get(Subscription, world["sub"].id)


def test_upgrade_mid_period_bills_the_difference_for_the_rest_of_it_and_renews_on_the_new_plan(
        database, session, sandbox, seller, world):
    result = change(database, sandbox, seller, world, "business", NOV16)
    assert result.status == "changed"
    sub = fresh(session, world)
    assert sub.plan_id == world["business"].id and sub.current_period_end == DEC1
    proration = session.query(Invoice).one()
    assert [(l.amount_cents, l.period_start, l.period_end) for l in proration.lines] == [
        (-1000, NOV16, DEC1), (2500, NOV16, DEC1)]  # 15 of 30 days
    run_renewals(database, sandbox, seller, now=DEC1, policy=POLICY)
    renewal = session.query(Invoice).filter(Invoice.period_start == DEC1).one()
    assert renewal.subtotal_cents == 5000 and renewal.status == "paid"


def test_monthly_to_annual_starts_a_year_today_with_the_unused_month_credited(database, session, sandbox, seller,
                                                                             world):
    change(database, sandbox, seller, world, "annual", NOV16)
    sub = fresh(session, world)
    assert (sub.plan_id, sub.current_period_start, sub.current_period_end) == (
        world["annual"].id, NOV16, datetime(2027, 11, 16, tzinfo=timezone.utc))
    assert [l.amount_cents for l in session.query(Invoice).one().lines] == [-1000, 20000]
    assert run_renewals(database, sandbox, seller, now=DEC1, policy=POLICY).invoiced == 0


def test_downgrade_takes_effect_at_the_period_end_exactly_once(database, session, sandbox, seller, world):
    assert change(database, sandbox, seller, world, "basic", NOV16).status == "scheduled"
    assert fresh(session, world).plan_id == world["pro"].id and session.query(Invoice).count() == 0
    run_renewals(database, sandbox, seller, now=DEC1, policy=POLICY)
    run_renewals(database, sandbox, seller, now=DEC1, policy=POLICY)
    sub = fresh(session, world)
    assert sub.plan_id == world["basic"].id and sub.scheduled_plan_id is None and sub.current_period_end == JAN1
    assert [i.subtotal_cents for i in session.query(Invoice)] == [1000]
    run_renewals(database, sandbox, seller, now=JAN1, policy=POLICY)
    assert [i.subtotal_cents for i in session.query(Invoice).order_by(Invoice.id)] == [1000, 1000]


def test_cancel_then_keep_renews_as_if_nothing_happened(database, session, sandbox, seller, world):
    cancellation.cancel(session, world["account"].id, reason="too_expensive", comment="", actor=ME, now=NOV16)
    cancellation.keep(session, world["account"].id, actor=ME, now=datetime(2026, 11, 20, tzinfo=timezone.utc))
    stats = run_renewals(database, sandbox, seller, now=DEC1, policy=POLICY)
    assert (stats.invoiced, stats.ended) == (1, 0)
    assert fresh(session, world).status == "active"


def test_cancel_then_lapse_ends_it_at_the_period_end_with_no_invoice_and_one_notice(database, session, sandbox,
                                                                                   seller, world):
    cancellation.cancel(session, world["account"].id, reason="missing_features", comment="API", actor=ME, now=NOV16)
    assert paid_access(session, world["account"].id).paid_access  # until the period end
    assert run_renewals(database, sandbox, seller, now=datetime(2026, 11, 30, tzinfo=timezone.utc),
                        policy=POLICY).ended == 0
    assert run_renewals(database, sandbox, seller, now=DEC1, policy=POLICY).ended == 1
    assert run_renewals(database, sandbox, seller, now=JAN1, policy=POLICY).ended == 0
    sub = fresh(session, world)
    assert sub.status == "canceled" and sub.canceled_at == DEC1 and sub.cancel_reason == "missing_features: API"
    assert session.query(Invoice).count() == 0 and not paid_access(session, world["account"].id).paid_access
    assert session.query(OutboxMessage).filter_by(kind="subscription_ended").count() == 1


def test_resubscribe_after_the_lapse_starts_a_new_paid_period_today(database, session, sandbox, seller, world):
    cancellation.cancel(session, world["account"].id, reason="unused", comment="", actor=ME, now=NOV16)
    run_renewals(database, sandbox, seller, now=DEC1, policy=POLICY)
    back = datetime(2026, 12, 10, tzinfo=timezone.utc)
    assert change(database, sandbox, seller, world, "pro", back).status == "changed"
    sub = fresh(session, world)
    assert (sub.status, sub.current_period_start, sub.current_period_end) == (
        "active", back, datetime(2027, 1, 10, tzinfo=timezone.utc))
    assert paid_access(session, world["account"].id).paid_access
    assert session.query(Invoice).one().subtotal_cents == 2000


def test_an_upgrade_covered_by_credit_charges_nothing_and_a_surplus_becomes_credit(database, session, sandbox,
                                                                                  seller, world):
    tiny = Plan(code="tiny-annual", name="Tiny", interval="year", price_cents=500, currency="USD")
    session.add(tiny)
    session.commit()
    world["tiny"] = tiny
    result = change(database, sandbox, seller, world, "tiny", NOV1)
    assert result.status == "changed" and sandbox.count_charges() == 0
    invoice = session.query(Invoice).one()
    assert invoice.total_cents == 0 and invoice.status == "paid"
    assert [l.amount_cents for l in invoice.lines] == [-2000, 500, 1500]
    assert session.query(CreditEntry).one().amount_cents == 1500


def test_the_proration_invoice_pdf_shows_each_part_with_its_period(database, session, sandbox, seller, world):
    import io

    from pypdf import PdfReader

    from portal.documents import pdf

    change(database, sandbox, seller, world, "business", NOV16)
    invoice = session.query(Invoice).one()
    reader = PdfReader(io.BytesIO(pdf.invoice_pdf(session, invoice, now=NOV16)))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Unused time on Pro plan (monthly)" in text and "Remaining time on Business plan (monthly)" in text
    assert "16 Nov 2026" in text and "1 Dec 2026" in text and "-$10.00" in text and "$25.00" in text
