"""emails at rest: a keyed hash (unique, for lookups) and the address encrypted by the KMS

Revision ID: id0003
Revises: id0002
Create Date: 2026-12-06

The plaintext ``email`` column becomes nullable: it only holds an address imported in clear until
it is sealed. Existing rows are sealed here when the caller names the data directory (its KMS):
``summit.migrate.upgrade_all`` and ``migrations.upgrade(url, data_dir=...)`` do; otherwise the
user pool seals them when it opens (``UserPool.seal_plaintext``). Either way no address stays in
clear and every user still signs in by email.
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision = 'id0003'
down_revision = 'id0002'
branch_labels = None
depends_on = None


def _vault():  # noqa: ANN202
    from summit.security.identity.pii import EmailVault

    data_dir = context.config.attributes.get("data_dir")
    return EmailVault.for_data_dir(Path(data_dir)) if data_dir else None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # freed pages (the old table, the plaintext cells) are zeroed
        op.execute("PRAGMA secure_delete = ON")
    with op.batch_alter_table('identity_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('email_sealed', sa.Text(), nullable=True))
        batch_op.alter_column('email', existing_type=sa.String(length=254), nullable=True)
        batch_op.create_index('ix_identity_users_email_hash', ['email_hash'], unique=True)
    vault = _vault()
    if vault is not None:
        from summit.security.identity.pii import seal_plaintext_rows

        seal_plaintext_rows(op.get_bind(), vault)


def downgrade() -> None:
    bind = op.get_bind()
    users = sa.table('identity_users', sa.column('id'), sa.column('email'), sa.column('email_sealed'))
    rows = bind.execute(sa.select(users.c.id, users.c.email_sealed).where(users.c.email_sealed.is_not(None))).all()
    vault = _vault() if rows else None
    if rows and vault is None:
        raise RuntimeError("downgrading below id0003 decrypts the emails: run it with the data directory (its KMS)")
    for row in rows:
        bind.execute(sa.update(users).where(users.c.id == row.id).values(email=vault.open(row.id, row.email_sealed)))
    with op.batch_alter_table('identity_users', schema=None) as batch_op:
        batch_op.drop_index('ix_identity_users_email_hash')
        batch_op.alter_column('email', existing_type=sa.String(length=254), nullable=False)
        batch_op.drop_column('email_sealed')
        batch_op.drop_column('email_hash')
