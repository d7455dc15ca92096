"""Billing-address rules per country: which fields are required and what a postal code looks like.

Pure functions over plain values, so the same rules serve the form, the services and the tests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pycountry

from ...addresses import country_name

# Countries whose addresses have no postal code (the Universal Postal Union's list, abridged to the
# ones people bill from); everywhere else the field is required.
NO_POSTAL_CODE = frozenset(
    "AE AG AO AW BF BI BJ BO BS BW BZ CD CF CG CI CK CM DJ DM ER FJ GA GD GH GM GN GQ GY HK IE JM KI KM KN KP "
    "LC LY ML MO MR MW NR NU QA RW SB SC SL SO SR ST SY TD TF TG TK TL TO TT TV UG VU YE ZW".split())

# (pattern, example) for countries where a wrong postal code is a common, checkable mistake.
POSTAL_CODES: dict[str, tuple[re.Pattern, str]] = {
    "US": (re.compile(r"^\d{5}(-\d{4})?$"), "12345 or 12345-6789"),
    "CA": (re.compile(r"^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] \d[ABCEGHJ-NPRSTV-Z]\d$"), "K1A 0B1"),
    "GB": (re.compile(r"^(GIR 0AA|[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2})$"), "SW1A 1AA"),
    "DE": (re.compile(r"^\d{5}$"), "10115"),
    "FR": (re.compile(r"^\d{5}$"), "75008"),
    "ES": (re.compile(r"^\d{5}$"), "28001"),
    "IT": (re.compile(r"^\d{5}$"), "00184"),
    "NL": (re.compile(r"^\d{4} [A-Z]{2}$"), "1012 AB"),
    "AT": (re.compile(r"^\d{4}$"), "1010"),
    "BE": (re.compile(r"^\d{4}$"), "1000"),
    "CH": (re.compile(r"^\d{4}$"), "8001"),
    "AU": (re.compile(r"^\d{4}$"), "2000"),
    "PL": (re.compile(r"^\d{2}-\d{3}$"), "00-001"),
    "SE": (re.compile(r"^\d{3} \d{2}$"), "111 22"),
}

# Countries whose state, province or region is part of a deliverable address and of sales tax.
REGION_REQUIRED = {"US": "state", "CA": "province", "AU": "state"}

FIELDS = ("name", "address_line1", "address_line2", "city", "postal_code", "region", "country", "billing_email",
          "vat_number")


@dataclass(frozen=True)
class Country:
    code: str
    name: str


@lru_cache(maxsize=1)
def countries() -> tuple[Country, ...]:
    """Every ISO 3166 country, sorted by name, for the country select."""
    return tuple(sorted((Country(c.alpha_2, getattr(c, "common_name", None) or c.name) for c in pycountry.countries),
                        key=lambda c: c.name))


@lru_cache(maxsize=8)
def regions(country: str) -> dict[str, str]:
    """Subdivision code (without the country prefix) to name, for countries that need a region."""
    subdivisions = pycountry.subdivisions.get(country_code=country) or []
    return {s.code.split("-", 1)[1]: s.name for s in subdivisions
            if country != "US" or s.type in {"State", "District", "Outlying area"}}


# Country names that read with "the" in a sentence ("a ZIP code for the United States").
_WITH_ARTICLE = frozenset("AE BS CD CF CG DO GB GM KM KY MH MV NL PH SB SC TC US VA VG VI".split())


def country_phrase(code: str) -> str:
    name = country_name(code)
    return f"the {name}" if code.upper() in _WITH_ARTICLE and not name.startswith("The ") else name


def normalise_postal_code(country: str, value: str) -> str:
    value = re.sub(r"\s+", " ", (value or "").strip().upper())
    if country in {"CA", "GB"} and " " not in value and len(value) > 3:
        value = f"{value[:-3]} {value[-3:]}"  # "k1a0b1" is how people type "K1A 0B1"
    if country == "NL" and re.fullmatch(r"\d{4}[A-Z]{2}", value):
        value = f"{value[:4]} {value[4:]}"
    if country == "SE" and re.fullmatch(r"\d{5}", value):
        value = f"{value[:3]} {value[3:]}"
    return value


def normalise_region(country: str, value: str) -> str:
    """``"massachusetts"`` or ``"ma"`` -> ``"MA"`` where the country's regions are known codes."""
    value = (value or "").strip()
    if country not in REGION_REQUIRED:
        return value
    known = regions(country)
    upper = value.upper().removeprefix(f"{country}-")
    if upper in known:
        return upper
    by_name = {name.lower(): code for code, name in known.items()}
    return by_name.get(value.lower(), value)


def validate_address(values: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Check an address; returns (normalised values, errors by field). Errors name what to fix."""
    clean = {k: (values.get(k) or "").strip() for k in FIELDS}
    errors: dict[str, str] = {}
    country = clean["country"].upper()
    clean["country"] = country
    if not clean["name"]:
        errors["name"] = "Enter the name or company name for your invoices."
    if not clean["address_line1"]:
        errors["address_line1"] = "Enter the street address."
    if not clean["city"]:
        errors["city"] = "Enter the city."
    if not country or pycountry.countries.get(alpha_2=country) is None:
        errors["country"] = "Choose a country."
        return clean, errors
    clean["postal_code"] = normalise_postal_code(country, clean["postal_code"])
    label = "ZIP code" if country == "US" else "postcode" if country == "GB" else "postal code"
    if not clean["postal_code"]:
        if country not in NO_POSTAL_CODE:
            errors["postal_code"] = f"Enter the {label}."
    elif country in POSTAL_CODES:
        pattern, example = POSTAL_CODES[country]
        if not pattern.match(clean["postal_code"]):
            errors["postal_code"] = f"Enter a valid {label} for {country_phrase(country)}, like {example}."
    clean["region"] = normalise_region(country, clean["region"])
    if country in REGION_REQUIRED:
        kind = REGION_REQUIRED[country]
        if not clean["region"]:
            errors["region"] = f"Choose the {kind}."
        elif clean["region"] not in regions(country):
            errors["region"] = f"Enter a {kind} of {country_phrase(country)} (for example its two-letter code)."
    for name, limit in (("name", 200), ("address_line1", 200), ("address_line2", 200), ("city", 100),
                        ("region", 100), ("postal_code", 20)):
        if len(clean[name]) > limit and name not in errors:
            errors[name] = f"Use at most {limit} characters."
    return clean, errors
