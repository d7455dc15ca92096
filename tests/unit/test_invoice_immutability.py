"""Issued invoices are immutable: the status only moves forward, the columns outside the payment facts are
frozen, and the lines and tax lines can be neither added, changed nor removed.

The cases are generated from the models' own columns and relationships, so a column or a collection added
later is covered (and frozen) without anyone remembering to write its test. The raw-SQL cases run on
PostgreSQL only, where triggers refuse what the ORM guard refuses for writers that bypass the ORM.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, bindparam, inspect, text
from sqlalchemy.exc import DBAPIError

from portal.billing.invoicing.invoices import apply_totals, issue_invoice
from portal.billing.invoicing.seller import Seller
from portal.config import load_settings
from portal.models import Invoice, InvoiceImmutable, InvoiceLine
from portal.models.base import UTCDateTime
from portal.models.invoice import MUTABLE_AFTER_ISSUE

from ..helpers import make_customer, make_invoice

US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}  # gets a tax line

INVOICE_COLUMNS = dict(inspect(Invoice).columns.items())
FROZEN = sorted(set(INVOICE_COLUMNS) - MUTABLE_AFTER_ISSUE)
MUTABLE = sorted(MUTABLE_AFTER_ISSUE)
# Every collection an invoice writes (lines, tax lines, and whatever is added later; not view-only ones).
CONTENT = sorted(rel.key for rel in inspect(Invoice).relationships if rel.uselist and not rel.viewonly)
CONTENT_COLUMNS = [(rel, key) for rel in CONTENT
                   for key in inspect(Invoice).relationships[rel].mapper.columns.keys()]


def another_value(column, current, *, key: str = ""):
    """A value of the column's type that differs from ``current`` and fits the column."""
    if key == "status":
        return "paid"  # the one forward move every open invoice has
    kind = column.type
    if isinstance(kind, Boolean):
        return not current
    if isinstance(kind, Integer):
        return (current or 0) + 1
    if isinstance(kind, String):
        length = min(kind.length or 8, 8)
        return "Z" * length if current != "Z" * length else "Y" * length
    if isinstance(kind, (UTCDateTime, DateTime)):
        return (current or datetime(2026, 1, 1, tzinfo=timezone.utc)) + timedelta(days=1)
    if isinstance(kind, JSON):
        return {"forged": True}
    raise AssertionError(f"no test value for {column} ({column.type!r}); add one here")


def new_row(cls, **values):
    """A row of ``cls`` with every required column filled from its type."""
    for key, column in inspect(cls).columns.items():
        if key in values or column.primary_key or column.foreign_keys or column.default is not None:
            continue
        if not column.nullable:
            values[key] = another_value(column, None)
    return cls(**values)


def issued(session, status="open"):
    account, _ = make_customer(session, **US)
    invoice = make_invoice(session, account, status=status)
    assert all(getattr(invoice, rel) for rel in CONTENT), "the fixture invoice needs a row in every collection"
    return invoice


def stored(session, row):
    """``row`` as the database has it, after the refused transaction is rolled back."""
    identity = inspect(row).identity  # read without loading: the failed flush left the row expired
    session.rollback()
    session.expire_all()
    return session.get(type(row), identity)


def test_every_name_allowed_to_change_after_issue_is_a_column_of_the_invoice():
    assert MUTABLE_AFTER_ISSUE <= set(INVOICE_COLUMNS)


@pytest.mark.parametrize("key", FROZEN)
def test_changing_a_frozen_column_of_an_issued_invoice_is_refused(session, key):
    invoice = issued(session)
    before = getattr(invoice, key)
    setattr(invoice, key, another_value(INVOICE_COLUMNS[key], before, key=key))
    with pytest.raises(InvoiceImmutable, match=key):
        session.commit()
    assert getattr(stored(session, invoice), key) == before


@pytest.mark.parametrize("key", FROZEN)
def test_a_frozen_column_of_a_paid_invoice_cannot_change_even_when_it_was_not_loaded(session, key):
    invoice = issued(session, status="paid")
    before = getattr(invoice, key)
    session.expire(invoice)
    setattr(invoice, key, another_value(INVOICE_COLUMNS[key], before, key=key))
    with pytest.raises(InvoiceImmutable):
        session.commit()
    assert getattr(stored(session, invoice), key) == before


@pytest.mark.parametrize("key", MUTABLE)
def test_a_status_or_payment_fact_of_an_issued_invoice_can_still_change(session, key):
    invoice = issued(session)
    value = another_value(INVOICE_COLUMNS[key], getattr(invoice, key), key=key)
    setattr(invoice, key, value)
    session.commit()
    assert getattr(stored(session, invoice), key) == value


@pytest.mark.parametrize("start, target", [
    ("open", "draft"), ("paid", "draft"), ("void", "draft"), ("paid", "open"), ("void", "open"),
    ("paid", "void"), ("void", "paid"), ("open", "refunded"),
])
def test_an_issued_invoices_status_never_moves_back_and_a_paid_invoice_is_never_voided(session, start, target):
    invoice = issued(session, status=start)
    invoice.status = target
    with pytest.raises(InvoiceImmutable, match=f"from {start} to {target}"):
        session.commit()
    assert stored(session, invoice).status == start


