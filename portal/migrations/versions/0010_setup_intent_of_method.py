"""the SetupIntent that saved each payment method: an ACH account waiting for micro-deposits is verified
through it"""
from alembic import op
import sqlalchemy as sa


revision, down_revision = '0010', '0009'  # this file's id and the one it follows


def upgrade():
    with op.batch_alter_table('payment_methods') as batch_op:
        batch_op.add_column(sa.Column('setup_intent_id', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('payment_methods') as batch_op:
        batch_op.drop_column('setup_intent_id')
