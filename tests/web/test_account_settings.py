"""Account settings: the login e-mail and password are the user's; the billing e-mail is the account's."""
from __future__ import annotations

import pytest

from portal.models import Account, AuditEvent, User

from ..helpers import PASSWORD, Browser, browser_at, make_customer
from .test_billing_info import GOOD


@pytest.fixture
def customer(session, browser):
    account, user = make_customer(session)
    browser.login()
    return account, user


def test_settings_page_shows_both_forms_and_says_the_billing_email_is_separate(browser, customer):
    body = browser.get("/account").get_data(as_text=True)
    assert "Login email" in body and "Password" in body and "billing@acme.example" in body


def test_changing_the_profile_email_leaves_the_billing_email_alone(browser, session, customer):
    account, user = customer
    response = browser.post("/account/email", {"email": "ada.new@example.com", "current_password": PASSWORD})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(User, user.id).email == "ada.new@example.com"
    assert session.get(Account, account.id).billing_email == "billing@acme.example"
    assert session.query(AuditEvent).filter_by(action="profile.email_changed").count() == 1


def test_changing_the_billing_email_leaves_the_profile_email_alone(browser, session, customer):
    account, user = customer
    assert browser.post("/billing/address", {**GOOD, "billing_email": "invoices@acme.example"}).status_code == 303
    session.expire_all()
    assert session.get(Account, account.id).billing_email == "invoices@acme.example"
    assert session.get(User, user.id).email == "ada@example.com"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_email_change_needs_the_current_password(browser, session, customer, htmx):
    response = browser.post("/account/email", {"email": "x@example.com", "current_password": "wrong"}, htmx=htmx)
    assert response.status_code == 422
    assert "That isn&#39;t your current password." in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(User, customer[1].id).email == "ada@example.com"


def test_email_already_used_by_someone_else_is_refused(browser, session, customer):
    make_customer(session, email="grace@example.com", billing_email="g@example.com")
    response = browser.post("/account/email", {"email": "Grace@example.com", "current_password": PASSWORD})
    assert "Another user already logs in with that e-mail address." in response.get_data(as_text=True)


def test_password_change_signs_out_other_browsers_but_not_this_one(app, browser, session, customer):
    other = Browser(app.test_client())
    other.login()
    response = browser.post("/account/password", {"current_password": PASSWORD, "new_password": "a much better one!",
                                                  "confirm_password": "a much better one!"})
    assert response.status_code == 303
    assert browser.get("/billing").status_code == 200
    assert other.get("/billing").status_code == 302
    fresh = Browser(app.test_client())
    fresh.get("/login")
    assert fresh.post("/login", {"email": "ada@example.com", "password": "a much better one!"}).status_code == 303


@pytest.mark.parametrize("data, field, message", [
    ({"current_password": "wrong", "new_password": "long enough password", "confirm_password": "long enough password"},
     "current_password", "That isn't your current password."),
    ({"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"},
     "new_password", "Use at least 12 characters."),
    ({"current_password": PASSWORD, "new_password": "long enough password", "confirm_password": "different one!!"},
     "confirm_password", "The two new passwords don't match."),
])
def test_password_change_errors_are_shown_next_to_the_field(browser, customer, data, field, message):
    import html
    import re

    response = browser.post("/account/password", data, htmx=True)
    assert response.status_code == 422
    match = re.search(rf'id="{field}-error">([^<]+)<', response.get_data(as_text=True))
    assert match and html.unescape(match.group(1)) == message


FORMS = {
    "email": lambda password: ("/account/email", {"email": "ada.new@example.com", "current_password": password}),
    "password": lambda password: ("/account/password", {"current_password": password,
                                                        "new_password": "a much better one!",
                                                        "confirm_password": "a much better one!"}),
}


def _post(browser, form, password, **kwargs):
    url, data = FORMS[form](password)
    return browser.post(url, data, **kwargs)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
@pytest.mark.parametrize("form", ["email", "password"])
def test_wrong_current_passwords_are_limited_with_a_clear_message(browser, session, customer, form, htmx):
    for _ in range(5):
        assert _post(browser, form, "guess", htmx=htmx).status_code == 422
    blocked = _post(browser, form, PASSWORD, htmx=htmx)
    assert blocked.status_code == 429
    body = blocked.get_data(as_text=True)
    assert "Too many wrong passwords. Try again in 10 minutes." in body
    assert ("<html" not in body) if htmx else ("<html" in body)
    session.expire_all()
    user = session.get(User, customer[1].id)
    assert user.email == "ada@example.com" and session.query(AuditEvent).filter(
        AuditEvent.action.like("profile.%")).count() == 0


def test_the_two_forms_share_one_count_of_wrong_passwords(browser, customer):
    for form in ("email", "email", "email", "password", "password"):
        assert _post(browser, form, "guess").status_code == 422
    assert _post(browser, "email", PASSWORD).status_code == 429
    assert _post(browser, "password", PASSWORD).status_code == 429


def test_only_wrong_current_passwords_count_towards_the_limit(browser, session, customer):
    for _ in range(6):
        response = browser.post("/account/password", {"current_password": PASSWORD, "new_password": "short",
                                                       "confirm_password": "short"})
        assert response.status_code == 422
    assert _post(browser, "password", PASSWORD).status_code == 303


def test_wrong_passwords_from_one_address_do_not_stop_the_user_from_another(app, session, customer):
    elsewhere = browser_at(app, "198.51.100.7")
    elsewhere.login()
    for _ in range(5):
        assert _post(elsewhere, "password", "guess").status_code == 422
    assert _post(elsewhere, "password", PASSWORD).status_code == 429
    at_home = browser_at(app, "203.0.113.10")
    at_home.login()
    assert _post(at_home, "password", PASSWORD).status_code == 303


def test_wrong_passwords_from_many_addresses_meet_the_per_user_ceiling(settings, database, session):
    import dataclasses

    from portal import create_app

    app = create_app(dataclasses.replace(settings, password_check_limit_per_user="6 per hour"), database=database)
    make_customer(session)
    for i in range(3):
        guesser = browser_at(app, f"198.51.100.{i + 1}")
        guesser.login()
        for _ in range(2):
            assert _post(guesser, "email", "guess").status_code == 422
    owner = browser_at(app, "203.0.113.10")
    owner.login()
    blocked = _post(owner, "email", PASSWORD)
    assert blocked.status_code == 429
    assert "Too many wrong passwords. Try again in 60 minutes." in blocked.get_data(as_text=True)