@pytest.mark.parametrize("start, target", [("open", "paid"), ("open", "void")])
def test_an_open_invoice_is_paid_or_voided(session, start, target):
    invoice = issued(session, status=start)
    invoice.status = target
    session.commit()
    assert stored(session, invoice).status == target


def test_an_issued_invoice_set_back_to_draft_while_unloaded_is_refused(session):
    invoice = issued(session)
    session.expire(invoice)
    invoice.status = "draft"
    invoice.total_cents = 1
    with pytest.raises(InvoiceImmutable, match="from open to draft"):
        session.commit()
    assert stored(session, invoice).status == "open"


def test_a_draft_is_not_voided_without_being_issued(session):
    account, _ = make_customer(session, **US)
    invoice = Invoice(account_id=account.id, currency="USD", status="draft")
    session.add(invoice)
    session.commit()
    invoice.status = "void"
    with pytest.raises(InvoiceImmutable, match="from draft to void"):
        session.commit()


@pytest.mark.parametrize("with_lines", [True, False], ids=["with lines", "without lines"])
def test_an_issued_invoice_cannot_be_deleted(session, with_lines):
    if with_lines:
        invoice = issued(session)
    else:  # nothing to bill, so nothing but the invoice itself stands in the way
        account, _ = make_customer(session, **US)
        invoice = Invoice(account_id=account.id, currency="USD", status="draft")
        session.add(invoice)
        issue_invoice(session, invoice, account, Seller.from_settings(load_settings(demo=True)),
                      now=datetime(2026, 11, 1, tzinfo=timezone.utc))
        session.commit()
    session.delete(invoice)
    with pytest.raises(InvoiceImmutable, match="cannot be deleted" if not with_lines else "is issued"):
        session.commit()
    assert stored(session, invoice) is not None


@pytest.mark.parametrize("rel", CONTENT)
def test_nothing_can_be_appended_to_an_issued_invoices_lines_or_tax_lines(session, rel):
    invoice = issued(session)
    count = len(getattr(invoice, rel))
    cls = inspect(Invoice).relationships[rel].mapper.class_
    getattr(invoice, rel).append(new_row(cls))
    # Refused by the invoice itself, which names what changed, before the row is written.
    with pytest.raises(InvoiceImmutable, match=f"cannot change {rel}"):
        session.commit()
    assert len(getattr(stored(session, invoice), rel)) == count


@pytest.mark.parametrize("rel", CONTENT)
def test_a_line_or_tax_line_added_with_an_issued_invoices_id_is_refused(session, rel):
    invoice = issued(session)
    count = len(getattr(invoice, rel))
    cls = inspect(Invoice).relationships[rel].mapper.class_
    session.expunge(invoice)  # nothing in the session knows the invoice: the guard has to look it up
    session.add(new_row(cls, invoice_id=invoice.id))
    with pytest.raises(InvoiceImmutable):
        session.commit()
    assert len(getattr(stored(session, invoice), rel)) == count


@pytest.mark.parametrize("rel, key", CONTENT_COLUMNS)
def test_no_column_of_an_issued_invoices_lines_or_tax_lines_can_change(session, rel, key):
    invoice = issued(session)
    row = getattr(invoice, rel)[0]
    before = getattr(row, key)
    setattr(row, key, another_value(inspect(type(row)).columns[key], before))
    with pytest.raises(InvoiceImmutable):
        session.commit()
    assert getattr(stored(session, row), key) == before


@pytest.mark.parametrize("rel", CONTENT)
@pytest.mark.parametrize("how", ["removed from the collection", "deleted"])
def test_a_line_or_tax_line_of_an_issued_invoice_cannot_be_removed(session, rel, how):
    invoice = issued(session)
    rows = getattr(invoice, rel)
    count = len(rows)
    if how == "deleted":
        session.delete(rows[0])
    else:
        rows.remove(rows[0])
    with pytest.raises(InvoiceImmutable):
        session.commit()
    assert len(getattr(stored(session, invoice), rel)) == count


def pro_plan_draft(session):
    """A $20 draft with its totals, added to the session but not issued."""
    account, _ = make_customer(session, **US)
    seller = Seller.from_settings(load_settings(demo=True))
    invoice = Invoice(account_id=account.id, currency="USD", status="draft")
    invoice.lines.append(InvoiceLine(description="Pro plan", unit_amount_cents=2000, amount_cents=2000))
    apply_totals(session, invoice, account, seller)
    session.add(invoice)
    return invoice, account, seller


def test_a_line_added_after_issue_in_the_issuing_transaction_is_refused(session):
    """The invoice row is written before its lines: this line would reach the database under an open invoice."""
    invoice, account, seller = pro_plan_draft(session)
    issue_invoice(session, invoice, account, seller, now=datetime(2026, 11, 1, tzinfo=timezone.utc))
    invoice.lines.append(InvoiceLine(description="Smuggled in", unit_amount_cents=1, amount_cents=1))
    with pytest.raises(InvoiceImmutable):
        session.commit()


