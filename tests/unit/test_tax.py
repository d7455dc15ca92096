"""The tax on an invoice: which rule applies, at what rate, rounded how, and from which rates table."""
from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.billing.invoicing.tax import (TaxError, TaxRates, TaxResult, TaxTableError, calculate_tax,
                                          describe_tax, load_rates, parse_rates, round_half_up, split_tax)

IE_SELLER = {"seller_country": "IE", "seller_vat_number": "IE6388047V"}
US_SELLER = {"seller_country": "US", "seller_vat_number": ""}
PACKAGED = Path(__file__).resolve().parents[2] / "portal" / "data" / "tax_rates.json"


def customer(country, region="", vat_number="", vat_status="none"):
    return {"customer_country": country, "customer_region": region, "customer_vat_number": vat_number,
            "customer_vat_status": vat_status}


def packaged_table() -> dict:
    return json.loads(PACKAGED.read_text())


def table_with(**changes) -> TaxRates:
    data = packaged_table()
    for section, values in changes.items():
        data[section] = {**data[section], **values}
    return parse_rates(data)


# --- the rules, as a table --------------------------------------------------------------------------

CASES = [
    # id, seller, customer, expected (kind, rate, label, tax on 100.00, reverse charge, customer number)
    ("de-business-of-irish-seller-reverse-charged", IE_SELLER, customer("DE", vat_number="DE136695976", vat_status="valid"),
     ("reverse_charge", "0", "Reverse charge", 0, True, "DE136695976")),
    ("de-consumer-of-irish-seller-pays-german-vat", IE_SELLER, customer("DE"),
     ("vat", "19", "VAT 19% (DE)", 1900, False, "")),
    ("irish-business-of-irish-seller-pays-irish-vat", IE_SELLER, customer("IE", vat_number="IE6388047V", vat_status="valid"),
     ("vat", "23", "VAT 23% (IE)", 2300, False, "IE6388047V")),
    ("french-consumer-pays-french-vat", IE_SELLER, customer("FR"),
     ("vat", "20", "VAT 20% (FR)", 2000, False, "")),
    ("pending-number-is-not-reverse-charged", IE_SELLER, customer("DE", vat_number="DE136695976", vat_status="pending"),
     ("vat", "19", "VAT 19% (DE)", 1900, False, "")),
    ("invalid-number-is-not-reverse-charged", IE_SELLER, customer("DE", vat_number="DE136695977", vat_status="invalid"),
     ("vat", "19", "VAT 19% (DE)", 1900, False, "")),
    ("valid-number-from-another-country-does-not-count", IE_SELLER,
     customer("DE", vat_number="FR40303265045", vat_status="valid"),
     ("vat", "19", "VAT 19% (DE)", 1900, False, "")),
    ("greek-business-reverse-charged-with-el-number", IE_SELLER, customer("GR", vat_number="094259216", vat_status="valid"),
     ("reverse_charge", "0", "Reverse charge", 0, True, "EL094259216")),
    ("finnish-consumer-pays-25.5", IE_SELLER, customer("FI"),
     ("vat", "25.5", "VAT 25.5% (FI)", 2550, False, "")),
    ("california-sales-tax", US_SELLER, customer("US", "CA"),
     ("sales_tax", "7.25", "Sales tax 7.25% (CA)", 725, False, "")),
    ("massachusetts-sales-tax-lower-case-state", US_SELLER, customer("us", "ma"),
     ("sales_tax", "6.25", "Sales tax 6.25% (MA)", 625, False, "")),
    ("oregon-has-no-sales-tax", US_SELLER, customer("US", "OR"),
     ("none", "0", "No sales tax (OR)", 0, False, "")),
    ("us-customer-of-an-eu-seller-still-state-rate", IE_SELLER, customer("US", "TX"),
     ("sales_tax", "6.25", "Sales tax 6.25% (TX)", 625, False, "")),
    ("japan-is-not-taxed-by-default", IE_SELLER, customer("JP"),
     ("none", "0", "No tax", 0, False, "")),
    ("us-seller-charges-eu-consumer-their-vat", US_SELLER, customer("NL"),
     ("vat", "21", "VAT 21% (NL)", 2100, False, "")),
    ("us-seller-reverse-charges-eu-business", US_SELLER, customer("NL", vat_number="NL004495445B01", vat_status="valid"),
     ("reverse_charge", "0", "Reverse charge", 0, True, "NL004495445B01")),
]


