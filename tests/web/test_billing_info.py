"""The Billing address section: Update, Save, Cancel; per-country validation; VAT numbers; audit."""
from __future__ import annotations

import html
import json
import re

import pytest

from portal.models import Account, AuditEvent

from ..helpers import StandIn, make_customer

GOOD = {"name": "Acme Analytics Inc.", "address_line1": "100 Main Street", "address_line2": "", "city": "Springfield",
        "postal_code": "01101", "region": "MA", "country": "US", "billing_email": "billing@acme.example",
        "vat_number": ""}


@pytest.fixture
def customer(session, browser):
    account, _ = make_customer(session, address_line1="1 Old Road", city="Boston", postal_code="02101", region="MA")
    browser.login()
    return account


def error_of(body: str, field: str) -> str | None:
    match = re.search(rf'id="{field}-error">([^<]+)<', body)
    return html.unescape(match.group(1)) if match else None


def reload(session, account) -> Account:
    session.expire_all()
    return session.get(Account, account.id)


def test_update_opens_the_form_in_page_and_as_partial(browser, customer):
    page = browser.get("/billing/address/edit").get_data(as_text=True)
    assert "<html" in page and 'name="address_line1"' in page and 'value="1 Old Road"' in page
    partial = browser.get("/billing/address/edit", htmx=True).get_data(as_text=True)
    assert "<html" not in partial and 'id="billing-address"' in partial and '<option value="DE">Germany</option>' in partial


def test_the_region_field_is_not_called_optional_next_to_a_hint_that_says_it_is_required(browser, customer):
    page = browser.get("/billing/address/edit").get_data(as_text=True)
    label = re.search(r'<label for="region">(.*?)</label>', page, re.S).group(1)
    assert label.strip() == "State, province or region"
    assert "Required in the United States" in page
    assert re.search(r'<label for="address_line2">Address line 2 <span class="optional">\(optional\)', page)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_german_address_reads_postal_code_then_city(browser, session, htmx):
    make_customer(session, country="DE", address_line1="Unter den Linden 1", city="Berlin", postal_code="10117")
    browser.login()
    body = browser.get("/billing" if not htmx else "/billing/address", htmx=htmx).get_data(as_text=True)
    address = re.search(r'<address class="address">(.*?)</address>', body, re.S).group(1)
    lines = [html.unescape(line.strip()) for line in address.split("<br>")]
    assert lines == ["Acme Analytics Inc.", "Unter den Linden 1", "10117 Berlin", "Germany"]


def test_cancel_swaps_the_address_back_without_saving(browser, customer):
    partial = browser.get("/billing/address", htmx=True).get_data(as_text=True)
    assert "1 Old Road" in partial and 'name="address_line1"' not in partial
    assert browser.get("/billing/address").status_code == 302


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_saving_the_address_updates_it_and_audits_old_and_new_values(browser, session, customer, htmx):
    response = browser.post("/billing/address", GOOD, htmx=htmx)
    assert response.status_code == (200 if htmx else 303)
    account = reload(session, customer)
    assert (account.address_line1, account.city, account.postal_code) == ("100 Main Street", "Springfield", "01101")
    event = session.query(AuditEvent).filter_by(action="billing_info.updated").one()
    assert event.details["changes"]["address_line1"] == {"old": "1 Old Road", "new": "100 Main Street"}
    assert event.actor_user_id is not None and event.account_id == customer.id
    if htmx:
        body = response.get_data(as_text=True)
        assert "100 Main Street" in body and "applies to future invoices" in body
        assert 'id="subscription"' in body and 'hx-swap-oob="true"' in body


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
@pytest.mark.parametrize("change, field, message", [
    ({"address_line1": ""}, "address_line1", "Enter the street address."),
    ({"city": ""}, "city", "Enter the city."),
    ({"name": ""}, "name", "Enter the name or company name for your invoices."),
    ({"country": "XX"}, "country", "Choose a country."),
    ({"postal_code": "1234"}, "postal_code", "Enter a valid ZIP code for the United States, like 12345 or 12345-6789."),
    ({"region": ""}, "region", "Choose the state."),
    ({"region": "ZZ"}, "region", "Enter a state of the United States (for example its two-letter code)."),
    ({"country": "CA", "region": "ON", "postal_code": "123 456"}, "postal_code", "Enter a valid postal code for Canada, like K1A 0B1."),
    ({"country": "CA", "region": "XX", "postal_code": "K1A 0B1"}, "region", "Enter a province of Canada (for example its two-letter code)."),
    ({"country": "GB", "region": "", "postal_code": "NOPE"}, "postal_code", "Enter a valid postcode for the United Kingdom, like SW1A 1AA."),
    ({"country": "DE", "region": "", "postal_code": ""}, "postal_code", "Enter the postal code."),
    ({"billing_email": "not-an-email"}, "billing_email", "Enter a valid e-mail address, like billing@example.com."),
    ({"billing_email": ""}, "billing_email", "Enter the e-mail address that should receive invoices."),
], ids=["line1", "city", "name", "country", "us-zip", "us-state-missing", "us-state-unknown", "ca-postal", "ca-province",
        "uk-postcode", "de-postal-missing", "email-format", "email-missing"])
