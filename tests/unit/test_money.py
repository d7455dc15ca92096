"""One money formatter for pages, e-mails and PDFs."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.money import format_money, to_decimal


@pytest.mark.parametrize("cents, currency, text", [
    (2000, "USD", "$20.00"), (2380, "usd", "$23.80"), (5, "EUR", "€0.05"), (1234567, "USD", "$12,345.67"),
    (500, "JPY", "¥500"), (0, "USD", "$0.00"),
])
def test_amounts_are_formatted_from_minor_units(cents, currency, text):
    assert format_money(cents, currency) == text


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_conversion_to_major_units_is_exact(cents):
    assert to_decimal(cents, "USD") * 100 == cents
