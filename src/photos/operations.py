"""The routes every request path of a stage leans on: health, metrics, the photos themselves, the
API docs page. The first three are served in front of FastAPI (``summit.web.routing.FastRoutes``)
and registered with it too, so that OpenAPI documents them: one endpoint each, two doors."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from summit.ports import InvalidKey, ObjectError, ObjectNotFound
from summit.web import request_id
from summit.web.metrics import HttpMetrics

from photos.api.responses import JSON

log = logging.getLogger("photos")
HERE = Path(__file__).parent
MEDIA_CACHE_CONTROL = "public, max-age=31536000, immutable"


async def healthz(request: Request) -> Response:
    """Liveness and readiness: the database answers (503 when it does not)."""
    ctx = request.app.state.ctx
    try:
        await ctx.db.ping()
    except Exception:  # noqa: BLE001 (any failure means "not ready"; the log says which)
        log.exception("health check: the database does not answer")
        return JSON({"status": "unavailable", "stage": ctx.platform.blueprint.stage, "reason": "the database does not answer"},
                    status_code=503)
    return JSON({"status": "ok", "stage": ctx.platform.blueprint.stage})


async def media(request: Request) -> Response:
    """Photos and thumbnails, by their unguessable immutable key: cacheable for a year. A photo on
    local disk goes out through the server's file-sending path (and answers Range requests); one in
    a remote store (S3) is streamed from the store's answer, a chunk at a time, never held whole."""
    objects = request.app.state.ctx.objects
    key = request.path_params["key"]
    revalidating = request.headers.get("if-none-match", "").strip('"')
    try:
        local = await objects.local_file(key)
        if local is not None or revalidating:  # a revalidation needs no bytes
            info = local.info if local is not None else await objects.head(key)
            if revalidating == info.etag:
                return Response(status_code=304, headers={"cache-control": MEDIA_CACHE_CONTROL})
            if local is not None:
                return FileResponse(local.path, stat_result=local.stat, media_type=info.content_type,
                                    headers={"cache-control": MEDIA_CACHE_CONTROL, "etag": f'"{info.etag}"'})
        stream = await objects.stream(key)
    except (ObjectNotFound, InvalidKey):
        return JSON({"error": {"code": "not_found", "message": "no such photo"}, "request_id": request_id()}, status_code=404)
    except ObjectError:  # the store does not answer (ObjectStoreUnavailable), or failed: not a bug of ours
        log.warning("photo store unavailable", exc_info=True, extra={"key": key})
        return JSON({"error": {"code": "unavailable", "message": "photos are briefly unavailable: retry in a few seconds"},
                     "request_id": request_id()}, status_code=503, headers={"retry-after": "2"})
    info = stream.info
    headers = {"cache-control": MEDIA_CACHE_CONTROL, "etag": f'"{info.etag}"', "content-length": str(info.size)}
    return StreamingResponse(stream.chunks, media_type=info.content_type, headers=headers, background=BackgroundTask(stream.aclose))


def add_operations(app: FastAPI, metrics: HttpMetrics) -> list[Route]:
    """Add the routes to ``app`` (for OpenAPI); returns the ones to serve in front of it."""

    async def prometheus(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def docs() -> Response:
        return HTMLResponse((HERE / "web" / "templates" / "apidocs.html").read_text())

    async def documented_media(key: str, request: Request) -> Response:  # names the path parameter for OpenAPI
        return await media(request)

    documented_media.__doc__ = media.__doc__

    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["operations"],
                      responses={503: {"description": "the database does not answer"}})
    app.add_api_route("/metrics", prometheus, methods=["GET"], tags=["operations"], include_in_schema=False)
    app.add_api_route("/media/{key:path}", documented_media, methods=["GET"], tags=["media"], name="media",
                      responses={200: {"content": {"image/*": {}}}, 304: {}, 404: {}})
    app.add_api_route("/api/v1/docs", docs, methods=["GET"], include_in_schema=False)
    return [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", prometheus, methods=["GET"]),
            Route("/media/{key:path}", media, methods=["GET"])]
