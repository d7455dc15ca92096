"""Property-based fuzzing of every form: no input makes a 500, and an input that is refused changes nothing."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..helpers import add_card, make_customer, make_invoice, make_subscription
from .test_security_sweeps import fingerprint

# Text as people (and attackers) type it: any Unicode, control characters, very long, or near-valid values.
values = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=400),
    st.sampled_from(["", " ", "0", "-1", "4242424242424242", "4000000000000002", "12/30", "13/99", "00/00",
                     "DE136695976", "US", "DE", "GR", "\x00", "<script>", "' OR 1=1 --", "9" * 40, "a@b.c"]),
)


def form(*names):
    return st.fixed_dictionaries({name: values for name in names})


FORMS = {
    "login": ("/login", form("email", "password")),
    "add card": ("/billing/cards", form("cardholder_name", "number", "expiry", "cvc", "save_as_default",
                                        "idempotency_key")),
    "edit card": ("/billing/cards/{card}", form("cardholder_name", "expiry")),
    "billing address": ("/billing/address", form("name", "address_line1", "address_line2", "city", "postal_code",
                                                  "region", "country", "billing_email", "vat_number")),
    "login email": ("/account/email", form("email", "current_password")),
    "password": ("/account/password", form("current_password", "new_password", "confirm_password")),
    "email a copy": ("/billing/invoices/{invoice}/email", form("request_key")),
}

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])


@pytest.fixture
def ready(app, browser, session, gateway):
    account, _ = make_customer(session, region="MA", postal_code="01101")
    make_subscription(session, account)
    card = add_card(session, gateway, account, default=True)
    invoice = make_invoice(session, account)
    browser.login()
    return {"card": card.id, "invoice": invoice.id}


@pytest.mark.parametrize("name", sorted(FORMS))
def test_no_form_input_causes_a_server_error_and_refused_input_changes_nothing(app, database, browser, ready, name):
    path, strategy = FORMS[name]
    url = path.format(**ready)

    @FUZZ
    @given(data=strategy, htmx=st.booleans())
    def check(data, htmx):
        from portal.extensions import limiter

        limiter.reset()
        if name == "login":
            browser.get("/login")
        before = fingerprint(database)
        response = browser.post(url, data, htmx=htmx)
        assert response.status_code < 500, f"{name}: {data!r} caused {response.status_code}"
        if response.status_code >= 400:
            assert fingerprint(database) == before, f"{name}: refused {data!r} but changed data"
        if name == "login" and response.status_code == 303:
            browser.login()  # stay logged in as the customer for the next example

    check()


def test_a_nul_character_in_any_form_is_refused_plainly_and_changes_nothing(database, browser, ready):
    before = fingerprint(database)
    for url in ("/login", "/billing/address", "/billing/cards"):
        response = browser.post(url, {"email": "a\x00@b.c", "name": "x\x00", "number": "4242\x00"})
        assert response.status_code == 400 and "characters that can" in response.get_data(as_text=True)
    assert fingerprint(database) == before
