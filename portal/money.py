"""Money is an integer of minor units plus an ISO currency code; this is the one place it becomes text, and
the one place text that staff type into a money form (an amount, the day money arrived) becomes a value."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import lru_cache

import pycountry
from babel import Locale
from babel.numbers import NumberPattern, get_currency_precision, parse_pattern

from .errors import InvalidInput

# ASCII digits only: ``\d`` and ``Decimal()`` also take other scripts' digits ("١٢", "１２") as numbers.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
# What people type around a number and may be dropped: spaces, thousands separators, currency signs.
_DECORATION = re.compile(r"[\s,$€£¥]")


def valid_currency(code) -> bool:
    """An ISO 4217 code as we store it: three capital letters that name a currency (USD, EUR)."""
    return isinstance(code, str) and len(code) == 3 and code.isascii() and code.isupper() and \
        pycountry.currencies.get(alpha_3=code) is not None


CURRENCY_RULE = "An ISO 4217 currency code in capitals, such as USD or EUR."


def to_decimal(minor_units: int, currency: str) -> Decimal:
    """Exact value in major units (cents to dollars, yen to yen)."""
    return Decimal(int(minor_units)).scaleb(-get_currency_precision(currency.upper()))


@lru_cache(maxsize=64)
def _currency_format(locale: str) -> tuple[Locale, NumberPattern]:
    # Parsing the locale and its currency pattern is most of what format_currency costs (about 0.2 ms a
    # call); both depend on the locale alone, so a page of invoice rows parses them once per process.
    parsed = Locale.parse(locale)
    return parsed, parse_pattern(parsed.currency_formats["standard"])


def format_money(minor_units: int, currency: str, locale: str = "en_US") -> str:
    """``1999, "USD"`` -> ``$19.99``; used by pages, e-mails and PDFs alike.

    What ``babel.numbers.format_currency`` prints, with the parsed pattern reused, and each amount's text
    remembered: a page of invoice rows shows the same few amounts, and applying the pattern is still about
    0.05 ms a call."""
    return _formatted_money(int(minor_units), currency.upper(), locale)


@lru_cache(maxsize=4096)
def _formatted_money(minor_units: int, currency: str, locale: str) -> str:
    parsed, pattern = _currency_format(locale)
    currency = currency.upper()
    return pattern.apply(to_decimal(minor_units, currency), parsed, currency=currency, currency_digits=True,
                         decimal_quantization=True)


def amount_text(cents: int, currency: str) -> str:
    """Minor units as the plain number a form field shows (``2125`` -> ``"21.25"``)."""
    precision = get_currency_precision(currency.upper())
    return f"{Decimal(cents).scaleb(-precision):.{precision}f}"


def parse_amount(text: str | None, currency: str, *, max_cents: int, field: str = "amount") -> int:
    """``"12.50"`` (or ``"$1,012.50"``) in major units -> integer minor units, exactly; InvalidInput otherwise.

    Only ASCII digits, at most the currency's decimals (two for USD, none for JPY) and at most ``max_cents``
    (``PORTAL_MAX_AMOUNT_CENTS``): a typo of a few extra digits must not become a credit or a refund."""
    cleaned = _DECORATION.sub("", text or "")
    if not cleaned:
        raise InvalidInput({field: "Enter an amount."})
    if cleaned.startswith("-"):
        raise InvalidInput({field: "Enter an amount greater than zero."})
    currency = currency.upper()
    precision = get_currency_precision(currency)
    match = _AMOUNT.fullmatch(cleaned)
    if match is None or len(match.group(2) or "") > precision:
        example = "12" if precision == 0 else "12." + "5" * precision
        raise InvalidInput({field: f"Enter the amount in {currency}, like {example}."})
    whole, fraction = match.group(1).lstrip("0"), (match.group(2) or "").ljust(precision, "0")
    if len(whole) > len(str(max_cents)):
        cents = max_cents + 1  # more digits than the limit has: too much, without int() reading a long string
    else:
        cents = int(whole or "0") * 10**precision + int(fraction or "0")
    if cents <= 0:
        raise InvalidInput({field: "Enter an amount greater than zero."})
    if cents > max_cents:
        raise InvalidInput({field: f"Enter at most {format_money(max_cents, currency)}."})
    return cents


def parse_received_on(text: str | None, *, today: date, field: str = "received_on") -> date:
    """The day money arrived, as ``YYYY-MM-DD``: never in the future."""
    try:
        value = date.fromisoformat((text or "").strip())
    except ValueError:
        raise InvalidInput({field: "Enter the date the money arrived, as YYYY-MM-DD."}) from None
    if value > today:
        raise InvalidInput({field: "The date can't be in the future."})
    return value
