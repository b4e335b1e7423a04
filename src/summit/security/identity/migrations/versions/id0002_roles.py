"""roles: a trust policy says who may assume a role; attached policies say what its sessions may do

Revision ID: id0002
Revises: id0001
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa

revision = 'id0002'
down_revision = 'id0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'identity_roles',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('trust_policy', sa.Text(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('identity_roles')
