"""host integration: API keys, sign-in tokens, outgoing webhooks; accounts by the product's id; plan
choice, trials and cancel at period end on subscriptions"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision, down_revision = '0008', '0007'  # this file's id and the one it follows


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=24), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', portal.models.base.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', portal.models.base.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', portal.models.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('secret', sa.String(length=80), nullable=False),
    sa.Column('created_at', portal.models.base.UTCDateTime(), nullable=False),
    sa.Column('disabled_at', portal.models.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_table('webhook_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', portal.models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('public_id', name=op.f('uq_webhook_events_public_id'))
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_events_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_events_type'), ['type'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', portal.models.base.UTCDateTime(), nullable=False),
    sa.Column('last_result', sa.String(length=300), nullable=False),
    sa.Column('delivered_at', portal.models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints')),
    sa.ForeignKeyConstraint(['event_id'], ['webhook_events.id'], name=op.f('fk_webhook_deliveries_event_id_webhook_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('event_id', 'endpoint_id', name=op.f('uq_webhook_deliveries_event_id'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_endpoint_id'), ['endpoint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_status'), ['status'], unique=False)

    op.create_table('sign_in_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('flow', sa.String(length=20), nullable=False),
    sa.Column('return_url', sa.String(length=500), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.models.base.UTCDateTime(), nullable=False),
    sa.Column('expires_at', portal.models.base.UTCDateTime(), nullable=False),
    sa.Column('used_at', portal.models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_sign_in_tokens_api_key_id_api_keys')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sign_in_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_sign_in_tokens'))
    )
    with op.batch_alter_table('sign_in_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_tokens_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_accounts_external_id'), ['external_id'])

    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('return_url', sa.String(length=500), nullable=False, server_default=''))

    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('self_serve', sa.Boolean(), nullable=False, server_default=sa.true()))

    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trial_end', portal.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('cancel_at_period_end', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('cancel_requested_at', portal.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.String(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('scheduled_plan_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_subscriptions_scheduled_plan_id_plans'), 'plans', ['scheduled_plan_id'], ['id'])

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_invoices_plan_id_plans'), 'plans', ['plan_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_invoices_plan_id_plans'), type_='foreignkey')
        batch_op.drop_column('plan_id')

    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_subscriptions_scheduled_plan_id_plans'), type_='foreignkey')
        batch_op.drop_column('scheduled_plan_id')
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancel_requested_at')
        batch_op.drop_column('cancel_at_period_end')
        batch_op.drop_column('trial_end')

    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('self_serve')

    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.drop_column('return_url')

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_accounts_external_id'), type_='unique')
        batch_op.drop_column('external_id')

    with op.batch_alter_table('sign_in_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_tokens_user_id'))

    op.drop_table('sign_in_tokens')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_status'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_event_id'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_endpoint_id'))

    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_events_type'))
        batch_op.drop_index(batch_op.f('ix_webhook_events_account_id'))

    op.drop_table('webhook_events')
    op.drop_table('webhook_endpoints')
    op.drop_table('api_keys')
