"""Which tax an invoice carries, at what rate, and how much: a pure function of seller, customer and amount.

Rates are data (``portal/data/tax_rates.json``, or the operator's own copy), never code, so a rate
change is an edit to a file. The rules:

* EU customer in the seller's own country: that country's standard VAT, even for a business with a
  valid VAT number (domestic sales are never reverse-charged).
* EU customer in another country with a VAT number whose status is ``"valid"`` (and whose prefix
  matches the customer's country): 0%, reverse charge, both VAT numbers on the invoice.
* EU customer in another country without one (no number, ``"invalid"``, ``"pending"``): the customer
  country's standard VAT (business-to-consumer sales of digital services are taxed where the
  customer is: the OSS rule). We always tax at destination and don't model the EUR 10,000 threshold
  under which a small seller may charge home VAT instead; taxing at destination is always allowed.
* Seller outside the EU: the same two EU rules apply (VAT at the customer's rate through the
  non-Union OSS scheme, reverse charge for valid business numbers), so it is a deliberate choice,
  not an oversight, that a US seller's invoice to a French consumer carries French VAT.
* US customer: the state's base sales tax rate by ``customer_region`` (two-letter state code),
  whoever the seller is. County and city rates, whether a state taxes software at all, and nexus
  are out of scope: the operator sets a state to "0" where they don't collect. A 0% state is
  ``kind="none"``, labelled "No sales tax (OR)".
* Any other country: the table's ``other`` rate if the operator listed one, else no tax.

Rounding: tax is worked out once on the invoice total (not line by line, which can drift by a cent
per line), as ``amount * rate / 100`` in exact decimals, rounded half-up to a whole minor unit.
``split_tax`` spreads that one figure over lines when an invoice wants per-line tax. Negative
amounts (credit notes) round half away from zero, so a refund mirrors its invoice to the cent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping, Sequence

import pycountry

from ...money import format_money
from ..customer.vat import EU_COUNTRIES, normalise_vat_number, vat_prefix

US_STATES: frozenset[str] = frozenset({
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA", "ID", "IL", "IN", "KS",
    "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV",
    "NY", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV", "WY",
})

TaxKind = Literal["vat", "sales_tax", "reverse_charge", "none"]
_ZERO = Decimal("0")
_HUNDRED = Decimal("100")


class TaxError(ValueError):
    """The tax can't be worked out from what we were given (a missing billing country or US state)."""


class TaxTableError(ValueError):
    """A rates table is malformed or incomplete; raised when it is loaded, not when an invoice is made."""


@dataclass(frozen=True)
class TaxRates:
    """Rates in decimal percent by country (``eu``, ``other``) or US state (``us``)."""
    eu: Mapping[str, Decimal]
    us: Mapping[str, Decimal]
    other: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    # Name printed for an "other" country's tax ("GST", "VAT"); "Tax" when the table gives none.
    other_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""
    as_of: str = ""


@dataclass(frozen=True)
class TaxResult:
    rate: Decimal                  # percent: Decimal("19"), Decimal("6.25"); 0 for reverse charge / none
    label: str                     # "VAT 19% (DE)", "Sales tax 6.25% (MA)", "Reverse charge", "No tax"
    amount_cents: int              # the tax, in minor units of the invoice currency
    reverse_charge: bool
    seller_vat_number: str         # normalised, whenever the seller has one (every VAT invoice shows it)
    customer_vat_number: str       # normalised, when the customer's number is valid; "" otherwise
    kind: TaxKind
    net_cents: int = 0             # the amount the tax was worked out on
    tax_name: str = ""             # "VAT", "Sales tax", "GST", ...; "" when there's no tax
    country: str = ""              # where the tax is due: "DE", "US", "JP"
    region: str = ""               # US state for sales tax, else ""

    @property
    def total_cents(self) -> int:
        return self.net_cents + self.amount_cents


# --- rates tables ----------------------------------------------------------------------------------

def _parse_rate(where: str, value: Any) -> Decimal:
    # JSON numbers arrive as int or (with parse_float=Decimal) Decimal, strings as str; never float.
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise TaxTableError(f"{where}: the rate must be a decimal string such as \"19\" or \"6.25\".")
    try:
        rate = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise TaxTableError(f"{where}: {value!r} is not a number.") from None
    if not rate.is_finite() or not _ZERO <= rate < _HUNDRED:
        raise TaxTableError(f"{where}: {value!r} is not a percentage from 0 to under 100.")
    return rate


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, Mapping):
        raise TaxTableError(f"'{name}' must be an object of code: rate.")
    return section


