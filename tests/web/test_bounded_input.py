"""Input the database could not hold is refused before it reaches a query: ids past the Integer range and ids
in other scripts' digits are 404s wherever they arrive (path, form field, query string). And when a request's
transaction fails anyway, the error page (with its security headers) still goes out."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.models import User
from portal.models.account import Impersonation

from ..helpers import Browser, add_card, make_customer, make_invoice, make_staff

TWENTY_DIGITS = "9" * 20
JUST_PAST_INT32 = str(2**31)
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.fixture
def acme(session, gateway):
    account, _ = make_customer(session)
    make_staff(session)
    return {"account": account, "invoice": make_invoice(session, account),
            "card": add_card(session, gateway, account, default=True)}


def customer(app) -> Browser:
    browser = Browser(app.test_client())
    browser.login()
    return browser


def staff(app) -> Browser:
    browser = Browser(app.test_client())
    browser.login("sam@support.example")
    return browser


def assert_styled_404(response):
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("number", [TWENTY_DIGITS, JUST_PAST_INT32], ids=["twenty-digits", "just-past-int32"])
@pytest.mark.parametrize("path", ["/billing/invoices/{n}.pdf", "/billing/invoices/{n}/paid",
                                  "/billing/invoices/{n}/payment-status", "/billing/cards/{n}/edit",
                                  "/billing/cards/{n}/delete"])
def test_a_customer_route_with_an_id_past_the_databases_range_is_not_found(app, acme, path, number):
    assert_styled_404(customer(app).get(path.format(n=number)))


@pytest.mark.parametrize("number", [TWENTY_DIGITS, JUST_PAST_INT32], ids=["twenty-digits", "just-past-int32"])
def test_a_staff_route_with_an_id_past_the_databases_range_is_not_found(app, acme, number):
    browser = staff(app)
    assert_styled_404(browser.get(f"/staff/accounts/{number}"))
    assert_styled_404(browser.get(f"/staff/accounts/{number}/actions"))
    account_id = acme["account"].id
    assert_styled_404(browser.post(f"/staff/accounts/{account_id}/invoices/{number}/refund",
                                   {"amount": "5", "reason": "x"}))


def test_an_id_in_arabic_indic_digits_is_not_the_same_id(app, acme):
    browser = customer(app)
    invoice_id = str(acme["invoice"].id)
    assert browser.get(f"/billing/invoices/{invoice_id}.pdf").status_code == 200
    assert_styled_404(browser.get(f"/billing/invoices/{invoice_id.translate(ARABIC_INDIC)}.pdf"))


def test_an_invoice_cursor_with_an_id_or_time_the_database_cant_compare_is_ignored(app, acme):
    browser = customer(app)
    for cursor in (f"2026-11-01T00:00:00+00:00|{TWENTY_DIGITS}", "2026-11-01T00:00:00|5",
                   "0001-01-01T00:00:00+14:00|5", f"2026-11-01T00:00:00+00:00|{'١٢'}"):
        response = browser.get("/billing/invoices", query_string={"cursor": cursor}, htmx=True)
        assert response.status_code == 200, cursor
        assert acme["invoice"].number in response.get_data(as_text=True)  # the first page, as without a cursor


@pytest.mark.parametrize("user_id", [TWENTY_DIGITS, JUST_PAST_INT32, "١"], ids=["twenty-digits", "just-past-int32",
                                                                                "arabic-indic-one"])
def test_viewing_as_a_user_id_past_the_databases_range_is_not_found_and_starts_nothing(app, session, acme, user_id):
    browser = staff(app)
    account_id = acme["account"].id
    browser.get(f"/staff/accounts/{account_id}")
    response = browser.post(f"/staff/accounts/{account_id}/impersonate", {"reason": "Ticket 42", "user_id": user_id})
    assert_styled_404(response)
    assert session.scalar(select(func.count()).select_from(Impersonation)) == 0


# --- the error page after a failed transaction ----------------------------------------------------------

@pytest.fixture
def failing_credit(monkeypatch):
    """A credit service that breaks its transaction: a flush that violates a unique constraint (a user with
    an e-mail that exists), as a bug or a race would."""
    from portal.billing.collecting import credits

    def grant_credit(session, *args, **kwargs):
        session.add(User(account_id=None, email="sam@support.example", name="Twin", password_hash="x",
                         role="staff"))
        session.flush()

    monkeypatch.setattr(credits, "grant_credit", grant_credit)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_request_whose_transaction_fails_gets_the_styled_error_page_with_its_security_headers(
        app, session, acme, failing_credit, htmx):
    browser = staff(app)
    account_id = acme["account"].id
    browser.get(f"/staff/accounts/{account_id}/actions")

    response = browser.post(f"/staff/accounts/{account_id}/credits", {"amount": "5", "reason": "Sorry"}, htmx=htmx)

    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong on our side. Nothing was charged; please try again." in body
    if htmx:
        assert response.headers["HX-Reswap"] == "none" and 'id="toast"' in body
    else:
        # The whole page, with who is logged in: read after the failed transaction was rolled back.
        assert "<h1>Something went wrong</h1>" in body and "sam@support.example" in body
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert session.scalar(select(func.count()).select_from(User).where(User.name == "Twin")) == 0


def test_when_even_the_error_page_cannot_be_rendered_a_plain_answer_goes_out_with_the_headers(
        app, acme, failing_credit, monkeypatch):
    from portal.web import errors

    def broken_render(*args, **kwargs):
        raise RuntimeError("the template could not be rendered")

    browser = staff(app)
    account_id = acme["account"].id
    browser.get(f"/staff/accounts/{account_id}/actions")
    monkeypatch.setattr(errors, "render", broken_render)

    response = browser.post(f"/staff/accounts/{account_id}/credits", {"amount": "5", "reason": "Sorry"})

    assert response.status_code == 500
    assert response.mimetype == "text/plain"
    assert "Something went wrong on our side." in response.get_data(as_text=True)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
