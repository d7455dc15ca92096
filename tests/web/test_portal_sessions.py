"""The "Manage plan" hand-off in the browser: a portal-session link signs the product's user in once, lands on
the flow's screen, and the header leads back to the product; e-mailed sign-in links from the login page."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.auth import sign_in_tokens
from portal.models import AuditEvent, LoginSession, OutboxMessage, User, utcnow

from ..helpers import Browser, make_customer, make_staff, make_subscription

pytestmark = pytest.mark.product_in_front

RETURN = "https://app.example.com/settings?tab=team"
REFUSED = "This link has expired or was already used"


@pytest.fixture
def account(session):
    account, _ = make_customer(session, external_id="acct_42")
    make_subscription(session, account)
    return account


def portal_session(app, session, *, email="ada@example.com", flow="billing", now=None) -> str:
    url, _ = sign_in_tokens.create_portal_session(
        session, account_external_id="acct_42", email=email, return_url=RETURN, flow=flow, api_key_id=None,
        settings=app.extensions["portal.settings"], now=now or utcnow())
    return urlsplit(url).path


def follow(browser: Browser, path: str):
    """What a browser does with the link: open the page, then post its form (portal.js does it at once)."""
    landing = browser.get(path)
    assert landing.status_code == 200 and landing.headers["Referrer-Policy"] == "no-referrer"
    token = re.search(r'name="token"[^>]*value="([^"]+)"', landing.get_data(as_text=True)).group(1)
    return browser.post("/portal/session", {"token": token})


def test_first_use_signs_in_and_lands_on_billing_details_with_the_back_link(app, session, account, browser):
    answer = follow(browser, portal_session(app, session))
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/billing")
    page = browser.get("/billing").get_data(as_text=True)
    assert "Billing details" in page and "ada@example.com" in page
    assert f'<a class="back-to-product" href="{RETURN.replace("&", "&amp;")}">← Back to Acme App</a>' in page


def test_the_back_link_is_on_every_customer_page_of_that_login(app, session, account, browser):
    follow(browser, portal_session(app, session))
    for url in ("/billing", "/account", "/billing/cards/new"):
        assert "← Back to Acme App" in browser.get(url).get_data(as_text=True), url


def test_a_password_login_shows_no_back_link(app, session, account, browser):
    browser.login()
    assert "Back to Acme App" not in browser.get("/billing").get_data(as_text=True)


@pytest.mark.parametrize("flow, screen", [("billing", "/billing"), ("payment_method", "/billing/cards/new"),
                                          ("plan", "/billing/plan"), ("cancel", "/billing/cancel")])
def test_each_flow_lands_on_its_screen(app, session, account, browser, flow, screen):
    answer = follow(browser, portal_session(app, session, flow=flow))
    assert answer.headers["Location"].endswith(screen)
    landed = browser.get(screen)
    assert landed.status_code == 200
    if flow == "payment_method":
        assert "Card number" in landed.get_data(as_text=True)


def test_opening_the_link_changes_nothing_until_its_form_is_posted(app, session, account, browser, database):
    from .test_security_sweeps import fingerprint

    path = portal_session(app, session)
    before = fingerprint(database)
    browser.get(path)
    browser.get(path)
    assert fingerprint(database) == before


def test_the_second_use_is_refused_with_a_page_that_sends_the_user_back(app, session, account, client):
    path = portal_session(app, session)
    follow(Browser(client), path)
    again = follow(Browser(app.test_client()), path)
    body = again.get_data(as_text=True)
    assert again.status_code == 410 and REFUSED in body and "Go back to Acme App and open billing again" in body
    assert session.scalars(select(AuditEvent.details).where(AuditEvent.action == "auth.sign_in_refused")).all() \
        == [{"reason": "used", "kind": "portal_session"}]


def test_an_expired_link_is_refused(app, session, account, browser):
    path = portal_session(app, session, now=utcnow() - timedelta(seconds=301))
    answer = follow(browser, path)
    assert answer.status_code == 410 and REFUSED in answer.get_data(as_text=True)
    assert "Billing details" not in browser.get("/billing", follow_redirects=True).get_data(as_text=True)


def test_a_link_for_a_user_removed_from_the_account_is_refused(app, session, account, browser):
    path = portal_session(app, session)
    user = session.scalar(select(User).where(User.email == "ada@example.com"))
    user.account_id = None
    session.commit()
    assert follow(browser, path).status_code == 410


def test_a_link_for_a_user_who_became_staff_is_refused(app, session, account, browser):
    path = portal_session(app, session)
    user = session.scalar(select(User).where(User.email == "ada@example.com"))
    user.account_id, user.role = None, "staff"
    session.commit()
    assert follow(browser, path).status_code == 410
    assert browser.get("/staff").status_code in (302, 401)


def test_a_made_up_token_is_refused(app, account, browser):
    assert follow(browser, "/portal/session/not-a-real-token").status_code == 410


def test_a_post_without_a_csrf_token_is_refused(app, session, account, browser):
    path = portal_session(app, session)
    token = path.rsplit("/", 1)[1]
    assert browser.post("/portal/session", {"token": token}, csrf=False).status_code == 400
    assert follow(browser, path).status_code == 303  # the refused post did not spend it


def test_signing_in_rotates_the_session_and_ends_the_previous_login(app, session, account, client):
    make_customer(session, email="bob@example.com", billing_email="b@example.com")
    browser = Browser(client)
    browser.login("bob@example.com")
    before = {row.token_hash for row in session.scalars(select(LoginSession))}
    cookie_before = client.get_cookie("portal_session").value
    follow(browser, portal_session(app, session))
    session.expire_all()
    rows = session.scalars(select(LoginSession)).all()
    assert [r.revoked_at is not None for r in rows if r.token_hash in before] == [True]
    assert [r.user.email for r in rows if r.token_hash not in before] == ["ada@example.com"]
    assert client.get_cookie("portal_session").value != cookie_before
    assert "ada@example.com" in browser.get("/billing").get_data(as_text=True)


def test_the_product_can_hand_off_a_user_it_adds_without_a_password(app, session, account, browser):
    follow(browser, portal_session(app, session, email="new.person@example.com"))
    assert "new.person@example.com" in browser.get("/billing").get_data(as_text=True)
    browser.post("/logout")
    browser.get("/login")
    # No password opens it, not even the one the login check verifies unknown addresses against.
    for password in ("x", "not a real password"):
        refused = browser.post("/login", {"email": "new.person@example.com", "password": password})
        assert refused.status_code == 401, password


# --- e-mailed sign-in links -------------------------------------------------------------------------------------

def link_in_outbox(session) -> str:
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "sign_in_link"))
    return re.search(r"https?://\S+/portal/session/\S+", message.text_body).group(0)


def test_the_login_page_offers_an_emailed_sign_in_link(browser):
    page = browser.get("/login").get_data(as_text=True)
    assert 'action="/login/link"' in page and "Email me a sign-in link" in page


def test_an_emailed_link_signs_in_a_user_without_a_password(app, session, account, browser):
    user = session.scalar(select(User).where(User.email == "ada@example.com"))
    user.password_hash = ""
    session.commit()
    browser.get("/login")
    answer = browser.post("/login/link", {"link-email": "ada@example.com"})
    assert answer.status_code == 200 and "we have e-mailed it a sign-in link" in answer.get_data(as_text=True)
    path = urlsplit(link_in_outbox(session)).path
    assert follow(browser, path).headers["Location"].endswith("/billing")
    assert "Back to Acme App" not in browser.get("/billing").get_data(as_text=True)
    assert follow(Browser(app.test_client()), path).status_code == 410


def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(app, session, account, browser):
    make_staff(session)
    browser.get("/login")
    answers = {}
    for email in ("ada@example.com", "nobody@example.com", "sam@support.example"):
        response = browser.post("/login/link", {"link-email": email})
        answers[email] = (response.status_code, response.get_data(as_text=True).replace(email, "EMAIL"))
    assert len({status for status, _ in answers.values()}) == 1
    # CSRF tokens carry the second they were signed in, so two answers a second apart differ there alone.
    assert len({re.sub(r'value="[^"]+"|"X-CSRFToken": "[^"]+"', "", body) for _, body in answers.values()}) == 1
    assert [m.to_address for m in session.scalars(select(OutboxMessage))] == ["ada@example.com"]


def test_a_malformed_address_is_refused_next_to_the_field(app, account, browser):
    browser.get("/login")
    for htmx in (False, True):
        answer = browser.post("/login/link", {"link-email": "not an address"}, htmx=htmx)
        assert answer.status_code == 422
        assert 'id="link-email-error"' in answer.get_data(as_text=True)


def test_asking_for_links_is_rate_limited_like_login(app, session, account, browser):
    browser.get("/login")
    statuses = [browser.post("/login/link", {"link-email": "ada@example.com"}).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    page = browser.post("/login/link", {"link-email": "ada@example.com"}).get_data(as_text=True)
    assert "Too many sign-in links asked for" in page
    assert len(session.scalars(select(OutboxMessage)).all()) == 5


def test_asking_for_a_link_needs_a_csrf_token(app, session, account, browser):
    assert browser.post("/login/link", {"link-email": "ada@example.com"}, csrf=False).status_code == 400
    assert session.scalars(select(OutboxMessage)).all() == []
