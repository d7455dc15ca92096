"""The support console's read model: search pages, and one account's view (its own data only, lists a page at a
time, the action panel's refundable amounts), without Flask."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from portal.billing import console
from portal.billing.collecting import refunds
from portal.errors import NotFound
from portal.models import Refund

from ..helpers import make_customer, make_invoice, make_staff

NOW = datetime(2026, 11, 10, tzinfo=timezone.utc)


@pytest.fixture
def other(session):
    account, _ = make_customer(session, email="eve@other.example", name="Other Ltd", billing_email="ap@other.example")
    return account


def test_an_unknown_account_is_not_found(session, acme):
    with pytest.raises(NotFound):
        console.account_view(session, acme.id + 1000)


def test_the_view_holds_the_accounts_own_invoices_and_customers_only(session, acme, other):
    mine = make_invoice(session, acme)
    make_invoice(session, other)
    make_staff(session)
    view = console.account_view(session, acme.id)
    assert [i.id for i in view.invoices.items] == [mine.id]
    assert [row.invoice.id for row in view.actions.invoices] == [mine.id]
    assert [u.email for u in view.customers] == ["ada@example.com"]
    assert view.credit_balances == {"USD": 0}


def test_lists_are_pages_and_a_page_past_the_end_is_the_last(session, acme):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    made = [make_invoice(session, acme, issued_at=start + timedelta(days=31 * n)) for n in range(12)]
    view = console.account_view(session, acme.id, invoice_page=5)
    assert (view.invoices.number, view.invoices.pages, view.invoices.total) == (2, 2, 12)
    assert [i.id for i in view.invoices.items] == [made[1].id, made[0].id]
    assert view.invoices.has_previous and not view.invoices.has_next
    assert view.page_args == {"invoice_page": 2, "mail_page": 1, "audit_page": 1}


def test_the_panel_offers_what_is_left_after_refunds_that_count(session, acme):
    paid = make_invoice(session, acme, status="paid")
    staff = make_staff(session)
    for amount, status in ((500, "succeeded"), (250, "pending"), (300, "failed")):
        session.add(Refund(invoice_id=paid.id, account_id=acme.id, amount_cents=amount, currency="USD", reason="x",
                           status=status, destination="credit", origin="portal", idempotency_key=f"k-{status}",
                           created_by_user_id=staff.id, created_at=NOW))
    session.commit()
    row = console.account_view(session, acme.id).actions.invoices[0]
    assert row.refundable_cents == paid.amount_paid_cents - 750 == refunds.refundable_cents(session, paid)
    assert row.refundable_text == f"{(paid.amount_paid_cents - 750) / 100:.2f}"
    assert len(row.refunds) == 3


def test_an_open_invoice_offers_no_refund(session, acme):
    make_invoice(session, acme)
    row = console.account_view(session, acme.id).actions.invoices[0]
    assert (row.refundable_cents, row.can_refund_to_card) == (0, False)


def test_search_pages_name_each_accounts_users(session, acme, other):
    found = console.search_accounts(session, "other")
    assert [(m.account.name, [u.email for u in m.users]) for m in found.items] == [("Other Ltd", ["eve@other.example"])]
    everyone = console.search_accounts(session, "")
    assert everyone.total == 2 and [m.account.name for m in everyone.items] == ["Acme Analytics Inc.", "Other Ltd"]
