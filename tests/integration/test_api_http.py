"""The API over real HTTP against a live portal, as the product's servers use it: a key, plans, an account
by the product's id, a user, a subscription, entitlements and invoices; and its refusals (401, 404, 409,
422 naming the field), all in JSON."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from portal.auth import api_keys
from portal.models import Account, ApiKey, Invoice, utcnow

from ..helpers import add_card, bearer, make_api_key, make_invoice

ACCOUNT = {"name": "Acme Analytics", "billing_email": "billing@acme.example",
           "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "01101", "region": "MA",
                       "country": "US"}}
PLAN = {"code": "pro-monthly", "name": "Pro", "interval": "month", "price": 2000, "currency": "USD"}


class Api:
    """``requests`` with the key and the portal's address filled in."""

    def __init__(self, url: str, key: str):
        self.url, self.http = url, requests.Session()
        self.http.headers.update(bearer(key))

    def __getattr__(self, method):
        return lambda path, **kwargs: self.http.request(method.upper(), f"{self.url}/api/v1{path}", timeout=30,
                                                        **kwargs)


@pytest.fixture
def api(live_server, session) -> Api:
    return Api(live_server.url, make_api_key(session))


def test_the_product_sets_up_an_account_and_reads_back_what_it_bought(api, live_server, session):
    assert api.post("/plans", json=PLAN).status_code == 201
    assert [plan["code"] for plan in api.get("/plans").json()["data"]] == ["pro-monthly"]

    created = api.put("/accounts/acme-42", json=ACCOUNT)
    assert created.status_code == 201 and created.json()["subscription_status"] == "none"
    again = api.put("/accounts/acme-42", json=ACCOUNT)
    assert again.status_code == 200 and again.json() == created.json()

    user = api.post("/accounts/acme-42/users", json={"email": "ada@acme.example", "name": "Ada"})
    assert user.status_code == 201 and user.json()["password_login"] is False
    assert api.post("/accounts/acme-42/users", json={"email": "ada@acme.example"}).status_code == 200

    add_card(session, live_server.app.extensions["portal.gateway"],
             session.scalar(select(Account).where(Account.external_id == "acme-42")), default=True)
    subscription = api.post("/accounts/acme-42/subscriptions", json={"plan": "pro-monthly"})
    assert subscription.status_code == 201
    assert subscription.json()["status"] == "active" and subscription.json()["plan"] == "pro-monthly"
    assert [s["id"] for s in api.get("/accounts/acme-42/subscriptions").json()["data"]] == [subscription.json()["id"]]

    entitlements = api.get("/accounts/acme-42/entitlements").json()
    assert (entitlements["paid_access"], entitlements["status"], entitlements["plan"]) == (True, "active", "pro-monthly")
    assert entitlements["current_period_end"] == subscription.json()["current_period_end"]
    assert api.get("/accounts/acme-42").json()["subscription_status"] == "active"

    invoices = api.get("/accounts/acme-42/invoices").json()
    [invoice] = invoices["data"]
    assert invoices["has_more"] is False
    assert (invoice["status"], invoice["subtotal"], invoice["tax"], invoice["amount_due"]) == ("paid", 2000, 125, 0)
    assert invoice["number"].startswith("INV-")
    number = session.scalar(select(Invoice.id))
    assert invoice["pdf_url"] == f"{live_server.url}/billing/invoices/{number}.pdf"  # PORTAL_BASE_URL, absolute


def test_the_pdf_url_is_the_customers_own_invoice_page(live_server):
    from flask import url_for

    from portal.api_objects import invoice_pdf_url

    with live_server.app.test_request_context():
        assert invoice_pdf_url("https://billing.example/", 7) == "https://billing.example" + url_for("invoices.pdf",
                                                                                                     invoice_id=7)


