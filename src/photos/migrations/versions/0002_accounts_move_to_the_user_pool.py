"""accounts move to the user pool: users keeps the profile, the pool keeps credentials

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The user pool's own history (summit.security.identity.migrations) runs before the app's, so its
tables exist here. Existing accounts are copied into it as confirmed users.
"""

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO identity_users (id, username, email, password_hash, confirmed, created_at, "
        "password_changed_at, revoked_before, mfa_enabled, mfa_last_step) "
        "SELECT id, username, email, password_hash, TRUE, created_at, created_at, 0, FALSE, 0 FROM users "
        "WHERE id NOT IN (SELECT id FROM identity_users)"
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email')
        batch_op.drop_column('password_hash')


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('password_hash', sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE users SET email = (SELECT email FROM identity_users i WHERE i.id = users.id), "
        "password_hash = (SELECT password_hash FROM identity_users i WHERE i.id = users.id)"
    )
