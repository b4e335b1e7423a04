"""Pages of the web UI: plain HTML forms, POST-redirect-GET, a session cookie and CSRF tokens.

Every page works without JavaScript; static/app.js only enhances (thumbnail polling, likes without
a reload). Each unsafe form carries ``csrf_token`` (double-submit of the ``summit_csrf`` cookie) and
its handler checks it before it changes anything. A service error (``AppError``) either re-renders
the form with the message and the user's input, or becomes an HTML error page with its 4xx status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from summit.errors import ServiceError
from summit.security.identity import MfaChallenge, Principal, Session

from photos import auth, media
from photos.errors import AppError, Forbidden, Invalid, NotFound, TooLarge
from photos.services import accounts, posts, social
from photos.services.common import Context, Profile, parse_id
from photos.web.pages import redirect, render, render_error, safe_next

MAX_FORM_FIELDS = 20


class LoginRequired(Exception):
    def __init__(self, next_path: str):
        self.next_path = next_path


class HtmlRoute(APIRoute):
    """UI routes answer in HTML whatever the Accept header says: errors become error pages, and a
    page that needs a user sends a logged-out visitor to the log-in form."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def html_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as needed:
                return redirect(request, login_url(needed.next_path))
            except AppError as error:
                return render_error(request, error.status, error.message)
            except StarletteHTTPException as error:  # e.g. a malformed multipart body
                if error.status_code >= 500:
                    raise
                message = error.detail if isinstance(error.detail, str) else "bad request"
                return render_error(request, error.status_code, message)

        return html_handler


router = APIRouter(include_in_schema=False, route_class=HtmlRoute)


# ---- helpers ----------------------------------------------------------------------------------
def ctx_of(request: Request) -> Context:
    return auth.context(request)


def login_url(next_path: str) -> str:
    next_path = safe_next(next_path, "/")
    return "/login" if next_path == "/" else "/login?" + urlencode({"next": next_path})


def here(request: Request) -> str:
    """This page's local path and query, for ``next``."""
    query = request.url.query
    return request.url.path + ("?" + query if query else "")


async def viewer(request: Request) -> Profile | None:
    """The logged-in user, or None. A stale, forged or orphaned session cookie counts as logged out,
    and the response clears it."""
    if hasattr(request.state, "me"):
        return request.state.me
    me = None
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        ctx = ctx_of(request)
        try:
            request.state.principal = await ctx.identity.authenticate(token)
            me = await accounts.get_profile(ctx, request.state.principal.user_id, viewer_id=request.state.principal.user_id)
        except ServiceError:  # expired, signed out, forged, or the account is gone
            request.state.principal = None
            request.state.clear_session = True
    request.state.me = me
    return me


def principal(request: Request) -> Principal:
    """Who is acting (after require_user): for actions that policies authorize."""
    return request.state.principal


async def require_user(request: Request, next_path: str | None = None) -> Profile:
    me = await viewer(request)
    if me is None:
        raise LoginRequired(next_path or (here(request) if request.method == "GET" else "/"))
    return me


async def read_form(request: Request, upload_field: str | None = None) -> tuple[dict[str, str], bytes | None]:
    """The form's text fields (first value of each) and, if asked, the uploaded file's bytes."""
    limit = ctx_of(request).platform.blueprint.uploads.max_photo_bytes
    data = None
    async with request.form(max_files=1 if upload_field else 0, max_fields=MAX_FORM_FIELDS) as form:
        fields: dict[str, str] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, value)
        if upload_field:
            upload = form.get(upload_field)
            data = b""
            if isinstance(upload, UploadFile):
                data = await upload.read(limit + 1)
                if len(data) > limit:
                    raise TooLarge(f"the photo is larger than {limit // (1024 * 1024)} MB; choose a smaller one")
    return fields, data


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


def check_csrf(request: Request, fields: dict[str, str]) -> None:
    auth.check_csrf(request, fields.get(auth.CSRF_FIELD))


def log_in(request: Request, response: Response, session: Session) -> Response:
    auth.set_session(request, response, session)
    request.state.clear_session = False
    return response


def _source(request: Request) -> str | None:
    return request.client.host if request.client else None


def form_error(error: AppError) -> dict[str, Any]:
    return {"error": error.message, "error_field": error.field}