def parse_rates(data: Mapping[str, Any]) -> TaxRates:
    """Build and check a rates table from its JSON shape.

    The EU and US sections must be complete: a missing member state or state would otherwise mean
    invoices silently without tax, which is the expensive kind of mistake. Set a rate to "0" to
    not collect somewhere.
    """
    if not isinstance(data, Mapping):
        raise TaxTableError("A rates table is a JSON object with 'eu', 'us' and 'other' sections.")
    unknown = set(data) - {"eu", "us", "other", "source", "as_of", "notes"}
    if unknown:
        raise TaxTableError(f"Unknown section(s) in the rates table: {', '.join(sorted(unknown))}.")

    eu = {code.upper(): _parse_rate(f"eu.{code}", v) for code, v in _section(data, "eu").items()}
    if missing := EU_COUNTRIES - set(eu):
        raise TaxTableError(f"The 'eu' section is missing {', '.join(sorted(missing))}.")
    if extra := set(eu) - EU_COUNTRIES:
        raise TaxTableError(f"{', '.join(sorted(extra))} in 'eu' are not EU member states; "
                            "put them under 'other'.")

    us = {code.upper(): _parse_rate(f"us.{code}", v) for code, v in _section(data, "us").items()}
    if missing := US_STATES - set(us):
        raise TaxTableError(f"The 'us' section is missing {', '.join(sorted(missing))}.")
    if extra := set(us) - US_STATES:
        raise TaxTableError(f"{', '.join(sorted(extra))} in 'us' are not US states (or DC).")

    other: dict[str, Decimal] = {}
    names: dict[str, str] = {}
    for code, value in _section(data, "other").items():
        code = code.upper()
        if code in EU_COUNTRIES or code == "US" or pycountry.countries.get(alpha_2=code) is None:
            raise TaxTableError(f"other.{code}: use a two-letter country code outside the EU and the US.")
        if isinstance(value, Mapping):
            other[code] = _parse_rate(f"other.{code}", value.get("rate"))
            name = value.get("name", "Tax")
            if not isinstance(name, str) or not name.strip():
                raise TaxTableError(f"other.{code}: 'name' must be text such as \"GST\".")
            names[code] = name.strip()
        else:
            other[code] = _parse_rate(f"other.{code}", value)

    return TaxRates(eu=MappingProxyType(eu), us=MappingProxyType(us), other=MappingProxyType(other),
                    other_names=MappingProxyType(names), source=str(data.get("source", "")),
                    as_of=str(data.get("as_of", "")))


@lru_cache(maxsize=8)
def _load(path: str | None) -> TaxRates:
    if path is None:
        text = resources.files("portal").joinpath("data/tax_rates.json").read_text(encoding="utf-8")
        where = "the packaged tax_rates.json"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise TaxTableError(f"Can't read the tax rates file {path}: {exc.strerror or exc}.") from None
        where = path
    try:
        # parse_float=Decimal: a rate written as a bare number (25.5) is still read exactly.
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise TaxTableError(f"{where} is not valid JSON: {exc}.") from None
    try:
        return parse_rates(data)
    except TaxTableError as exc:
        raise TaxTableError(f"{where}: {exc}") from None


def load_rates(path: str | Path | None = None) -> TaxRates:
    """The rates table at ``path``, or the packaged one. Read once per path and cached (restart, or
    ``load_rates.cache_clear()``, to pick up an edited file); malformed tables raise TaxTableError."""
    return _load(None if path is None or str(path) == "" else str(path))


load_rates.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


# --- arithmetic ------------------------------------------------------------------------------------

