"""user pool

Revision ID: id0001
Revises: 
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = 'id0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_codes',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'purpose')
    )
    op.create_table('identity_group_members',
    sa.Column('group_name', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('group_name', 'user_id')
    )
    with op.batch_alter_table('identity_group_members', schema=None) as batch_op:
        batch_op.create_index('ix_identity_group_members_user', ['user_id'], unique=False)

    op.create_table('identity_groups',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('identity_policies',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('identity_policy_attachments',
    sa.Column('policy_name', sa.String(length=128), nullable=False),
    sa.Column('target_kind', sa.String(length=10), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('policy_name', 'target_kind', 'target')
    )
    with op.batch_alter_table('identity_policy_attachments', schema=None) as batch_op:
        batch_op.create_index('ix_identity_policy_attachments_target', ['target_kind', 'target'], unique=False)

    op.create_table('identity_recovery_codes',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('user_id', 'code_hash')
    )
    op.create_table('identity_refresh_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('family_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('device', sa.String(length=200), server_default='', nullable=False),
    sa.Column('auth_time', sa.Float(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('used_at', sa.Float(), nullable=True),
    sa.Column('revoked_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('identity_refresh_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_identity_refresh_tokens_family', ['family_id'], unique=False)
        batch_op.create_index('ix_identity_refresh_tokens_user', ['user_id'], unique=False)

    op.create_table('identity_throttle',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.Float(), server_default='0', nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('identity_users',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('username', sa.String(length=30), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('confirmed', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('password_changed_at', sa.Float(), nullable=False),
    sa.Column('revoked_before', sa.Float(), server_default='0', nullable=False),
    sa.Column('mfa_secret', sa.String(length=64), nullable=True),
    sa.Column('mfa_enabled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('mfa_last_step', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email'),
    sa.UniqueConstraint('username')
    )


def downgrade() -> None:
    op.drop_table('identity_users')
    op.drop_table('identity_throttle')
    with op.batch_alter_table('identity_refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_identity_refresh_tokens_user')
        batch_op.drop_index('ix_identity_refresh_tokens_family')

    op.drop_table('identity_refresh_tokens')
    op.drop_table('identity_recovery_codes')
    with op.batch_alter_table('identity_policy_attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_identity_policy_attachments_target')

    op.drop_table('identity_policy_attachments')
    op.drop_table('identity_policies')
    op.drop_table('identity_groups')
    with op.batch_alter_table('identity_group_members', schema=None) as batch_op:
        batch_op.drop_index('ix_identity_group_members_user')

    op.drop_table('identity_group_members')
    op.drop_table('identity_codes')
