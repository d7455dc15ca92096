"""issued invoices are immutable in the database

PostgreSQL only: triggers refuse, for any writer (a psql session, a script, a bulk UPDATE), what the ORM guard
in portal/models/invoice.py refuses for the application. SQLite gets nothing here and relies on that guard.

- invoices, BEFORE UPDATE: the status moves only forward (draft -> open | paid, open -> paid | void); once the
  stored status is not draft, every column outside invoice_mutable_after_issue() is frozen. The row is compared
  as JSON minus the mutable keys, so a column added later is frozen without touching this trigger.
- invoices, BEFORE DELETE: an issued invoice is never deleted.
- invoice_lines and invoice_tax_lines, BEFORE INSERT/UPDATE/DELETE: refused unless the invoice (the old and the
  new one, when a line moves) is a draft.

Why lines are only written under a draft: in one flush SQLAlchemy writes the invoice row before its lines, so
a line added in the flush that issues its invoice would arrive after the row said 'open'. issue_invoice flushes
the draft and its lines before it numbers the invoice, so every line reaches the database while its invoice is
still a draft, and the trigger need not tell "issued a moment ago in this transaction" from "issued last year".
The parent row is read FOR SHARE, so a concurrent issue waits for the line's transaction (and vice versa).

TRUNCATE fires no row triggers, so emptying the tables (the test suite does, between tests) still works.
"""
from alembic import op


revision, down_revision = '0007', '0006'  # this file's id and the one it follows

# As MUTABLE_AFTER_ISSUE in portal/models/invoice.py when this migration was written. A later migration that
# lets another column move replaces only this function (CREATE OR REPLACE, the full new list).
MUTABLE_AFTER_ISSUE = (
    "amount_paid_cents", "amount_refunded_cents", "auto_retry", "checkout_session_id", "next_retry_at",
    "paid_at", "payment_method_label", "processor_transaction_id", "status", "status_version", "void_reason",
    "voided_at",
)

MUTABLE_FUNCTION = """
CREATE OR REPLACE FUNCTION invoice_mutable_after_issue() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[{columns}]::text[]
$$
"""

INVOICE_GUARD = """
CREATE FUNCTION invoices_guard_issued() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mutable text[] := invoice_mutable_after_issue();
    changed text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is issued; it cannot be deleted (void it instead)', OLD.number;
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
            (OLD.status = 'draft' AND NEW.status IN ('open', 'paid'))
            OR (OLD.status = 'open' AND NEW.status IN ('paid', 'void'))) THEN
        RAISE EXCEPTION 'invoice % cannot go from % to %', coalesce(OLD.number, OLD.id::text), OLD.status,
            coalesce(NEW.status, 'NULL');
    END IF;
    IF OLD.status <> 'draft' THEN
        SELECT string_agg(old_value.key, ', ' ORDER BY old_value.key) INTO changed
          FROM jsonb_each(to_jsonb(OLD)) AS old_value
         WHERE old_value.key <> ALL (mutable)
           AND old_value.value IS DISTINCT FROM to_jsonb(NEW) -> old_value.key;
        IF changed IS NOT NULL THEN
            RAISE EXCEPTION 'invoice % is issued; cannot change %', OLD.number, changed;
        END IF;
    END IF;
    RETURN NEW;
END
$$
"""

CONTENT_GUARD = """
CREATE FUNCTION invoice_content_guard_issued() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_ids integer[];
    issued text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        parent_ids := ARRAY[NEW.invoice_id];
    ELSIF TG_OP = 'UPDATE' THEN
        parent_ids := ARRAY[OLD.invoice_id, NEW.invoice_id];
    ELSE
        parent_ids := ARRAY[OLD.invoice_id];
    END IF;
    SELECT coalesce(number, id::text) INTO issued
      FROM invoices WHERE id = ANY (parent_ids) AND status <> 'draft'
       FOR SHARE;
    IF issued IS NOT NULL THEN
        RAISE EXCEPTION 'invoice % is issued; its % cannot change', issued, replace(TG_TABLE_NAME, '_', ' ');
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(MUTABLE_FUNCTION.format(columns=", ".join(f"'{c}'" for c in MUTABLE_AFTER_ISSUE)))
    op.execute(INVOICE_GUARD)
    op.execute(CONTENT_GUARD)
    op.execute("CREATE TRIGGER invoices_guard_issued BEFORE UPDATE OR DELETE ON invoices "
               "FOR EACH ROW EXECUTE FUNCTION invoices_guard_issued()")
    for table in ('invoice_lines', 'invoice_tax_lines'):
        op.execute(f"CREATE TRIGGER {table}_guard_issued BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION invoice_content_guard_issued()")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in ('invoice_tax_lines', 'invoice_lines'):
        op.execute(f"DROP TRIGGER {table}_guard_issued ON {table}")
    op.execute("DROP TRIGGER invoices_guard_issued ON invoices")
    op.execute("DROP FUNCTION invoice_content_guard_issued()")
    op.execute("DROP FUNCTION invoices_guard_issued()")
    op.execute("DROP FUNCTION invoice_mutable_after_issue()")
