"""VAT numbers: what customers type is tidied, checked offline, and (optionally) confirmed with VIES.

VIES is exercised against a small HTTP server on 127.0.0.1 started here; nothing reaches the internet.
"""
from __future__ import annotations

import json
import socket

import pytest
from stdnum.ch import vat as ch_vat
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat
from stdnum.no import mva as no_mva

from portal.audit import Actor
from portal.billing.customer.billing_info import VAT_NOTICES, VatPolicy, billing_info_values, update_billing_info
from portal.billing.customer.vat import (EU_COUNTRIES, UNSUPPORTED_MESSAGE, check_vat_number, confirm_with_vies,
                                         normalise_vat_number, vat_prefix)
from portal.models import Account, utcnow

from ..helpers import StandIn, make_customer

# Real, well-known numbers whose check digits are right (verified against stdnum below).
VALID = {
    "DE": "DE136695976",
    "FR": "FR40303265045",
    "IE": "IE6388047V",
    "NL": "NL004495445B01",
    "GR": "EL094259216",
    "AT": "ATU13585627",
    "ES": "ESB58378431",
    "GB": "GB980780684",
    "CH": "CHE107787577",
    "NO": "NO995525828",
}


def test_the_sample_numbers_really_pass_stdnum():
    # Guards the fixtures: a "valid" test number with a bad checksum would make the tests below lie.
    for country, number in VALID.items():
        if country == "GB":
            assert gb_vat.is_valid(number)
        elif country == "CH":
            assert ch_vat.is_valid(number + "MWST")
        elif country == "NO":
            assert no_mva.is_valid(number + "MVA")
        else:
            assert eu_vat.is_valid(number), number


def test_eu_countries_are_the_27_member_states():
    assert len(EU_COUNTRIES) == 27
    assert {"DE", "FR", "GR", "HR", "IE"} <= EU_COUNTRIES
    assert not {"GB", "CH", "NO", "EL"} & EU_COUNTRIES


# --- normalisation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, country, expected", [
    (" de 136 695 976 ", None, "DE136695976"),
    ("DE-136.695.976", None, "DE136695976"),
    ("nl 0044.95445.b01", None, "NL004495445B01"),
    ("136695976", "DE", "DE136695976"),
    ("136695976", "de", "DE136695976"),
    ("094259216", "GR", "EL094259216"),
    ("GR 094 259 216", None, "EL094259216"),
    ("el094259216", "GR", "EL094259216"),
    ("CHE-107.787.577 MWST", None, "CHE107787577"),
    ("107.787.577 TVA", "CH", "CHE107787577"),
    ("NO 995 525 828 MVA", None, "NO995525828"),
    ("980 7806 84", "GB", "GB980780684"),
    ("136695976", None, "136695976"),
], ids=["spaces-lower-case", "dots-and-dashes", "letters-inside", "missing-prefix-added", "country-in-lower-case",
        "greece-gets-EL", "GR-typed-becomes-EL", "EL-kept", "swiss-suffix-dropped", "swiss-no-prefix",
        "norway-MVA-dropped", "uk-no-prefix", "no-country-no-prefix"])
def test_numbers_are_normalised_to_prefix_and_compact_digits(raw, country, expected):
    assert normalise_vat_number(raw, country) == expected


def test_greece_is_billed_as_gr_but_its_vat_prefix_is_el():
    assert vat_prefix("GR") == "EL"
    assert vat_prefix("DE") == "DE"
    assert vat_prefix("CH") == "CHE"
    assert vat_prefix("US") is None


# --- offline checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("country", sorted(VALID), ids=sorted(VALID))
def test_valid_numbers_are_accepted_for_their_own_country(country):
    check = check_vat_number(VALID[country], country)
    assert check.status == "valid"
    assert check.message is None
    assert check.number == VALID[country]
    assert check.country_prefix == vat_prefix(country)


