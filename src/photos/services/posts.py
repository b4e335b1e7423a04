"""Posts: upload, read, edit, delete; the home feed, user pages and hashtag pages; thumbnails."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets

from sqlalchemy import delete, insert, or_, select, update

from summit import ids
from summit.ports import ObjectError, ObjectNotFound

from summit.security import Principal

from photos import jobs, media, policies, schema, search
from photos.services import reads
from photos.errors import Invalid, NotFound
from photos.services.accounts import delete_objects
from photos.uploads import check_size
from photos.services.common import (
    Context,
    Page,
    Post,
    clean_text,
    extract_tags,
    now,
    page_size,
    parse_cursor,
)

log = logging.getLogger("photos.posts")

MAX_CAPTION = 2200
p, u = schema.posts.c, schema.users.c


def _object_key(prefix: str, data: bytes, extension: str) -> str:
    """Content-addressed with a per-upload secret salt: unguessable, and immutable (new bytes, new key)."""
    digest = hashlib.blake2b(data, key=secrets.token_bytes(16), digest_size=20).hexdigest()
    return f"{prefix}/{digest}.{extension}"


async def create_post(ctx: Context, author_id: int, data: bytes, caption: object = "") -> Post:
    caption = clean_text(caption, "caption", max_length=MAX_CAPTION, multiline=True)
    limits = ctx.platform.blueprint.uploads
    check_size(data, limits.max_photo_bytes)
    try:
        cleaned = await asyncio.to_thread(media.clean, data, max_pixels=limits.max_pixels)
    except media.BadImage as error:
        raise Invalid(str(error), field="photo") from None
    key = _object_key("p", cleaned.data, cleaned.extension)
    await ctx.objects.put(key, cleaned.data, content_type=cleaned.content_type)
    try:
        async with ctx.db.write() as conn:
            if (await conn.execute(select(u.id).where(u.id == author_id))).first() is None:
                raise NotFound("no such user")
            post_id = await ctx.db.next_id(conn, ids.shard_of(author_id))
            await conn.execute(
                insert(schema.posts).values(
                    id=post_id,
                    author_id=author_id,
                    caption=caption,
                    photo_key=key,
                    content_type=cleaned.content_type,
                    width=cleaned.width,
                    height=cleaned.height,
                    created_at=now(),
                )
            )
            await _set_tags(conn, post_id, caption)
    except BaseException:
        try:
            await ctx.objects.delete(key)  # no post row, so no object either
        except ObjectError:  # the store went away too: an orphan with an unguessable key, harmless
            log.warning("could not delete the object of a post that was not written", extra={"key": key})
        raise
    await reads.forget_timeline(ctx, author_id)
    await jobs.request_thumbnails(ctx, post_id)
    tags = extract_tags(caption)
    if caption or tags:
        await jobs.request_index(ctx, posts=[post_id], tags=tags)
    return await get_post(ctx, post_id, viewer_id=author_id)


async def _set_tags(conn, post_id: int, caption: str) -> None:  # noqa: ANN001
    await conn.execute(delete(schema.post_tags).where(schema.post_tags.c.post_id == post_id))
    tags = extract_tags(caption)
    if tags:
        await conn.execute(insert(schema.post_tags), [{"tag": tag, "post_id": post_id} for tag in tags])


async def get_post(ctx: Context, post_id: int, *, viewer_id: int | None = None) -> Post:
    return await reads.get_post(ctx, post_id, viewer_id=viewer_id)


async def _authorized_post(ctx: Context, conn, actor: Principal, post_id: int, action: str, message: str):  # noqa: ANN001, ANN202
    row = (await conn.execute(select(schema.posts).where(p.id == post_id))).first()
    if row is None:
        raise NotFound("no such post")
    await ctx.access.authorize(actor, action, policies.post_arn(post_id), policies.owner(row.author_id), message=message)
    return row


async def edit_caption(ctx: Context, actor: Principal, post_id: int, caption: object) -> Post:
    caption = clean_text(caption, "caption", max_length=MAX_CAPTION, multiline=True)
    async with ctx.db.write() as conn:
        await _authorized_post(ctx, conn, actor, post_id, "photos:EditPost", "only the author can edit this post")
        before = set((await conn.execute(select(schema.post_tags.c.tag).where(schema.post_tags.c.post_id == post_id))).scalars())
        await conn.execute(update(schema.posts).where(p.id == post_id).values(caption=caption, edited_at=now()))
        await _set_tags(conn, post_id, caption)
    await reads.forget_posts(ctx, [post_id])
    await jobs.request_index(ctx, posts=[post_id], tags=sorted(before | set(extract_tags(caption))))
    return await get_post(ctx, post_id, viewer_id=actor.user_id)


async def delete_post(ctx: Context, actor: Principal, post_id: int) -> None:
    async with ctx.db.write() as conn:
        row = await _authorized_post(ctx, conn, actor, post_id, "photos:DeletePost", "only the author or a moderator can delete this post")
        tags = await search.tags_of_posts(conn, [post_id])
        await conn.execute(delete(schema.posts).where(p.id == post_id))
    await reads.forget_posts(ctx, [post_id])
    await reads.forget_timeline(ctx, row.author_id)
    await jobs.request_index(ctx, posts=[post_id], tags=sorted(tags))
    await delete_objects(ctx, [k for k in (row.photo_key, row.thumb_small, row.thumb_medium, row.thumb_large) if k])


async def _page(ctx: Context, query, cursor: str | None, limit: int | None, viewer_id: int | None) -> Page:  # noqa: ANN001
    """A page of post ids from the database (``query`` selects them), then the posts themselves."""
    size, before = page_size(limit), parse_cursor(cursor)
    if before is not None:
        query = query.where(p.id < before)
    async with ctx.db.read() as conn:
        ids = list((await conn.execute(query.order_by(p.id.desc()).limit(size + 1))).scalars())
    return await _posts_page(ctx, ids[:size], len(ids) > size, viewer_id)


async def _posts_page(ctx: Context, ids: list[int], more: bool, viewer_id: int | None) -> Page:
    items = await reads.posts(ctx, ids, viewer_id=viewer_id)
    return Page(items, str(ids[-1]) if more and ids else None)


async def feed(ctx: Context, user_id: int, *, cursor: str | None = None, limit: int | None = None) -> Page:
    """Posts of the people ``user_id`` follows, and their own, newest first (fan-out on read)."""
    size, before = page_size(limit), parse_cursor(cursor)
    cached = await reads.feed_page(ctx, user_id, before, size)
    if cached is not None:
        return await _posts_page(ctx, *cached, user_id)
    followees = select(schema.follows.c.followee_id).where(schema.follows.c.follower_id == user_id)
    return await _page(ctx, select(p.id).where(or_(p.author_id.in_(followees), p.author_id == user_id)), cursor, limit, user_id)


async def user_posts(
    ctx: Context, user_id: int, *, viewer_id: int | None = None, cursor: str | None = None, limit: int | None = None
) -> Page:
    size, before = page_size(limit), parse_cursor(cursor)
    cached = await reads.timeline_page(ctx, [user_id], before, size)
    if cached is not None:
        return await _posts_page(ctx, *cached, viewer_id)
    return await _page(ctx, select(p.id).where(p.author_id == user_id), cursor, limit, viewer_id)


async def tag_posts(
    ctx: Context, tag: str, *, viewer_id: int | None = None, cursor: str | None = None, limit: int | None = None
) -> Page:
    """Posts whose caption or comments carry ``tag``, newest first."""
    tag = str(tag).lstrip("#").lower()
    if not extract_tags("#" + tag) == [tag]:
        raise Invalid("a tag is 1-100 letters, digits or '_'", field="tag")
    in_captions = select(schema.post_tags.c.post_id).where(schema.post_tags.c.tag == tag)
    in_comments = select(schema.comment_tags.c.post_id).where(schema.comment_tags.c.tag == tag)
    return await _page(ctx, select(p.id).where(or_(p.id.in_(in_captions), p.id.in_(in_comments))), cursor, limit, viewer_id)


async def make_thumbnails(ctx: Context, post_id: int) -> None:
    """The thumbnail job: idempotent, so a redelivered message does no harm. It reads the primary:
    the post was written by another process a moment ago."""
    async with ctx.db.read(after_write=True) as conn:
        row = (await conn.execute(select(p.photo_key, p.thumbs_ready).where(p.id == post_id))).first()
    if row is None or row.thumbs_ready:
        return
    try:
        original = await ctx.objects.get(row.photo_key)
    except ObjectNotFound:
        log.warning("photo object missing; post deleted meanwhile?", extra={"post_id": str(post_id)})
        return
    limits = ctx.platform.blueprint.uploads
    thumbs = await asyncio.to_thread(media.thumbnails, original.data, max_pixels=limits.max_pixels)
    keys = {}
    for name, data in thumbs.items():
        keys[name] = _object_key("t", data, "webp")
        await ctx.objects.put(keys[name], data, content_type="image/webp")
    async with ctx.db.write() as conn:
        result = await conn.execute(
            update(schema.posts)
            .where(p.id == post_id, p.thumbs_ready.is_(False))
            .values(thumbs_ready=True, thumb_small=keys["small"], thumb_medium=keys["medium"], thumb_large=keys["large"])
        )
    if result.rowcount == 0:  # deleted meanwhile, or another delivery finished first
        await delete_objects(ctx, list(keys.values()))
    else:
        await reads.forget_posts(ctx, [post_id])


async def pending_thumbnails(ctx: Context, limit: int = 1000) -> list[int]:
    async with ctx.db.read() as conn:
        rows = await conn.execute(select(p.id).where(p.thumbs_ready.is_(False)).order_by(p.id).limit(limit))
        return [r.id for r in rows]
