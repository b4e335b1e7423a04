"""The ASGI application: ``create_app()`` builds Summit Photos on the platform a blueprint names.

    granian --interface asgi --factory photos.app:create_app

Start-up migrates the database (Alembic), opens the ports, and at stage 1 runs the queue
consumers (thumbnails, object clean-up, search index updates) inside this process.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from summit.blueprint import Blueprint, load_blueprint
from summit.migrate import upgrade_all
from summit.platform import Platform
from summit.security import BrowserSessionMiddleware, PoolUser, Security, admin_router, identity_router
from summit.ports import CommitUnknown, Connection, DatabaseUnavailable, ObjectStoreUnavailable
from summit.web import (
    BodyLimitMiddleware,
    ProxyHeadersMiddleware,
    ReadYourWritesMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    request_id,
)
from summit.web.audit import AuditMiddleware
from summit.web.blocklist import BlocklistMiddleware
from summit.web.forms import strict_utf8_forms
from summit.web.logs import configure_logging, flush_access_log
from summit.web.metrics import HttpMetrics
from summit.web.ratelimit import RateLimitMiddleware, RateLimits
from summit.web.routing import FastRoutes, add_router, index_routes

from photos import jobs, limits, policies, uploads
from photos.api import router as api_router
from photos.api.idempotency import IdempotencyMiddleware
from photos.api.responses import JSON
from photos.errors import AppError
from photos.operations import add_operations
from photos.services import Context
from photos.services.accounts import RESERVED, create_profile
from photos.web import router as web_router
from photos.web.pages import render_error, viewer

log = logging.getLogger("photos")
MAX_BODY_BYTES = 1024 * 1024  # any request body but a photo upload's


def create_app(blueprint: Blueprint | None = None) -> FastAPI:
    blueprint = blueprint or load_blueprint()
    configure_logging()
    strict_utf8_forms()
    metrics = HttpMetrics()
    rate_limits = RateLimits(limits.LIMITS, blueprint)  # the blueprint's [shield]: a bad limit name fails here

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        platform = Platform.from_blueprint(blueprint)
        await asyncio.to_thread(upgrade_all, blueprint, platform.db.sync_url)  # the platform's histories, then ours

        async def index_profile(conn: Connection, user: PoolUser) -> None:  # in the pool's transaction: deferred
            jobs.index_after_commit(app.state.ctx, "user", user.id)

        security = await Security.open(platform, baseline=[policies.BASELINE], group_policies=policies.GROUP_POLICIES,
                                       reserved_usernames=RESERVED, on_confirmed=[create_profile, index_profile])
        security.install(app)
        ctx = Context(platform=platform, identity=security.identity, access=security.access)
        app.state.ctx = ctx
        app.state.rate_limiter = rate_limits.open(platform)  # on the stage's Redis when the cache is, else in process
        app.state.cookie_secure = blueprint.auth.cookie_secure
        worker = None
        if blueprint.worker.in_process:
            worker = jobs.build_worker(ctx)
            await worker.start()
            await jobs.requeue_lost(ctx)
        app.state.worker = worker
        log.info("started", extra={"stage": blueprint.stage, "data_dir": str(blueprint.data_dir)})
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop(timeout=10)
            await security.close()
            await app.state.rate_limiter.close()
            await platform.close()
            flush_access_log()

    app = FastAPI(
        title="Summit Photos",
        version="1.0",
        description="The reference application of summit: photo sharing, the same code at every stage.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        # FastAPI's OpenTelemetry hooks: off (summit keeps its own metrics; nothing is exported)
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False, "auto_configure": False},
    )
    app.state.metrics = metrics
    for router in (identity_router, admin_router, api_router, web_router):
        add_router(app, router)
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_dir()), name="swagger")
    app.mount("/static", StaticFiles(packages=[("photos.web", "static")]), name="static")
    fast_routes = add_operations(app, metrics)
    _add_error_handlers(app)
    takes_photo = uploads.photo_routes(app.router.routes)
    index_routes(app)  # every route is added: routing by a tree of path segments from here on

    # outermost last: request context wraps everything, so even a 413 gets an id and a log line
    app.add_middleware(DeferredJobsMiddleware)
    app.add_middleware(FastRoutes, routes=fast_routes)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BrowserSessionMiddleware, pool=lambda: app.state.identity, secure=blueprint.auth.cookie_secure)
    app.add_middleware(AuditMiddleware, audit=lambda: getattr(app.state, "audit", None))
    photo_limit = blueprint.uploads.max_photo_bytes
    app.add_middleware(BodyLimitMiddleware, default=MAX_BODY_BYTES,
                       limits=[(takes_photo, photo_limit + uploads.ENVELOPE, uploads.too_large(photo_limit))],
                       error_page=_refusal_page)
    app.add_middleware(ReadYourWritesMiddleware, enabled=lambda: _has_replicas(app), secure=blueprint.auth.cookie_secure)
    app.add_middleware(RateLimitMiddleware, limiter=lambda: getattr(app.state, "rate_limiter", None), caller=limits.caller,
                       error_page=_refusal_page)  # before any body is read; per the client address found above
    app.add_middleware(BlocklistMiddleware, data_dir=blueprint.data_dir, exempt=blueprint.shield.exempt,
                       error_page=_refusal_page)  # sources the Shield blocks (summit shield block, the guard's blocks)
    app.add_middleware(SecurityHeadersMiddleware, hsts=blueprint.auth.cookie_secure)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    if blueprint.server.trusted_proxies:  # behind the stage's load balancer: the client it saw
        app.add_middleware(ProxyHeadersMiddleware, trusted=blueprint.server.trusted_proxies)
    return app


class DeferredJobsMiddleware:
    """Jobs noted during a request by code that ran inside a transaction it does not own (the user
    pool's confirmation hook: ``jobs.index_after_commit``) are queued once the request has been
    answered: that transaction has committed (or rolled back, and the job finds nothing to do)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with jobs.deferring() as pending:
            try:
                await self.app(scope, receive, send)
            finally:
                if pending:
                    await jobs.send_deferred(scope["app"].state.ctx, pending)


def swagger_ui_dir() -> str:
    """Swagger UI 5 (it reads OpenAPI 3.1, the version FastAPI writes), as the swagger-ui-py wheel
    ships it: files installed with the app, served from this origin, so the docs page needs no CDN
    (its CSP allows no other host) and no network at run time. Found without importing the package."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (the API docs page needs it): run scripts/install.sh")
    return str(Path(spec.submodule_search_locations[0]) / "static")


def _has_replicas(app: FastAPI) -> bool:
    ctx = getattr(app.state, "ctx", None)
    return ctx is not None and ctx.db.features.has_replicas


NOT_PAGES = ("/api/", "/media/", "/healthz", "/metrics")  # paths that answer JSON (or bytes), never a page


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(NOT_PAGES) and "text/html" in request.headers.get("accept", "")


async def _refusal_page(scope: dict, status: int, message: str) -> Response | None:
    """The body limit's refusal (413, or 400 for a bad Content-Length), a rate limit's (429) or a block's (403), as the
    HTML error page, with the same message, for a form posted to one of the UI's pages: an upload sent
    without app.js's size check, say. Those routes answer HTML whatever the Accept header says
    (``HtmlRoute``), and so does this; the API keeps its JSON error."""
    if scope["path"].startswith(NOT_PAGES):
        return None
    request = Request(scope)
    try:
        await viewer(request)  # the header shows who is logged in, as on any page
    except DatabaseUnavailable:
        request.state.me = None
    return render_error(request, status, message)


def _error_response(request: Request, status: int, code: str, message: str, field: str | None = None) -> Response:
    if _wants_html(request):
        return render_error(request, status, message)
    error = {"code": code, "message": message}
    if field:
        error["field"] = field
    return JSON({"error": error, "request_id": request_id()}, status_code=status)


def _describe(problem: dict) -> str:
    """One validation problem as a sentence that says what to send instead."""
    loc = [str(p) for p in problem.get("loc", ())]
    name = ".".join(loc[1:]) or loc[0] if loc else "request"
    kind = problem.get("type", "")
    if loc == ["body"] and kind in ("model_attributes_type", "dict_type"):
        return "the body must be a JSON object (Content-Type: application/json)"
    if loc == ["body"] and kind == "missing":
        return "the request needs a body: a JSON object"
    if kind == "missing":
        return f"{name} is required"
    if kind == "extra_forbidden":
        return f"{name} is not a field of this request; remove it"
    return f"{name}: {problem.get('msg', 'invalid')}"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, error: AppError) -> Response:
        response = _error_response(request, error.status, error.code, error.message, error.field)
        response.headers.update(error.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        problems = error.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return _error_response(request, 400, "bad_json", "the request body is not valid JSON")
        first = problems[0] if problems else {}
        where = [str(p) for p in first.get("loc", ())[1:]]  # loc[0] says where: body, query, path...
        return _error_response(request, 422, "invalid", "; ".join(_describe(p) for p in problems[:5]), ".".join(where) or None)

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(request: Request, error: Exception) -> Response:
        """The database being unreachable is no bug: 503 with a time to retry."""
        if isinstance(error, CommitUnknown):
            log.warning("commit not confirmed: %s", error, extra={"path": request.url.path})
            response = _error_response(request, 503, "commit_unknown", "your change was sent but not confirmed in time: "
                                       "it may or may not have been saved; check before sending it again")
            response.headers["retry-after"] = "5"
            return response
        log.warning("database unavailable: %s", error, extra={"path": request.url.path})
        response = _error_response(request, 503, "unavailable", "the service is briefly unavailable (its database "
                                   "does not answer); nothing was changed: retry in a few seconds")
        response.headers["retry-after"] = "2"
        return response

    @app.exception_handler(ObjectStoreUnavailable)
    async def store_unavailable(request: Request, error: Exception) -> Response:
        """The photo store being unreachable is no bug either: 503 with a time to retry. An upload
        stores its photo before it writes the post, so nothing was saved."""
        log.warning("object store unavailable: %s", error, extra={"path": request.url.path})
        response = _error_response(request, 503, "unavailable", "the service is briefly unavailable (its photo store "
                                   "does not answer); nothing was changed: retry in a few seconds")
        response.headers["retry-after"] = "2"
        return response

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> Response:
        """A bug: logged with its traceback; the client gets the JSON shape and the request id.
        (An unavailable database raised in a middleware arrives here too: still a 503.)"""
        if isinstance(error, DatabaseUnavailable):
            return await unavailable(request, error)
        if isinstance(error, ObjectStoreUnavailable):
            return await store_unavailable(request, error)
        log.exception("unhandled error", extra={"path": request.url.path})
        return _error_response(request, 500, "internal_error", "something went wrong on our side; the request id identifies it in our logs")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        message = error.detail if isinstance(error.detail, str) else "bad request"
        if error.status_code == 404:
            message = "no such page" if _wants_html(request) else f"no route {request.method} {request.url.path}"
        response = _error_response(request, error.status_code, codes.get(error.status_code, "error"), message)
        if error.headers:
            response.headers.update(error.headers)
        return response