def round_half_up(value: Decimal) -> int:
    """To a whole minor unit, halves away from zero: 199.5 -> 200, -199.5 -> -200, 199.49 -> 199."""
    return int(value.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def tax_on(amount_cents: int, rate: Decimal) -> int:
    """``amount_cents * rate / 100`` rounded half-up; exact whatever the size of the amount."""
    with localcontext() as ctx:
        ctx.prec = 60  # far beyond any invoice, so nothing is rounded before the one rounding we mean
        return round_half_up(Decimal(amount_cents) * rate / _HUNDRED)


def format_rate(rate: Decimal) -> str:
    """Decimal("19") -> "19", Decimal("6.250") -> "6.25", Decimal("25.5") -> "25.5"."""
    return format(rate.normalize(), "f")  # normalize() alone would print 20 as "2E+1"


def split_tax(line_amounts: Sequence[int], result: TaxResult) -> list[int]:
    """Share the invoice's tax between its lines, in proportion to their amounts, summing exactly to it.

    Per-line tax rounded on its own could add up to a cent per line more or less than the tax on the
    total, which is what is charged; so each line gets the floor of its exact share and the cents
    left over go to the lines with the largest remainders (earliest first on ties).
    """
    lines = [int(a) for a in line_amounts]
    if sum(lines) != result.net_cents:
        raise ValueError(f"The lines add up to {sum(lines)}, but the tax was worked out on {result.net_cents}.")
    if not lines:
        return []
    if result.amount_cents == 0 or result.net_cents == 0:
        return [0] * len(lines)
    exact = [Fraction(result.amount_cents * a, result.net_cents) for a in lines]
    shares = [int(e // 1) for e in exact]
    left = result.amount_cents - sum(shares)  # 0 <= left < len(lines)
    by_remainder = sorted(range(len(lines)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares


# --- the rules -------------------------------------------------------------------------------------

def _check_amount(amount_cents: int) -> int:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise TypeError(f"amount_cents must be an int of minor units, not {type(amount_cents).__name__}.")
    return amount_cents


def _no_tax(label: str, *, net: int, seller: str, customer: str, country: str, region: str = "") -> TaxResult:
    return TaxResult(rate=_ZERO, label=label, amount_cents=0, reverse_charge=False, seller_vat_number=seller,
                     customer_vat_number=customer, kind="none", net_cents=net, country=country, region=region)


def calculate_tax(*, seller_country: str, seller_vat_number: str, customer_country: str, customer_region: str,
                  customer_vat_number: str, customer_vat_status: str, amount_cents: int,
                  rates: TaxRates | None = None) -> TaxResult:
    """The tax on an invoice of ``amount_cents`` (net, before tax). See the module docstring for the rules.

    ``customer_vat_status`` is ``"valid"``, ``"invalid"``, ``"pending"`` or ``"none"``/``""``; only
    ``"valid"`` counts. Countries are ISO alpha-2; ``customer_region`` is the US state code.
    Raises TaxError when there is no billing country, or a US address has no known state.
    """
    amount = _check_amount(amount_cents)
    table = rates if rates is not None else load_rates()
    seller_country = (seller_country or "").strip().upper()
    country = (customer_country or "").strip().upper()
    region = (customer_region or "").strip().upper()
    if not country:
        raise TaxError("A billing country is needed to work out the tax.")

    seller_number = normalise_vat_number(seller_vat_number, seller_country) if (seller_vat_number or "").strip() else ""
    customer_number = ""
    if customer_vat_status == "valid" and (customer_vat_number or "").strip():
        candidate = normalise_vat_number(customer_vat_number, country)
        # A number checked against another billing country (the address changed since) doesn't count.
        prefix = vat_prefix(country)
        if prefix and candidate.startswith(prefix) and candidate[len(prefix):]:
            customer_number = candidate

    if country in EU_COUNTRIES:
        if seller_country != country and customer_number:
            return TaxResult(rate=_ZERO, label="Reverse charge", amount_cents=0, reverse_charge=True,
                             seller_vat_number=seller_number, customer_vat_number=customer_number,
                             kind="reverse_charge", net_cents=amount, tax_name="VAT", country=country)
        rate = table.eu[country]
        return TaxResult(rate=rate, label=f"VAT {format_rate(rate)}% ({country})", amount_cents=tax_on(amount, rate),
                         reverse_charge=False, seller_vat_number=seller_number, customer_vat_number=customer_number,
                         kind="vat", net_cents=amount, tax_name="VAT", country=country)

    if country == "US":
        if region not in table.us:
            raise TaxError("A US billing address needs its state (a two-letter code such as CA) "
                           "to work out sales tax.")
        rate = table.us[region]
        if rate == _ZERO:
            return _no_tax(f"No sales tax ({region})", net=amount, seller=seller_number,
                           customer=customer_number, country=country, region=region)
        return TaxResult(rate=rate, label=f"Sales tax {format_rate(rate)}% ({region})",
                         amount_cents=tax_on(amount, rate), reverse_charge=False, seller_vat_number=seller_number,
                         customer_vat_number=customer_number, kind="sales_tax", net_cents=amount,
                         tax_name="Sales tax", country=country, region=region)

    rate = table.other.get(country, _ZERO)
    if rate == _ZERO:
        return _no_tax("No tax", net=amount, seller=seller_number, customer=customer_number, country=country)
    name = table.other_names.get(country, "Tax")
    return TaxResult(rate=rate, label=f"{name} {format_rate(rate)}% ({country})", amount_cents=tax_on(amount, rate),
                     reverse_charge=False, seller_vat_number=seller_number, customer_vat_number=customer_number,
                     kind="vat", net_cents=amount, tax_name=name, country=country)


def describe_tax(result: TaxResult, currency: str | None = None) -> str:
    """The short phrase after a price: "incl. VAT 19%", "incl. sales tax 6.25%", "reverse charge (no VAT)".

    With ``currency`` the tax amount is added: "incl. VAT 19% (€3.80)". Returns "" when there is no
    tax, so callers can leave the phrase out rather than print "no tax" after every price.
    """
    if result.kind == "reverse_charge":
        return "reverse charge (no VAT)"
    if result.kind == "none":
        return ""
    # "VAT", "GST" stay as acronyms; "Sales tax", "Tax" read lower-case mid-sentence.
    name = result.tax_name if result.tax_name.isupper() else result.tax_name.lower()
    phrase = f"incl. {name} {format_rate(result.rate)}%"
    if currency:
        phrase += f" ({format_money(result.amount_cents, currency)})"
    return phrase
