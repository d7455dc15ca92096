"""Billing periods: how long one interval of a plan lasts. Used by renewals and by payments that move a
subscription into the period they paid for, so it sits below both."""
from __future__ import annotations

import calendar
from datetime import datetime


def add_interval(moment: datetime, interval: str) -> datetime:
    """One billing interval later; the 31st becomes the month's last day when the month is shorter."""
    months = 12 if interval == "year" else 1
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))