@pytest.mark.parametrize("raw, country, expected", [
    ("136 695 976", "DE", "DE136695976"),
    ("6388047v", "IE", "IE6388047V"),
    ("094259216", "GR", "EL094259216"),
    ("GR094259216", "GR", "EL094259216"),
    ("107.787.577 MWST", "CH", "CHE107787577"),
], ids=["de-without-prefix", "ie-lower-case-letter", "greek-without-prefix", "greek-typed-with-GR", "swiss-with-suffix"])
def test_numbers_typed_loosely_are_accepted_and_stored_normalised(raw, country, expected):
    check = check_vat_number(raw, country)
    assert (check.status, check.number) == ("valid", expected)


def test_a_typo_fails_the_checksum_with_a_message_naming_the_country():
    check = check_vat_number("DE136695977", "DE")
    assert check.status == "invalid"
    assert check.message == "That VAT number isn't valid for Germany: check for typos."


def test_a_number_of_the_wrong_length_is_invalid():
    check = check_vat_number("12345", "NL")
    assert check.status == "invalid"
    assert check.message == "That VAT number isn't valid for the Netherlands: check for typos."


def test_a_number_from_another_country_is_refused_with_both_countries_named():
    check = check_vat_number("FR40303265045", "DE")
    assert check.status == "invalid"
    assert check.message == "That VAT number is from France, but your billing country is Germany."
    assert check.country_prefix == "FR"


def test_a_greek_number_for_a_uk_address_names_greece_and_the_uk():
    check = check_vat_number("EL094259216", "GB")
    assert check.message == "That VAT number is from Greece, but your billing country is the United Kingdom."


def test_a_greek_number_is_fine_for_a_greek_address_even_though_the_codes_differ():
    assert check_vat_number("EL094259216", "GR").status == "valid"
    assert check_vat_number("EL094259216", "DE").message == (
        "That VAT number is from Greece, but your billing country is Germany.")


def test_a_french_number_whose_check_key_looks_like_a_prefix_is_read_as_french():
    # French VAT numbers may start with two check letters; "DE100000025" is FR DE 100000025.
    check = check_vat_number("DE 100 000 025", "FR")
    assert (check.status, check.number, check.country_prefix) == ("valid", "FRDE100000025", "FR")


def test_a_northern_ireland_number_is_accepted_for_a_uk_address():
    check = check_vat_number("XI980780684", "GB")
    assert (check.status, check.number, check.country_prefix) == ("valid", "XI980780684", "XI")


@pytest.mark.parametrize("country", ["US", "JP", "", "ZZ"], ids=["us", "japan", "no-country", "unknown-code"])
def test_countries_without_vat_numbers_get_the_unsupported_message(country):
    check = check_vat_number("DE136695976", country)
    assert check.status == "invalid"
    assert check.message == UNSUPPORTED_MESSAGE
    assert UNSUPPORTED_MESSAGE == ("VAT numbers can only be added for EU countries, the United Kingdom, "
                                   "Switzerland and Norway.")


def test_an_empty_number_asks_for_one():
    check = check_vat_number("  ", "DE")
    assert check.status == "invalid"
    assert check.message == "Enter your VAT number."


def test_a_swiss_number_with_a_bad_check_digit_is_invalid():
    assert check_vat_number("CHE-107.787.578", "CH").status == "invalid"


# --- VIES -------------------------------------------------------------------------------------------

class FakeVies(StandIn):
    """Answers POST /check-vat-number like VIES does, in whichever way a test asks for."""

    def __init__(self, monkeypatch):
        self.mode = "valid"
        self.requests: list[tuple[str, dict]] = []
        # "slow": answer "valid", but this late: well beyond the timeouts the tests inject and within the
        # default one (3 s), so a client that ignored the injected timeout gets a real answer and fails the test.
        self.slow_seconds = 1.5
        super().__init__(self.answer, monkeypatch)
        self.url += "/rest-api"

    def answer(self, path: str, raw: bytes):
        body = json.loads(raw)
        self.requests.append((path, body))
        if self.mode == "hang":
            self.release.wait(10)
            return None
        if self.mode == "slow":
            self.release.wait(self.slow_seconds)
        if self.mode == "error":
            return 500, None
        answer = {
            "slow": {"countryCode": body["countryCode"], "vatNumber": body["vatNumber"], "valid": True,
                     "userError": "VALID", "name": "ACME", "address": "---"},
            "valid": {"countryCode": body["countryCode"], "vatNumber": body["vatNumber"], "valid": True,
                      "userError": "VALID", "name": "ACME", "address": "---"},
            "invalid": {"countryCode": body["countryCode"], "vatNumber": body["vatNumber"], "valid": False,
                        "userError": "INVALID", "name": "---", "address": "---"},
            "member_state_down": {"valid": False, "userError": "MS_UNAVAILABLE"},
            "garbage": "<html>maintenance</html>",
        }[self.mode]
        return 200, answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()


