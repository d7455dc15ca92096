"""Response headers, cookies, htmx hardening, and stored XSS in pages, partials, e-mails and PDFs."""
from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest

from portal import create_app
from portal.documents.pdf import invoice_pdf
from portal.models import Invoice, OutboxMessage, utcnow

from ..helpers import add_card, make_customer, make_invoice

PAYLOADS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "'><svg onload=alert(1)>",
            "javascript:alert(1)", "{{ 7*7 }}"]


def test_every_page_carries_a_strict_content_security_policy_and_the_other_headers(app, browser, session):
    make_customer(session)
    browser.login()
    for url in ("/login", "/billing", "/healthz", "/account", "/static/css/app.css"):
        headers = browser.get(url).headers
        csp = headers["Content-Security-Policy"]
        script = re.search(r"script-src ([^;]+)", csp).group(1)
        assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
        for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
            assert directive in csp, (url, directive)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" in headers  # not demo mode


def test_stripe_mode_allows_exactly_the_stripe_hosts_it_needs(settings, database):
    stripe = dataclasses.replace(settings, stripe_secret_key="sk_test_x", stripe_publishable_key="pk_test_x")
    csp = create_app(stripe, database=database).test_client().get("/login").headers["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.com;" in csp
    assert "frame-src https://js.stripe.com https://hooks.stripe.com;" in csp
    assert "connect-src 'self' https://api.stripe.com https://js.stripe.com;" in csp


def test_demo_mode_sends_no_hsts_and_a_cookie_without_secure(settings, database):
    demo = dataclasses.replace(settings, demo=True, secure_cookies=False)
    response = create_app(demo, database=database).test_client().get("/login")
    assert "Strict-Transport-Security" not in response.headers
    assert "Secure" not in response.headers["Set-Cookie"]


def test_the_session_cookie_is_httponly_samesite_lax_and_secure_outside_demo(settings, database):
    secure = dataclasses.replace(settings, secure_cookies=True)
    cookie = create_app(secure, database=database).test_client().get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_htmx_is_configured_to_stay_on_this_site_without_eval_or_history_cache(app):
    page = app.test_client().get("/login").get_data(as_text=True)
    config = json.loads(re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', page).group(1))
    assert config["selfRequestsOnly"] is True and config["allowEval"] is False
    assert config["allowScriptTags"] is False and config["historyCacheSize"] == 0
    assert 'hx-history="false"' in page
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []  # no inline script blocks
    assert re.findall(r"\son[a-z]+=", page) == []  # no inline event handlers


def test_pages_serve_htmx_from_this_site_not_a_cdn(app):
    page = app.test_client().get("/login").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts and all(src.startswith("/static/") for src in scripts)


@pytest.fixture
def hostile(session, gateway):
    """An account whose every free-text field is an attack, saved the way a customer would save it."""
    account, _ = make_customer(session, name=PAYLOADS[0], address_line1=PAYLOADS[1], address_line2=PAYLOADS[2],
                               city=PAYLOADS[4], region="MA", postal_code="01101")
    add_card(session, gateway, account, name=PAYLOADS[1], default=True)
    invoice = make_invoice(session, account, status="paid")
    return account, invoice


def assert_escaped(body: str, where: str):
    for payload in PAYLOADS[:3]:
        assert payload not in body, f"{payload!r} came back unescaped in {where}"
    assert "<script>alert(1)</script>" not in body


def test_hostile_billing_fields_come_back_escaped_in_pages_and_partials(browser, session, hostile):
    browser.login()
    assert_escaped(browser.get("/billing").get_data(as_text=True), "the page")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in browser.get("/billing").get_data(as_text=True)
    for url in ("/billing/address/edit", "/billing/cards", f"/billing/cards/{hostile[0].id}/edit"):
        response = browser.get(url, htmx=True)
        if response.status_code == 200:
            assert_escaped(response.get_data(as_text=True), url)
    rejected = browser.post("/billing/address", {"name": PAYLOADS[0], "address_line1": PAYLOADS[1], "city": "",
                                                 "country": "DE", "postal_code": "10115", "billing_email": "a@b.de",
                                                 "vat_number": PAYLOADS[1]}, htmx=True)
    assert rejected.status_code == 422
    assert_escaped(rejected.get_data(as_text=True), "the rejected address partial")


def test_hostile_billing_fields_come_back_escaped_in_emails_and_pdfs(browser, session, hostile):
    account, invoice = hostile
    browser.login()
    browser.post(f"/billing/invoices/{invoice.id}/email", {"request_key": "d" * 32})
    for message in session.query(OutboxMessage):
        assert_escaped(message.html_body, f"the {message.kind} e-mail")
    from pypdf import PdfReader

    content = invoice_pdf(session, session.get(Invoice, invoice.id), now=utcnow())
    text = PdfReader(io.BytesIO(content)).pages[0].extract_text()
    assert "<script>alert(1)</script>" in text  # shown literally as text, never interpreted
    session.rollback()
