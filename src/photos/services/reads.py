"""What the app reads most, through the cache port: posts, their authors, who liked them, home
feeds and user timelines (cache-aside), so that a warm feed or post read issues no SQL.

The entries (each also expires after ``ENTRY_TTL``, a bound on staleness should an invalidation
ever be lost):

    post:<id>             the post's own row, the same for every viewer (JSON)
    user:<id>             an author's brief: username, display name, avatar (JSON)
    liked:<user>:<post>   b"1" or b"0"
    timeline:<user>       the ids of the user's newest posts, newest first (at most ``WINDOW``),
                          and whether that is all of them (JSON)
    following:<user>      the ids of the people the user follows (JSON)

A home feed is the merge of the timelines of the people the user follows and their own (fan-out
on read): a new post changes one entry, its author's timeline, however many followers they have.
A page that the cached windows cannot answer exactly (deep in the past) is read from the database.

Writers call the ``forget_*`` functions once their transaction has committed; the next read
fills the entry again (with ``add``: a fill never overwrites an entry; posts, authors and
timelines through ``Cache.get_many_or_fill``, so concurrent misses of a hot key in one process
wait for a single database read). With a cache server (Redis) that cannot be reached, every read
is a miss and goes to the database: slower, never wrong. With several web processes on a cache
that each process keeps for itself, entries would go stale in the others: ``Context.read_cache``
is None then, and every read goes to the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from sqlalchemy import bindparam, func, select

from photos import schema
from photos.errors import NotFound
from photos.services.common import Context, Post, Thumbnails, UserBrief, extract_tags

ENTRY_TTL = 300.0
WINDOW = 100  # post ids kept per timeline
p, u, lk, f = schema.posts.c, schema.users.c, schema.likes.c, schema.follows.c

_POSTS = select(schema.posts).where(p.id.in_(bindparam("ids", expanding=True)))
_AUTHORS = select(u.id, u.username, u.display_name, u.avatar_key).where(u.id.in_(bindparam("ids", expanding=True)))
_LIKED = select(lk.post_id).where(lk.user_id == bindparam("user"), lk.post_id.in_(bindparam("ids", expanding=True)))
_FOLLOWING = select(f.followee_id).where(f.follower_id == bindparam("user"))
_newest = func.row_number().over(partition_by=p.author_id, order_by=p.id.desc()).label("n")
_ranked = select(p.author_id, p.id, _newest).where(p.author_id.in_(bindparam("ids", expanding=True))).subquery()
_TIMELINES = select(_ranked.c.author_id, _ranked.c.id).where(_ranked.c.n <= bindparam("rows"))


# ---- posts ------------------------------------------------------------------------------------

async def get_post(ctx: Context, post_id: int, *, viewer_id: int | None = None) -> Post:
    found = await posts(ctx, [post_id], viewer_id=viewer_id)
    if not found:
        raise NotFound("no such post")
    return found[0]


async def posts(ctx: Context, post_ids: list[int], *, viewer_id: int | None = None) -> list[Post]:
    """The posts of ``post_ids`` that exist, in that order, as ``viewer_id`` sees them."""
    rows = await _cached_rows(ctx, "post", post_ids, _POSTS)
    present = [i for i in post_ids if i in rows]
    author_ids = list({rows[i]["author_id"] for i in present})
    if viewer_id is None or not present:
        authors, liked = await _cached_rows(ctx, "user", author_ids, _AUTHORS), set()
    elif ctx.read_cache is not None and ctx.read_cache.shared:  # a cache server: both lookups in one round trip
        authors, liked = await asyncio.gather(_cached_rows(ctx, "user", author_ids, _AUTHORS), _liked(ctx, viewer_id, present))
    else:  # in process, a lookup costs less than running two at once
        authors, liked = await _cached_rows(ctx, "user", author_ids, _AUTHORS), await _liked(ctx, viewer_id, present)
    return [_post(ctx, rows[i], authors[rows[i]["author_id"]], i in liked) for i in present if rows[i]["author_id"] in authors]


async def user_briefs(ctx: Context, user_ids: list[int]) -> dict[int, UserBrief]:
    """The briefs (username, display name, avatar) of the users of ``user_ids`` that exist."""
    rows = await _cached_rows(ctx, "user", user_ids, _AUTHORS)
    return {i: UserBrief(row["id"], row["username"], row["display_name"], ctx.media_url(row["avatar_key"])) for i, row in rows.items()}


def _post(ctx: Context, row: dict[str, Any], author: dict[str, Any], liked: bool) -> Post:
    media = ctx.media_url
    return Post(
        id=row["id"],
        author=UserBrief(author["id"], author["username"], author["display_name"], media(author["avatar_key"])),
        caption=row["caption"],
        tags=list(row["tags"]) if "tags" in row else extract_tags(row["caption"]),
        photo_url=media(row["photo_key"]) or "",
        content_type=row["content_type"],
        width=row["width"],
        height=row["height"],
        thumbnails=Thumbnails(bool(row["thumbs_ready"]), media(row["thumb_small"]), media(row["thumb_medium"]), media(row["thumb_large"])),
        like_count=row["like_count"],
        comment_count=row["comment_count"],
        liked_by_me=liked,
        created_at=row["created_at"],
        edited_at=row["edited_at"],
    )


async def _cached_rows(ctx: Context, kind: str, ids: list[int], query: Any) -> dict[int, dict[str, Any]]:
    """Rows by id: from ``<kind>:<id>`` entries, the rest from the database (and then cached)."""
    keys = {f"{kind}:{i}": i for i in ids}

    async def fill(missing: list[str]) -> dict[str, bytes]:
        async with _fill(ctx) as conn:
            fetched = (await conn.execute(query, {"ids": [keys[key] for key in missing]})).mappings().all()
        entries = {}
        for row in fetched:
            entry = dict(row)
            if kind == "post":  # computed once, kept with the row
                entry["tags"] = extract_tags(row["caption"])
            # column names are str subclasses (SQLAlchemy's quoted_name), which orjson takes as keys only so
            entries[f"{kind}:{row['id']}"] = orjson.dumps(entry, option=orjson.OPT_NON_STR_KEYS)
        return entries

    return {keys[key]: orjson.loads(value) for key, value in (await _read_through(ctx, list(keys), fill)).items()}


async def _liked(ctx: Context, user_id: int, post_ids: list[int]) -> set[int]:
    keys = {i: f"liked:{user_id}:{i}" for i in post_ids}
    found = await _get_many(ctx, keys.values())
    liked = {i for i, key in keys.items() if found.get(key) == b"1"}
    missing = [i for i, key in keys.items() if key not in found]
    if missing:
        async with _fill(ctx) as conn:
            fresh = set((await conn.execute(_LIKED, {"user": user_id, "ids": missing})).scalars())
        liked |= fresh
        await _add_many(ctx, {keys[i]: b"1" if i in fresh else b"0" for i in missing})
    return liked


# ---- feeds and timelines ----------------------------------------------------------------------

async def feed_page(ctx: Context, user_id: int, before: int | None, size: int) -> tuple[list[int], bool] | None:
    """The ids of a home-feed page and whether more follow, or None if the cached windows cannot
    tell this page exactly (the caller reads it from the database)."""
    return await timeline_page(ctx, [*await following(ctx, user_id), user_id], before, size)


async def following(ctx: Context, user_id: int) -> list[int]:
    key = f"following:{user_id}"
    cached = (await _get_many(ctx, [key])).get(key)
    if cached is not None:
        return orjson.loads(cached)
    async with _fill(ctx) as conn:
        ids = list((await conn.execute(_FOLLOWING, {"user": user_id})).scalars())
    await _add_many(ctx, {key: orjson.dumps(ids)})
    return ids


async def timeline_page(ctx: Context, authors: list[int], before: int | None, size: int) -> tuple[list[int], bool] | None:
    """A page of the merged timelines of ``authors`` (see ``feed_page``)."""
    timelines = await _timelines(ctx, authors)
    candidates: list[int] = []
    hidden_below: int | None = None  # a truncated window may hide posts older than its oldest
    for ids, complete in timelines.values():
        if ids and not complete:
            hidden_below = ids[-1] if hidden_below is None else max(hidden_below, ids[-1])
        candidates.extend(ids if before is None else (i for i in ids if i < before))
    candidates.sort(reverse=True)
    page = candidates[: size + 1]
    exact = hidden_below is None or (len(page) == size + 1 and page[-1] >= hidden_below)
    if not exact:
        return None
    return page[:size], len(page) > size


async def _timelines(ctx: Context, authors: list[int]) -> dict[int, tuple[list[int], bool]]:
    keys = {f"timeline:{a}": a for a in authors}

    async def fill(missing: list[str]) -> dict[str, bytes]:
        newest: dict[int, list[int]] = {keys[key]: [] for key in missing}
        async with _fill(ctx) as conn:
            for author_id, post_id in (await conn.execute(_TIMELINES, {"ids": list(newest), "rows": WINDOW + 1})).all():
                newest[author_id].append(post_id)
        entries = {}
        for author, ids in newest.items():
            ids.sort(reverse=True)
            entries[f"timeline:{author}"] = orjson.dumps({"ids": ids[:WINDOW], "complete": len(ids) <= WINDOW})
        return entries

    out: dict[int, tuple[list[int], bool]] = {}
    for key, value in (await _read_through(ctx, list(keys), fill)).items():
        entry = orjson.loads(value)
        out[keys[key]] = (entry["ids"], entry["complete"])
    return out


# ---- invalidation (after the writing transaction commits) ----------------------------------------

async def forget_posts(ctx: Context, post_ids: Iterable[int]) -> None:
    await _forget(ctx, (f"post:{i}" for i in post_ids))


async def forget_timeline(ctx: Context, author_id: int) -> None:
    await _forget(ctx, [f"timeline:{author_id}"])


async def forget_following(ctx: Context, user_id: int) -> None:
    await _forget(ctx, [f"following:{user_id}"])


async def forget_user(ctx: Context, user_id: int) -> None:
    await _forget(ctx, [f"user:{user_id}", f"timeline:{user_id}", f"following:{user_id}"])


async def forget_like(ctx: Context, user_id: int, post_id: int) -> None:
    await _forget(ctx, [f"liked:{user_id}:{post_id}", f"post:{post_id}"])


def _fill(ctx: Context):  # noqa: ANN202
    """A read block whose rows go into the shared cache: it must see every committed write (the
    primary, where there are replicas), or a lagging replica could put an old row back in the cache
    right after a write removed it, until the entry's TTL. Without a cache, any replica that has
    this client's own writes will do."""
    return ctx.db.read(after_write=ctx.read_cache is not None)


async def _read_through(ctx: Context, keys: list[str], fill: Callable[[list[str]], Awaitable[dict[str, bytes]]]) -> dict[str, bytes]:
    """The entries of ``keys``: cached ones, the others from ``fill``, cached in turn. Concurrent
    misses of one key in a process wait for one fill (a hot post just invalidated by a like costs
    one database read, not one per request); without a read cache, straight from ``fill``."""
    if not keys:
        return {}
    if ctx.read_cache is None:
        return await fill(keys)
    return await ctx.read_cache.get_many_or_fill(keys, fill, ttl=ENTRY_TTL)


async def _get_many(ctx: Context, keys: Iterable[str]) -> dict[str, bytes]:
    cache = ctx.read_cache
    return {} if cache is None else await cache.get_many(keys)


async def _add_many(ctx: Context, entries: dict[str, bytes]) -> None:
    """Fills add, never over an entry a concurrent fill just stored (one round trip to a server)."""
    if ctx.read_cache is not None:
        await ctx.read_cache.add_many(entries, ttl=ENTRY_TTL)


async def _forget(ctx: Context, keys: Iterable[str]) -> None:
    if ctx.read_cache is not None:
        for key in keys:
            await ctx.read_cache.delete(key)
