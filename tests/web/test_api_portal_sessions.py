"""``POST /api/v1/portal-sessions`` through Flask's test client: the URL it answers signs the user in once;
unknown accounts, foreign return URLs and bad fields are refused in the API's JSON error shape."""
from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, SignInToken

from ..helpers import Browser, bearer, make_api_key, make_customer
from .test_portal_sessions import follow

pytestmark = pytest.mark.product_in_front

RETURN = "https://app.example.com/settings"


@pytest.fixture
def key(session):
    make_customer(session, external_id="acct_42")
    return make_api_key(session, name="backend")


def create(client, key, **body):
    return client.post("/api/v1/portal-sessions", json={"account": "acct_42", "email": "ada@example.com",
                                                        "return_url": RETURN, **body}, headers=bearer(key))


def test_a_portal_session_answers_a_single_use_url_and_its_expiry(app, client, session, key):
    response = create(client, key, flow="payment_method")
    assert response.status_code == 201
    body = response.get_json()
    assert body["object"] == "portal_session" and set(body) == {"object", "url", "expires_at"}
    made = session.scalar(select(SignInToken))
    assert datetime.fromisoformat(body["expires_at"]) == made.created_at + timedelta(seconds=300) == made.expires_at
    browser = Browser(app.test_client())
    assert follow(browser, urlsplit(body["url"]).path).headers["Location"].endswith("/billing/cards/new")
    assert "← Back to Acme App" in browser.get("/billing").get_data(as_text=True)
    assert follow(Browser(app.test_client()), urlsplit(body["url"]).path).status_code == 410


def test_the_call_is_recorded_with_the_keys_name(client, session, key):
    create(client, key)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "portal_session.created"))
    assert event.details["api_key"] == "backend" and event.details["flow"] == "billing"


def test_an_unknown_account_answers_404(client, key):
    response = create(client, key, account="acct_nope")
    assert response.status_code == 404 and response.get_json()["error"]["message"]


@pytest.mark.parametrize("url", ["https://evil.example/", "https://app.example.com@evil.example/", "/billing"])
def test_a_foreign_return_url_answers_422_naming_the_field(client, session, key, url):
    response = create(client, key, return_url=url)
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["return_url"]
    assert session.scalars(select(SignInToken)).all() == []


def test_an_email_of_another_account_answers_422_naming_the_field(client, session, key):
    make_customer(session, email="mallory@example.com", billing_email="m@example.com")
    response = create(client, key, email="mallory@example.com")
    assert response.status_code == 422 and list(response.get_json()["error"]["fields"]) == ["email"]


@pytest.mark.parametrize("body, field", [({"flow": "everything"}, "flow"), ({"email": None}, "email"),
                                         ({"account": 42}, "account"), ({"return_url": "x" * 501}, "return_url")])
def test_bad_fields_answer_422_naming_them(client, key, body, field):
    response = create(client, key, **body)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]


def test_the_route_needs_a_key(client, key):
    assert client.post("/api/v1/portal-sessions", json={"account": "acct_42"}).status_code == 401


def test_the_openapi_document_describes_the_route(client):
    operation = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/portal-sessions"]["post"]
    assert {"201", "404", "422"} <= set(operation["responses"])
