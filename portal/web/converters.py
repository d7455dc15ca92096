"""URL converters. ``int`` is replaced app-wide so every route's ids are bounded, including routes added
later: an id the database could not hold (PostgreSQL raises on anything past 2**31-1, SQLite overflows
past 2**63-1) answers 404 like any other id that does not exist, instead of failing inside a query."""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

from ..bounds import INT_MAX


def numbers_up_to(limit: int) -> str:
    """A regular expression for the numbers 1..``limit`` in ASCII digits, without leading zeros.

    The range lives in the pattern rather than only in ``to_python`` because Werkzeug picks the rule before
    it converts: a POST to ``/cards/<huge>/delete`` whose conversion fails would otherwise be answered 405
    (the GET rule of that path "matched") instead of 404.
    """
    text = str(limit)
    width = len(text)
    options = [f"[1-9][0-9]{{0,{width - 2}}}"] if width > 1 else []  # every shorter number
    for position, digit in enumerate(text):  # same length: equal up to here, then a smaller digit
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            options.append(f"{text[:position]}[{lowest}-{int(digit) - 1}][0-9]{{{width - position - 1}}}")
    options.append(text)
    return "(?:" + "|".join(options) + ")"


class BoundedIntConverter(IntegerConverter):
    """``<int:id>`` for ids: 1..2**31-1 in ASCII digits (``\\d`` would also match "١٢"); a rule may ask for
    ``<int(min=0):index>`` or a lower ``max``."""

    def __init__(self, map, fixed_digits: int = 0, min: int = 1, max: int = INT_MAX, signed: bool = False) -> None:
        if signed or fixed_digits or not 0 <= min <= 1 or not 1 <= max <= INT_MAX:
            raise ValueError("ids are unsigned, 0 or 1 up to 2**31-1, and not zero-padded")
        super().__init__(map, min=min, max=max)
        self.regex = ("0|" if min == 0 else "") + numbers_up_to(max)
