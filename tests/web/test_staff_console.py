"""The support console: who may open it, account search by every criterion with server-side pages (plain
links and HTMX), and every section of an account's page."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from portal import audit
from portal.audit import Actor
from portal.models import CreditEntry, OutboxMessage, PaymentAttempt, utcnow

from ..helpers import add_card, make_customer, make_invoice, make_staff, make_subscription


@pytest.fixture
def staff(session, browser):
    user = make_staff(session)
    browser.login("sam@support.example")
    return user


@pytest.fixture
def berlin(session):
    account, _ = make_customer(session, email="jonas@datenwerk.example", name="Berliner Datenwerk GmbH",
                               billing_email="rechnung@datenwerk.example", country="DE",
                               processor_customer_id="cus_berlin123")
    return account


def result_names(body: str) -> list[str]:
    section = re.search(r'<section id="search-results".*?</section>', body, re.S).group(0)
    return re.findall(r'<a href="/staff/accounts/\d+">([^<]+)</a>', section)


# --- access -------------------------------------------------------------------------------------------------

def test_staff_see_the_console(browser, staff):
    response = browser.get("/staff")
    assert response.status_code == 200 and "Support console" in response.get_data(as_text=True)


def test_customers_get_404_on_the_console(browser, acme):
    browser.login()
    assert browser.get("/staff").status_code == 404
    assert browser.get(f"/staff/accounts/{acme.id}").status_code == 404
    assert browser.get("/staff", htmx=True).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in_and_come_back(client, browser, session, acme):
    response = client.get(f"/staff/accounts/{acme.id}")
    assert response.status_code == 302 and response.headers["Location"] == f"/login?next=/staff/accounts/{acme.id}"
    assert client.get("/staff", headers={"HX-Request": "true"}).status_code == 401


def test_an_unknown_account_is_a_404(browser, staff):
    assert browser.get("/staff/accounts/424242").status_code == 404


# --- search -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "jonas@datenwerk.example",     # a user's login e-mail
    "JONAS@DATENWERK",             # any case, part of it
    "rechnung@datenwerk.example",  # the billing e-mail
    "Datenwerk GmbH",              # the name
    "cus_berlin123",               # the processor customer id
])
def test_search_finds_an_account_by_user_email_billing_email_name_or_processor_id(browser, staff, acme, berlin, query):
    body = browser.get("/staff", query_string={"q": query}).get_data(as_text=True)
    assert result_names(body) == ["Berliner Datenwerk GmbH"]


def test_search_finds_an_account_by_invoice_number(browser, session, staff, acme, berlin):
    invoice = make_invoice(session, berlin)
    make_invoice(session, acme, issued_at=datetime(2026, 10, 1, tzinfo=timezone.utc))
    body = browser.get("/staff", query_string={"q": invoice.number}).get_data(as_text=True)
    assert result_names(body) == ["Berliner Datenwerk GmbH"]


def test_search_treats_wildcards_literally_and_says_when_nothing_matches(browser, staff, acme, berlin):
    body = browser.get("/staff", query_string={"q": "%"}).get_data(as_text=True)
    assert result_names(body) == [] and "No account matches “%”." in body
    assert result_names(browser.get("/staff", query_string={"q": "Ac_e"}).get_data(as_text=True)) == []
    assert result_names(browser.get("/staff", query_string={"q": "cus_b"}).get_data(as_text=True)) == \
           ["Berliner Datenwerk GmbH"]


def test_staff_users_are_never_search_results(browser, session, staff, acme):
    body = browser.get("/staff", query_string={"q": "support.example"}).get_data(as_text=True)
    assert result_names(body) == []


def test_search_results_are_paginated_on_the_server_with_plain_links_and_htmx(browser, session, staff):
    for n in range(45):
        make_customer(session, email=f"user{n:02d}@many.example", name=f"Many {n:02d} Ltd")
    first = browser.get("/staff", query_string={"q": "many"}).get_data(as_text=True)
    assert result_names(first) == [f"Many {n:02d} Ltd" for n in range(20)]
    assert "Page 1 of 3 (45 in all)" in first
    next_link = re.search(r'<a class="button small" rel="next" href="([^"#]+)#search-results"\s+hx-get="([^"]+)"', first)
    assert next_link.group(1).replace("&amp;", "&") == "/staff?q=many&page=2"
    second = browser.get("/staff?q=many&page=2").get_data(as_text=True)
    assert result_names(second)[0] == "Many 20 Ltd" and 'rel="prev"' in second
    partial = browser.get(next_link.group(2).replace("&amp;", "&"), htmx=True).get_data(as_text=True)
    assert partial.lstrip().startswith('<section id="search-results"') and "<html" not in partial
    assert result_names(partial) == result_names(second)
    last = browser.get("/staff?q=many&page=3").get_data(as_text=True)
    assert len(result_names(last)) == 5 and 'rel="next"' not in last
    # Beyond the end is the last page, not an error.
    assert result_names(browser.get("/staff?q=many&page=99").get_data(as_text=True)) == result_names(last)


# --- the account page ---------------------------------------------------------------------------------------

@pytest.fixture
def full_account(session, gateway, acme):
    make_subscription(session, acme)
    add_card(session, gateway, acme, number="4242424242424242", exp_month=8, exp_year=2030, default=True,
             name="Ada Secret-Name")
    add_card(session, gateway, acme, number="5555555555554444", exp_month=11, exp_year=2029)
    paid = make_invoice(session, acme, status="paid", issued_at=datetime(2026, 10, 1, tzinfo=timezone.utc))
    open_ = make_invoice(session, acme)
    session.add(PaymentAttempt(invoice_id=open_.id, attempt_number=1, idempotency_key="k-1", trigger="renewal",
                               status="failed", amount_cents=open_.total_cents, currency="USD",
                               payment_method_label="Visa •••• 4242", failure_message="Your card was declined."))
    session.add(CreditEntry(account_id=acme.id, amount_cents=1500, currency="USD", kind="grant",
                            reason="Goodwill for the outage"))
    session.add(CreditEntry(account_id=acme.id, amount_cents=-500, currency="USD", kind="applied",
                            invoice_id=paid.id))
    session.add(OutboxMessage(dedupe_key="m-1", account_id=acme.id, kind="invoice_issued", to_address="billing@acme.example",
                              subject=f"Invoice {open_.number}", text_body="x", html_body="x", status="sent",
                              sent_at=datetime(2026, 11, 1, 9, 30, tzinfo=timezone.utc)))
    session.commit()
    return acme, paid, open_


def section(body: str, section_id: str) -> str:
    return re.search(rf'<section id="{section_id}".*?</section>', body, re.S).group(0)


def test_the_account_page_shows_subscription_and_cards_with_brand_last4_and_expiry_only(browser, staff, full_account):
    body = browser.get(f"/staff/accounts/{full_account[0].id}").get_data(as_text=True)
    sub = section(body, "staff-subscription")
    assert "Pro" in sub and "Active" in sub and "1 Nov 2026 – 1 Dec 2026" in sub
    cards = section(body, "staff-cards")
    assert "Visa" in cards and "•••• 4242" in cards and "08/2030" in cards and "Default" in cards
    assert "Mastercard" in cards and "•••• 5555" not in cards and "•••• 4444" in cards and "11/2029" in cards
    assert "Ada Secret-Name" not in body and "pm_" not in cards


def test_the_account_page_shows_invoices_with_their_payment_attempts(browser, staff, full_account):
    account, paid, open_ = full_account
    invoices = section(browser.get(f"/staff/accounts/{account.id}").get_data(as_text=True), "staff-invoices")
    assert paid.number in invoices and open_.number in invoices
    assert invoices.index(open_.number) < invoices.index(paid.number)  # newest first
    assert "Attempt 1 (renewal)" in invoices and "failed" in invoices and "Your card was declined." in invoices
    assert "No payment attempts." in invoices  # the invoice paid outside an attempt


def test_the_account_page_shows_the_credit_ledger_and_its_balance(browser, staff, full_account):
    credits = section(browser.get(f"/staff/accounts/{full_account[0].id}").get_data(as_text=True), "staff-credits")
    assert "Balance:" in credits and "$10.00" in credits
    assert "Goodwill for the outage" in credits and "$15.00" in credits and "applied" in credits


def test_the_account_page_shows_the_emails_sent(browser, staff, full_account):
    account, _, open_ = full_account
    mails = section(browser.get(f"/staff/accounts/{account.id}").get_data(as_text=True), "staff-mail")
    assert "invoice issued" in mails and "billing@acme.example" in mails and f"Invoice {open_.number}" in mails
    assert "sent" in mails and "1 Nov 2026 09:30" in mails


def test_the_audit_log_is_newest_first_and_paginated_with_plain_links_and_htmx(browser, session, staff, acme):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for n in range(25):
        audit.record(session, Actor(user_id=None, ip="10.0.0.1"), f"test.event_{n:02d}", account_id=acme.id,
                     now=start + timedelta(hours=n))
    session.commit()
    body = browser.get(f"/staff/accounts/{acme.id}").get_data(as_text=True)
    log = section(body, "audit-log")
    actions = re.findall(r"<code>(test\.event_\d+)</code>", log)
    assert actions == [f"test.event_{n:02d}" for n in range(24, 4, -1)]
    assert "Page 1 of 2 (25 in all)" in log and "10.0.0.1" in log
    plain = browser.get(f"/staff/accounts/{acme.id}?audit_page=2").get_data(as_text=True)
    assert re.findall(r"<code>(test\.event_\d+)</code>", section(plain, "audit-log")) == \
           [f"test.event_{n:02d}" for n in range(4, -1, -1)]
    link = re.search(r'rel="next" href="[^"]+"\s+hx-get="([^"]+)" hx-target="#audit-log"', log).group(1)
    partial = browser.get(link.replace("&amp;", "&"), htmx=True).get_data(as_text=True)
    assert partial.lstrip().startswith('<section id="audit-log"') and "test.event_00" in partial
    assert "<html" not in partial and "staff-invoices" not in partial


def test_the_account_page_names_who_acted_and_on_whose_behalf(browser, session, staff, acme):
    customer = acme.users[0]
    audit.record(session, Actor(user_id=customer.id, impersonator_id=staff.id, ip="10.0.0.2"), "cards.refused",
                 now=utcnow(), account_id=acme.id, endpoint="cards.delete")
    session.commit()
    log = section(browser.get(f"/staff/accounts/{acme.id}").get_data(as_text=True), "audit-log")
    assert "ada@example.com" in log and "(support: sam@support.example)" in log and "endpoint: cards.delete" in log


def test_the_account_page_offers_view_as_customer_with_a_reason_field(browser, staff, acme):
    form = section(browser.get(f"/staff/accounts/{acme.id}").get_data(as_text=True), "view-as-customer")
    assert f'action="/staff/accounts/{acme.id}/impersonate"' in form and 'method="post"' in form
    assert '<input id="reason" name="reason"' in form and "View as customer" in form


def test_an_account_without_customers_offers_no_view_as_customer(browser, session, staff):
    account, user = make_customer(session, email="gone@example.com", name="Empty Ltd")
    session.delete(user)
    session.commit()
    form = section(browser.get(f"/staff/accounts/{account.id}").get_data(as_text=True), "view-as-customer")
    assert "no customer users" in form and "<form" not in form


def test_the_action_panel_is_a_block_of_the_account_page(browser, session, staff, acme):
    invoice = make_invoice(session, acme)
    page = browser.get(f"/staff/accounts/{acme.id}/actions")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and 'id="staff-invoices"' in body
    assert f'<tr id="action-invoice-{invoice.id}">' in section(body, "account-actions")
    partial = browser.get(f"/staff/accounts/{acme.id}/actions", htmx=True)
    body = partial.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="account-actions"') and "<html" not in body
    assert 'id="staff-invoices"' not in body and f'<tr id="action-invoice-{invoice.id}">' in body
    assert "HX-Request" in partial.headers["Vary"]


def test_the_action_panel_offers_the_invoices_the_invoice_list_shows(browser, session, staff, acme):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    made = [make_invoice(session, acme, issued_at=start + timedelta(days=31 * n)) for n in range(12)]
    first = section(browser.get(f"/staff/accounts/{acme.id}").get_data(as_text=True), "account-actions")
    assert re.findall(r'<tr id="action-invoice-(\d+)">', first) == [str(i.id) for i in reversed(made[2:])]
    second = browser.get(f"/staff/accounts/{acme.id}?invoice_page=2").get_data(as_text=True)
    assert re.findall(r'<tr id="action-invoice-(\d+)">', section(second, "account-actions")) == \
           [str(made[1].id), str(made[0].id)]


@pytest.mark.parametrize("section_id, param", [("staff-invoices", "invoice_page"), ("staff-mail", "mail_page")])
def test_the_invoice_and_email_lists_page_with_plain_links_and_htmx(browser, session, staff, acme, section_id,
                                                                     param):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for n in range(11):
        make_invoice(session, acme, issued_at=start + timedelta(days=31 * n))
        session.add(OutboxMessage(dedupe_key=f"m-{n}", account_id=acme.id, kind="invoice_issued",
                                  to_address="billing@acme.example", subject=f"Message {n:02d}", text_body="x",
                                  html_body="x", status="sent", created_at=start + timedelta(days=n)))
    session.commit()
    listed = section(browser.get(f"/staff/accounts/{acme.id}").get_data(as_text=True), section_id)
    assert "Page 1 of 2 (11 in all)" in listed
    plain, hx = re.search(rf'rel="next" href="([^"]+)#{section_id}"\s+hx-get="([^"]+)" hx-target="#{section_id}"',
                          listed).groups()
    assert f"{param}=2" in plain and "part=" not in plain + hx
    whole = browser.get(plain.replace("&amp;", "&")).get_data(as_text=True)
    assert "Page 2 of 2 (11 in all)" in section(whole, section_id) and "<html" in whole
    partial = browser.get(hx.replace("&amp;", "&"), htmx=True).get_data(as_text=True)
    assert partial.lstrip().startswith(f'<section id="{section_id}"') and "<html" not in partial
    assert "Page 2 of 2 (11 in all)" in partial and 'id="audit-log"' not in partial


def test_a_page_past_the_end_of_a_list_is_its_last_page(browser, session, staff, acme):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    made = [make_invoice(session, acme, issued_at=start + timedelta(days=31 * n)) for n in range(11)]
    invoices = section(browser.get(f"/staff/accounts/{acme.id}?invoice_page=99999999").get_data(as_text=True),
                       "staff-invoices")
    assert "Page 2 of 2 (11 in all)" in invoices and made[0].number in invoices and made[1].number not in invoices


def test_the_console_is_closed_while_viewing_as_a_customer(browser, session, staff, acme):
    browser.get(f"/staff/accounts/{acme.id}")
    browser.post(f"/staff/accounts/{acme.id}/impersonate", {"reason": "Ticket 1"})
    response = browser.get("/staff")
    assert response.status_code == 403 and "End impersonation to use the console" in response.get_data(as_text=True)


def test_a_nul_byte_in_the_search_or_the_reason_is_not_a_server_error(browser, session, staff, acme):
    # Refused plainly by the app-wide check (no field of ours can hold a NUL), never a 500.
    assert browser.get("/staff", query_string={"q": "ada\x00"}).status_code == 400
    browser.get(f"/staff/accounts/{acme.id}")
    assert browser.post(f"/staff/accounts/{acme.id}/impersonate", {"reason": "\x00"}).status_code == 400


# --- a trial's status -----------------------------------------------------------------------------------------

def trial(session, account):
    sub = make_subscription(session, account, period_end=datetime(2026, 12, 15, tzinfo=timezone.utc))
    sub.trial_end = sub.current_period_end  # the trial is the current period
    session.commit()
    return sub


def status_badge(body: str) -> str:
    return re.search(r'<span class="badge status-[a-z_]+">([^<]+)</span>', body).group(1)


def test_a_trial_reads_trial_until_its_end_in_the_console(browser, session, staff, acme):
    trial(session, acme)
    assert status_badge(browser.get(f"/staff/accounts/{acme.id}").get_data(as_text=True)) == "Trial until 15 Dec 2026"


def test_a_trial_reads_trial_until_its_end_on_billing_details_and_active_once_it_renewed(browser, session, acme):
    sub = trial(session, acme)
    browser.login()
    assert status_badge(browser.get("/billing").get_data(as_text=True)) == "Trial until 15 Dec 2026"
    sub.current_period_start, sub.current_period_end = sub.trial_end, sub.trial_end + timedelta(days=30)
    session.commit()
    assert status_badge(browser.get("/billing").get_data(as_text=True)) == "Active"