def test_a_draft_keeps_changing_until_it_is_issued_and_issues_in_one_transaction(session):
    invoice, account, seller = pro_plan_draft(session)
    session.commit()
    invoice.lines.append(InvoiceLine(position=1, description="Seats", unit_amount_cents=500, amount_cents=500))
    invoice.lines.remove(invoice.lines[0])
    apply_totals(session, invoice, account, seller)  # replaces the tax line of the draft
    issue_invoice(session, invoice, account, seller, now=datetime(2026, 11, 1, tzinfo=timezone.utc))
    invoice.due_at = datetime(2026, 11, 15, tzinfo=timezone.utc)  # still the issuing flush
    session.commit()
    invoice = stored(session, invoice)
    assert (invoice.status, [line.description for line in invoice.lines]) == ("open", ["Seats"])
    assert invoice.total_cents == 500 + invoice.tax_cents and invoice.tax_lines


# --- PostgreSQL: the triggers, for writers that bypass the ORM ---------------------------------------------

@pytest.fixture
def postgres(database):
    if database.is_sqlite:
        pytest.skip("the triggers exist on PostgreSQL only; SQLite relies on the ORM guard")


def raw_update(session, table, key, column, value, row_id):
    session.execute(text(f'UPDATE {table} SET "{key}" = :value WHERE id = :id')
                    .bindparams(bindparam("value", type_=column.type)), {"value": value, "id": row_id})


@pytest.mark.parametrize("key", FROZEN)
def test_raw_sql_cannot_change_a_frozen_column_of_an_issued_invoice(session, postgres, key):
    invoice = issued(session)
    before = getattr(invoice, key)
    with pytest.raises(DBAPIError, match=f"cannot change {key}"):
        raw_update(session, "invoices", key, INVOICE_COLUMNS[key],
                   another_value(INVOICE_COLUMNS[key], before, key=key), invoice.id)
    assert getattr(stored(session, invoice), key) == before


@pytest.mark.parametrize("key", MUTABLE)
def test_raw_sql_can_change_a_status_or_payment_fact_of_an_issued_invoice(session, postgres, key):
    invoice = issued(session)
    value = another_value(INVOICE_COLUMNS[key], getattr(invoice, key), key=key)
    raw_update(session, "invoices", key, INVOICE_COLUMNS[key], value, invoice.id)
    session.commit()
    assert getattr(stored(session, invoice), key) == value


@pytest.mark.parametrize("start, target", [
    ("open", "draft"), ("paid", "open"), ("void", "open"), ("paid", "void"), ("void", "paid"),
])
def test_raw_sql_cannot_move_an_issued_invoices_status_back(session, postgres, start, target):
    invoice = issued(session, status=start)
    with pytest.raises(DBAPIError, match=f"from {start} to {target}"):
        session.execute(text("UPDATE invoices SET status = :status WHERE id = :id"),
                        {"status": target, "id": invoice.id})
    assert stored(session, invoice).status == start


def test_raw_sql_cannot_delete_an_issued_invoice(session, postgres):
    invoice = issued(session)
    with pytest.raises(DBAPIError, match="cannot be deleted"):
        session.execute(text("DELETE FROM invoices WHERE id = :id"), {"id": invoice.id})
    assert stored(session, invoice) is not None


@pytest.mark.parametrize("rel", CONTENT)
def test_raw_sql_cannot_add_change_or_remove_an_issued_invoices_lines_or_tax_lines(session, postgres, rel):
    invoice = issued(session)
    mapper = inspect(Invoice).relationships[rel].mapper
    table, row = mapper.local_table.name, getattr(invoice, rel)[0]
    count = len(getattr(invoice, rel))
    values = {key: getattr(row, key) for key in mapper.columns.keys() if key != "id"}
    statements = [
        text(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})")
        .bindparams(*(bindparam(k, type_=mapper.columns[k].type) for k in values)),
        text(f"UPDATE {table} SET invoice_id = invoice_id WHERE id = :id"),
        text(f"DELETE FROM {table} WHERE id = :id"),
    ]
    for statement, params in zip(statements, [values, {"id": row.id}, {"id": row.id}]):
        with pytest.raises(DBAPIError, match="is issued"):
            session.execute(statement, params)
        session.rollback()
    assert len(getattr(stored(session, invoice), rel)) == count


def test_raw_sql_still_writes_the_lines_of_a_draft(session, postgres):
    account, _ = make_customer(session, **US)
    invoice = Invoice(account_id=account.id, currency="USD", status="draft")
    session.add(invoice)
    session.commit()
    session.execute(text("INSERT INTO invoice_lines (invoice_id, position, description, quantity, "
                         "unit_amount_cents, amount_cents) VALUES (:id, 0, 'Pro plan', 1, 2000, 2000)"),
                    {"id": invoice.id})
    session.execute(text("UPDATE invoice_lines SET amount_cents = 2500 WHERE invoice_id = :id"), {"id": invoice.id})
    session.commit()
    assert [line.amount_cents for line in stored(session, invoice).lines] == [2500]
