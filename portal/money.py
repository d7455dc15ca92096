"""Money is an integer of minor units plus an ISO currency code; this is the one place it becomes text."""
from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision


def to_decimal(minor_units: int, currency: str) -> Decimal:
    """Exact value in major units (cents to dollars, yen to yen)."""
    return Decimal(int(minor_units)).scaleb(-get_currency_precision(currency.upper()))


def format_money(minor_units: int, currency: str, locale: str = "en_US") -> str:
    """``1999, "USD"`` -> ``$19.99``; used by pages, e-mails and PDFs alike."""
    return format_currency(to_decimal(minor_units, currency), currency.upper(), locale=locale)
