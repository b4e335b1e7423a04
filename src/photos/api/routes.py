"""Handlers of /api/v1: parse the request, call a service, shape the JSON. Nothing else."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from summit.security import Principal

from photos import auth
from photos.api import views as v
from photos.api.responses import JSON
from photos.services import accounts, discovery, posts, social
from photos.services.common import Context, parse_id
from photos.uploads import accepts_photo

router = APIRouter(prefix="/api/v1", default_response_class=JSON)

Ctx = Annotated[Context, Depends(auth.context_dependency)]
Me = Annotated[int, Depends(auth.current_user_id)]
Actor = Annotated[Principal, Depends(auth.current_principal)]
Viewer = Annotated[int | None, Depends(auth.optional_user_id)]
Cursor = Annotated[str | None, Query(max_length=20, description="next_cursor of the previous page")]
Limit = Annotated[int | None, Query(ge=1, le=100)]

ERRORS = {
    code: {"model": v.ErrorOut}
    for code in (400, 401, 403, 404, 409, 413, 415, 422, 429)
}


def _json(body: object, status: int = 200) -> JSON:
    return JSON(body, status_code=status)


# ---- your profile (accounts and sessions are the user pool's: summit.security.identity.api) ----
@router.get("/me", responses={200: {"model": v.ProfileOut}, **ERRORS}, tags=["accounts"])
async def me(user_id: Me, ctx: Ctx) -> Response:
    return _json(v.profile(await accounts.get_profile(ctx, user_id, viewer_id=user_id)))


@router.patch("/me", responses={200: {"model": v.ProfileOut}, **ERRORS}, tags=["accounts"])
async def edit_me(body: v.ProfileUpdate, user_id: Me, ctx: Ctx) -> Response:
    user = await accounts.update_profile(ctx, user_id, display_name=body.display_name, bio=body.bio)
    return _json(v.profile(user))


@router.put("/me/avatar", responses={200: {"model": v.ProfileOut}, **ERRORS}, tags=["accounts"])
@accepts_photo
async def set_avatar(user_id: Me, ctx: Ctx, photo: Annotated[UploadFile, File(description="JPEG, PNG, WebP or GIF")]) -> Response:
    data = await photo.read()  # the edge bounds the body; the service checks the photo's size
    return _json(v.profile(await accounts.set_avatar(ctx, user_id, data)))


@router.delete("/me", status_code=204, responses=ERRORS, tags=["accounts"])
async def delete_me(user_id: Me, ctx: Ctx) -> Response:
    """Delete your account: your posts, photos, comments, likes and follows go with it."""
    await accounts.delete_account(ctx, user_id)
    response = Response(status_code=204)
    auth.clear_session(response)
    return response


# ---- posts ------------------------------------------------------------------------------------
@router.post("/posts", status_code=201, responses={201: {"model": v.PostOut}, **ERRORS}, tags=["posts"])
@accepts_photo
async def create_post(
    user_id: Me,
    ctx: Ctx,
    photo: Annotated[UploadFile, File(description="JPEG, PNG, WebP or GIF, up to uploads.max_photo_bytes (20 MiB unless the blueprint says otherwise)")],
    caption: Annotated[str, Form(max_length=2200)] = "",
) -> Response:
    """Post a photo. Thumbnails are made in the background: `thumbnails.ready` turns true."""
    data = await photo.read()  # the edge bounds the body; the service checks the photo's size
    return _json(v.post(await posts.create_post(ctx, user_id, data, caption)), 201)


@router.get("/posts/{post_id}", responses={200: {"model": v.PostOut}, **ERRORS}, tags=["posts"])
async def get_post(post_id: str, viewer: Viewer, ctx: Ctx) -> Response:
    return _json(v.post(await posts.get_post(ctx, parse_id(post_id, "post"), viewer_id=viewer)))


@router.patch("/posts/{post_id}", responses={200: {"model": v.PostOut}, **ERRORS}, tags=["posts"])
async def edit_post(post_id: str, body: v.CaptionUpdate, actor: Actor, ctx: Ctx) -> Response:
    return _json(v.post(await posts.edit_caption(ctx, actor, parse_id(post_id, "post"), body.caption)))


@router.delete("/posts/{post_id}", status_code=204, responses=ERRORS, tags=["posts"])
async def delete_post(post_id: str, actor: Actor, ctx: Ctx) -> Response:
    """Delete a post: yours, or any as a moderator."""
    await posts.delete_post(ctx, actor, parse_id(post_id, "post"))
    return Response(status_code=204)


@router.get("/feed", responses={200: {"model": v.PostPage}, **ERRORS}, tags=["posts"])
async def feed(user_id: Me, ctx: Ctx, cursor: Cursor = None, limit: Limit = None) -> Response:
    """Posts of the people you follow, and yours, newest first."""
    return _json(v.page(await posts.feed(ctx, user_id, cursor=cursor, limit=limit), v.post))


@router.get("/users/{username}", responses={200: {"model": v.ProfileOut}, **ERRORS}, tags=["users"])
async def get_user(username: str, viewer: Viewer, ctx: Ctx) -> Response:
    return _json(v.profile(await accounts.get_profile_by_username(ctx, username, viewer_id=viewer)))


@router.get("/users/{username}/posts", responses={200: {"model": v.PostPage}, **ERRORS}, tags=["users"])
async def get_user_posts(username: str, viewer: Viewer, ctx: Ctx, cursor: Cursor = None, limit: Limit = None) -> Response:
    user = await accounts.get_profile_by_username(ctx, username)
    page = await posts.user_posts(ctx, user.id, viewer_id=viewer, cursor=cursor, limit=limit)
    return _json(v.page(page, v.post))


@router.get("/tags/{tag}", responses={200: {"model": v.PostPage}, **ERRORS}, tags=["posts"])
async def get_tag(tag: str, viewer: Viewer, ctx: Ctx, cursor: Cursor = None, limit: Limit = None) -> Response:
    """Posts whose caption or comments carry the tag (`#` and case do not matter), newest first."""
    return _json(v.page(await posts.tag_posts(ctx, tag, viewer_id=viewer, cursor=cursor, limit=limit), v.post))


# ---- search -----------------------------------------------------------------------------------
UNAVAILABLE = {503: {"model": v.ErrorOut, "description": "the search index does not answer now: retry after Retry-After seconds"}}


@router.get("/search", responses={200: {"model": v.SearchPage}, **ERRORS, **UNAVAILABLE}, tags=["search"])
async def search(
    viewer: Viewer,
    ctx: Ctx,
    q: Annotated[str, Query(description="what to look for: words, each of 2+ letters also a prefix (`ali` finds alice); "
                                        "at most 200 characters and 8 different words")] = "",
    kind: Annotated[Literal["user", "post", "tag"] | None, Query(description="only people, posts or tags")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page of this search")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """People, posts and tags matching the words of `q`, best first (by relevance, then popularity).
    Any text is a search, never syntax: quotes, `*`, `NEAR`, `OR` are plain characters or words. A
    search without a word gives no results; one that is too long is a 422 saying what to shorten."""
    return _json(v.results(await discovery.search_all(ctx, q, kind=kind, cursor=cursor, limit=limit, viewer_id=viewer)))


# ---- follows, likes, comments -----------------------------------------------------------------
@router.put("/users/{username}/follow", responses={200: {"model": v.FollowOut}, **ERRORS}, tags=["users"])
async def follow(username: str, user_id: Me, ctx: Ctx) -> Response:
    await social.follow(ctx, user_id, username)
    return _json({"following": True})


@router.delete("/users/{username}/follow", responses={200: {"model": v.FollowOut}, **ERRORS}, tags=["users"])
async def unfollow(username: str, user_id: Me, ctx: Ctx) -> Response:
    await social.unfollow(ctx, user_id, username)
    return _json({"following": False})


@router.put("/posts/{post_id}/like", responses={200: {"model": v.LikeOut}, **ERRORS}, tags=["posts"])
async def like(post_id: str, user_id: Me, ctx: Ctx) -> Response:
    return _json({"liked": True, "like_count": await social.like(ctx, user_id, parse_id(post_id, "post"))})


@router.delete("/posts/{post_id}/like", responses={200: {"model": v.LikeOut}, **ERRORS}, tags=["posts"])
async def unlike(post_id: str, user_id: Me, ctx: Ctx) -> Response:
    return _json({"liked": False, "like_count": await social.unlike(ctx, user_id, parse_id(post_id, "post"))})


@router.get("/posts/{post_id}/comments", responses={200: {"model": v.CommentPage}, **ERRORS}, tags=["comments"])
async def comments(post_id: str, ctx: Ctx, cursor: Cursor = None, limit: Limit = None) -> Response:
    """Comments of a post, oldest first."""
    page = await social.list_comments(ctx, parse_id(post_id, "post"), cursor=cursor, limit=limit)
    return _json(v.page(page, v.comment))


@router.post("/posts/{post_id}/comments", status_code=201, responses={201: {"model": v.CommentOut}, **ERRORS}, tags=["comments"])
async def add_comment(post_id: str, body: v.NewComment, user_id: Me, ctx: Ctx) -> Response:
    return _json(v.comment(await social.add_comment(ctx, user_id, parse_id(post_id, "post"), body.body)), 201)


@router.delete("/comments/{comment_id}", status_code=204, responses=ERRORS, tags=["comments"])
async def delete_comment(comment_id: str, actor: Actor, ctx: Ctx) -> Response:
    """Delete a comment: yours, or any as a moderator."""
    await social.delete_comment(ctx, actor, parse_id(comment_id, "comment"))
    return Response(status_code=204)
