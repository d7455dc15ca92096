"""the SetupIntent a saved payment method came from: an ACH account waiting for micro-deposits is verified
through it, later and from another request"""
from alembic import op
import sqlalchemy as sa


revision, down_revision = '0010', '0009'  # this file's id and the one it follows


def upgrade() -> None:
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('setup_intent_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.drop_column('setup_intent_id')
