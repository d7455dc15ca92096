"""money safety: what a payment actually collected, and surplus refunds"""
from alembic import op
import sqlalchemy as sa


revision, down_revision = '0006', '0005'  # this file's id and the one it follows


def upgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_received_cents', sa.Integer(), nullable=True))
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=8), nullable=False, server_default='refund'))
        batch_op.add_column(sa.Column('payment_attempt_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_refunds_payment_attempt_id_payment_attempts'), 'payment_attempts',
                                    ['payment_attempt_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_refunds_payment_attempt_id_payment_attempts'), type_='foreignkey')
        batch_op.drop_column('payment_attempt_id')
        batch_op.drop_column('kind')
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_column('amount_received_cents')
