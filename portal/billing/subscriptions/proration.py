"""Proration: what a plan change costs today, in exact integer minor units. Pure: plain values in, parts out.

The rule (README, "Manage plan"):

- An **upgrade** applies now. It is a higher price per interval on the same interval, or monthly -> annual.
  Same interval: the unused part of the current plan is credited and the new plan is charged for the rest of
  the same period (the renewal date stays). Monthly -> annual: the unused part of the month is credited and
  a full year of the new plan starts now (the renewal date moves to a year from today).
- A **downgrade** (a lower price on the same interval, or annual -> monthly) takes effect at the period end:
  nothing is charged or credited today; the next renewal bills the new plan.

Each part is ``share(price, remaining, period)``: the price times the remaining fraction of the period in
whole seconds, rounded half up. The credit for leaving a plan and the charge for joining it use that one
function with the same fractions, so switching back and forth at the same moment nets to exactly zero, and
a stay on a plan between two changes costs what that stay is worth. A total below zero never becomes a
charge or a refund: the surplus is carried to the account's credit balance as a part of its own, so the
parts still add up to the invoice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..invoicing.periods import add_interval

SURPLUS_LINE = "Unused credit added to your balance"


@dataclass(frozen=True)
class Terms:
    """A plan as proration sees it."""

    name: str
    interval: str  # month | year
    price_cents: int

    @property
    def label(self) -> str:
        return f"{self.name} plan ({'monthly' if self.interval == 'month' else 'annual'})"


@dataclass(frozen=True)
class Part:
    description: str
    period_start: datetime
    period_end: datetime
    amount_cents: int
    kind: str  # unused_credit | remaining_charge | new_period | surplus_to_credit


@dataclass(frozen=True)
class Proration:
    upgrade: bool
    parts: tuple[Part, ...]
    # The period the subscription is in after the change (the same one, or a new year for monthly -> annual).
    period_start: datetime
    period_end: datetime

    @property
    def subtotal_cents(self) -> int:
        return sum(part.amount_cents for part in self.parts)

    @property
    def surplus_cents(self) -> int:
        """What goes to the account's credit balance (never a refund by surprise)."""
        return sum(part.amount_cents for part in self.parts if part.kind == "surplus_to_credit")


def share(price_cents: int, remaining_seconds: int, period_seconds: int) -> int:
    """``price * remaining / period``, rounded half up, for 0 <= remaining <= period."""
    if period_seconds <= 0:
        return 0
    remaining_seconds = max(0, min(remaining_seconds, period_seconds))
    return (2 * price_cents * remaining_seconds + period_seconds) // (2 * period_seconds)


def is_upgrade(current: Terms, new: Terms) -> bool:
    """Monthly -> annual is an upgrade, annual -> monthly a downgrade; on one interval, the higher price."""
    if current.interval != new.interval:
        return new.interval == "year"
    return new.price_cents > current.price_cents


def seconds(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def prorate(current: Terms, new: Terms, *, period_start: datetime, period_end: datetime,
            now: datetime, immediate: bool | None = None) -> Proration:
    """The parts of changing from ``current`` to ``new`` at ``now`` within the period; none for a change at the
    period end. ``immediate`` overrides the rule (staff changing a downgrade now, or an upgrade at period end);
    a downgrade made now credits more than it charges, and the surplus goes to credit as for any change."""
    if not (is_upgrade(current, new) if immediate is None else immediate):
        return Proration(upgrade=False, parts=(), period_start=period_start, period_end=period_end)
    now = min(max(now, period_start), period_end)
    total, remaining = seconds(period_start, period_end), seconds(now, period_end)
    parts = [Part(f"Unused time on {current.label}", now, period_end, -share(current.price_cents, remaining, total),
                  "unused_credit")]
    if new.interval == current.interval:
        start, end = period_start, period_end
        parts.append(Part(f"Remaining time on {new.label}", now, period_end, share(new.price_cents, remaining, total),
                          "remaining_charge"))
    else:
        start, end = now, add_interval(now, new.interval)
        parts.append(Part(new.label, start, end, new.price_cents, "new_period"))
    subtotal = sum(part.amount_cents for part in parts)
    if subtotal < 0:
        parts.append(Part(SURPLUS_LINE, now, period_end, -subtotal, "surplus_to_credit"))
    return Proration(upgrade=True, parts=tuple(parts), period_start=start, period_end=end)
