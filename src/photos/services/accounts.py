"""Accounts: sign-up, log-in, profiles, avatars and account deletion."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets

import orjson
from sqlalchemy import delete, func, insert, or_, select, update

from summit import ids
from summit.ports import IntegrityError, ObjectError


from photos import media, schema
from photos.errors import Conflict, Invalid, NotFound, Unauthorized
from photos.services.common import Context, Profile, clean_text, now

log = logging.getLogger("photos.accounts")

USERNAME_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_.]{1,28})[a-z0-9_]$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(?:\.[^@\s.]+)+$")
RESERVED = {"api", "static", "media", "login", "logout", "signup", "settings", "tags", "admin", "healthz", "metrics", "u", "p", "feed", "new", "me"}
MIN_PASSWORD, MAX_PASSWORD = 8, 128
AVATAR_PIXELS = 25_000_000
OBJECT_CLEANUP_QUEUE = "objects.delete"


def check_username(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid("username must be text", field="username")
    username = value.strip().lower()
    if not USERNAME_RE.match(username) or ".." in username:
        raise Invalid(
            "username must be 3-30 letters, digits, '_' or '.', not starting or ending with '.'",
            field="username",
        )
    if username in RESERVED:
        raise Invalid(f"username {username!r} is reserved; choose another", field="username")
    return username


def check_email(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid("email must be text", field="email")
    email = value.strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email) or not email.isprintable():
        raise Invalid("email must look like name@example.com", field="email")
    return email


def check_password(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid("password must be text", field="password")
    if len(value) < MIN_PASSWORD:
        raise Invalid(f"password must be at least {MIN_PASSWORD} characters long", field="password")
    if len(value) > MAX_PASSWORD:
        raise Invalid(f"password must be at most {MAX_PASSWORD} characters long", field="password")
    if "\x00" in value:
        raise Invalid("password must not contain NUL characters", field="password")
    return value


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


async def sign_up(ctx: Context, username: object, email: object, password: object) -> Profile:
    username, email, password = check_username(username), check_email(email), check_password(password)
    password_hash = await ctx.passwords.hash_async(password)
    try:
        async with ctx.db.write() as conn:
            taken = (
                await conn.execute(
                    select(schema.users.c.username, schema.users.c.email).where(
                        or_(schema.users.c.username == username, schema.users.c.email == email)
                    )
                )
            ).first()
            if taken is not None:
                raise _taken(taken.username == username)
            user_id = await ctx.db.next_id(conn, ids.shard_for_key(username))
            row = {
                "id": user_id,
                "username": username,
                "email": email,
                "password_hash": password_hash,
                "display_name": username,
                "bio": "",
                "created_at": now(),
            }
            await conn.execute(insert(schema.users).values(**row))
    except IntegrityError:  # a concurrent sign-up won the race
        raise _taken(None) from None
    return await get_profile(ctx, user_id, viewer_id=user_id)


def _taken(username_clash: bool | None) -> Conflict:
    if username_clash is None:
        return Conflict("that username or email is already registered")
    if username_clash:
        return Conflict("that username is taken; choose another", field="username")
    return Conflict("that email is already registered; log in instead", field="email")


async def authenticate(ctx: Context, login: object, password: object) -> Profile:
    """The user whose username or email is ``login``, if ``password`` is theirs."""
    wrong = Unauthorized("wrong username/email or password")
    if not isinstance(login, str) or not isinstance(password, str) or len(password) > MAX_PASSWORD:
        raise wrong
    login = login.strip().lower()
    column = schema.users.c.email if "@" in login else schema.users.c.username
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(schema.users).where(column == login))).first()
    if row is None:
        await ctx.passwords.verify_dummy(password)  # same time as a wrong password
        raise wrong
    if not await ctx.passwords.verify_async(row.password_hash, password):
        raise wrong
    if ctx.passwords.needs_rehash(row.password_hash):
        new_hash = await ctx.passwords.hash_async(password)
        async with ctx.db.write() as conn:
            await conn.execute(update(schema.users).where(schema.users.c.id == row.id).values(password_hash=new_hash))
    return _profile(ctx, row, email=row.email)


async def user_exists(ctx: Context, user_id: int) -> bool:
    async with ctx.db.read() as conn:
        return (await conn.execute(select(schema.users.c.id).where(schema.users.c.id == user_id))).first() is not None


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
        extra["email"] = row.email
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
    return await get_profile(ctx, user_id, viewer_id=user_id)


async def set_avatar(ctx: Context, user_id: int, data: bytes) -> Profile:
    max_pixels = min(AVATAR_PIXELS, ctx.platform.blueprint.uploads.max_pixels)
    cleaned = await asyncio.to_thread(media.clean, data, max_pixels=max_pixels)
    square = (await asyncio.to_thread(media.thumbnails, cleaned.data, max_pixels=max_pixels))["small"]
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
    if old.avatar_key:
        await delete_objects(ctx, [old.avatar_key])
    return await get_profile(ctx, user_id, viewer_id=user_id)


async def delete_account(ctx: Context, user_id: int) -> None:
    """Remove the user's rows (posts, comments, likes, follows cascade) and then their objects."""
    p = schema.posts.c
    async with ctx.db.write() as conn:
        user = (await conn.execute(select(schema.users.c.avatar_key).where(schema.users.c.id == user_id))).first()
        if user is None:
            raise NotFound("no such user")
        keys = [user.avatar_key] if user.avatar_key else []
        rows = await conn.execute(select(p.photo_key, p.thumb_small, p.thumb_medium, p.thumb_large).where(p.author_id == user_id))
        keys += [key for row in rows for key in row if key]
        # counters of other users' posts that this user liked or commented on
        await _uncount(conn, user_id)
        await conn.execute(delete(schema.users).where(schema.users.c.id == user_id))
    await delete_objects(ctx, keys)


async def _uncount(conn, user_id: int) -> None:  # noqa: ANN001
    for table, column in ((schema.likes, "like_count"), (schema.comments, "comment_count")):
        user_col = table.c.user_id if table is schema.likes else table.c.author_id
        counts = (
            select(table.c.post_id, func.count().label("n")).where(user_col == user_id).group_by(table.c.post_id)
        )
        for post_id, n in (await conn.execute(counts)).all():
            col = schema.posts.c[column]
            await conn.execute(update(schema.posts).where(schema.posts.c.id == post_id).values({column: col - n}))


async def delete_objects(ctx: Context, keys: list[str]) -> None:
    """Delete objects now; what fails is queued for the worker to retry (at least once)."""
    failed = []
    for key in keys:
        try:
            await ctx.objects.delete(key)
        except ObjectError:
            log.warning("object delete failed; queued for retry", extra={"key": key})
            failed.append(key)
    if failed:
        await ctx.queue.send(OBJECT_CLEANUP_QUEUE, orjson.dumps({"keys": failed}))
