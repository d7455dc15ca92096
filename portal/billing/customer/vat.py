"""VAT numbers: tidy what the customer typed, check it offline, and optionally confirm it with VIES.

The offline check (python-stdnum) catches typos through each country's format and check digits; it
cannot tell whether the number is actually registered. That is what VIES, the EU's own register
lookup, is for; it is flaky and slow at times, so it is optional, short-timed and never raises.

Supported: the 27 EU member states, the United Kingdom, Switzerland and Norway. Those are the
countries whose business customers can have tax reverse-charged or need their number on invoices.

A normalised number is the country prefix plus the compact national number, e.g. ``DE136695976``,
``EL094259216`` (Greece's VAT prefix is EL, not its ISO code GR), ``GB980780684``, ``CHE107787577``,
``NO995525828``. The register suffixes Switzerland (MWST/TVA/IVA/TPV) and Norway (MVA) print after the
number are accepted when typed but not stored: they say which register, not which business.
"""
from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass
from typing import Literal

from babel import Locale
from stdnum.ch import vat as ch_vat
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat
from stdnum.no import mva as no_mva

EU_COUNTRIES: frozenset[str] = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT",
    "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})

# Billing country (ISO alpha-2) -> the prefix its VAT numbers carry. Only Greece differs inside the EU.
_PREFIX_BY_COUNTRY: dict[str, str] = {
    **{country: country for country in EU_COUNTRIES}, "GR": "EL", "GB": "GB", "CH": "CHE", "NO": "NO",
}
# Northern Ireland traders have an XI number (in VIES, same digits as their GB one); their billing
# country is still GB, so an XI number is accepted for a GB address as well.
_EXTRA_PREFIXES: dict[str, str] = {"XI": "GB"}
_COUNTRY_BY_PREFIX: dict[str, str] = {
    **{prefix: country for country, prefix in _PREFIX_BY_COUNTRY.items()}, **_EXTRA_PREFIXES}
# Longest first so "CHE" is recognised before anything shorter could be.
_KNOWN_PREFIXES = sorted(_COUNTRY_BY_PREFIX, key=len, reverse=True)

_SEPARATORS = re.compile(r"[\s.\-/,_\u2010-\u2015]+")
_CH_SUFFIXES = ("MWST", "TVA", "IVA", "TPV")

UNSUPPORTED_MESSAGE = ("VAT numbers can only be added for EU countries, the United Kingdom, "
                       "Switzerland and Norway.")

# The Commission's public REST endpoint; configuration decides whether it is used at all.
VIES_REST_URL = "https://ec.europa.eu/taxation_customs/vies/rest-api"

VatStatus = Literal["valid", "invalid"]
ViesAnswer = Literal["valid", "invalid", "unavailable"]


@dataclass(frozen=True)
class VatCheck:
    number: str                   # normalised, e.g. "DE136695976"; what we store and print
    status: VatStatus
    message: str | None           # for the customer, None when valid
    country_prefix: str | None    # "DE", "EL", "GB", "XI", "CHE", "NO"; None when it can't be told

    @property
    def is_valid(self) -> bool:
        return self.status == "valid"


def vat_prefix(country: str) -> str | None:
    """The VAT prefix for a billing country (``"GR"`` -> ``"EL"``), None where we don't take VAT numbers."""
    return _PREFIX_BY_COUNTRY.get((country or "").strip().upper())


def prefix_country(prefix: str) -> str | None:
    """The billing country a VAT prefix belongs to (``"EL"`` -> ``"GR"``, ``"XI"`` -> ``"GB"``)."""
    return _COUNTRY_BY_PREFIX.get(prefix)


def _compact(raw: str) -> str:
    return _SEPARATORS.sub("", raw or "").upper()


def _split_prefix(compact: str) -> tuple[str | None, str]:
    """("DE", "136695976") for "DE136695976"; (None, whole) when it starts with no prefix we know.

    "GR" is taken for Greece as customers type their ISO code; it becomes "EL".
    """
    if compact.startswith("GR"):
        return "EL", compact[2:]
    for prefix in _KNOWN_PREFIXES:
        if compact.startswith(prefix):
            return prefix, compact[len(prefix):]
    return None, compact


def _drop_register_suffix(prefix: str | None, national: str) -> str:
    if prefix == "CHE":
        for suffix in _CH_SUFFIXES:
            if national.endswith(suffix):
                return national[:-len(suffix)]
    if prefix == "NO" and national.endswith("MVA"):
        return national[:-3]
    return national


def normalise_vat_number(raw: str, billing_country: str | None = None) -> str:
    """``" de 136.695-976 "`` -> ``"DE136695976"``.

    Strips spaces, dots, dashes (and slashes, commas), upper-cases, writes Greece as EL, and drops
    the Swiss/Norwegian register suffix. A number typed without a prefix gets the billing country's
    prefix when one is given; without a billing country it is returned without one.
    """
    compact = _compact(raw)
    prefix, national = _split_prefix(compact)
    if prefix is None:
        prefix = vat_prefix(billing_country or "")
        if prefix is None:
            return compact
    return prefix + _drop_register_suffix(prefix, national)


