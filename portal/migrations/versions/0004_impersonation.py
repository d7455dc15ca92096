"""impersonation: staff viewing an account as its customer; login sessions remember when the password was
entered and which impersonation they carry"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision, down_revision = '0004', '0003'  # this file's id and the one it follows


def upgrade() -> None:
    op.create_table('impersonations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('started_at', portal.models.base.UTCDateTime(), nullable=False),
    sa.Column('expires_at', portal.models.base.UTCDateTime(), nullable=False),
    sa.Column('ended_at', portal.models.base.UTCDateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=False),
    sa.Column('parent_session_hash', sa.String(length=64), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_impersonations_account_id_accounts')),
    sa.ForeignKeyConstraint(['staff_user_id'], ['users.id'], name=op.f('fk_impersonations_staff_user_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_impersonations_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_impersonations'))
    )
    with op.batch_alter_table('impersonations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_impersonations_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_impersonations_staff_user_id'), ['staff_user_id'], unique=False)

    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('authenticated_at', portal.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('impersonation_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_login_sessions_impersonation_id'), ['impersonation_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_login_sessions_impersonation_id_impersonations'), 'impersonations',
                                    ['impersonation_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_login_sessions_impersonation_id_impersonations'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_login_sessions_impersonation_id'))
        batch_op.drop_column('impersonation_id')
        batch_op.drop_column('authenticated_at')

    with op.batch_alter_table('impersonations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_impersonations_staff_user_id'))
        batch_op.drop_index(batch_op.f('ix_impersonations_account_id'))

    op.drop_table('impersonations')
