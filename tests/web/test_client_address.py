"""The customer's address behind reverse proxies (PORTAL_PROXY_HOPS): rate limits, login sessions and audit
rows all see the address the trusted proxy saw, and without trusted proxies a forged header changes nothing."""
from __future__ import annotations

import dataclasses

import pytest

from portal import create_app
from portal.models import AuditEvent, LoginSession

from ..helpers import PASSWORD, browser_at, make_customer

PROXY = "10.0.0.2"


@pytest.fixture
def app_with_hops(settings, database):
    def build(hops: int):
        return create_app(dataclasses.replace(settings, proxy_hops=hops), database=database)

    return build


def _fail_five_times(browser, email="ada@example.com"):
    browser.get("/login")
    for _ in range(5):
        assert browser.post("/login", {"email": email, "password": "guess"}).status_code == 401


def test_behind_one_proxy_two_customers_are_limited_by_their_own_addresses(app_with_hops, session):
    app = app_with_hops(1)
    make_customer(session)
    stranger = browser_at(app, PROXY, forwarded_for="198.51.100.7")
    _fail_five_times(stranger)
    assert stranger.post("/login", {"email": "ada@example.com", "password": PASSWORD}).status_code == 429
    owner = browser_at(app, PROXY, forwarded_for="203.0.113.10")
    owner.get("/login")
    assert owner.post("/login", {"email": "ada@example.com", "password": PASSWORD}).status_code == 303


def test_behind_one_proxy_the_login_session_and_audit_row_record_the_forwarded_address(app_with_hops, session):
    app = app_with_hops(1)
    make_customer(session)
    # The client made up the first entry; the proxy appended the address it saw. Only that one is trusted.
    browser = browser_at(app, PROXY, forwarded_for="6.6.6.6, 203.0.113.10")
    browser.login()
    assert [row.ip for row in session.query(LoginSession)] == ["203.0.113.10"]
    assert [(e.action, e.ip) for e in session.query(AuditEvent)] == [("auth.login", "203.0.113.10")]


def test_without_trusted_proxies_a_forged_forwarded_for_is_ignored(app_with_hops, session):
    app = app_with_hops(0)
    make_customer(session)
    browser_at(app, PROXY, forwarded_for="203.0.113.10").login()
    assert [row.ip for row in session.query(LoginSession)] == [PROXY]
    assert [e.ip for e in session.query(AuditEvent)] == [PROXY]
    # Changing the header does not make a new client: the limit still counts the connection's address.
    _fail_five_times(browser_at(app, PROXY, forwarded_for="198.51.100.7"))
    other = browser_at(app, PROXY, forwarded_for="198.51.100.8")
    other.get("/login")
    assert other.post("/login", {"email": "ada@example.com", "password": PASSWORD}).status_code == 429