def _passes_checksum(number: str) -> bool:
    """Format and check digits of a normalised number, by the rules of the country its prefix names."""
    prefix, national = _split_prefix(number)
    if not national:
        return False
    if prefix == "GB":
        return gb_vat.is_valid(national)
    if prefix == "CHE":
        # stdnum wants a register suffix; which one doesn't change the check digits.
        return ch_vat.is_valid("CHE" + national + "MWST")
    if prefix == "NO":
        return no_mva.is_valid(national + "MVA")
    if prefix is not None:  # EU member states and XI
        return eu_vat.is_valid(prefix + national)
    return False


def country_name(country: str) -> str:
    """English name as it reads mid-sentence: "Germany", "the Netherlands", "the United Kingdom"."""
    name = Locale("en").territories.get(country, country)
    return f"the {name}" if country in {"NL", "GB", "US"} else name


def _prefix_name(prefix: str) -> str:
    return "Northern Ireland" if prefix == "XI" else country_name(_COUNTRY_BY_PREFIX[prefix])


def check_vat_number(raw: str, billing_country: str) -> VatCheck:
    """Whether ``raw`` is a well-formed VAT number of ``billing_country`` (ISO alpha-2).

    Order of checks, so the customer gets the most useful message first: can this country have a
    VAT number at all; is the number from another country; are its format and check digits right.
    """
    country = (billing_country or "").strip().upper()
    own_prefix = vat_prefix(country)
    if own_prefix is None:
        return VatCheck(number=normalise_vat_number(raw), status="invalid", message=UNSUPPORTED_MESSAGE,
                        country_prefix=None)
    if not _compact(raw):
        return VatCheck(number="", status="invalid", message="Enter your VAT number.", country_prefix=own_prefix)
    number = normalise_vat_number(raw, country)
    prefix, _ = _split_prefix(number)  # never None: a missing prefix was filled in from the country
    allowed = {own_prefix} | {p for p, c in _EXTRA_PREFIXES.items() if c == country}
    if prefix not in allowed:
        # Some national numbers begin with two letters (French check keys such as "GR..."); if the
        # number is valid once our own prefix is put in front, that is what the customer meant.
        with_own = own_prefix + _drop_register_suffix(own_prefix, _compact(raw))
        if _passes_checksum(with_own):
            return VatCheck(number=with_own, status="valid", message=None, country_prefix=own_prefix)
        return VatCheck(number=number, status="invalid", country_prefix=prefix,
                        message=f"That VAT number is from {_prefix_name(prefix)}, but your billing country is "
                                f"{country_name(country)}.")
    if not _passes_checksum(number):
        return VatCheck(number=number, status="invalid", country_prefix=prefix,
                        message=f"That VAT number isn't valid for {country_name(country)}: check for typos.")
    return VatCheck(number=number, status="valid", message=None, country_prefix=prefix)


# Answers VIES gives (in "userError") when it could not ask the member state; "valid": false then
# means "don't know", not "not registered".
_VIES_NOT_AN_ANSWER = {"MS_UNAVAILABLE", "SERVICE_UNAVAILABLE", "TIMEOUT", "MS_MAX_CONCURRENT_REQ",
                       "GLOBAL_MAX_CONCURRENT_REQ", "MS_MAX_CONCURRENT_REQ_TIME", "GLOBAL_MAX_CONCURRENT_REQ_TIME",
                       "IP_BLOCKED", "VAT_BLOCKED", "INVALID_REQUESTER_INFO", "INVALID_INPUT"}
_VIES_MAX_BODY = 64 * 1024
# VIES covers the member states (Greece as EL) and Northern Ireland, nothing else.
_VIES_PREFIXES = frozenset({_PREFIX_BY_COUNTRY[c] for c in EU_COUNTRIES} | {"XI"})


def confirm_with_vies(number: str, *, url: str, timeout: float = 3.0) -> ViesAnswer:
    """Ask the EU VIES register whether ``number`` (an EU or XI VAT number) is registered.

    ``"valid"`` / ``"invalid"`` are VIES's answer; ``"unavailable"`` is everything else: network
    errors, timeouts, HTTP errors, unexpected bodies, VIES saying the member state didn't reply, and
    numbers VIES doesn't cover (GB, CH, NO). Never raises: a billing page must not break because a
    government service is down, and callers keep the offline result when VIES can't say.

    ``timeout`` bounds the connection and each read, so a silent server costs about that long.
    """
    try:
        prefix, national = _split_prefix(normalise_vat_number(number))
        if prefix not in _VIES_PREFIXES or not national:
            return "unavailable"
        endpoint = url.rstrip("/") + "/check-vat-number"
        if not endpoint.lower().startswith(("https://", "http://")):
            return "unavailable"
        request = urllib.request.Request(
            endpoint, method="POST",
            data=json.dumps({"countryCode": prefix, "vatNumber": national}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            body = response.read(_VIES_MAX_BODY + 1)
        if len(body) > _VIES_MAX_BODY:
            return "unavailable"
        answer = json.loads(body)
    except Exception:  # noqa: BLE001 - URLError, timeouts, resets, bad JSON: all mean "can't say"
        return "unavailable"
    if not isinstance(answer, dict) or not isinstance(answer.get("valid"), bool):
        return "unavailable"
    if answer["valid"]:
        return "valid"
    if str(answer.get("userError") or "").upper() in _VIES_NOT_AN_ANSWER:
        return "unavailable"
    return "invalid"
