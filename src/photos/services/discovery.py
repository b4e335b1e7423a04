"""Finding people, posts and tags: search (through the search port) and the explore page.

Search asks the index for hits, then reads what they stand for from the database (the read side's
cache for users and posts): a hit whose row is gone (deleted since it was indexed, the index not
yet told) or that the viewer may not see is dropped, so a page may hold fewer items than ``limit``
while ``next_cursor`` still leads on. Every post is public today; a post visibility rule would go in
``_visible``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import orjson
from sqlalchemy import and_, func, select

from summit import ids
from summit.ports import InvalidQuery, SearchUnavailable

from photos import schema, search
from photos.errors import Invalid, Unavailable
from photos.services import reads
from photos.services.common import Context, Post, UserBrief

KINDS = search.KINDS  # user, post, tag
EXPLORE_POSTS = 12
EXPLORE_PEOPLE = 8
LIKED_WINDOW = 7 * 86400.0  # "most liked" looks at the posts of the last seven days
POPULAR_TTL = 60.0  # the most-followed people are the same for everyone: kept this long in the cache
POPULAR_KEY = "explore:popular"
p, f, u = schema.posts.c, schema.follows.c, schema.users.c


@dataclass(slots=True)
class TagCount:
    tag: str
    posts: int  # posts whose caption or comments carry it


@dataclass(slots=True)
class Result:
    kind: str  # user, post or tag
    item: UserBrief | Post | TagCount


@dataclass(frozen=True)
class Results:
    items: list[Result]
    next_cursor: str | None = None


# ---- search -------------------------------------------------------------------------------------

async def search_all(ctx: Context, text: object, *, kind: str | None = None, cursor: str | None = None, limit: int = 20,
                     viewer_id: int | None = None) -> Results:
    """A page of what matches ``text`` (people, posts and tags, or one ``kind``), best first."""
    if not isinstance(text, str):
        raise Invalid("q must be text", field="q")
    if kind is not None and kind not in KINDS:
        raise Invalid(f"kind is one of {', '.join(KINDS)}, not {str(kind)[:40]!r}", field="kind")
    try:
        page = await ctx.platform.search.query(text, kinds=None if kind is None else [kind], cursor=cursor or None, limit=limit)
    except InvalidQuery as error:
        message = str(error)
        where = next((name for name in ("cursor", "limit") if message.startswith(name)), "q")
        raise Invalid(message, field=where) from None
    except SearchUnavailable:
        raise Unavailable("search is briefly unavailable (its index does not answer): retry in a few seconds") from None
    return Results(await _hydrate(ctx, page.hits, viewer_id), page.next_cursor)


async def _hydrate(ctx: Context, hits: list, viewer_id: int | None) -> list[Result]:  # noqa: ANN001 (summit.ports.Hit)
    wanted: dict[str, list] = {kind: [] for kind in KINDS}
    for hit in hits:
        if hit.kind == "tag":
            wanted["tag"].append(hit.doc_id)
        elif hit.kind in wanted and hit.doc_id.isascii() and hit.doc_id.isdigit() and len(hit.doc_id) <= 19:
            wanted[hit.kind].append(int(hit.doc_id))
    users = await reads.user_briefs(ctx, wanted["user"]) if wanted["user"] else {}
    posts = {post.id: post for post in await reads.posts(ctx, wanted["post"], viewer_id=viewer_id)} if wanted["post"] else {}
    tags: dict[str, int] = {}
    if wanted["tag"]:
        async with ctx.db.read() as conn:
            tags = await search.tag_counts(conn, wanted["tag"])
    out = []
    for hit in hits:
        if hit.kind == "tag" and hit.doc_id in tags:
            out.append(Result("tag", TagCount(hit.doc_id, tags[hit.doc_id])))
        elif hit.kind == "user" and int(hit.doc_id) in users:
            out.append(Result("user", users[int(hit.doc_id)]))
        elif hit.kind == "post" and int(hit.doc_id) in posts and _visible(posts[int(hit.doc_id)], viewer_id):
            out.append(Result("post", posts[int(hit.doc_id)]))
    return out


def _visible(post: Post, viewer_id: int | None) -> bool:
    """Whether ``viewer_id`` may see ``post`` in results: every post is public today."""
    return True


# ---- explore ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Suggestion:
    user: UserBrief
    followers: int
    via: list[str] = field(default_factory=list)  # usernames of people you follow who follow them (a few)
    via_count: int = 0  # how many people you follow follow them


@dataclass(frozen=True)
class Explore:
    recent: list[Post]
    most_liked: list[Post]  # of the last LIKED_WINDOW seconds, most likes first
    people: list[Suggestion]
    people_from_follows: bool  # True: suggested by whom you follow; False: popular people


async def explore(ctx: Context, viewer_id: int | None = None) -> Explore:
    since = ids.id_floor(int((time.time() - LIKED_WINDOW) * 1000))
    async with ctx.db.read() as conn:
        recent = list((await conn.execute(select(p.id).order_by(p.id.desc()).limit(EXPLORE_POSTS))).scalars())
        liked = list((await conn.execute(select(p.id).where(p.id >= since, p.like_count > 0)
                                         .order_by(p.like_count.desc(), p.id.desc()).limit(EXPLORE_POSTS))).scalars())
        people, from_follows = await _suggestions(ctx, conn, viewer_id)
    recent_posts, liked_posts = await asyncio.gather(reads.posts(ctx, recent, viewer_id=viewer_id),
                                                     reads.posts(ctx, liked, viewer_id=viewer_id))
    briefs = await reads.user_briefs(ctx, [s[0] for s in people])
    suggestions = [Suggestion(briefs[user_id], followers, via, via_count) for user_id, followers, via, via_count in people
                   if user_id in briefs]
    return Explore(recent_posts, liked_posts, suggestions, from_follows)


async def _suggestions(ctx: Context, conn, viewer_id: int | None) -> tuple[list[tuple[int, int, list[str], int]], bool]:  # noqa: ANN001
    """(user id, followers, via, via_count) of people to follow, and whether they come from the
    viewer's follows: people followed by those you follow, not by you, not you, the most-followed
    among them first; else (no follows, none of theirs left) the most-followed people."""
    following: set[int] = set()
    found: list[tuple[int, int, list[str], int]] = []
    if viewer_id is not None:
        following = set((await conn.execute(select(f.followee_id).where(f.follower_id == viewer_id))).scalars())
    if following:
        mine, theirs = schema.follows.alias("mine"), schema.follows.alias("theirs")
        via_count = func.count().label("via_count")
        query = (select(theirs.c.followee_id, via_count)
                 .select_from(mine.join(theirs, theirs.c.follower_id == mine.c.followee_id))
                 .where(mine.c.follower_id == viewer_id, theirs.c.followee_id != viewer_id,
                        theirs.c.followee_id.not_in(select(f.followee_id).where(f.follower_id == viewer_id)))
                 .group_by(theirs.c.followee_id).order_by(via_count.desc(), theirs.c.followee_id.desc()).limit(EXPLORE_PEOPLE))
        rows = (await conn.execute(query)).all()
        if rows:
            candidates = [row.followee_id for row in rows]
            followers = await _follower_counts(conn, candidates)
            vias = await _via(conn, viewer_id, candidates)
            found = [(row.followee_id, followers.get(row.followee_id, 0), vias.get(row.followee_id, []), row.via_count) for row in rows]
    if found:
        return found, True
    skip = following | ({viewer_id} if viewer_id is not None else set())
    popular = [(user_id, n, [], 0) for user_id, n in await _popular(ctx, conn) if user_id not in skip]
    return popular[:EXPLORE_PEOPLE], False


async def _follower_counts(conn, user_ids: list[int]) -> dict[int, int]:  # noqa: ANN001
    counts = select(f.followee_id, func.count()).where(f.followee_id.in_(user_ids)).group_by(f.followee_id)
    return {user_id: n for user_id, n in (await conn.execute(counts)).all()}


async def _via(conn, viewer_id: int, user_ids: list[int], per_user: int = 2) -> dict[int, list[str]]:  # noqa: ANN001
    """For each of ``user_ids``: the usernames of a few people the viewer follows who follow them."""
    mine, theirs = schema.follows.alias("mine"), schema.follows.alias("theirs")
    query = (select(theirs.c.followee_id, u.username)
             .select_from(mine.join(theirs, and_(theirs.c.follower_id == mine.c.followee_id, theirs.c.followee_id.in_(user_ids)))
                          .join(schema.users, u.id == theirs.c.follower_id))
             .where(mine.c.follower_id == viewer_id).order_by(theirs.c.followee_id, u.username))
    out: dict[int, list[str]] = {}
    for followee, username in (await conn.execute(query)).all():
        names = out.setdefault(followee, [])
        if len(names) < per_user:
            names.append(username)
    return out


async def _popular(ctx: Context, conn) -> list[tuple[int, int]]:  # noqa: ANN001
    """(user id, followers) of the most-followed people, then the newest ones to fill the list
    (a young service has few follows), enough for any viewer once they and their follows are left
    out. The same for everyone: kept in the cache for POPULAR_TTL seconds (a miss reads it again)."""
    cached = await ctx.cache.get(POPULAR_KEY)
    if cached is not None:
        return [tuple(pair) for pair in orjson.loads(cached)]  # type: ignore[misc]
    size = 5 * EXPLORE_PEOPLE
    counts = (select(f.followee_id, func.count().label("n")).group_by(f.followee_id)
              .order_by(func.count().desc(), f.followee_id.desc()).limit(size))
    popular = [(user_id, n) for user_id, n in (await conn.execute(counts)).all()]
    if len(popular) < size:
        seen = {user_id for user_id, _ in popular}
        newest = await conn.execute(select(u.id).order_by(u.id.desc()).limit(size))
        popular.extend((user_id, 0) for user_id in newest.scalars() if user_id not in seen)
        popular = popular[:size]
    await ctx.cache.set(POPULAR_KEY, orjson.dumps(popular), ttl=POPULAR_TTL)
    return popular
