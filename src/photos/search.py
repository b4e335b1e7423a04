"""What Summit Photos puts in the search index: the blueprint names ``documents`` in
``app.search_documents``, and ``summit search reindex`` feeds the search port from it; the
``search.index`` job (``photos.jobs``) calls ``refresh`` after each write, so the index follows the
app's data without a reindex.

- ``user``: title: the username and the display name; then the bio. Rank: followers.
- ``post``: the caption. Rank: likes; filter ``author`` (the author's id). Every post is public
  (the schema has no private or hidden post); one without a caption has no words and is left out.
- ``tag``: a hashtag of captions (``post_tags``) or comments (``comment_tags``), its id the tag
  itself. Rank: how many posts carry it, in their caption or their comments (a post counts once).

Rows are read by primary key in pages of ``PAGE``, each page in a read block of its own: a reindex
holds no long transaction (nor the event loop), and rows written while it runs are read if their
page has not been read yet. ``refresh`` reads the primary (``after_write``): the write it follows
was committed a moment ago, maybe by another process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import func, select, union

from summit.platform import Platform
from summit.ports import Connection, Document

from photos import schema

PAGE = 1000  # rows per read block
KINDS = ("user", "post", "tag")
u, p, f, t, ct = schema.users.c, schema.posts.c, schema.follows.c, schema.post_tags.c, schema.comment_tags.c


async def documents(platform: Platform) -> AsyncIterator[Document]:
    """Every user, captioned post and tag, as search documents."""
    async for user in _users(platform):
        yield user
    async for post in _posts(platform):
        yield post
    async for tag in _tags(platform):
        yield tag


# ---- documents of given rows (reindex pages, and the job's single rows) -------------------------

async def user_documents(conn: Connection, user_ids: list[int]) -> dict[int, Document]:
    """The documents of the users of ``user_ids`` that exist."""
    if not user_ids:
        return {}
    rows = (await conn.execute(select(u.id, u.username, u.display_name, u.bio).where(u.id.in_(user_ids)))).all()
    counts = select(f.followee_id, func.count()).where(f.followee_id.in_([row.id for row in rows])).group_by(f.followee_id)
    followers = {followee: n for followee, n in (await conn.execute(counts)).all()} if rows else {}
    return {row.id: Document("user", str(row.id), {"name": f"{row.username} {row.display_name}", "bio": row.bio},
                             rank=followers.get(row.id, 0))
            for row in rows}


def _post_document(row: Any) -> Document | None:
    if not row.caption.strip():
        return None
    return Document("post", str(row.id), {"caption": row.caption}, rank=row.like_count, filters={"author": str(row.author_id)})


async def post_documents(conn: Connection, post_ids: list[int]) -> dict[int, Document]:
    """The documents of the posts of ``post_ids`` that exist and have a caption."""
    if not post_ids:
        return {}
    rows = (await conn.execute(select(p.id, p.author_id, p.caption, p.like_count).where(p.id.in_(post_ids)))).all()
    return {row.id: doc for row in rows if (doc := _post_document(row)) is not None}


async def tag_counts(conn: Connection, tags: list[str]) -> dict[str, int]:
    """How many posts carry each of ``tags``, in their caption or their comments (tags no post
    carries are left out)."""
    if not tags:
        return {}
    carried = union(select(t.tag, t.post_id).where(t.tag.in_(tags)),  # UNION: a post counts once per tag
                    select(ct.tag, ct.post_id).where(ct.tag.in_(tags))).subquery()
    counts = select(carried.c.tag, func.count().label("posts")).group_by(carried.c.tag)
    return {row.tag: row.posts for row in (await conn.execute(counts)).all()}


async def tag_documents(conn: Connection, tags: list[str]) -> dict[str, Document]:
    """The documents of ``tags`` that some post carries (in its caption or its comments)."""
    return {tag: Document("tag", tag, {"tag": tag}, rank=n) for tag, n in (await tag_counts(conn, tags)).items()}


async def tags_of_posts(conn: Connection, post_ids: Iterable[int]) -> set[str]:
    """The tags the posts carry, in their captions or their comments (whose counts change with them)."""
    post_ids = list(post_ids)
    if not post_ids:
        return set()
    found = set((await conn.execute(select(t.tag).where(t.post_id.in_(post_ids)))).scalars())
    found.update((await conn.execute(select(ct.tag).where(ct.post_id.in_(post_ids)))).scalars())
    return found


# ---- keeping the index up to date (the search.index job) ----------------------------------------

async def refresh(platform: Platform, kind: str, doc_ids: Iterable[str]) -> tuple[int, int]:
    """Make the index hold what the database holds now for these documents: each that exists is
    indexed again (a replace), each that does not (deleted, a post without a caption, a tag no post
    carries any more) is deleted. Idempotent. Returns (indexed, deleted)."""
    wanted = list(dict.fromkeys(doc_ids))
    if kind not in KINDS:
        raise ValueError(f"a search document's kind is one of {', '.join(KINDS)}, not {kind!r}")
    async with platform.db.read(after_write=True) as conn:
        if kind == "tag":
            found: dict[Any, Document] = await tag_documents(conn, wanted)
            keys = wanted
        else:
            numbers = [int(i) for i in wanted if i.isascii() and i.isdigit() and len(i) <= 19]
            found = await (user_documents if kind == "user" else post_documents)(conn, numbers)
            keys = numbers
    present = [found[key] for key in keys if key in found]
    if present:
        await platform.search.index_many(present)
    gone = [str(key) for key in keys if key not in found]
    for doc_id in gone:
        await platform.search.delete(kind, doc_id)
    return len(present), len(gone)


# ---- a reindex, page by page ------------------------------------------------------------------

async def _users(platform: Platform) -> AsyncIterator[Document]:
    after = -1
    while True:
        async with platform.db.read() as conn:
            ids = list((await conn.execute(select(u.id).where(u.id > after).order_by(u.id).limit(PAGE))).scalars())
            found = await user_documents(conn, ids)
        for user_id in ids:
            if user_id in found:
                yield found[user_id]
        if len(ids) < PAGE:
            return
        after = ids[-1]


async def _posts(platform: Platform) -> AsyncIterator[Document]:
    after = -1
    while True:
        async with platform.db.read() as conn:
            rows = (await conn.execute(select(p.id, p.author_id, p.caption, p.like_count)
                                       .where(p.id > after).order_by(p.id).limit(PAGE))).all()
        for row in rows:
            doc = _post_document(row)
            if doc is not None:
                yield doc
        if len(rows) < PAGE:
            return
        after = rows[-1].id


async def _tags(platform: Platform) -> AsyncIterator[Document]:
    """Tags in order, a page at a time: the next ``PAGE`` distinct tags of captions and comments
    (each table read along its index on the tag), then those tags' post counts."""
    after = ""
    while True:
        firsts = [select(column.label("tag")).where(column > after).distinct().order_by(column).limit(PAGE).subquery()
                  for column in (t.tag, ct.tag)]
        merged = union(*(select(first.c.tag) for first in firsts)).subquery()  # in the database's order of text
        async with platform.db.read() as conn:
            page = list((await conn.execute(select(merged.c.tag).order_by(merged.c.tag).limit(PAGE))).scalars())
            found = await tag_documents(conn, page)
        for tag in page:
            if tag in found:
                yield found[tag]
        if len(page) < PAGE:
            return
        after = page[-1]
