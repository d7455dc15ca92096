"""The backup method on Billing details, through the test client: the "Set as backup" and "Remove backup" menu
items, the Backup badge, each action as a full page and as an HTMX partial, the refusals next to the method,
other accounts' methods and CSRF."""
from __future__ import annotations

import html
import re

import pytest

from portal.models import AuditEvent, PaymentMethod

from ..helpers import add_card, add_sandbox_method, make_customer, make_subscription


@pytest.fixture
def customer(session, browser):
    account, _ = make_customer(session)
    browser.login()
    return account


def backup_of(session, account):
    session.expire_all()
    return session.query(PaymentMethod).filter_by(account_id=account.id, is_backup=True, detached_at=None).one_or_none()


def row(body: str, method_id: int) -> str:
    """The saved method's row on the page (its badges, menu and error)."""
    match = re.search(r'<li class="card[^"]*" id="card-%d"[^>]*>(.*?)</li>' % method_id, body, re.S)
    assert match, f"no row for method {method_id}"
    return html.unescape(match.group(1))


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_set_as_backup_marks_the_method_with_a_badge_beside_the_default(browser, session, gateway, customer, htmx):
    default = add_card(session, gateway, customer, default=True)
    other = add_card(session, gateway, customer, number="5555555555554444")
    response = browser.post(f"/billing/cards/{other.id}/backup", htmx=htmx)
    if htmx:
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert "Mastercard •••• 4444 is now your backup payment method" in html.unescape(body)
    else:
        assert response.status_code == 303
        body = browser.get("/billing").get_data(as_text=True)
    assert "badge-backup" in row(body, other.id) and "Remove backup" in row(body, other.id)
    assert "badge-backup" not in row(body, default.id) and "badge-default" in row(body, default.id)
    assert "Set as backup" not in row(body, default.id)  # the default is never offered as its own backup
    assert backup_of(session, customer).id == other.id
    event = session.query(AuditEvent).filter_by(action="payment_method.backup_set").one()
    assert event.account_id == customer.id


def test_a_new_backup_replaces_the_old_one(browser, session, gateway, customer):
    add_card(session, gateway, customer, default=True)
    first = add_card(session, gateway, customer, number="5555555555554444")
    second = add_card(session, gateway, customer, number="378282246310005")
    browser.post(f"/billing/cards/{first.id}/backup")
    body = browser.post(f"/billing/cards/{second.id}/backup", htmx=True).get_data(as_text=True)
    assert backup_of(session, customer).id == second.id
    assert body.count("badge-backup") == 1 and "Set as backup" in row(body, first.id)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_remove_backup_clears_the_badge(browser, session, gateway, customer, htmx):
    add_card(session, gateway, customer, default=True)
    other = add_card(session, gateway, customer, number="5555555555554444")
    browser.post(f"/billing/cards/{other.id}/backup")
    response = browser.post(f"/billing/cards/{other.id}/backup/remove", htmx=htmx)
    assert response.status_code == (200 if htmx else 303)
    body = response.get_data(as_text=True) if htmx else browser.get("/billing").get_data(as_text=True)
    if htmx:
        assert "Mastercard •••• 4444 is no longer your backup payment method." in html.unescape(body)
    assert "badge-backup" not in body and "Set as backup" in row(body, other.id)
    assert backup_of(session, customer) is None
    assert session.query(AuditEvent).filter_by(action="payment_method.backup_cleared").count() == 1


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_the_default_cannot_be_the_backup_and_the_refusal_sits_next_to_it(browser, session, gateway, customer, htmx):
    default = add_card(session, gateway, customer, default=True)
    response = browser.post(f"/billing/cards/{default.id}/backup", htmx=htmx)
    assert response.status_code == 409
    assert ("Visa •••• 4242 is your default payment method, so it can't also be the backup."
            in row(response.get_data(as_text=True), default.id))
    assert backup_of(session, customer) is None


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_bank_account_waiting_for_verification_cannot_be_the_backup(browser, session, gateway, customer, htmx):
    add_card(session, gateway, customer, default=True)
    pending = add_sandbox_method(session, customer, type="us_bank_account", verification="pending")
    page = browser.get("/billing").get_data(as_text=True)
    assert "Set as backup" not in row(page, pending.id)
    response = browser.post(f"/billing/cards/{pending.id}/backup", htmx=htmx)
    assert response.status_code == 409
    assert "is waiting for its verification, so it can't be the backup yet" in row(
        response.get_data(as_text=True), pending.id)
    assert backup_of(session, customer) is None


def test_making_the_backup_the_default_clears_its_backup_mark(browser, session, gateway, customer):
    first = add_card(session, gateway, customer, default=True)
    other = add_card(session, gateway, customer, number="5555555555554444")
    browser.post(f"/billing/cards/{other.id}/backup")
    body = browser.post(f"/billing/cards/{other.id}/default", htmx=True).get_data(as_text=True)
    assert "badge-backup" not in body and "badge-default" in row(body, other.id)
    assert "Set as backup" in row(body, first.id)
    assert backup_of(session, customer) is None


def test_deleting_the_backup_leaves_no_backup(browser, session, gateway, customer):
    add_card(session, gateway, customer, default=True)
    other = add_card(session, gateway, customer, number="5555555555554444")
    browser.post(f"/billing/cards/{other.id}/backup")
    assert browser.post(f"/billing/cards/{other.id}/delete").status_code == 303
    assert backup_of(session, customer) is None
    # A later backup can be set: the deleted one no longer holds the account's one place.
    third = add_card(session, gateway, customer, number="378282246310005")
    assert browser.post(f"/billing/cards/{third.id}/backup").status_code == 303
    assert backup_of(session, customer).id == third.id


@pytest.mark.parametrize("path", ["/billing/cards/{id}/backup", "/billing/cards/{id}/backup/remove"])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_another_accounts_method_gives_404_and_changes_nothing(browser, session, gateway, customer, path, htmx):
    mallory, _ = make_customer(session, email="mallory@example.com", billing_email="m@example.com")
    add_card(session, gateway, mallory, default=True)
    theirs = add_card(session, gateway, mallory, number="5555555555554444")
    theirs.is_backup = path.endswith("remove")
    session.commit()
    response = browser.post(path.format(id=theirs.id), htmx=htmx)
    assert response.status_code == 404
    session.refresh(theirs)
    assert theirs.is_backup is path.endswith("remove")


@pytest.mark.parametrize("path", ["/billing/cards/{id}/backup", "/billing/cards/{id}/backup/remove"])
def test_backup_actions_without_csrf_token_are_refused(browser, session, gateway, customer, path):
    add_card(session, gateway, customer, default=True)
    other = add_card(session, gateway, customer, number="5555555555554444")
    other.is_backup = path.endswith("remove")
    session.commit()
    response = browser.post(path.format(id=other.id), csrf=False)
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    session.refresh(other)
    assert other.is_backup is path.endswith("remove")


def test_a_backup_set_while_past_due_keeps_the_retry_hint(browser, session, gateway, customer):
    """Setting a backup while Past due says how to pay now, as setting a default does."""
    add_card(session, gateway, customer, default=True)
    other = add_card(session, gateway, customer, number="5555555555554444")
    make_subscription(session, customer, status="past_due")
    body = html.unescape(browser.post(f"/billing/cards/{other.id}/backup", htmx=True).get_data(as_text=True))
    assert "is now your backup payment method" in body and "Retry payment" in body
