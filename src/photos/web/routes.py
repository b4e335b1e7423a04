"""Pages of the web UI: plain HTML forms, POST-redirect-GET, a session cookie and CSRF tokens.

Every page works without JavaScript; static/app.js only enhances (thumbnail polling, likes without
a reload). Each unsafe form carries ``csrf_token`` (double-submit of the ``summit_csrf`` cookie) and
its handler checks it before it changes anything. A service error (``AppError``) either re-renders
the form with the message and the user's input, or becomes an HTML error page with its 4xx status.

This module has the home page, posts, people, tags, search, explore and profile settings; ``account_routes`` has
sign-up, confirmation, log-in (with TOTP), log-out, password reset, Settings -> Security and the
dev inbox. The helpers both use live in ``pages``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from summit.web.routing import add_router

from photos import media
from photos.errors import AppError, Forbidden, Invalid, NotFound
from photos.services import accounts, discovery, posts, social
from photos.services.common import Page, Profile, parse_id
from photos.uploads import accepts_photo
from photos.web import account_routes
from photos.web.pages import (
    HtmlRoute,
    check_csrf,
    ctx_of,
    form_error,
    principal,
    read_form,
    redirect,
    render,
    require_user,
    safe_next,
    viewer,
)

router = APIRouter(include_in_schema=False, route_class=HtmlRoute)
add_router(router, account_routes.router)


# ---- helpers ----------------------------------------------------------------------------------
def pid(value: str, name: str = "post") -> int:
    """An id from the URL; non-ASCII digits ('²') are a 404 here, before they reach int()."""
    if not value.isascii():
        raise NotFound(f"no {name} {value[:40]!r}")
    return parse_id(value, name)


def cursor_param(request: Request, name: str = "cursor") -> str | None:
    """A pagination cursor from the query string: ASCII digits, or a 422 page."""
    value = request.query_params.get(name)
    if value and not (value.isascii() and value.isdigit() and len(value) <= 19 and int(value) < 1 << 63):
        raise Invalid(f"{name} must be the value of an 'older' link; start again from the first page", field=name)
    return value or None


# ---- home -------------------------------------------------------------------------------------
@router.get("/")
async def home(request: Request) -> Response:
    me = await viewer(request)
    if me is None:
        return render(request, "landing.html", deleted=request.query_params.get("deleted") == "1")
    cursor = cursor_param(request)
    page = await posts.feed(ctx_of(request), me.id, cursor=cursor)
    return render(request, "home.html", page=page, cursor=cursor)


# ---- posts ------------------------------------------------------------------------------------
@router.get("/new")
async def new_post_form(request: Request) -> Response:
    await require_user(request)
    return render(request, "new.html", form={})


@router.get("/posts")
async def posts_index(request: Request) -> Response:
    return redirect(request, "/new")  # e.g. a reload of the upload form's error page


@router.post("/posts")
@accepts_photo
async def create_post(request: Request) -> Response:
    me = await require_user(request, "/new")
    form: dict[str, str] = {}
    try:
        fields, data = await read_form(request, "photo")
        form = {"caption": fields.get("caption", "")}
        check_csrf(request, fields)
        post = await posts.create_post(ctx_of(request), me.id, data or b"", form["caption"])
    except AppError as error:
        return render(request, "new.html", error.status, form=form, **form_error(error))
    return redirect(request, f"/p/{post.id}")


async def _post_page(request: Request, post_id: str, status: int = 200, **extra: Any) -> Response:
    ctx, me = ctx_of(request), await viewer(request)
    post = await posts.get_post(ctx, pid(post_id), viewer_id=me.id if me else None)
    cursor = cursor_param(request, "comments")
    comments = await social.list_comments(ctx, post.id, cursor=cursor, limit=100)
    return render(request, "post.html", status, post=post, comments=comments, comment_form=extra.pop("comment_form", {}), **extra)


@router.get("/p/{post_id}")
async def show_post(request: Request, post_id: str) -> Response:
    return await _post_page(request, post_id)


@router.post("/p/{post_id}/like")
async def like(request: Request, post_id: str) -> Response:
    me = await require_user(request, f"/p/{quote(post_id)}")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    number = pid(post_id)
    if fields.get("do") == "unlike":
        await social.unlike(ctx_of(request), me.id, number)
    else:
        await social.like(ctx_of(request), me.id, number)
    return redirect(request, safe_next(fields.get("next"), f"/p/{number}"))


@router.post("/p/{post_id}/comments")
async def add_comment(request: Request, post_id: str) -> Response:
    me = await require_user(request, f"/p/{quote(post_id)}")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    number = pid(post_id)
    body = fields.get("body", "")
    try:
        comment = await social.add_comment(ctx_of(request), me.id, number, body)
    except AppError as error:
        if error.status == 404:
            raise
        return await _post_page(request, post_id, error.status, comment_form={"body": body}, **form_error(error))
    return redirect(request, f"/p/{number}#c{comment.id}")


@router.post("/comments/{comment_id}/delete")
async def delete_comment(request: Request, comment_id: str) -> Response:
    await require_user(request)
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    await social.delete_comment(ctx_of(request), principal(request), pid(comment_id, "comment"))
    return redirect(request, safe_next(fields.get("next"), "/"))


async def _own_post(request: Request, post_id: str):  # noqa: ANN202
    me = await require_user(request)
    post = await posts.get_post(ctx_of(request), pid(post_id), viewer_id=me.id)
    if post.author.id != me.id:
        raise Forbidden("only the author can change or delete this post")
    return me, post


@router.get("/p/{post_id}/edit")
async def edit_post_form(request: Request, post_id: str) -> Response:
    _, post = await _own_post(request, post_id)
    return render(request, "post_edit.html", post=post, form={"caption": post.caption})


@router.post("/p/{post_id}/edit")
async def edit_post(request: Request, post_id: str) -> Response:
    me, post = await _own_post(request, post_id)
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    caption = fields.get("caption", "")
    try:
        await posts.edit_caption(ctx_of(request), principal(request), post.id, caption)
    except AppError as error:
        if error.status in (403, 404):
            raise
        return render(request, "post_edit.html", error.status, post=post, form={"caption": caption}, **form_error(error))
    return redirect(request, f"/p/{post.id}")


@router.get("/p/{post_id}/delete")
async def delete_post_confirm(request: Request, post_id: str) -> Response:
    _, post = await _own_post(request, post_id)
    return render(request, "post_delete.html", post=post)


@router.post("/p/{post_id}/delete")
async def delete_post(request: Request, post_id: str) -> Response:
    me = await require_user(request, f"/p/{quote(post_id)}")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    await posts.delete_post(ctx_of(request), principal(request), pid(post_id))
    return redirect(request, f"/u/{me.username}?deleted=1")


# ---- users and tags ---------------------------------------------------------------------------
@router.get("/u/{username}")
async def profile(request: Request, username: str) -> Response:
    ctx, me = ctx_of(request), await viewer(request)
    viewer_id = me.id if me else None
    user = await accounts.get_profile_by_username(ctx, username, viewer_id=viewer_id)
    cursor = cursor_param(request)
    page = await posts.user_posts(ctx, user.id, viewer_id=viewer_id, cursor=cursor, limit=24)
    return render(
        request, "profile.html", user=user, page=page, cursor=cursor, deleted=request.query_params.get("deleted") == "1"
    )


@router.post("/u/{username}/follow")
async def follow(request: Request, username: str) -> Response:
    me = await require_user(request, f"/u/{quote(username)}")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    ctx = ctx_of(request)
    user = await accounts.get_profile_by_username(ctx, username)
    if fields.get("do") == "unfollow":
        await social.unfollow(ctx, me.id, user.username)
    else:
        await social.follow(ctx, me.id, user.username)
    return redirect(request, safe_next(fields.get("next"), f"/u/{user.username}"))


@router.get("/tags/{tag}")
async def tag(request: Request, tag: str) -> Response:
    me = await viewer(request)
    cursor = cursor_param(request)
    page = await posts.tag_posts(ctx_of(request), tag, viewer_id=me.id if me else None, cursor=cursor, limit=24)
    return render(request, "tag.html", tag=tag.lstrip("#").lower(), page=page, cursor=cursor)


# ---- search and explore -------------------------------------------------------------------------
SEARCH_KINDS = ("user", "post", "tag")
ALL_KINDS_LIMITS = {"user": 6, "tag": 8, "post": 12}  # the first page: a few of each kind
ONE_KIND_LIMITS = {"user": 30, "tag": 40, "post": 24}  # one kind, page by page


@router.get("/search")
async def search(request: Request) -> Response:
    ctx, me = ctx_of(request), await viewer(request)
    params = request.query_params
    q, kind, cursor = params.get("q", ""), params.get("kind") or None, params.get("cursor") or None
    if kind is not None and kind not in SEARCH_KINDS:
        raise Invalid(f"kind is one of {', '.join(SEARCH_KINDS)} (or none: all of them), not {kind[:40]!r}", field="kind")
    page = {"q": q, "search_q": q, "kind": kind, "cursor": cursor, "sections": {}}
    if not q.strip():
        return render(request, "search.html", **{**page, "q": ""})
    viewer_id = me.id if me else None
    try:
        if kind is not None:
            page["sections"] = {kind: await discovery.search_all(ctx, q, kind=kind, cursor=cursor, limit=ONE_KIND_LIMITS[kind],
                                                                 viewer_id=viewer_id)}
        else:
            found = await asyncio.gather(*(discovery.search_all(ctx, q, kind=name, limit=limit, viewer_id=viewer_id)
                                           for name, limit in ALL_KINDS_LIMITS.items()))
            page["sections"] = dict(zip(ALL_KINDS_LIMITS, found, strict=True))
    except Invalid as error:  # the words of the search (too long, too many) or a cursor from elsewhere: say so on the page
        return render(request, "search.html", error.status, **{**page, "sections": {}}, **form_error(error))
    return render(request, "search.html", **page)


@router.get("/explore")
async def explore(request: Request) -> Response:
    me = await viewer(request)
    found = await discovery.explore(ctx_of(request), me.id if me else None)
    return render(request, "explore.html", explore=found, recent=Page(found.recent), most_liked=Page(found.most_liked))


# ---- settings ---------------------------------------------------------------------------------
def _settings(request: Request, me: Profile, status: int = 200, **extra: Any) -> Response:
    extra.setdefault("form", {"display_name": me.display_name, "bio": me.bio})
    return render(request, "settings.html", status, saved=request.query_params.get("saved"), **extra)


@router.get("/settings")
async def settings_form(request: Request) -> Response:
    return _settings(request, await require_user(request))


@router.post("/settings")
async def save_settings(request: Request) -> Response:
    me = await require_user(request, "/settings")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    form = {"display_name": fields.get("display_name", ""), "bio": fields.get("bio", "")}
    try:
        await accounts.update_profile(ctx_of(request), me.id, display_name=form["display_name"], bio=form["bio"])
    except AppError as error:
        return _settings(request, me, error.status, form=form, section="profile", **form_error(error))
    return redirect(request, "/settings?saved=profile")


@router.post("/settings/avatar")
@accepts_photo
async def save_avatar(request: Request) -> Response:
    me = await require_user(request, "/settings")
    try:
        fields, data = await read_form(request, "photo")
        check_csrf(request, fields)
        try:
            await accounts.set_avatar(ctx_of(request), me.id, data or b"")
        except media.BadImage as error:
            raise Invalid(str(error), field="photo") from None
    except AppError as error:
        return _settings(request, me, error.status, section="avatar", **form_error(error))
    return redirect(request, "/settings?saved=avatar")


@router.post("/settings/delete")
async def delete_account(request: Request) -> Response:
    me = await require_user(request, "/settings")
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    if fields.get("confirm", "").strip().lower() != me.username:
        error = Invalid(f"type your username, {me.username}, to confirm", field="confirm")
        return _settings(request, me, error.status, section="delete", **form_error(error))
    await accounts.delete_account(ctx_of(request), me.id)
    request.state.clear_session = True
    request.state.me = None
    return redirect(request, "/?deleted=1")
