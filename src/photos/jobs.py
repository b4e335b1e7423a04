"""The app's background jobs, each in one place: its queue, its message, how it is sent and how it
is handled. At stage 1 the web process runs them on an in-process ``Worker``; a later stage's
worker tier runs this same module against a broker-backed queue.

    thumbnails       {"post_id": "<id>"}    make a post's three WebP sizes, then mark it ready
    objects.delete   {"keys": ["<key>"]}    delete objects that a request could not delete itself

Every handler is idempotent: the queue delivers at least once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson

from summit.workers import Worker

from photos.services.common import Context

log = logging.getLogger("photos.jobs")

THUMBNAILS = "thumbnails"
OBJECT_CLEANUP = "objects.delete"


# ---- thumbnails --------------------------------------------------------------------------------

async def request_thumbnails(ctx: Context, post_id: int) -> None:
    """Queue the thumbnails of a new post. A failure is logged, not raised: the post stands, and
    the start-up sweep (``requeue_lost``) queues it again."""
    try:
        await ctx.queue.send(THUMBNAILS, orjson.dumps({"post_id": str(post_id)}))
    except Exception:
        log.exception("could not queue thumbnails", extra={"post_id": str(post_id)})


async def _make_thumbnails(ctx: Context, body: bytes) -> None:
    from photos.services.posts import make_thumbnails

    await make_thumbnails(ctx, int(orjson.loads(body)["post_id"]))


# ---- object clean-up ---------------------------------------------------------------------------

async def request_object_cleanup(ctx: Context, keys: list[str]) -> None:
    await ctx.queue.send(OBJECT_CLEANUP, orjson.dumps({"keys": keys}))


async def _delete_objects(ctx: Context, body: bytes) -> None:
    for key in orjson.loads(body)["keys"]:
        await ctx.objects.delete(key)


# ---- running them ------------------------------------------------------------------------------

HANDLERS: dict[str, Callable[[Context, bytes], Awaitable[None]]] = {
    THUMBNAILS: _make_thumbnails,
    OBJECT_CLEANUP: _delete_objects,
}


def build_worker(ctx: Context, *, visibility_timeout: float = 120) -> Worker:
    """A worker that runs every job of the app on ``ctx``'s queue."""
    worker = Worker(ctx.queue, concurrency=ctx.platform.blueprint.worker.concurrency, visibility_timeout=visibility_timeout)
    for queue, handler in HANDLERS.items():
        worker.add_handler(queue, _bound(handler, ctx))
    return worker


def _bound(handler: Callable[[Context, bytes], Awaitable[None]], ctx: Context) -> Callable[[bytes], Awaitable[None]]:
    async def handle(body: bytes) -> None:
        await handler(ctx, body)

    return handle


async def requeue_lost(ctx: Context) -> None:
    """Queue again the thumbnails of posts whose job was lost (sent before a crash, never run)."""
    from photos.services.posts import pending_thumbnails

    for post_id in await pending_thumbnails(ctx):
        await request_thumbnails(ctx, post_id)
