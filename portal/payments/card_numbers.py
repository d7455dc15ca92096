"""Card number checks the sandbox performs the way a processor would: Luhn, brand by prefix."""
from __future__ import annotations

import re

# (brand, prefix pattern, allowed lengths); order matters where prefixes overlap.
_BRANDS = [
    ("amex", re.compile(r"^3[47]"), {15}),
    ("diners", re.compile(r"^(30[0-5]|309|36|3[89])"), {14, 15, 16, 17, 18, 19}),
    ("jcb", re.compile(r"^35(2[89]|[3-8])"), {16, 17, 18, 19}),
    ("unionpay", re.compile(r"^62"), {16, 17, 18, 19}),
    ("discover", re.compile(r"^(6011|64[4-9]|65)"), {16, 17, 18, 19}),
    ("mastercard", re.compile(r"^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))"), {16}),
    ("visa", re.compile(r"^4"), {13, 16, 19}),
]


def normalise(number: str) -> str:
    """Drop the spaces and dashes people type between digit groups."""
    return re.sub(r"[\s-]", "", number or "")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def brand_of(digits: str) -> str | None:
    """The supported brand a number belongs to, or None (unsupported or malformed)."""
    for brand, prefix, lengths in _BRANDS:
        if prefix.match(digits) and len(digits) in lengths:
            return brand
    return None
