"""Invoices once issued: numbers, snapshots, immutability."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from portal.billing.invoicing.invoices import next_invoice_number
from portal.models import Account, Invoice, InvoiceImmutable, InvoiceNumberSequence

from ..helpers import make_customer, make_invoice, run_concurrently

US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}



def assert_commit_refused(session) -> None:
    """The change in ``session`` is refused at commit, and the session is usable again afterwards."""
    with pytest.raises(InvoiceImmutable):
        session.commit()
    session.rollback()

def test_changing_the_billing_address_later_leaves_issued_invoices_as_they_were(session):
    account, _ = make_customer(session, name="Old Name Inc.", **US)
    invoice = make_invoice(session, account)
    account.name, account.address_line1, account.billing_email = "New Name LLC", "99 New Road", "new@example.com"
    session.commit()
    session.expire_all()
    invoice = session.get(Invoice, invoice.id)
    assert invoice.billing_snapshot["name"] == "Old Name Inc."
    assert invoice.billing_snapshot["address_line1"] == "1 Main St"
    assert invoice.billing_snapshot["email"] == "billing@acme.example"
    later = make_invoice(session, session.get(Account, account.id), issued_at=datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert later.billing_snapshot["name"] == "New Name LLC"


@pytest.mark.parametrize("field, value", [
    ("total_cents", 1), ("subtotal_cents", 1), ("tax_cents", 0), ("number", "INV-X"), ("currency", "EUR"),
    ("billing_snapshot", {"name": "forged"}), ("issued_at", datetime(2020, 1, 1, tzinfo=timezone.utc)),
])
def test_an_issued_invoices_amounts_number_and_snapshot_cannot_change(session, field, value):
    account, _ = make_customer(session, **US)
    invoice = make_invoice(session, account)
    setattr(invoice, field, value)
    assert_commit_refused(session)


def test_an_issued_invoices_lines_cannot_change_or_be_removed(session):
    account, _ = make_customer(session, **US)
    invoice = make_invoice(session, account)
    invoice.lines[0].amount_cents = 1
    assert_commit_refused(session)
    invoice = session.get(Invoice, invoice.id)
    session.delete(invoice.lines[0])
    assert_commit_refused(session)


def test_status_and_payment_facts_of_an_issued_invoice_still_move(session):
    account, _ = make_customer(session, **US)
    invoice = make_invoice(session, account)
    invoice.status, invoice.amount_paid_cents, invoice.processor_transaction_id = "paid", invoice.total_cents, "ch_1"
    invoice.status_version += 1
    session.commit()
    assert session.get(Invoice, invoice.id).status == "paid"


def test_numbers_restart_each_year_with_the_year_in_the_prefix(session):
    account, _ = make_customer(session, **US)
    a = make_invoice(session, account, issued_at=datetime(2025, 12, 31, tzinfo=timezone.utc))
    b = make_invoice(session, account, issued_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    c = make_invoice(session, account, issued_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert [a.number, b.number, c.number] == ["INV-2025-000001", "INV-2026-000001", "INV-2026-000002"]


def test_a_rolled_back_issue_gives_its_number_back(session):
    account, _ = make_customer(session, **US)
    make_invoice(session, account)
    assert next_invoice_number(session, "INV-2026") == "INV-2026-000002"
    session.rollback()
    assert make_invoice(session, account).number == "INV-2026-000002"


def test_numbers_stay_unique_and_gap_free_when_processes_issue_at_once(database, session):
    """Eight concurrent issuers on separate connections, 25 numbers each (on SQLite they queue on the write
    lock; on PostgreSQL on the sequence row)."""
    def issue_many(n):
        numbers = []
        for _ in range(25):
            with database.session() as s:
                numbers.append(next_invoice_number(s, "INV-2030"))
                s.commit()
        return numbers

    outcomes = run_concurrently(issue_many, 8)

    assert all(o.ok for o in outcomes), outcomes
    for o in outcomes:  # each issuer's own numbers go up: a later invoice never gets an earlier number
        assert o.value == sorted(o.value)
    assert sorted(number for o in outcomes for number in o.value) == [f"INV-2030-{n:06d}" for n in range(1, 201)]
    assert session.get(InvoiceNumberSequence, "INV-2030").next_value == 201
