"""Support staff viewing an account as its customer: who may start it, the reason and the recent-login rule,
session rotation, the 30-minute limit, the banner on every page and partial, and read-only enforcement swept
over every customer route in the app's URL map."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import errors, models
from portal.auth import impersonation
from portal.billing.collecting import checkout
from portal.models import AuditEvent, Base, LoginSession, PaymentMethod, utcnow
from portal.models.account import Impersonation
from portal.models.audit import AppendOnlyError
from portal.payments.gateway import CardDetails

from ..helpers import Browser, add_card, make_customer, make_invoice, make_staff, make_subscription

MESSAGE = "You are viewing this account as support staff; changes are made from the console."
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Blueprints that are not a customer's pages; every other blueprint is, including ones added later.
# sign_in: portal-session and e-mailed links sign a browser in (ending whatever login it had); they are not
# pages of the customer being viewed. api-docs and every "api_v1_*": the product's servers with a bearer key,
# never a customer's cookie.
NOT_CUSTOMER = {"static", "health", "auth", "webhooks", "api", "demo_mail", "sign_in", "api-docs"}
KNOWN_CUSTOMER = {"cards", "billing_info", "invoices", "dunning", "account", "sandbox"}
REASON = "Ticket 4711: customer asks why the renewal failed"


def cookie_token(app, client) -> str | None:
    """The login-session token inside the signed session cookie (what a copied cookie would carry)."""
    cookie = client.get_cookie("portal_session")
    if cookie is None:
        return None
    return app.session_interface.get_signing_serializer(app).loads(cookie.value).get("_user_id")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def move_clock(monkeypatch, delta: timedelta) -> None:
    start = utcnow()
    monkeypatch.setattr(models, "utcnow", lambda: start + delta)


def audit_actions(session, account_id=None) -> list[str]:
    session.expire_all()
    stmt = select(AuditEvent.action).order_by(AuditEvent.id)
    if account_id is not None:
        stmt = stmt.where(AuditEvent.account_id == account_id)
    return list(session.scalars(stmt))


def view_as(browser, account, reason=REASON, **extra):
    browser.get(f"/staff/accounts/{account.id}")
    return browser.post(f"/staff/accounts/{account.id}/impersonate", {"reason": reason, **extra})


@pytest.fixture
def world(session, gateway):
    account, customer = make_customer(session, region="MA", postal_code="01101")
    staff = make_staff(session)
    return account, customer, staff


@pytest.fixture
def staff_browser(browser, world):
    browser.login("sam@support.example")
    return browser


@pytest.fixture
def viewing(staff_browser, world):
    """A staff browser viewing the account as its customer, on Billing details."""
    account = world[0]
    response = view_as(staff_browser, account)
    assert response.status_code == 303 and response.headers["Location"].endswith("/billing")
    staff_browser.get("/billing")
    return staff_browser


# --- starting -----------------------------------------------------------------------------------------------

def test_view_as_customer_opens_the_customers_billing_details_with_a_banner_naming_account_and_staff(
        viewing, session, gateway, world):
    account, customer, staff = world
    add_card(session, gateway, account, number="5555555555554444", default=True)
    page = viewing.get("/billing")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Billing details" in body and "Mastercard" in body
    banner = re.search(r'<div id="impersonation-banner".*?</div>', body, re.S).group(0)
    assert "Acme Analytics Inc." in banner and "Sam Support" in banner and "sam@support.example" in banner
    assert "End impersonation" in banner and 'action="/staff/impersonation/end"' in banner
    session.expire_all()
    row = session.scalars(select(Impersonation)).one()
    assert (row.staff_user_id, row.account_id, row.user_id, row.reason) == (staff.id, account.id, customer.id, REASON)
    assert row.expires_at - row.started_at == timedelta(minutes=30) and row.ended_at is None


def test_a_reason_is_required_and_its_error_is_shown_next_to_the_field(staff_browser, session, world):
    account = world[0]
    response = view_as(staff_browser, account, reason="   ")
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'<input id="reason"[^>]*aria-invalid="true"', body)
    assert 'id="reason-error">Say why you need to view this account as the customer.<' in body
    assert session.scalars(select(Impersonation)).all() == []
    assert "impersonation.started" not in audit_actions(session)


def test_without_a_reason_the_form_keeps_the_person_on_the_console(staff_browser, world):
    response = view_as(staff_browser, world[0], reason="")
    assert response.status_code == 422 and "Invoices and payments" in response.get_data(as_text=True)
    assert "Viewing as customer" not in staff_browser.get(f"/staff/accounts/{world[0].id}").get_data(as_text=True)


@pytest.mark.parametrize("minutes, allowed", [(14, True), (16, False)])
def test_staff_must_have_logged_in_within_the_last_15_minutes(app, staff_browser, session, world, monkeypatch,
                                                              minutes, allowed):
    account = world[0]
    staff_browser.get(f"/staff/accounts/{account.id}")
    old_token = cookie_token(app, staff_browser.client)
    move_clock(monkeypatch, timedelta(minutes=minutes))
    response = staff_browser.post(f"/staff/accounts/{account.id}/impersonate", {"reason": REASON})
    assert response.status_code == 303
    if allowed:
        assert response.headers["Location"].endswith("/billing")
        return
    assert response.headers["Location"] == f"/login?next=/staff/accounts/{account.id}"
    login_page = staff_browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "log in again to view an account as a customer" in login_page
    assert session.scalars(select(Impersonation)).all() == []
    session.expire_all()
    assert session.get(LoginSession, digest(old_token)).revoked_at is not None
    # Logging in again brings them back to the account, and now it works.
    again = staff_browser.post(f"/login?next=/staff/accounts/{account.id}",
                               {"email": "sam@support.example", "password": "correct horse battery staple"})
    assert again.status_code == 303 and again.headers["Location"] == f"/staff/accounts/{account.id}"
    assert view_as(staff_browser, account).headers["Location"].endswith("/billing")


def test_rotating_sessions_keeps_the_time_of_the_last_login_so_stop_and_start_cannot_dodge_the_rule(
        app, viewing, session, world, monkeypatch):
    account = world[0]
    move_clock(monkeypatch, timedelta(minutes=10))
    viewing.post("/staff/impersonation/end")
    move_clock(monkeypatch, timedelta(minutes=20))
    response = view_as(viewing, account)
    assert response.headers["Location"].startswith("/login?next=")


def test_staff_cannot_view_a_staff_user_nor_an_account_without_customers(staff_browser, session, world):
    account, _, staff = world
    other_staff = make_staff(session, email="kim@support.example")
    assert view_as(staff_browser, account, user_id=str(staff.id)).status_code == 404
    assert view_as(staff_browser, account, user_id=str(other_staff.id)).status_code == 404
    empty, user = make_customer(session, email="gone@example.com", name="Empty Ltd")
    session.delete(user)
    session.commit()
    response = view_as(staff_browser, empty)
    assert response.status_code == 409
    assert "has no customer users" in response.get_data(as_text=True)
    assert staff_browser.post("/staff/accounts/999999/impersonate", {"reason": REASON}).status_code == 404
    assert session.scalars(select(Impersonation)).all() == []


def test_a_user_of_another_account_cannot_be_viewed_through_this_one(staff_browser, session, world):
    _, stranger = make_customer(session, email="mallory@example.com", billing_email="m@example.com")
    assert view_as(staff_browser, world[0], user_id=str(stranger.id)).status_code == 404
    assert session.scalars(select(Impersonation)).all() == []


def test_impersonation_does_not_nest(app, viewing, session, world):
    other, _ = make_customer(session, email="bob@example.com", name="Other Co")
    response = viewing.post(f"/staff/accounts/{other.id}/impersonate", {"reason": REASON})
    assert response.status_code == 403 and MESSAGE in response.get_data(as_text=True)
    assert len(session.scalars(select(Impersonation)).all()) == 1
    # The service refuses it too, whatever route calls it.
    with pytest.raises(errors.NestedImpersonation):
        impersonation.start(session, cookie_token(app, viewing.client), account_id=other.id, reason=REASON,
                            now=utcnow())


def test_customers_get_404_on_the_console_and_on_the_impersonation_post(browser, session, world):
    account = world[0]
    browser.login()
    assert browser.get("/staff").status_code == 404
    assert browser.get(f"/staff/accounts/{account.id}").status_code == 404
    assert browser.post(f"/staff/accounts/{account.id}/impersonate", {"reason": REASON}).status_code == 404
    assert browser.post("/staff/impersonation/end").status_code == 404
    assert session.scalars(select(Impersonation)).all() == []


def test_strangers_are_sent_to_log_in(client, world):
    response = client.get(f"/staff/accounts/{world[0].id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- sessions -------------------------------------------------------------------------------------------------

def test_the_session_rotates_when_impersonation_starts_and_when_it_stops(app, staff_browser, session, world):
    account = world[0]
    staff_browser.get(f"/staff/accounts/{account.id}")
    staff_token = cookie_token(app, staff_browser.client)
    staff_cookie = staff_browser.client.get_cookie("portal_session").value
    staff_row = session.get(LoginSession, digest(staff_token))
    login_expiry, logged_in = staff_row.expires_at, staff_row.logged_in_at

    view_as(staff_browser, account)
    viewing_token = cookie_token(app, staff_browser.client)
    viewing_cookie = staff_browser.client.get_cookie("portal_session").value
    assert viewing_token != staff_token
    session.expire_all()
    assert session.get(LoginSession, digest(staff_token)).revoked_at is not None
    viewing_row = session.get(LoginSession, digest(viewing_token))
    assert viewing_row.impersonation_id is not None and viewing_row.expires_at == login_expiry
    assert session.get(Impersonation, viewing_row.impersonation_id).parent_session_hash == digest(staff_token)

    # A copy of the cookie from before the start no longer opens anything.
    copy = app.test_client()
    copy.set_cookie("portal_session", staff_cookie)
    assert copy.get("/staff").status_code == 302

    staff_browser.get("/billing")
    ended = staff_browser.post("/staff/impersonation/end")
    assert ended.status_code == 303 and ended.headers["Location"] == f"/staff/accounts/{account.id}"
    back_token = cookie_token(app, staff_browser.client)
    assert back_token not in (staff_token, viewing_token)
    session.expire_all()
    assert session.get(LoginSession, digest(viewing_token)).revoked_at is not None
    back_row = session.get(LoginSession, digest(back_token))
    # The staff member's own session is not extended, nor is their login refreshed.
    assert back_row.impersonation_id is None and back_row.expires_at == login_expiry
    assert back_row.logged_in_at == logged_in
    copy = app.test_client()
    copy.set_cookie("portal_session", viewing_cookie)
    assert copy.get("/billing").status_code == 302
    assert staff_browser.get("/staff").status_code == 200


def test_ending_impersonation_returns_to_the_console_without_the_banner(viewing, session, world):
    account = world[0]
    viewing.get("/billing")
    response = viewing.post("/staff/impersonation/end")
    page = viewing.get(response.headers["Location"])
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and account.name in body and "Audit log" in body
    assert "You stopped viewing Acme Analytics Inc. as a customer." in body
    assert "Viewing as customer" not in body
    assert viewing.get("/billing").status_code == 404  # staff again: no billing details of their own
    session.expire_all()
    assert session.scalars(select(Impersonation)).one().end_reason == "stopped"


def test_impersonation_ends_by_itself_after_30_minutes(app, viewing, session, world, monkeypatch):
    account, _, staff = world
    token = cookie_token(app, viewing.client)
    expiry = session.get(LoginSession, digest(token)).expires_at
    move_clock(monkeypatch, timedelta(minutes=29))
    assert viewing.get("/billing").status_code == 200
    move_clock(monkeypatch, timedelta(minutes=31))
    response = viewing.get("/billing")
    assert response.status_code == 303 and response.headers["Location"] == f"/staff/accounts/{account.id}"
    page = viewing.get(response.headers["Location"]).get_data(as_text=True)
    assert "ended after 30 minutes" in page and "Viewing as customer" not in page
    session.expire_all()
    row = session.scalars(select(Impersonation)).one()
    assert row.end_reason == "expired" and row.ended_at is not None
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "impersonation.expired")).one()
    assert (event.actor_user_id, event.account_id, event.details["reason"]) == (staff.id, account.id, REASON)
    new_row = session.get(LoginSession, digest(cookie_token(app, viewing.client)))
    assert new_row.impersonation_id is None and new_row.expires_at == expiry


def test_an_htmx_request_after_expiry_is_sent_to_the_console_by_hx_redirect(viewing, world, monkeypatch):
    move_clock(monkeypatch, timedelta(minutes=31))
    response = viewing.get("/billing/cards", htmx=True)
    assert response.headers["HX-Redirect"] == f"/staff/accounts/{world[0].id}"
    assert "Viewing as customer" not in response.get_data(as_text=True)


def test_a_change_attempted_after_expiry_ends_the_view_instead_of_running(viewing, session, gateway, world,
                                                                           monkeypatch):
    account = world[0]
    add_card(session, gateway, account, default=True)
    card = add_card(session, gateway, account, number="5555555555554444")
    move_clock(monkeypatch, timedelta(minutes=31))
    response = viewing.post(f"/billing/cards/{card.id}/default")
    assert response.status_code == 303 and response.headers["Location"] == f"/staff/accounts/{account.id}"
    session.expire_all()
    assert session.get(PaymentMethod, card.id).is_default is False


def test_logging_out_while_impersonating_ends_it_and_says_so_in_the_log(viewing, session, world):
    response = viewing.post("/logout")
    assert response.status_code == 303
    session.expire_all()
    row = session.scalars(select(Impersonation)).one()
    assert row.end_reason == "logout"
    assert "impersonation.stopped" in audit_actions(session, world[0].id)
    assert viewing.get("/billing").status_code == 302


# --- read-only ------------------------------------------------------------------------------------------------

class Objects:
    """Real ids of the viewed account for every path argument a customer route can take."""

    def __init__(self, session, gateway, account):
        make_subscription(session, account)
        card = add_card(session, gateway, account, default=True)
        other = add_card(session, gateway, account, number="5555555555554444")
        invoice = make_invoice(session, account)
        pending = gateway.create_setup_intent(
            customer_id=account.processor_customer_id, metadata={}, idempotency_key="imp-sweep",
            card=CardDetails(number="4000002500003155", exp_month=12, exp_year=2030, cvc="123", cardholder_name="X"))
        paypal = gateway.create_setup_intent(customer_id=account.processor_customer_id, metadata={},
                                             idempotency_key="imp-sweep-paypal", method_type="paypal",
                                             return_url="http://x/billing")
        url = checkout.start_checkout(session, gateway, account.id, invoice.id, success_url="http://x/s",
                                      cancel_url="http://x/c", now=utcnow())
        self.default_card, self.other_card = card, other
        self.values = {"card_id": other.id, "invoice_id": invoice.id, "setup_intent_id": pending.id,
                       "paypal_intent_id": paypal.id,
                       "session_id": re.search(r"cs_sbx_\w+", url).group(0)}

    def args(self, rule) -> dict:
        missing = [a for a in rule.arguments if a not in self.values]
        if missing:
            pytest.fail(f"route {rule.rule} takes <{', '.join(missing)}>: teach tests/web/test_impersonation.py "
                        f"how to make one, so the read-only sweep covers it")
        return {a: self.values[a] for a in rule.arguments}


def customer_rules(app, methods):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        blueprint = rule.endpoint.split(".")[0]
        if blueprint in NOT_CUSTOMER or blueprint.startswith(("staff", "api_v1_")) or not rule.methods & methods:
            continue
        yield rule


def url_for_rule(app, rule, values) -> str:
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def fingerprint(database) -> str:
    """Every row of every table except the audit log (refusals are written there) and caches."""
    digest_ = hashlib.sha256()
    with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in ("audit_events", "invoice_pdfs"):
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            digest_.update(f"{table.name}:{rows!r}".encode())
    return digest_.hexdigest()


def test_every_customer_change_is_refused_while_impersonating_as_a_page_and_as_a_partial(
        app, database, session, gateway, world):
    account, customer, staff = world
    objects = Objects(session, gateway, account)
    browser = Browser(app.test_client())
    browser.login("sam@support.example")
    view_as(browser, account)
    browser.get("/billing")
    before = fingerprint(database)
    swept, blueprints = 0, set()
    for rule in customer_rules(app, MUTATING):
        url = url_for_rule(app, rule, objects.args(rule))
        for method in sorted(rule.methods & MUTATING):
            for htmx in (False, True):
                last = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
                response = browser.client.open(url, method=method, headers={"HX-Request": "true"} if htmx else {},
                                               data={"csrf_token": browser.token})
                body = response.get_data(as_text=True)
                where = f"{method} {rule.rule} ({'HTMX' if htmx else 'page'})"
                assert response.status_code == 403, f"{where} answered {response.status_code} while impersonating"
                assert MESSAGE in body, f"{where} did not say why"
                if htmx:
                    assert 'id="toast"' in body and "hx-swap-oob" in body and response.headers["HX-Reswap"] == "none"
                    assert 'id="impersonation-banner"' in body, f"{where}: the partial lost the banner"
                else:
                    assert "<h1>Not allowed</h1>" in body and "End impersonation" in body
                session.expire_all()
                new = session.scalars(select(AuditEvent).where(AuditEvent.id > (last or 0))).all()
                assert [e.action for e in new] == ["impersonation.refused"], where
                assert new[0].details["endpoint"] == rule.endpoint and new[0].details["method"] == method
                assert (new[0].account_id, new[0].actor_user_id, new[0].on_behalf_of_user_id) == \
                       (account.id, customer.id, staff.id)
                assert new[0].details["reason"] == REASON and new[0].ip == "127.0.0.1"
        swept += 1
        blueprints.add(rule.endpoint.split(".")[0])
    assert fingerprint(database) == before, "a refused change changed data"
    assert KNOWN_CUSTOMER <= blueprints, f"the sweep missed {KNOWN_CUSTOMER - blueprints}"
    assert swept >= 12


def test_every_customer_page_still_opens_while_impersonating_and_shows_the_banner(app, session, gateway, world):
    account = world[0]
    objects = Objects(session, gateway, account)
    browser = Browser(app.test_client())
    browser.login("sam@support.example")
    view_as(browser, account)
    checked = 0
    for rule in customer_rules(app, {"GET"}):
        url = url_for_rule(app, rule, objects.args(rule))
        for htmx in (False, True):
            response = browser.get(url, htmx=htmx)
            where = f"GET {rule.rule} ({'HTMX' if htmx else 'page'})"
            assert response.status_code < 400, f"{where} answered {response.status_code}"
            if response.mimetype == "text/html" and response.status_code == 200:
                body = response.get_data(as_text=True)
                assert "Viewing as customer" in body and "Sam Support" in body, f"{where} has no banner"
                if htmx:
                    assert re.search(r'id="impersonation-banner"[^>]*hx-swap-oob="true"', body), where
            checked += 1
    assert checked >= 10


def test_set_default_card_is_refused_and_nothing_changes_in_page_and_partial(viewing, session, gateway, world):
    account = world[0]
    first = add_card(session, gateway, account, default=True)
    second = add_card(session, gateway, account, number="5555555555554444")
    viewing.get("/billing")
    page = viewing.post(f"/billing/cards/{second.id}/default")
    partial = viewing.post(f"/billing/cards/{second.id}/default", htmx=True)
    assert page.status_code == partial.status_code == 403
    assert MESSAGE in page.get_data(as_text=True) and MESSAGE in partial.get_data(as_text=True)
    session.expire_all()
    assert session.get(PaymentMethod, first.id).is_default and not session.get(PaymentMethod, second.id).is_default


def test_requests_while_impersonating_act_as_the_customer_with_the_staff_member_behind_them(app, viewing, world):
    from portal.web.context import account_id, actor

    account, customer, staff = world
    with viewing.client:
        viewing.get("/billing")
        assert account_id() == account.id
        assert (actor().user_id, actor().impersonator_id) == (customer.id, staff.id)


def test_htmx_partials_carry_the_banner_out_of_band_only_while_impersonating(app, viewing, session, world):
    partial = viewing.get("/billing/cards", htmx=True).get_data(as_text=True)
    assert partial.count('id="impersonation-banner"') == 1 and 'hx-swap-oob="true"' in partial
    assert 'id="payment-details"' in partial
    viewing.post("/staff/impersonation/end")
    customer = Browser(app.test_client())
    customer.login()
    assert "impersonation-banner" not in customer.get("/billing/cards", htmx=True).get_data(as_text=True)
    assert 'id="impersonation-banner" hidden' in customer.get("/billing").get_data(as_text=True)


# --- the audit trail ----------------------------------------------------------------------------------------

def test_start_stop_and_refusals_are_audited_with_staff_account_reason_time_and_ip(viewing, session, gateway, world):
    account, customer, staff = world
    card = add_card(session, gateway, account)
    viewing.get("/billing")
    viewing.post(f"/billing/cards/{card.id}/delete")
    viewing.post("/staff/impersonation/end")
    session.expire_all()
    events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("impersonation.%"))
                             .order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["impersonation.started", "impersonation.refused", "impersonation.stopped"]
    for event in events:
        assert event.account_id == account.id and event.details["staff_user_id"] == staff.id
        assert event.details["reason"] == REASON and event.ip == "127.0.0.1" and event.occurred_at is not None
    assert events[0].actor_user_id == events[2].actor_user_id == staff.id
    assert events[1].details["endpoint"] == "cards.delete"


def test_the_audit_log_is_append_only_through_the_orm(session, world):
    event = AuditEvent(account_id=world[0].id, action="test.event", details={})
    session.add(event)
    session.commit()
    event.action = "rewritten"
    with pytest.raises(AppendOnlyError):
        session.commit()
    session.rollback()
    session.delete(session.get(AuditEvent, event.id))
    with pytest.raises(AppendOnlyError):
        session.commit()
    session.rollback()
    assert session.get(AuditEvent, event.id).action == "test.event"


def test_the_api_ignores_a_browser_viewing_as_a_customer_and_still_takes_its_bearer_key(viewing, session):
    """The read-only guard is about the viewed customer's pages; the API reads no cookie, so the same
    browser's API call with a key is the product's server speaking, not the staff member's view."""
    from ..helpers import bearer, make_api_key

    key = make_api_key(session)
    response = viewing.client.post("/api/v1/plans", headers=bearer(key), json={
        "code": "pro", "name": "Pro", "interval": "month", "price": 2000, "currency": "USD"})
    assert response.status_code == 201
    assert "impersonation.refused" not in audit_actions(session)