@pytest.fixture
def vies(monkeypatch):
    fake = FakeVies(monkeypatch)
    yield fake
    fake.stop()


def test_vies_confirms_a_registered_number_and_is_asked_in_its_format(vies):
    assert confirm_with_vies("DE 136 695 976", url=vies.url) == "valid"
    assert vies.requests == [("/rest-api/check-vat-number", {"countryCode": "DE", "vatNumber": "136695976"})]


def test_vies_is_asked_about_greek_numbers_with_the_el_prefix(vies):
    confirm_with_vies("GR094259216", url=vies.url + "/")
    assert vies.requests[0][1] == {"countryCode": "EL", "vatNumber": "094259216"}


def test_vies_saying_not_registered_is_invalid(vies):
    vies.mode = "invalid"
    assert confirm_with_vies("DE136695976", url=vies.url) == "invalid"


@pytest.mark.parametrize("mode", ["member_state_down", "garbage", "error"])
def test_vies_not_giving_an_answer_is_unavailable_not_invalid(vies, mode):
    vies.mode = mode
    assert confirm_with_vies("DE136695976", url=vies.url) == "unavailable"


def test_a_vies_slower_than_the_timeout_is_unavailable_not_waited_for(vies):
    # The fake answers "valid" eventually, so this only passes if the injected timeout ended the wait.
    vies.mode = "slow"
    assert confirm_with_vies("DE136695976", url=vies.url, timeout=0.2) == "unavailable"
    assert len(vies.requests) == 1


def test_a_vies_that_never_answers_is_unavailable(vies):
    vies.mode = "hang"
    assert confirm_with_vies("DE136695976", url=vies.url, timeout=0.2) == "unavailable"


def test_a_vies_slower_than_the_configured_timeout_leaves_the_vat_number_pending(vies, session):
    account, _ = make_customer(session, country="DE", city="Berlin", postal_code="10115",
                               address_line1="Friedrichstraße 123")
    vies.mode = "slow"
    values = {**billing_info_values(account), "vat_number": "DE136695976"}

    change = update_billing_info(session, account.id, values, actor=Actor.system(), now=utcnow(),
                                 policy=VatPolicy(vies_url=vies.url, vies_timeout=0.2))

    assert change.account.vat_status == "pending" and change.vat_notice == VAT_NOTICES["pending"]
    session.expire_all()
    saved = session.get(Account, account.id)
    assert (saved.vat_number, saved.vat_status) == ("DE136695976", "pending")
    assert len(vies.requests) == 1


def test_vies_on_a_closed_port_is_unavailable(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there any more: the connection is refused.
    assert confirm_with_vies("DE136695976", url=f"http://127.0.0.1:{port}", timeout=1.0) == "unavailable"


def test_numbers_vies_does_not_cover_are_unavailable_without_asking(vies):
    assert confirm_with_vies("GB980780684", url=vies.url) == "unavailable"
    assert confirm_with_vies("CHE107787577", url=vies.url) == "unavailable"
    assert confirm_with_vies("", url=vies.url) == "unavailable"
    assert vies.requests == []


def test_a_misconfigured_vies_url_is_unavailable_rather_than_an_error():
    assert confirm_with_vies("DE136695976", url="file:///nowhere") == "unavailable"
    assert confirm_with_vies("DE136695976", url="not a url") == "unavailable"
