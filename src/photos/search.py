"""What Summit Photos puts in the search index: the blueprint names ``documents`` in
``app.search_documents``, and ``summit search reindex`` feeds the search port from it.

- ``user``: title: the username and the display name; then the bio. Rank: followers.
- ``post``: the caption. Rank: likes; filter ``author`` (the author's id). Every post is public
  (the schema has no private or hidden post); one without a caption has no words and is left out.
- ``tag``: a hashtag of captions (``post_tags``), its id the tag itself. Rank: how many posts carry it.

Rows are read by primary key in pages of ``PAGE``, each page in a read block of its own: a reindex
holds no long transaction (nor the event loop), and rows written while it runs are read if their
page has not been read yet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import func, select

from summit.platform import Platform
from summit.ports import Document

from photos import schema

PAGE = 1000  # rows per read block
u, p, f, t = schema.users.c, schema.posts.c, schema.follows.c, schema.post_tags.c


async def documents(platform: Platform) -> AsyncIterator[Document]:
    """Every user, captioned post and tag, as search documents."""
    async for user in _users(platform):
        yield user
    async for post in _posts(platform):
        yield post
    async for tag in _tags(platform):
        yield tag


async def _users(platform: Platform) -> AsyncIterator[Document]:
    after = -1
    while True:
        async with platform.db.read() as conn:
            rows = (await conn.execute(select(u.id, u.username, u.display_name, u.bio)
                                       .where(u.id > after).order_by(u.id).limit(PAGE))).all()
            followers: dict[int, int] = {}
            if rows:
                counts = select(f.followee_id, func.count()).where(f.followee_id.in_([row.id for row in rows])).group_by(f.followee_id)
                followers = {followee: n for followee, n in (await conn.execute(counts)).all()}
        for row in rows:
            yield Document("user", str(row.id), {"name": f"{row.username} {row.display_name}", "bio": row.bio},
                           rank=followers.get(row.id, 0))
        if len(rows) < PAGE:
            return
        after = rows[-1].id


async def _posts(platform: Platform) -> AsyncIterator[Document]:
    after = -1
    while True:
        async with platform.db.read() as conn:
            rows = (await conn.execute(select(p.id, p.author_id, p.caption, p.like_count)
                                       .where(p.id > after).order_by(p.id).limit(PAGE))).all()
        for row in rows:
            if row.caption.strip():
                yield Document("post", str(row.id), {"caption": row.caption}, rank=row.like_count,
                               filters={"author": str(row.author_id)})
        if len(rows) < PAGE:
            return
        after = rows[-1].id


async def _tags(platform: Platform) -> AsyncIterator[Document]:
    after = ""
    while True:
        async with platform.db.read() as conn:
            rows = (await conn.execute(select(t.tag, func.count().label("posts"))
                                       .where(t.tag > after).group_by(t.tag).order_by(t.tag).limit(PAGE))).all()
        for row in rows:
            yield Document("tag", row.tag, {"tag": row.tag}, rank=row.posts)
        if len(rows) < PAGE:
            return
        after = rows[-1].tag
