"""``/api/v1/webhook-endpoints`` and ``/api/v1/events`` through Flask's test client."""
from __future__ import annotations

from sqlalchemy import select

from portal.models import WebhookEndpoint

from ..helpers import bearer, make_api_key, make_customer, make_invoice


def test_an_endpoint_is_created_with_a_secret_shown_once_listed_without_it_and_deleted(client, session):
    key = make_api_key(session)
    made = client.post("/api/v1/webhook-endpoints", headers=bearer(key),
                       json={"url": "https://product.example/hooks", "event_types": ["invoice.paid"]})
    assert made.status_code == 201
    body = made.get_json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["invoice.paid"]
    assert body["id"].startswith("we_")
    assert session.scalar(select(WebhookEndpoint.secret)) == body["secret"]  # what signs the deliveries

    listed = client.get("/api/v1/webhook-endpoints", headers=bearer(key)).get_json()["data"]
    assert [e["url"] for e in listed] == ["https://product.example/hooks"] and "secret" not in listed[0]

    assert client.delete(f"/api/v1/webhook-endpoints/{body['id']}", headers=bearer(key)).status_code == 204
    assert client.get("/api/v1/webhook-endpoints", headers=bearer(key)).get_json()["data"] == []
    again = client.delete(f"/api/v1/webhook-endpoints/{body['id']}", headers=bearer(key))
    assert again.status_code == 404 and again.get_json()["error"]["message"]
    assert client.delete("/api/v1/webhook-endpoints/12", headers=bearer(key)).status_code == 404


def test_a_bad_url_or_event_type_is_refused_naming_the_field(client, session):
    key = make_api_key(session)
    for body, field in (({"url": "ftp://product.example/h"}, "url"), ({}, "url"),
                        ({"url": "https://p.example/h", "event_types": ["invoice.eaten"]}, "event_types.0"),
                        ({"url": "javascript:alert(1)"}, "url")):
        response = client.post("/api/v1/webhook-endpoints", headers=bearer(key), json=body)
        assert response.status_code == 422, body
        assert field in response.get_json()["error"]["fields"], (body, response.get_json())
    assert session.scalar(select(WebhookEndpoint.id)) is None


def test_endpoints_and_events_need_a_key(client):
    assert client.get("/api/v1/webhook-endpoints").status_code == 401
    assert client.get("/api/v1/events").status_code == 401
    assert client.post("/api/v1/webhook-endpoints", json={"url": "https://p.example/h"}).status_code == 401


def test_events_are_listed_oldest_first_and_paged_on_with_after(app, client, session):
    key = make_api_key(session)
    account, _ = make_customer(session)
    account.external_id = "acct-7"
    session.commit()
    first = make_invoice(session, account, status="paid")
    make_invoice(session, account)
    page = client.get("/api/v1/events?limit=2", headers=bearer(key)).get_json()
    assert [e["type"] for e in page["data"]] == ["invoice.issued", "invoice.paid"] and page["has_more"]
    issued = page["data"][0]
    assert issued["id"].startswith("evt_") and issued["object"] == "event"
    assert issued["created"] == first.issued_at.isoformat()
    invoice = issued["data"]["object"]
    assert invoice["number"] == first.number and invoice["account"] == "acct-7"
    assert invoice["pdf_url"] == f"{app.extensions['portal.settings'].base_url}/billing/invoices/{first.id}.pdf"

    rest = client.get(f"/api/v1/events?after={page['data'][-1]['id']}", headers=bearer(key)).get_json()
    assert [e["type"] for e in rest["data"]] == ["invoice.issued"] and not rest["has_more"]
    done = client.get(f"/api/v1/events?after={rest['data'][-1]['id']}", headers=bearer(key)).get_json()
    assert done == {"object": "list", "data": [], "has_more": False}


def test_an_unknown_after_is_a_422_on_that_field(client, session):
    key = make_api_key(session)
    response = client.get("/api/v1/events?after=evt_nothing", headers=bearer(key))
    assert response.status_code == 422 and "after" in response.get_json()["error"]["fields"]
    assert client.get("/api/v1/events?limit=0", headers=bearer(key)).status_code == 422
