"""Dates become text here, for pages, e-mails and PDFs alike (Babel: no glibc-only ``%-d``)."""
from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime

DATE = "d MMM y"  # 20 Nov 2026


def format_date(value: date | datetime | None, format: str = DATE, locale: str = "en") -> str:
    """``2026-11-20`` -> ``20 Nov 2026``; with a pattern such as ``"d MMM y HH:mm"`` also the time.

    Datetimes are shown in the time zone they carry (UTC throughout the portal), never converted; no
    value (a date not set yet) is an empty string."""
    if value is None:
        return ""
    # The offset is part of the key: two datetimes of the same instant in different zones are equal, and
    # each prints its own wall time.
    offset = value.utcoffset() if isinstance(value, datetime) else None
    return _formatted(value, offset, format, locale)


@lru_cache(maxsize=4096)
def _formatted(value: date | datetime, offset, format: str, locale: str) -> str:
    # Babel parses the pattern and walks the locale data on every call; a renewal batch's e-mails and a page
    # of invoice rows print the same few dates again and again.
    if isinstance(value, datetime):
        if format == DATE:  # a day's pattern shows only the date part, as the value carries it
            return _formatted_date(value.date(), format, locale)
        return babel_format_datetime(value, format, locale=locale)
    return _formatted_date(value, format, locale)


@lru_cache(maxsize=4096)
def _formatted_date(value: date, format: str, locale: str) -> str:
    # Babel parses the pattern and looks up the locale's month names on every call (about 0.05 ms); a page
    # of invoice rows shows the same few days again and again, and a day's text never changes.
    return babel_format_date(value, format, locale=locale)
