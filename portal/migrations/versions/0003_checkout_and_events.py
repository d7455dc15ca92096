"""checkout sessions on payment attempts, processor events"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision, down_revision = '0003', '0002'  # this file's id and the one it follows


def upgrade() -> None:
    op.create_table('processor_events',
    sa.Column('id', sa.String(length=120), nullable=False),
    sa.Column('type', sa.String(length=80), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('created_at', portal.models.base.UTCDateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_processor_events'))
    )
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkout_session_id', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('checkout_url', sa.String(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('expires_at', portal.models.base.UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_payment_attempts_checkout_session_id'), ['checkout_session_id'])



def downgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_payment_attempts_checkout_session_id'), type_='unique')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('checkout_url')
        batch_op.drop_column('checkout_session_id')

    op.drop_table('processor_events')