def test_a_price_change_through_the_api_leaves_the_issued_invoice_as_it_was(api, live_server, session):
    api.post("/plans", json=PLAN)
    api.put("/accounts/acme", json=ACCOUNT)
    api.post("/accounts/acme/subscriptions", json={"plan": "pro-monthly"})  # no card: the invoice stays open
    before = api.get("/accounts/acme/invoices").json()["data"]
    changed = api.patch("/plans/pro-monthly", json={"price": 2900, "name": "Pro (2027)"})
    assert changed.status_code == 200 and changed.json()["price"] == 2900
    assert api.get("/accounts/acme/invoices").json()["data"] == before
    assert before[0]["subtotal"] == 2000


def test_a_second_live_subscription_is_a_conflict(api):
    api.post("/plans", json=PLAN)
    api.put("/accounts/acme", json=ACCOUNT)
    assert api.post("/accounts/acme/subscriptions", json={"plan": "pro-monthly", "trial_days": 14}).status_code == 201
    second = api.post("/accounts/acme/subscriptions", json={"plan": "pro-monthly"})
    assert second.status_code == 409 and "subscription already" in second.json()["error"]["message"]


def test_refusals_name_the_field_as_the_body_spells_it(api):
    api.post("/plans", json=PLAN)
    refused = api.put("/accounts/acme", json={**ACCOUNT, "billing_email": "nope",
                                             "address": {**ACCOUNT["address"], "postal_code": "ABCDE"}})
    assert refused.status_code == 422
    assert set(refused.json()["error"]["fields"]) == {"billing_email", "address.postal_code"}
    assert api.get("/accounts/acme").status_code == 404  # nothing half-written
    api.put("/accounts/acme", json=ACCOUNT)
    start = api.post("/accounts/acme/subscriptions", json={"plan": "gold", "trial_days": "soon"})
    assert start.status_code == 422 and set(start.json()["error"]["fields"]) == {"trial_days"}
    unknown_plan = api.post("/accounts/acme/subscriptions", json={"plan": "gold"})
    assert unknown_plan.status_code == 422 and list(unknown_plan.json()["error"]["fields"]) == ["plan"]
    page = api.get("/accounts/acme/invoices", params={"limit": 0})
    assert page.status_code == 422 and list(page.json()["error"]["fields"]) == ["limit"]


def test_unknown_ids_are_404_in_json_everywhere(api):
    api.post("/plans", json=PLAN)
    for method, path, body in (("get", "/accounts/ghost", None), ("get", "/accounts/ghost/entitlements", None),
                               ("get", "/accounts/ghost/invoices", None), ("get", "/accounts/ghost/subscriptions", None),
                               ("post", "/accounts/ghost/users", {"email": "a@b.example"}),
                               ("post", "/accounts/ghost/subscriptions", {"plan": "pro-monthly"}),
                               ("patch", "/plans/ghost", {"price": 1})):
        response = getattr(api, method)(path, json=body)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"] == "application/json" and response.json()["error"]["message"]


def test_invoices_come_a_page_at_a_time(api, session, live_server):
    api.put("/accounts/acme", json=ACCOUNT)
    account = session.scalar(select(Account).where(Account.external_id == "acme"))
    for _ in range(3):
        make_invoice(session, account)
    first = api.get("/accounts/acme/invoices", params={"limit": 2}).json()
    assert len(first["data"]) == 2 and first["has_more"] is True
    rest = api.get("/accounts/acme/invoices", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(rest["data"]) == 1 and rest["has_more"] is False
    assert len({i["id"] for i in first["data"] + rest["data"]}) == 3


def test_a_wrong_missing_or_revoked_key_gets_401_over_http(api, live_server, session):
    url = f"{live_server.url}/api/v1/plans"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, headers=bearer("portal_sk_wrong"), timeout=30).status_code == 401
    assert api.get("/plans").status_code == 200
    api_keys.revoke(session, session.scalar(select(ApiKey.id)), now=utcnow())
    refused = api.get("/plans")
    assert refused.status_code == 401 and refused.json()["error"]["fields"] == {}
