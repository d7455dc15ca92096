"""The ranges the database can hold, and reading whole numbers from outside input within them.

Every id and every amount column is an ``Integer``: 32 bits signed on PostgreSQL. A number beyond that
makes PostgreSQL raise ``NumericValueOutOfRange`` and SQLite overflow, so input is bounded before it gets
near a query. Python's ``int()`` also accepts other scripts' digits ("١٢"), underscores and spaces; ids and
amounts that arrive as text are ASCII digits only.
"""
from __future__ import annotations

import re

# The largest value of an Integer column on PostgreSQL (and so of every id).
INT_MAX = 2**31 - 1

_DIGITS = re.compile(r"[0-9]{1,10}")


def parse_int(text, *, minimum: int = 1, maximum: int = INT_MAX) -> int | None:
    """``"42"`` -> ``42``; None for anything that is not ASCII digits within ``minimum..maximum``."""
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None
