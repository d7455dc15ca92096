"""payment methods beyond cards: PayPal and bank accounts (type, payer e-mail, bank, mandate, verification),
one backup method per account; invoices waiting for a bank transfer"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision, down_revision = '0009', '0008'  # this file's id and the one it follows

# As MUTABLE_AFTER_ISSUE in portal/models/invoice.py now: the bank transfer's reference and waiting time may be
# set on an open invoice. PostgreSQL's guard from 0007 reads this list; SQLite relies on the ORM guard.
BEFORE = (
    "amount_paid_cents", "amount_refunded_cents", "auto_retry", "checkout_session_id", "next_retry_at",
    "paid_at", "payment_method_label", "processor_transaction_id", "status", "status_version", "void_reason",
    "voided_at",
)
MUTABLE_AFTER_ISSUE = tuple(sorted(BEFORE + ("awaiting_transfer_at", "transfer_reference")))

MUTABLE_FUNCTION = """
CREATE OR REPLACE FUNCTION invoice_mutable_after_issue() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[{columns}]::text[]
$$
"""


def _allow_after_issue(columns: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(MUTABLE_FUNCTION.format(columns=", ".join(f"'{c}'" for c in columns)))


def upgrade() -> None:
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('type', sa.String(length=20), nullable=False, server_default='card'))
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('bank_name', sa.String(length=80), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('mandate_reference', sa.String(length=80), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('mandate_accepted_at', portal.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('verification', sa.String(length=12), nullable=False, server_default='verified'))
        batch_op.add_column(sa.Column('is_backup', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index('uq_payment_methods_one_backup', ['account_id'], unique=True,
                              sqlite_where=sa.text('is_backup AND detached_at IS NULL'),
                              postgresql_where=sa.text('is_backup AND detached_at IS NULL'))

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transfer_reference', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('awaiting_transfer_at', portal.models.base.UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_transfer_reference'), ['transfer_reference'])
    _allow_after_issue(MUTABLE_AFTER_ISSUE)


def downgrade() -> None:
    _allow_after_issue(BEFORE)
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_invoices_transfer_reference'), type_='unique')
        batch_op.drop_column('awaiting_transfer_at')
        batch_op.drop_column('transfer_reference')

    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.drop_index('uq_payment_methods_one_backup',
                            sqlite_where=sa.text('is_backup AND detached_at IS NULL'),
                            postgresql_where=sa.text('is_backup AND detached_at IS NULL'))
        for column in ('is_backup', 'verification', 'mandate_accepted_at', 'mandate_reference', 'country',
                       'bank_name', 'email', 'type'):
            batch_op.drop_column(column)
