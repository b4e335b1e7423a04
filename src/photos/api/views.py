"""JSON shapes of the API. IDs are strings: JavaScript numbers stop being exact above 2^53.

The pydantic models document the responses in OpenAPI; handlers build plain dicts with the
functions below and serialise them with orjson (no per-response validation on the hot path).
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from photos.services.common import Comment, Page, Post, Profile, UserBrief
from photos.services.discovery import Result, Results, TagCount


def iso(ts: float | None) -> str | None:
    return None if ts is None else _iso(ts)


@functools.lru_cache(maxsize=8192)  # the same posts' times, formatted again on every feed read
def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def user_brief(user: UserBrief) -> dict[str, Any]:
    return {"id": str(user.id), "username": user.username, "display_name": user.display_name, "avatar_url": user.avatar_url}


def profile(p: Profile) -> dict[str, Any]:
    out = {
        "id": str(p.id),
        "username": p.username,
        "display_name": p.display_name,
        "bio": p.bio,
        "avatar_url": p.avatar_url,
        "created_at": iso(p.created_at),
        "followers": p.followers,
        "following": p.following,
        "posts": p.posts,
        "followed_by_me": p.followed_by_me,
    }
    if p.email is not None:
        out["email"] = p.email
    return out


def post(p: Post) -> dict[str, Any]:
    t = p.thumbnails
    return {
        "id": str(p.id),
        "author": user_brief(p.author),
        "caption": p.caption,
        "tags": p.tags,
        "photo_url": p.photo_url,
        "content_type": p.content_type,
        "width": p.width,
        "height": p.height,
        "thumbnails": {"ready": t.ready, "small": t.small, "medium": t.medium, "large": t.large},
        "like_count": p.like_count,
        "comment_count": p.comment_count,
        "liked_by_me": p.liked_by_me,
        "created_at": iso(p.created_at),
        "edited_at": iso(p.edited_at),
    }


def comment(c: Comment) -> dict[str, Any]:
    return {"id": str(c.id), "post_id": str(c.post_id), "author": user_brief(c.author), "body": c.body, "tags": c.tags,
            "created_at": iso(c.created_at)}


def page(pg: Page, render) -> dict[str, Any]:  # noqa: ANN001
    return {"items": [render(item) for item in pg.items], "next_cursor": pg.next_cursor}


def tag_count(t: TagCount) -> dict[str, Any]:
    return {"tag": t.tag, "posts": t.posts}


_RESULT = {"user": user_brief, "post": post, "tag": tag_count}


def result(r: Result) -> dict[str, Any]:
    return {"kind": r.kind, r.kind: _RESULT[r.kind](r.item)}  # type: ignore[operator]


def results(rs: Results) -> dict[str, Any]:
    return {"items": [result(r) for r in rs.items], "next_cursor": rs.next_cursor}


# ---- request bodies ---------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ProfileUpdate(_Body):
    display_name: str | None = Field(None, max_length=60)
    bio: str | None = Field(None, max_length=300)


class CaptionUpdate(_Body):
    caption: str = Field(max_length=2200)


class NewComment(_Body):
    body: str = Field(min_length=1, max_length=1000)


# ---- response documentation -------------------------------------------------------------------
class UserBriefOut(BaseModel):
    id: str
    username: str
    display_name: str
    avatar_url: str | None


class ProfileOut(UserBriefOut):
    bio: str
    created_at: str
    followers: int
    following: int
    posts: int
    followed_by_me: bool
    email: str | None = Field(None, description="only on your own profile")


class ThumbnailsOut(BaseModel):
    ready: bool = Field(description="false until the worker has made them; the URLs are null until then")
    small: str | None
    medium: str | None
    large: str | None


class PostOut(BaseModel):
    id: str
    author: UserBriefOut
    caption: str
    tags: list[str]
    photo_url: str
    content_type: str
    width: int
    height: int
    thumbnails: ThumbnailsOut
    like_count: int
    comment_count: int
    liked_by_me: bool
    created_at: str
    edited_at: str | None


class CommentOut(BaseModel):
    id: str
    post_id: str
    author: UserBriefOut
    body: str
    tags: list[str]  # its hashtags, lower-cased: the post is listed on each of these tags' pages
    created_at: str


class PostPage(BaseModel):
    items: list[PostOut]
    next_cursor: str | None


class CommentPage(BaseModel):
    items: list[CommentOut]
    next_cursor: str | None


class TagOut(BaseModel):
    tag: str = Field(description="the hashtag, lower-case, without '#'")
    posts: int = Field(description="how many posts carry it, in their caption or their comments")


class SearchResultOut(BaseModel):
    kind: Literal["user", "post", "tag"]
    user: UserBriefOut | None = Field(None, description="present when kind is user")
    post: PostOut | None = Field(None, description="present when kind is post")
    tag: TagOut | None = Field(None, description="present when kind is tag")


class SearchPage(BaseModel):
    items: list[SearchResultOut] = Field(description="best first; a page may hold fewer than limit (results deleted meanwhile are left out)")
    next_cursor: str | None = Field(description="pass it as cursor, with the same q and kind, for the next page; null on the last")


class LikeOut(BaseModel):
    liked: bool
    like_count: int


class FollowOut(BaseModel):
    following: bool


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail
    request_id: str