# ---- home, sign-up, log-in, log-out -----------------------------------------------------------
@router.get("/")
async def home(request: Request) -> Response:
    me = await viewer(request)
    if me is None:
        return render(request, "landing.html", deleted=request.query_params.get("deleted") == "1")
    cursor = cursor_param(request)
    page = await posts.feed(ctx_of(request), me.id, cursor=cursor)
    return render(request, "home.html", page=page, cursor=cursor)


@router.get("/signup")
async def signup_form(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if await viewer(request) is not None:
        return redirect(request, next_path)
    return render(request, "signup.html", form={}, next=next_path)


@router.post("/signup")
async def signup(request: Request) -> Response:
    fields, _ = await read_form(request)
    next_path = safe_next(fields.get("next"))
    form = {"username": fields.get("username", ""), "email": fields.get("email", "")}
    try:
        check_csrf(request, fields)
        user = await ctx_of(request).identity.sign_up(form["username"], form["email"], fields.get("password", ""), source=_source(request))
    except AppError as error:
        return render(request, "signup.html", error.status, form=form, next=next_path, **form_error(error))
    return redirect(request, "/confirm?" + urlencode({"login": user.username, "next": next_path}))


@router.get("/confirm")
async def confirm_form(request: Request) -> Response:
    form = {"login": request.query_params.get("login", "")[:254]}
    return render(request, "confirm.html", form=form, next=safe_next(request.query_params.get("next")))


@router.post("/confirm")
async def confirm(request: Request) -> Response:
    fields, _ = await read_form(request)
    next_path = safe_next(fields.get("next"))
    form = {"login": fields.get("login", "")}
    pool = ctx_of(request).identity
    try:
        check_csrf(request, fields)
        if fields.get("resend"):
            await pool.resend_code(form["login"])
            return render(request, "confirm.html", form=form, next=next_path, notice="a new code is on its way")
        user = await pool.confirm(form["login"], fields.get("code", ""), source=_source(request))
    except AppError as error:
        return render(request, "confirm.html", error.status, form=form, next=next_path, **form_error(error))
    return redirect(request, "/login?" + urlencode({"login": user.username, "confirmed": "1", "next": next_path}))


@router.get("/login")
async def login_form(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if await viewer(request) is not None:
        return redirect(request, next_path)
    form = {"login": request.query_params.get("login", "")[:254]}
    return render(request, "login.html", form=form, next=next_path, confirmed=request.query_params.get("confirmed") == "1")


@router.post("/login")
async def login(request: Request) -> Response:
    fields, _ = await read_form(request)
    next_path = safe_next(fields.get("next"))
    form = {"login": fields.get("login", "")}
    try:
        check_csrf(request, fields)
        result = await ctx_of(request).identity.sign_in(form["login"], fields.get("password", ""), source=_source(request),
                                                        device=request.headers.get("user-agent", "")[:200])
    except AppError as error:
        return render(request, "login.html", error.status, form=form, next=next_path, **form_error(error))
    if isinstance(result, MfaChallenge):
        return render(request, "mfa.html", challenge=result.challenge, next=next_path)
    return log_in(request, redirect(request, next_path), result)


@router.post("/login/mfa")
async def login_mfa(request: Request) -> Response:
    fields, _ = await read_form(request)
    next_path = safe_next(fields.get("next"))
    challenge = fields.get("challenge", "")
    try:
        check_csrf(request, fields)
        session = await ctx_of(request).identity.answer_mfa(challenge, fields.get("code", "").strip(), source=_source(request),
                                                            device=request.headers.get("user-agent", "")[:200])
    except AppError as error:
        return render(request, "mfa.html", error.status, challenge=challenge, next=next_path, **form_error(error))
    return log_in(request, redirect(request, next_path), session)


@router.post("/logout")
async def logout(request: Request) -> Response:
    fields, _ = await read_form(request)
    check_csrf(request, fields)
    if await viewer(request) is not None:
        await ctx_of(request).identity.sign_out(principal(request), refresh_token=request.cookies.get(auth.REFRESH_COOKIE))
    request.state.clear_session = True
    return redirect(request, "/")


# ---- posts ------------------------------------------------------------------------------------
@router.get("/new")
async def new_post_form(request: Request) -> Response:
    await require_user(request)
    return render(request, "new.html", form={})


@router.get("/posts")
async def posts_index(request: Request) -> Response:
    return redirect(request, "/new")  # e.g. a reload of the upload form's error page


@router.post("/posts")
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
    me = await require_user(request)
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
