"""The API's common ground, through Flask's test client: bearer keys (missing, wrong, revoked), cookies and
CSRF playing no part, every call audited with the key's name, and every error in one JSON shape."""
from __future__ import annotations

from sqlalchemy import select

from portal.auth import api_keys
from portal.models import ApiKey, AuditEvent, utcnow

from ..helpers import Browser, bearer, make_api_key, make_customer


def test_the_openapi_document_is_served_without_a_key_and_describes_the_bearer_scheme(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/plans" in document["paths"]
    assert document["components"]["securitySchemes"]["bearerKey"]["scheme"] == "bearer"


def test_a_request_without_a_key_gets_401_in_json(client):
    response = client.get("/api/v1/plans")
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    assert "Bearer" in response.get_json()["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_key_gets_401(client, session):
    key = make_api_key(session)
    for header in (f"Bearer {key}x", f"Bearer portal_sk_{'a' * 43}", f"Basic {key}", key, "Bearer "):
        response = client.get("/api/v1/plans", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert set(response.get_json()["error"]) == {"message", "fields"}


def test_a_revoked_key_stops_working_at_once(client, session):
    key = make_api_key(session)
    assert client.get("/api/v1/plans", headers=bearer(key)).status_code == 200
    row = session.scalar(select(ApiKey))
    api_keys.revoke(session, row.id, now=utcnow())
    assert client.get("/api/v1/plans", headers=bearer(key)).status_code == 401


def test_only_the_hash_of_a_key_is_stored_and_the_key_is_recognisable(session):
    row, key = api_keys.create(session, name="backend", now=utcnow())
    assert key.startswith("portal_sk_") and len(key) > 40
    assert key not in repr([(k.key_hash, k.prefix, k.name) for k in session.scalars(select(ApiKey))])
    assert key.startswith(row.prefix) and len(row.prefix) < 20


def test_every_call_is_audited_with_the_keys_name_and_stamps_last_used(client, session):
    key = make_api_key(session, name="production backend")
    client.get("/api/v1/plans", headers=bearer(key))
    client.post("/api/v1/plans", headers=bearer(key), json={"code": "pro", "name": "Pro", "interval": "month",
                                                             "price": 2000, "currency": "USD"})
    session.expire_all()
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    calls = [e.details["call"] for e in events if e.action == "api.call"]
    assert calls == ["GET /api/v1/plans", "POST /api/v1/plans"]
    assert all(e.details["api_key"] == "production backend" for e in events if e.action != "api_key.created")
    assert [e.action for e in events][-1] == "plan.created"
    assert session.scalar(select(ApiKey)).last_used_at is not None


def test_a_logged_in_browser_without_a_key_gets_401_and_needs_no_csrf_token_with_one(app, client, session):
    make_customer(session)
    key = make_api_key(session)
    browser = Browser(client)
    browser.login("ada@example.com")
    assert client.get("/api/v1/plans").status_code == 401  # the login cookie gives no access
    response = client.post("/api/v1/plans", headers=bearer(key),
                           json={"code": "pro", "name": "Pro", "interval": "month", "price": 2000, "currency": "USD"})
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers


def test_refused_fields_are_named_in_a_422(client, session):
    key = make_api_key(session)
    response = client.post("/api/v1/plans", headers=bearer(key),
                           json={"code": "Pro plan!", "name": "Pro", "interval": "week", "price": -1,
                                 "currency": "USD", "colour": "red"})
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert set(fields) == {"interval", "price", "colour"}
    response = client.post("/api/v1/plans", headers=bearer(key),
                           json={"code": "Pro plan!", "name": "Pro", "interval": "month", "price": 1, "currency": "usd"})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"code", "currency"}


def test_a_body_that_is_not_a_json_object_is_refused_with_a_message(client, session):
    key = make_api_key(session)
    for body, content_type in (("[1, 2]", "application/json"), ("{not json", "application/json"),
                               ("code=pro", "application/x-www-form-urlencoded")):
        response = client.post("/api/v1/plans", headers=bearer(key), data=body, content_type=content_type)
        assert 400 <= response.status_code < 500, body
        assert response.get_json()["error"]["message"], body


def test_a_nul_byte_is_refused_next_to_its_field(client, session):
    key = make_api_key(session)
    response = client.post("/api/v1/plans", headers=bearer(key),
                           json={"code": "pro", "name": "Pro\x00", "interval": "month", "price": 1, "currency": "USD"})
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["name"]


def test_unknown_urls_and_methods_under_the_api_answer_json(client, session):
    key = make_api_key(session)
    missing = client.get("/api/v1/nothing-here", headers=bearer(key))
    assert missing.status_code == 404 and missing.get_json()["error"]["message"]
    wrong_method = client.delete("/api/v1/plans", headers=bearer(key))
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"]["message"]
