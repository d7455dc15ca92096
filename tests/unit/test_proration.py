"""Proration rules: exact integer parts that add up, never a negative total, no money made or lost by going
back and forth within a period; which changes are upgrades."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from portal.billing.subscriptions.proration import Terms, is_upgrade, prorate, share

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = datetime(2026, 12, 1, tzinfo=timezone.utc)
PERIOD = int((END - START).total_seconds())

prices = st.integers(min_value=0, max_value=10_000_000)
moments = st.integers(min_value=0, max_value=PERIOD).map(lambda s: START + timedelta(seconds=s))
monthly = st.builds(Terms, name=st.sampled_from(["Basic", "Pro", "Business"]), interval=st.just("month"),
                    price_cents=prices)
any_plan = st.builds(Terms, name=st.sampled_from(["Basic", "Pro", "Business"]),
                     interval=st.sampled_from(["month", "year"]), price_cents=prices)


@given(current=monthly, new=any_plan, now=moments)
def test_the_parts_add_up_and_the_total_is_never_negative(current, new, now):
    change = prorate(current, new, period_start=START, period_end=END, now=now)
    assert change.subtotal_cents == sum(part.amount_cents for part in change.parts)
    assert change.subtotal_cents >= 0
    assert all(isinstance(part.amount_cents, int) for part in change.parts)
    assert all(part.period_start <= part.period_end for part in change.parts)


@given(current=monthly, new=any_plan, now=moments)
def test_a_surplus_goes_to_credit_as_a_part_of_its_own_never_a_negative_total(current, new, now):
    change = prorate(current, new, period_start=START, period_end=END, now=now)
    credited = sum(p.amount_cents for p in change.parts if p.kind != "surplus_to_credit")
    assert change.surplus_cents == max(0, -credited)


@given(a=monthly, cheaper=st.integers(0, 10_000_000), dearer=st.integers(1, 10_000_000), now=moments)
def test_joining_a_plan_and_leaving_it_at_one_moment_nets_to_exactly_zero(a, cheaper, dearer, now):
    """Up to ``a`` from a cheaper plan, then up from ``a`` to a dearer one at the same moment: the charge for
    the rest of ``a`` and the credit for it cancel to the cent."""
    below = Terms("Below", "month", max(0, a.price_cents - 1 - cheaper % max(1, a.price_cents)))
    above = Terms("Above", "month", a.price_cents + dearer)
    joined = prorate(below, a, period_start=START, period_end=END, now=now)
    left = prorate(a, above, period_start=START, period_end=END, now=now)
    if joined.upgrade:
        charge = next(p.amount_cents for p in joined.parts if p.kind == "remaining_charge")
        credit = next(p.amount_cents for p in left.parts if p.kind == "unused_credit")
        assert charge + credit == 0


@given(a=monthly, b=monthly, first=moments, second=moments)
def test_a_stay_on_a_plan_between_two_changes_costs_what_that_stay_is_worth(a, b, first, second):
    """Going a -> b at one moment and b -> a later charges b and credits a for exactly the time between,
    each by the same rounding: nothing is created or lost by the two changes."""
    first, second = min(first, second), max(first, second)
    left = lambda moment: int((END - moment).total_seconds())
    there = share(b.price_cents, left(first), PERIOD) - share(a.price_cents, left(first), PERIOD)
    back = share(a.price_cents, left(second), PERIOD) - share(b.price_cents, left(second), PERIOD)
    stay_on_b = share(b.price_cents, left(first), PERIOD) - share(b.price_cents, left(second), PERIOD)
    stay_on_a = share(a.price_cents, left(first), PERIOD) - share(a.price_cents, left(second), PERIOD)
    assert there + back == stay_on_b - stay_on_a


@given(price=prices, remaining=st.integers(0, PERIOD))
def test_a_share_is_between_nothing_and_the_whole_price(price, remaining):
    assert 0 <= share(price, remaining, PERIOD) <= price
    assert share(price, 0, PERIOD) == 0 and share(price, PERIOD, PERIOD) == price


def test_half_a_period_of_a_twenty_dollar_plan_is_ten_dollars_and_rounds_half_up():
    assert share(2000, PERIOD // 2, PERIOD) == 1000
    assert share(1, PERIOD // 2, PERIOD) == 1  # 0.5 cents rounds up


def test_upgrades_are_a_higher_price_on_one_interval_or_monthly_to_annual():
    pro, basic = Terms("Pro", "month", 2000), Terms("Basic", "month", 1000)
    annual_cheap = Terms("Pro", "year", 1500)
    assert is_upgrade(basic, pro) and not is_upgrade(pro, basic) and not is_upgrade(pro, pro)
    assert is_upgrade(pro, annual_cheap) and not is_upgrade(annual_cheap, pro)


def test_monthly_to_annual_credits_the_unused_month_and_starts_a_year_now():
    now = START + timedelta(days=10)
    change = prorate(Terms("Pro", "month", 3000), Terms("Pro", "year", 30000), period_start=START, period_end=END,
                     now=now)
    assert [p.amount_cents for p in change.parts] == [-2000, 30000]
    assert (change.period_start, change.period_end) == (now, datetime(2027, 11, 11, tzinfo=timezone.utc))
    assert change.parts[1].period_start == now and change.parts[0].period_end == END


def test_an_annual_plan_cheaper_than_the_unused_month_leaves_a_credit_not_a_negative_invoice():
    change = prorate(Terms("Pro", "month", 3000), Terms("Tiny", "year", 500), period_start=START, period_end=END,
                     now=START)
    assert change.subtotal_cents == 0 and change.surplus_cents == 2500


def test_a_downgrade_bills_nothing_now():
    change = prorate(Terms("Pro", "month", 2000), Terms("Basic", "month", 1000), period_start=START,
                     period_end=END, now=START + timedelta(days=3))
    assert not change.upgrade and change.parts == () and change.period_end == END