@pytest.mark.parametrize("seller, buyer, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_kind_of_customer_gets_the_right_tax(seller, buyer, expected):
    kind, rate, label, tax, reverse_charge, customer_number = expected
    result = calculate_tax(**seller, **buyer, amount_cents=10_000)
    assert (result.kind, result.rate, result.label, result.amount_cents) == (kind, Decimal(rate), label, tax)
    assert result.reverse_charge is reverse_charge
    assert result.customer_vat_number == customer_number
    assert result.total_cents == 10_000 + tax


def test_a_reverse_charge_invoice_carries_both_vat_numbers():
    result = calculate_tax(seller_country="IE", seller_vat_number="ie 6388047v",
                           **customer("DE", vat_number="de 136 695 976", vat_status="valid"), amount_cents=4999)
    assert (result.seller_vat_number, result.customer_vat_number) == ("IE6388047V", "DE136695976")
    assert result.amount_cents == 0 and result.total_cents == 4999


def test_an_operator_rate_for_another_country_is_charged():
    rates = table_with(other={"JP": "10"})
    result = calculate_tax(**IE_SELLER, **customer("JP"), amount_cents=10_000, rates=rates)
    assert (result.kind, result.label, result.amount_cents) == ("vat", "Tax 10% (JP)", 1000)


def test_an_operator_can_name_the_tax_of_another_country():
    rates = table_with(other={"AU": {"rate": "10", "name": "GST"}, "GB": 20})
    au = calculate_tax(**IE_SELLER, **customer("AU"), amount_cents=5000, rates=rates)
    gb = calculate_tax(**IE_SELLER, **customer("GB"), amount_cents=5000, rates=rates)
    assert (au.label, au.amount_cents) == ("GST 10% (AU)", 500)
    assert (gb.label, gb.amount_cents) == ("Tax 20% (GB)", 1000)


def test_a_us_address_without_a_known_state_is_an_error_not_a_silent_zero():
    with pytest.raises(TaxError, match="state"):
        calculate_tax(**US_SELLER, **customer("US", ""), amount_cents=1000)
    with pytest.raises(TaxError, match="state"):
        calculate_tax(**US_SELLER, **customer("US", "PR"), amount_cents=1000)


def test_no_billing_country_is_an_error():
    with pytest.raises(TaxError, match="billing country"):
        calculate_tax(**IE_SELLER, **customer(""), amount_cents=1000)


@pytest.mark.parametrize("amount", [19.99, Decimal("19.99"), True], ids=["float", "decimal", "bool"])
def test_amounts_must_be_integer_minor_units(amount):
    with pytest.raises(TypeError):
        calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=amount)


# --- rounding ---------------------------------------------------------------------------------------

def test_a_half_cent_of_tax_rounds_up():
    # 11.50 at 19% is 2.185 exactly: half-up gives 2.19 (banker's rounding would give 2.18).
    assert calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=1150).amount_cents == 219
    # 11.49 at 19% is 2.1831.
    assert calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=1149).amount_cents == 218


def test_tax_is_worked_out_on_the_total_not_per_line():
    # Three lines of 10.50 at 19%: per line 2.00 each (6.00), on the total 31.50 -> 5.985 -> 5.99.
    result = calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=3 * 1050)
    assert result.amount_cents == 599
    assert split_tax([1050, 1050, 1050], result) == [200, 200, 199]


def test_a_credit_note_mirrors_its_invoice_to_the_cent():
    invoice = calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=1150)
    credit = calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=-1150)
    assert credit.amount_cents == -invoice.amount_cents == -219


def test_split_tax_refuses_lines_that_are_not_the_invoiced_amount():
    result = calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=1000)
    with pytest.raises(ValueError):
        split_tax([500, 400], result)


# --- describing the tax -----------------------------------------------------------------------------

def test_tax_is_described_after_a_price():
    de = calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=2000)
    ca = calculate_tax(**US_SELLER, **customer("US", "CA"), amount_cents=2000)
    rc = calculate_tax(**IE_SELLER, **customer("DE", vat_number="DE136695976", vat_status="valid"), amount_cents=2000)
    oregon = calculate_tax(**US_SELLER, **customer("US", "OR"), amount_cents=2000)
    assert describe_tax(de) == "incl. VAT 19%"
    assert describe_tax(de, "EUR") == "incl. VAT 19% (€3.80)"
    assert describe_tax(ca, "USD") == "incl. sales tax 7.25% ($1.45)"
    assert describe_tax(rc) == "reverse charge (no VAT)"
    assert describe_tax(oregon) == ""


# --- rates tables -----------------------------------------------------------------------------------

def test_the_packaged_table_has_every_member_state_and_state_with_known_rates():
    rates = load_rates()
    assert len(rates.eu) == 27 and len(rates.us) == 51
    expected = {"DE": "19", "FR": "20", "IE": "23", "NL": "21", "ES": "21", "IT": "22", "AT": "20", "BE": "21",
                "PL": "23", "SE": "25", "DK": "25", "FI": "25.5", "HU": "27", "LU": "17", "GR": "24"}
    assert {c: rates.eu[c] for c in expected} == {c: Decimal(r) for c, r in expected.items()}
    assert rates.us["CA"] == Decimal("7.25") and rates.us["NY"] == Decimal("4") and rates.us["TX"] == Decimal("6.25")
    assert all(rates.us[s] == 0 for s in ("OR", "MT", "NH", "DE", "AK"))
    assert dict(rates.other) == {}
    assert rates.as_of and rates.source


