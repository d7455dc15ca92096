"""Card-number checks the sandbox makes, as a processor would."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.payments.card_numbers import brand_of, luhn_ok, normalise


@pytest.mark.parametrize("number, brand", [
    ("4242424242424242", "visa"), ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
    ("378282246310005", "amex"), ("6011111111111117", "discover"), ("3056930009020004", "diners"),
    ("36227206271667", "diners"), ("3566002020360505", "jcb"), ("6200000000000005", "unionpay"),
])
def test_stripes_test_numbers_are_recognised_by_brand(number, brand):
    assert luhn_ok(number)
    assert brand_of(number) == brand


def test_numbers_of_unsupported_brands_have_no_brand():
    assert brand_of("9999999999999995") is None
    assert brand_of("1234567812345670") is None


def test_spaces_and_dashes_are_ignored():
    assert normalise(" 4242 4242-4242 4242 ") == "4242424242424242"


@given(st.text(alphabet="0123456789", min_size=12, max_size=19))
def test_changing_one_digit_breaks_the_luhn_check(digits):
    if not luhn_ok(digits):
        return
    changed = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    assert not luhn_ok(changed)
