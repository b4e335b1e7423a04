"""Follows, likes and comments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import delete, insert, select, update

from summit import ids
from summit.ports import IntegrityError

from summit.security import Principal

from photos import jobs, policies, schema
from photos.errors import Invalid, NotFound
from photos.services import reads
from photos.services.common import Comment, Context, Page, UserBrief, clean_text, extract_tags, now, page_size, parse_cursor

MAX_COMMENT = 1000
T = TypeVar("T")
f, lk, c, u, p = schema.follows.c, schema.likes.c, schema.comments.c, schema.users.c, schema.posts.c
ct = schema.comment_tags.c


async def _user_id(conn, username: str) -> int:  # noqa: ANN001
    row = (await conn.execute(select(u.id).where(u.username == str(username).strip().lower()[:64]))).first()
    if row is None:
        raise NotFound("no such user")
    return row.id


async def _idempotent(write: Callable[[], Awaitable[T]]) -> T:
    """Run a check-then-insert write block; if a twin request inserted the same row between the
    check and the insert (writers run side by side on PostgreSQL), run it once more: it then finds
    the row and does nothing, as the first of the two did all there was to do."""
    try:
        return await write()
    except IntegrityError:
        return await write()


async def follow(ctx: Context, follower_id: int, username: str) -> None:
    """Idempotent: following someone you follow already is not an error."""

    async def write() -> None:
        async with ctx.db.write() as conn:
            followee_id = await _user_id(conn, username)
            if followee_id == follower_id:
                raise Invalid("you cannot follow yourself", field="username")
            exists = await conn.execute(select(f.follower_id).where(f.follower_id == follower_id, f.followee_id == followee_id))
            if exists.first() is None:
                await conn.execute(insert(schema.follows).values(follower_id=follower_id, followee_id=followee_id, created_at=now()))

    await _idempotent(write)
    await reads.forget_following(ctx, follower_id)


async def unfollow(ctx: Context, follower_id: int, username: str) -> None:
    async with ctx.db.write() as conn:
        followee_id = await _user_id(conn, username)
        await conn.execute(delete(schema.follows).where(f.follower_id == follower_id, f.followee_id == followee_id))
    await reads.forget_following(ctx, follower_id)


async def _require_post(conn, post_id: int) -> None:  # noqa: ANN001
    if (await conn.execute(select(p.id).where(p.id == post_id))).first() is None:
        raise NotFound("no such post")


async def _count(conn, column, step: int, post_id: int) -> int:  # noqa: ANN001
    """Move one of a post's counters by ``step``: the LAST statement of its write block, so that
    the post's row, locked from here to the commit, is held for one round trip. A hot post (many
    likes or comments at once) queues its writers on that lock; each statement before the commit
    would add a turn of the busy event loop to every writer's wait."""
    return (await conn.execute(update(schema.posts).where(p.id == post_id).values({column: column + step}).returning(column))).scalar_one()


async def like(ctx: Context, user_id: int, post_id: int) -> int:
    """Like a post (idempotent); returns the post's like count."""

    async def write() -> int:
        async with ctx.db.write() as conn:
            await _require_post(conn, post_id)
            already = await conn.execute(select(lk.user_id).where(lk.post_id == post_id, lk.user_id == user_id))
            if already.first() is None:
                await conn.execute(insert(schema.likes).values(post_id=post_id, user_id=user_id, created_at=now()))
                return await _count(conn, p.like_count, +1, post_id)
            return (await conn.execute(select(p.like_count).where(p.id == post_id))).scalar_one()

    count = await _idempotent(write)
    await reads.forget_like(ctx, user_id, post_id)
    return count


async def unlike(ctx: Context, user_id: int, post_id: int) -> int:
    async with ctx.db.write() as conn:
        await _require_post(conn, post_id)
        result = await conn.execute(delete(schema.likes).where(lk.post_id == post_id, lk.user_id == user_id))
        if result.rowcount:
            count = await _count(conn, p.like_count, -1, post_id)
        else:
            count = (await conn.execute(select(p.like_count).where(p.id == post_id))).scalar_one()
    await reads.forget_like(ctx, user_id, post_id)
    return count


def _comment(ctx: Context, row) -> Comment:  # noqa: ANN001
    author = UserBrief(row.author_id, row.username, row.display_name, ctx.media_url(row.avatar_key))
    return Comment(row.id, row.post_id, author, row.body, row.created_at, extract_tags(row.body))


def _comment_query():  # noqa: ANN202
    return select(schema.comments, u.username, u.display_name, u.avatar_key).select_from(
        schema.comments.join(schema.users, u.id == c.author_id)
    )


async def add_comment(ctx: Context, author_id: int, post_id: int, body: object) -> Comment:
    body = clean_text(body, "body", max_length=MAX_COMMENT, multiline=True, required=True)
    async with ctx.db.write() as conn:
        await _require_post(conn, post_id)
        comment_id = await ctx.db.next_id(conn, ids.shard_of(post_id))
        await conn.execute(
            insert(schema.comments).values(id=comment_id, post_id=post_id, author_id=author_id, body=body, created_at=now())
        )
        tags = extract_tags(body)  # the post is on these tags' pages too, as long as the comment lives
        if tags:
            await conn.execute(insert(schema.comment_tags), [{"comment_id": comment_id, "tag": tag, "post_id": post_id} for tag in tags])
        row = (await conn.execute(_comment_query().where(c.id == comment_id))).one()
        await _count(conn, p.comment_count, +1, post_id)
    await reads.forget_posts(ctx, [post_id])
    if tags:  # the post now counts for these tags
        await jobs.request_index(ctx, tags=tags)
    return _comment(ctx, row)


async def list_comments(ctx: Context, post_id: int, *, cursor: str | None = None, limit: int | None = None) -> Page:
    """Oldest first, as conversations read."""
    size, after = page_size(limit), parse_cursor(cursor)
    query = _comment_query().where(c.post_id == post_id)
    if after is not None:
        query = query.where(c.id > after)
    async with ctx.db.read() as conn:
        await _require_post(conn, post_id)
        rows = (await conn.execute(query.order_by(c.id).limit(size + 1))).all()
    items = [_comment(ctx, row) for row in rows[:size]]
    return Page(items, str(items[-1].id) if len(rows) > size else None)


async def delete_comment(ctx: Context, actor: Principal, comment_id: int) -> None:
    async with ctx.db.write() as conn:
        row = (await conn.execute(select(c.author_id, c.post_id).where(c.id == comment_id))).first()
        if row is None:
            raise NotFound("no such comment")
        await ctx.access.authorize(actor, "photos:DeleteComment", policies.comment_arn(comment_id), policies.owner(row.author_id),
                                   message="only the author or a moderator can delete this comment")
        tags = list((await conn.execute(select(ct.tag).where(ct.comment_id == comment_id))).scalars())
        await conn.execute(delete(schema.comment_tags).where(ct.comment_id == comment_id))  # its tags go with it
        await conn.execute(delete(schema.comments).where(c.id == comment_id))
        await _count(conn, p.comment_count, -1, row.post_id)
    await reads.forget_posts(ctx, [row.post_id])
    if tags:
        await jobs.request_index(ctx, tags=tags)