def test_an_operator_table_replaces_the_rates_without_code_changes(tmp_path):
    data = packaged_table()
    data["eu"]["DE"] = "21"
    data["other"] = {"JP": "10"}
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(data))
    rates = load_rates(str(path))
    de = calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=10_000, rates=rates)
    jp = calculate_tax(**IE_SELLER, **customer("JP"), amount_cents=10_000, rates=rates)
    assert (de.label, de.amount_cents) == ("VAT 21% (DE)", 2100)
    assert jp.amount_cents == 1000
    # The packaged table is untouched.
    assert calculate_tax(**IE_SELLER, **customer("DE"), amount_cents=10_000).label == "VAT 19% (DE)"


def test_a_rates_file_is_read_once_and_then_cached(tmp_path):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(packaged_table()))
    first = load_rates(path)
    path.write_text("not json any more")
    assert load_rates(path) is first


def test_rates_written_as_bare_json_numbers_are_read_exactly(tmp_path):
    text = PACKAGED.read_text().replace('"FI": "25.5"', '"FI": 25.5').replace('"DE": "19"', '"DE": 19')
    path = tmp_path / "numbers.json"
    path.write_text(text)
    rates = load_rates(path)
    assert rates.eu["FI"] == Decimal("25.5") and rates.eu["DE"] == Decimal("19")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["eu"].pop("DE"), "missing DE"),
    (lambda d: d["us"].pop("CA"), "missing CA"),
    (lambda d: d["eu"].update(GB="20"), "not EU member states"),
    (lambda d: d["eu"].update(DE="nineteen"), "not a number"),
    (lambda d: d["eu"].update(DE="-1"), "percentage"),
    (lambda d: d["other"].update(FR="20"), "outside the EU"),
    (lambda d: d.update(ohter={}), "Unknown section"),
], ids=["missing-member-state", "missing-us-state", "non-member-in-eu", "not-a-number", "negative", "eu-in-other",
        "typo-in-section"])
def test_a_broken_operator_table_is_refused_when_loaded(tmp_path, change, message):
    data = packaged_table()
    change(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TaxTableError, match=message):
        load_rates(path)


def test_a_missing_rates_file_is_a_clear_error(tmp_path):
    with pytest.raises(TaxTableError, match="Can't read"):
        load_rates(tmp_path / "nope.json")


# --- properties -------------------------------------------------------------------------------------

RATES = load_rates()
JURISDICTIONS = [("EU", c) for c in sorted(RATES.eu)] + [("US", s) for s in sorted(RATES.us)]
amounts = st.integers(min_value=0, max_value=10**9)


def _charge(jurisdiction, amount) -> tuple[TaxResult, Decimal]:
    where, code = jurisdiction
    if where == "EU":
        result = calculate_tax(**IE_SELLER, **customer(code), amount_cents=amount)
        return result, RATES.eu[code]
    result = calculate_tax(**US_SELLER, **customer("US", code), amount_cents=amount)
    return result, RATES.us[code]


@given(amount=amounts, jurisdiction=st.sampled_from(JURISDICTIONS))
def test_tax_is_never_negative_and_adds_up_to_the_total(amount, jurisdiction):
    result, _ = _charge(jurisdiction, amount)
    assert result.amount_cents >= 0
    assert isinstance(result.amount_cents, int)
    assert result.net_cents + result.amount_cents == result.total_cents == amount + result.amount_cents


@given(amount=amounts, jurisdiction=st.sampled_from(JURISDICTIONS))
def test_tax_is_within_half_a_cent_of_the_exact_value(amount, jurisdiction):
    result, rate = _charge(jurisdiction, amount)
    exact = Decimal(amount) * rate / 100
    assert abs(Decimal(result.amount_cents) - exact) <= Decimal("0.5")
    assert result.amount_cents == round_half_up(exact)


@given(amount=amounts, jurisdiction=st.sampled_from(JURISDICTIONS))
def test_rounding_the_rounded_tax_changes_nothing(amount, jurisdiction):
    result, _ = _charge(jurisdiction, amount)
    assert round_half_up(Decimal(result.amount_cents)) == result.amount_cents


@given(lines=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=8),
       jurisdiction=st.sampled_from(JURISDICTIONS))
def test_split_tax_adds_up_to_the_invoice_tax_and_stays_within_a_cent_per_line(lines, jurisdiction):
    result, _ = _charge(jurisdiction, sum(lines))
    shares = split_tax(lines, result)
    assert sum(shares) == result.amount_cents
    for line, share in zip(lines, shares):
        exact_share = Fraction(result.amount_cents * line, result.net_cents) if result.net_cents else 0
        assert abs(share - exact_share) < 1
