"""URL converters. ``int`` is replaced app-wide so every route's ids are bounded, including routes added
later: an id the database could not hold (PostgreSQL raises on anything past 2**31-1, SQLite overflows
past 2**63-1) answers 404 like any other id that does not exist, instead of failing inside a query."""
from __future__ import annotations

from werkzeug.routing import IntegerConverter, ValidationError

from ..bounds import INT_MAX


class BoundedIntConverter(IntegerConverter):
    """``<int:id>`` for ids: ASCII digits only (``\\d`` would also match "١٢"), 1..2**31-1 unless the rule
    says otherwise (``<int(min=0):index>``)."""

    regex = r"[0-9]+"

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 1, max: int | None = INT_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    def to_python(self, value: str) -> int:
        # Longer than any number in range: refuse before int() (which refuses over 4300 digits with a
        # ValueError, a 500).
        if len(value.lstrip("-")) > len(str(INT_MAX)):
            raise ValidationError()
        return super().to_python(value)
