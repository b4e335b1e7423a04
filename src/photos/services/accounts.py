"""Profiles: what others see of a user of the pool (display name, bio, avatar, counts), created when
the pool confirms the account, and removed with it. Credentials live in the user pool."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets

from sqlalchemy import delete, func, insert, select, update

from summit.ports import CdnError, Connection, ObjectError
from summit.security import PoolUser

from photos import jobs, media, schema, search
from photos.errors import Invalid, NotFound
from photos.services import reads
from photos.services.common import Context, Profile, clean_text, now
from photos.uploads import check_size

log = logging.getLogger("photos.accounts")

# URL segments of the web UI: usernames that would shadow a page are refused at sign-up
RESERVED = frozenset({"api", "static", "media", "login", "logout", "signup", "settings", "tags", "admin", "healthz",
                      "metrics", "u", "p", "feed", "new", "me", "confirm", "dev", "reset", "mfa", "posts", "comments",
                      "search", "explore"})
AVATAR_PIXELS = 25_000_000


async def create_profile(conn: Connection, user: PoolUser) -> None:
    """The pool's on_confirmed hook: a profile row with the pool's id and username."""
    exists = await conn.execute(select(schema.users.c.id).where(schema.users.c.id == user.id))
    if exists.first() is None:
        await conn.execute(insert(schema.users).values(id=user.id, username=user.username, display_name=user.username, bio="", created_at=now()))


def _profile(ctx: Context, row, **extra) -> Profile:  # noqa: ANN001
    return Profile(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        bio=row.bio,
        avatar_url=ctx.media_url(row.avatar_key),
        created_at=row.created_at,
        **extra,
    )


async def _counts(conn, user_id: int) -> dict[str, int]:  # noqa: ANN001
    followers = select(func.count()).select_from(schema.follows).where(schema.follows.c.followee_id == user_id)
    following = select(func.count()).select_from(schema.follows).where(schema.follows.c.follower_id == user_id)
    posts = select(func.count()).select_from(schema.posts).where(schema.posts.c.author_id == user_id)
    row = (await conn.execute(select(followers.scalar_subquery(), following.scalar_subquery(), posts.scalar_subquery()))).one()
    return {"followers": row[0], "following": row[1], "posts": row[2]}


async def get_profile(ctx: Context, user_id: int, *, viewer_id: int | None = None) -> Profile:
    return await _get_profile(ctx, schema.users.c.id == user_id, viewer_id)


async def get_profile_by_username(ctx: Context, username: str, *, viewer_id: int | None = None) -> Profile:
    return await _get_profile(ctx, schema.users.c.username == str(username).strip().lower()[:64], viewer_id)


async def _get_profile(ctx: Context, where, viewer_id: int | None) -> Profile:  # noqa: ANN001
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(schema.users).where(where))).first()
        if row is None:
            raise NotFound("no such user")
        extra = await _counts(conn, row.id)
        if viewer_id is not None and viewer_id != row.id:
            follow = schema.follows.c
            q = select(follow.follower_id).where(follow.follower_id == viewer_id, follow.followee_id == row.id)
            extra["followed_by_me"] = (await conn.execute(q)).first() is not None
    if viewer_id == row.id:
        extra["email"] = (await ctx.identity.get_user(row.id)).email
    return _profile(ctx, row, **extra)


async def update_profile(ctx: Context, user_id: int, *, display_name: object = None, bio: object = None) -> Profile:
    values = {}
    if display_name is not None:
        values["display_name"] = clean_text(display_name, "display_name", max_length=60)
    if bio is not None:
        values["bio"] = clean_text(bio, "bio", max_length=300, multiline=True)
    if values:
        async with ctx.db.write() as conn:
            result = await conn.execute(update(schema.users).where(schema.users.c.id == user_id).values(**values))
            if result.rowcount == 0:
                raise NotFound("no such user")
        await reads.forget_user(ctx, user_id)
        await jobs.request_index(ctx, users=[user_id])
    return await get_profile(ctx, user_id, viewer_id=user_id)


async def set_avatar(ctx: Context, user_id: int, data: bytes) -> Profile:
    check_size(data, ctx.platform.blueprint.uploads.max_photo_bytes)
    max_pixels = min(AVATAR_PIXELS, ctx.platform.blueprint.uploads.max_pixels)
    try:
        cleaned = await asyncio.to_thread(media.clean, data, max_pixels=max_pixels)
        square = (await asyncio.to_thread(media.thumbnails, cleaned.data, max_pixels=max_pixels))["small"]
    except media.BadImage as error:
        raise Invalid(str(error), field="photo") from None
    key = f"a/{hashlib.blake2b(square, key=secrets.token_bytes(16), digest_size=20).hexdigest()}.webp"
    await ctx.objects.put(key, square, content_type="image/webp")
    try:
        async with ctx.db.write() as conn:
            old = (await conn.execute(select(schema.users.c.avatar_key).where(schema.users.c.id == user_id))).first()
            if old is None:
                raise NotFound("no such user")
            await conn.execute(update(schema.users).where(schema.users.c.id == user_id).values(avatar_key=key))
    except BaseException:
        await ctx.objects.delete(key)
        raise
    await reads.forget_user(ctx, user_id)
    if old.avatar_key:
        await delete_objects(ctx, [old.avatar_key])
    return await get_profile(ctx, user_id, viewer_id=user_id)


async def delete_account(ctx: Context, user_id: int) -> None:
    """Remove the user's rows (posts, comments, likes, follows cascade) and the pool's account in one
    transaction, then their objects."""
    keys: list[str] = []
    touched: list[int] = []  # posts that go, and posts whose counters change
    own: list[int] = []  # posts that go
    tags: set[str] = set()  # tags whose post counts change: of those posts, and of the user's comments

    async def remove_rows(conn: Connection, user: PoolUser) -> None:
        p = schema.posts.c
        profile = (await conn.execute(select(schema.users.c.avatar_key).where(schema.users.c.id == user_id))).first()
        if profile is not None and profile.avatar_key:
            keys.append(profile.avatar_key)
        rows = await conn.execute(select(p.id, p.photo_key, p.thumb_small, p.thumb_medium, p.thumb_large).where(p.author_id == user_id))
        for row in rows:
            own.append(row.id)
            keys.extend(key for key in row[1:] if key)
        touched.extend(own)
        tags.update(await search.tags_of_posts(conn, own))
        commented = select(schema.comment_tags.c.tag).join(schema.comments, schema.comments.c.id == schema.comment_tags.c.comment_id)
        tags.update((await conn.execute(commented.where(schema.comments.c.author_id == user_id))).scalars())
        touched.extend(await _uncount(conn, user_id))  # counters of other users' posts this user liked or commented on
        await conn.execute(delete(schema.users).where(schema.users.c.id == user_id))

    await ctx.identity.delete_user(user_id, also=remove_rows)
    await reads.forget_user(ctx, user_id)
    await reads.forget_posts(ctx, touched)
    await jobs.request_index(ctx, users=[user_id], posts=own, tags=sorted(tags))
    await delete_objects(ctx, keys)


async def _uncount(conn, user_id: int) -> list[int]:  # noqa: ANN001
    """Take the user's likes and comments off the counters of the posts they were on; returns those posts."""
    changed = []
    for table, column in ((schema.likes, "like_count"), (schema.comments, "comment_count")):
        user_col = table.c.user_id if table is schema.likes else table.c.author_id
        counts = select(table.c.post_id, func.count().label("n")).where(user_col == user_id).group_by(table.c.post_id)
        for post_id, n in (await conn.execute(counts)).all():
            col = schema.posts.c[column]
            await conn.execute(update(schema.posts).where(schema.posts.c.id == post_id).values({column: col - n}))
            changed.append(post_id)
    return changed


async def delete_objects(ctx: Context, keys: list[str]) -> None:
    """Delete objects now (what fails is queued for the worker to retry, at least once), and have
    the CDN stop serving their URLs in every tier."""
    failed = []
    for key in keys:
        try:
            await ctx.objects.delete(key)
        except ObjectError:
            log.warning("object delete failed; queued for retry", extra={"key": key})
            failed.append(key)
    if failed:
        await jobs.request_object_cleanup(ctx, failed)
    try:
        await ctx.platform.cdn.purge([url for url in map(ctx.media_url, keys) if url])
    except CdnError as error:  # the tier that missed it serves the photo until it comes back
        log.warning("CDN purge failed: %s", error, extra={"keys": keys})
