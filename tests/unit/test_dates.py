"""The one date format of pages, e-mails and PDFs."""
from __future__ import annotations

from datetime import date, datetime, timezone

from portal.dates import format_date
from portal.documents.rendering import environment


def test_dates_read_day_month_year_without_a_leading_zero():
    assert format_date(date(2026, 9, 3)) == "3 Sep 2026"
    assert format_date(datetime(2026, 11, 20, 23, 59, tzinfo=timezone.utc)) == "20 Nov 2026"


def test_a_pattern_with_hours_shows_the_time_as_stored_in_utc():
    moment = datetime(2026, 11, 20, 7, 5, 9, tzinfo=timezone.utc)
    assert format_date(moment, "d MMM y HH:mm") == "20 Nov 2026 07:05"
    assert format_date(moment.replace(tzinfo=None), "d MMM y HH:mm:ss") == "20 Nov 2026 07:05:09"


def test_a_date_not_set_yet_is_left_blank():
    assert format_date(None) == ""


def test_e_mails_and_pdfs_use_the_same_filter():
    template = environment().from_string("{{ when|format_date }}")
    assert template.render(when=date(2026, 1, 5)) == "5 Jan 2026"
