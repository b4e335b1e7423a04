"""comment_tags: the hashtags of comments, so that a tag's page lists the posts whose comments carry it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

The tags of the comments already written are extracted here, as the app extracts them (the pattern
and the cap below are photos.services.common's, as of this revision).
"""

import re

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TAG_RE = re.compile(r"#(\w{1,100})")
MAX_TAGS = 30
BATCH = 1000


def _tags(body: str) -> list[str]:
    seen: dict[str, None] = {}
    for match in TAG_RE.finditer(body):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)[:MAX_TAGS]


def upgrade() -> None:
    op.create_table('comment_tags',
    sa.Column('comment_id', sa.BigInteger(), nullable=False),
    sa.Column('tag', sa.String(length=100), nullable=False),
    sa.Column('post_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('comment_id', 'tag')
    )
    with op.batch_alter_table('comment_tags', schema=None) as batch_op:
        batch_op.create_index('ix_comment_tags_post_id', ['post_id'], unique=False)
        batch_op.create_index('ix_comment_tags_tag', ['tag', 'post_id'], unique=False)

    if op.get_context().as_sql:  # offline (--sql): there are no rows to read
        return
    comments = sa.table('comments', sa.column('id', sa.BigInteger), sa.column('post_id', sa.BigInteger), sa.column('body', sa.String))
    comment_tags = sa.table('comment_tags', sa.column('comment_id', sa.BigInteger), sa.column('tag', sa.String),
                            sa.column('post_id', sa.BigInteger))
    conn = op.get_bind()
    last = None
    while True:  # in pages of ids, so that no cursor stays open across the inserts
        query = sa.select(comments.c.id, comments.c.post_id, comments.c.body).order_by(comments.c.id).limit(BATCH)
        if last is not None:
            query = query.where(comments.c.id > last)
        rows = conn.execute(query).all()
        if not rows:
            break
        tagged = [{"comment_id": row.id, "tag": tag, "post_id": row.post_id} for row in rows for tag in _tags(row.body)]
        if tagged:
            conn.execute(sa.insert(comment_tags), tagged)
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table('comment_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_comment_tags_tag')
        batch_op.drop_index('ix_comment_tags_post_id')

    op.drop_table('comment_tags')
