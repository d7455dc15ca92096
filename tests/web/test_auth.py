"""Logging in and out: hashed passwords, rotated sessions, rate limits, and where anonymous users go."""
from __future__ import annotations

from portal.models import AuditEvent, LoginSession, User

from ..helpers import PASSWORD, Browser, browser_at, make_customer, make_staff


def app_with(settings, database, **changes):
    """Another app on the same database, with some settings changed."""
    import dataclasses

    from portal import create_app

    return create_app(dataclasses.replace(settings, **changes), database=database)


def owner_logs_in(app) -> bool:
    """Ada, from her own address, with her own password."""
    owner = browser_at(app, "203.0.113.10")
    owner.get("/login")
    return owner.post("/login", {"email": "ada@example.com", "password": PASSWORD}).status_code == 303


def test_customer_logs_in_and_lands_on_billing_details(browser, session):
    make_customer(session)
    browser.get("/login")
    response = browser.post("/login", {"email": "ADA@example.com ", "password": PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/billing")
    page = browser.get("/billing")
    assert page.status_code == 200
    assert "Billing details" in page.get_data(as_text=True)


def test_passwords_are_stored_as_argon2id_hashes(session):
    _, user = make_customer(session)
    stored = session.get(User, user.id).password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_wrong_password_shows_a_message_and_does_not_log_in(browser, session):
    make_customer(session)
    browser.get("/login")
    response = browser.post("/login", {"email": "ada@example.com", "password": "nope"})
    assert response.status_code == 401
    assert "don&#39;t match an account" in response.get_data(as_text=True)
    assert browser.get("/billing").status_code == 302


def test_empty_login_form_shows_errors_next_to_fields(browser):
    browser.get("/login")
    response = browser.post("/login", {"email": "", "password": ""})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="email-error"' in body and "Enter your email address." in body
    assert 'id="password-error"' in body and "Enter your password." in body


def test_login_rotates_the_session_cookie(client, session):
    make_customer(session)
    browser = Browser(client)
    browser.get("/login")
    before = client.get_cookie("portal_session").value
    browser.post("/login", {"email": "ada@example.com", "password": PASSWORD})
    after = client.get_cookie("portal_session").value
    assert before != after
    assert session.query(LoginSession).count() == 1


def test_a_cookie_copied_before_logout_stops_working_after_it(app, session):
    make_customer(session)
    first = Browser(app.test_client())
    first.login()
    stolen = first.client.get_cookie("portal_session").value
    assert first.post("/logout").status_code == 303

    thief = app.test_client()
    thief.set_cookie("portal_session", stolen)
    response = thief.get("/billing")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_logout_is_a_post_and_get_does_not_log_out(browser, session):
    make_customer(session)
    browser.login()
    assert browser.get("/logout").status_code == 405
    assert browser.get("/billing").status_code == 200
    assert browser.post("/logout").status_code == 303
    assert browser.get("/billing").status_code == 302


def test_logout_without_csrf_token_is_refused(browser, session):
    make_customer(session)
    browser.login()
    assert browser.post("/logout", csrf=False).status_code == 400
    assert browser.get("/billing").status_code == 200


def test_anonymous_visitor_is_sent_to_login_and_back_after(browser, session):
    make_customer(session)
    response = browser.get("/billing")
    assert response.status_code == 302
    assert "/login?next=/billing" in response.headers["Location"]
    browser.get(response.headers["Location"])
    after = browser.post("/login?next=/billing", {"email": "ada@example.com", "password": PASSWORD})
    assert after.headers["Location"] == "/billing"


def test_anonymous_htmx_request_gets_hx_redirect_to_login(browser):
    response = browser.get("/billing/cards/new", htmx=True)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_login_never_redirects_off_site(browser, session):
    make_customer(session)
    browser.get("/login")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = browser.post(f"/login?next={target}", {"email": "ada@example.com", "password": PASSWORD})
        assert response.headers["Location"] == "/billing"
        browser.post("/logout")


def test_failed_logins_for_one_account_from_one_address_are_limited_with_a_clear_message(browser, session, app):
    make_customer(session)
    browser.get("/login")
    for _ in range(5):
        assert browser.post("/login", {"email": "ada@example.com", "password": "wrong"}).status_code == 401
    blocked = browser.post("/login", {"email": "ada@example.com", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many failed login attempts. Try again in 10 minutes." in blocked.get_data(as_text=True)
    # Another account from the same address is not locked out by this one.
    make_customer(session, email="grace@example.com", billing_email="g@example.com")
    assert browser.post("/login", {"email": "grace@example.com", "password": PASSWORD}).status_code == 303


def test_a_strangers_failed_logins_from_another_address_do_not_lock_the_owner_out(app, session):
    make_customer(session)
    stranger = browser_at(app, "198.51.100.7")
    stranger.get("/login")
    statuses = [stranger.post("/login", {"email": "Ada@Example.com ", "password": "guess"}).status_code
                for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert owner_logs_in(app)


def test_a_distributed_guess_at_one_account_meets_the_per_account_ceiling(settings, database, session):
    # The default ceiling is 100 an hour; a lower one shows the same rule without 100 slow password checks.
    app = app_with(settings, database, login_limit_per_account="8 per hour")
    make_customer(session)
    make_customer(session, email="grace@example.com", billing_email="g@example.com")
    for i in range(4):
        guesser = browser_at(app, f"198.51.100.{i + 1}")
        guesser.get("/login")
        for _ in range(2):  # each address stays well under its own limits
            assert guesser.post("/login", {"email": "ada@example.com", "password": "guess"}).status_code == 401
    owner = browser_at(app, "203.0.113.10")
    owner.get("/login")
    blocked = owner.post("/login", {"email": "ada@example.com", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many failed login attempts. Try again in 60 minutes." in blocked.get_data(as_text=True)
    # The ceiling is the account's: other accounts log in as usual.
    assert owner.post("/login", {"email": "grace@example.com", "password": PASSWORD}).status_code == 303


def test_failed_logins_are_limited_per_address_across_accounts(browser, session):
    browser.get("/login")
    for i in range(20):
        browser.post("/login", {"email": f"user{i}@example.com", "password": "wrong"})
    blocked = browser.post("/login", {"email": "someone@example.com", "password": "wrong"})
    assert blocked.status_code == 429


def test_refused_login_attempts_count_towards_no_limit(settings, database, session):
    # A ceiling with the same window as the per-address limit, so both are checked on every attempt.
    app = app_with(settings, database, login_limit_per_account="8 per 10 minutes")
    make_customer(session)
    stranger = browser_at(app, "198.51.100.7")
    stranger.get("/login")
    statuses = [stranger.post("/login", {"email": "ada@example.com", "password": "guess"}).status_code
                for _ in range(12)]
    assert statuses == [401] * 5 + [429] * 7
    # Only the five wrong passwords reached the account's ceiling of eight; the refusals checked nothing.
    assert owner_logs_in(app)


def test_staff_without_account_get_404_on_billing_details(browser, session):
    make_staff(session)
    browser.get("/login")
    response = browser.post("/login", {"email": "sam@support.example", "password": PASSWORD})
    assert response.headers["Location"].endswith("/staff")
    assert browser.get("/billing").status_code == 404


def test_customers_get_404_on_the_staff_pages(browser, session):
    make_customer(session)
    browser.login()
    assert browser.get("/staff").status_code == 404


def test_login_and_logout_are_audited(browser, session):
    account, user = make_customer(session)
    browser.login()
    browser.post("/logout")
    actions = [e.action for e in session.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions == ["auth.login", "auth.logout"]


def test_login_limits_are_shared_between_processes_through_redis(settings, database, session, redis_url):
    """Two app instances (as two gunicorn workers would be) count failures in the same Redis."""
    import dataclasses

    import redis

    from portal import create_app
    from portal.extensions import limiter

    url = redis_url

    redis.Redis.from_url(url).flushdb()
    make_customer(session)
    shared = dataclasses.replace(settings, ratelimit_storage_url=url)
    worker_one = Browser(create_app(shared, database=database).test_client())
    worker_one.get("/login")
    for _ in range(5):
        worker_one.post("/login", {"email": "ada@example.com", "password": "wrong"})
    worker_two = Browser(create_app(shared, database=database).test_client())
    worker_two.get("/login")
    assert worker_two.post("/login", {"email": "ada@example.com", "password": PASSWORD}).status_code == 429
    redis.Redis.from_url(url).flushdb()
    limiter.reset()


def test_the_password_field_hides_what_is_typed_and_no_attribute_reads_none(app, browser, session):
    page = app.test_client().get("/login").get_data(as_text=True)
    assert 'type="password"' in page
    make_customer(session)
    browser.login()
    for url in ("/login", "/billing", "/billing/cards/new", "/billing/address/edit", "/account"):
        body = browser.get(url).get_data(as_text=True)
        assert '="None"' not in body, url