def test_each_wrong_field_gets_its_message_and_nothing_is_saved(browser, session, customer, change, field, message,
                                                                 htmx):
    response = browser.post("/billing/address", {**GOOD, **change}, htmx=htmx)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert error_of(body, field) == message
    assert ("<html" in body) is not htmx
    assert reload(session, customer).address_line1 == "1 Old Road"
    assert session.query(AuditEvent).filter_by(action="billing_info.updated").count() == 0


def test_the_form_keeps_what_was_typed_when_it_comes_back_with_errors(browser, customer):
    body = browser.post("/billing/address", {**GOOD, "city": "", "address_line1": "Typed <b>street</b>"},
                        htmx=True).get_data(as_text=True)
    assert 'value="Typed &lt;b&gt;street&lt;/b&gt;"' in body


@pytest.mark.parametrize("country, region, postal, stored_region, stored_postal", [
    ("US", "massachusetts", "01101-1234", "MA", "01101-1234"),
    ("CA", "on", "k1a0b1", "ON", "K1A 0B1"),
    ("GB", "", "sw1a1aa", "", "SW1A 1AA"),
    ("NL", "", "1012ab", "", "1012 AB"),
    ("IE", "", "", "", ""),
])
def test_postal_codes_and_regions_are_normalised(browser, session, customer, country, region, postal, stored_region,
                                                 stored_postal):
    response = browser.post("/billing/address", {**GOOD, "country": country, "region": region, "postal_code": postal})
    assert response.status_code == 303
    account = reload(session, customer)
    assert (account.region, account.postal_code) == (stored_region, stored_postal)


@pytest.mark.parametrize("number, stored", [("de 136 695 976", "DE136695976"), ("136695976", "DE136695976")])
def test_a_valid_vat_number_is_normalised_and_shown_as_valid(browser, session, customer, number, stored):
    data = {**GOOD, "country": "DE", "region": "", "postal_code": "10115", "city": "Berlin", "vat_number": number}
    assert browser.post("/billing/address", data).status_code == 303
    account = reload(session, customer)
    assert (account.vat_number, account.vat_status) == (stored, "valid")
    assert ">Valid</span>" in browser.get("/billing").get_data(as_text=True)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
@pytest.mark.parametrize("country, number, message", [
    ("DE", "DE136695975", "isn't valid for Germany"),
    ("DE", "FR40303265045", "is from France, but your billing country is Germany"),
    ("GR", "GR094259216", None),
    ("US", "US123456789", "VAT numbers can only be added for"),
])
def test_wrong_vat_numbers_are_refused_next_to_the_field(browser, session, customer, htmx, country, number, message):
    postal = {"DE": "10115", "GR": "10431", "US": "01101"}[country]
    data = {**GOOD, "country": country, "region": "MA" if country == "US" else "", "postal_code": postal,
            "vat_number": number}
    response = browser.post("/billing/address", data, htmx=htmx)
    if message is None:  # Greek numbers are written EL…; GR… is accepted and corrected
        assert response.status_code in (200, 303)
        assert reload(session, customer).vat_number == "EL094259216"
        return
    assert response.status_code == 422
    assert message in (error_of(response.get_data(as_text=True), "vat_number") or "")
    assert reload(session, customer).vat_number == ""


@pytest.fixture
def vies(monkeypatch):
    """VIES saying whether a number is registered: ``vies.answer`` is "valid" or "invalid"."""
    fake = StandIn(lambda path, body: (200, json.dumps({"valid": fake.answer == "valid"}).encode()), monkeypatch)
    fake.answer = "valid"
    yield fake
    fake.stop()


@pytest.fixture
def vies_browser(settings, database, session, vies):
    import dataclasses

    from portal import create_app

    from ..helpers import Browser

    def build(url):
        app = create_app(dataclasses.replace(settings, vies_url=url, vies_timeout=1.0), database=database)
        browser = Browser(app.test_client())
        browser.login()
        return browser

    make_customer(session)
    return build


DE = {**GOOD, "country": "DE", "region": "", "postal_code": "10115", "city": "Berlin", "vat_number": "DE136695976"}


def test_with_vies_on_a_confirmed_number_is_valid(vies_browser, vies, session):
    vies.answer = "valid"
    browser = vies_browser(vies.url)
    browser.post("/billing/address", DE)
    assert session.query(Account).one().vat_status == "valid"


def test_with_vies_on_an_unregistered_number_is_saved_as_invalid_and_the_customer_told(vies_browser, vies, session):
    vies.answer = "invalid"
    browser = vies_browser(vies.url)
    body = browser.post("/billing/address", DE, htmx=True).get_data(as_text=True)
    assert "not registered" in body
    assert session.query(Account).one().vat_status == "invalid"


def test_when_vies_cannot_be_reached_the_number_stays_pending_and_the_customer_is_told(vies_browser, session):
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    browser = vies_browser(f"http://127.0.0.1:{port}")
    body = browser.post("/billing/address", DE, htmx=True).get_data(as_text=True)
    assert "pending verification" in body
    assert session.query(Account).one().vat_status == "pending"
    assert "Pending verification" in browser.get("/billing").get_data(as_text=True)


def test_address_changes_without_csrf_token_are_refused(browser, session, customer):
    assert browser.post("/billing/address", GOOD, csrf=False).status_code == 400
    assert reload(session, customer).address_line1 == "1 Old Road"
