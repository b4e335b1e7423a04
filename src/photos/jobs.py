"""The app's background jobs, each in one place: its queue, its message, how it is sent and how it
is handled. At stage 1 the web process runs them on an in-process ``Worker``; a later stage's
worker tier runs this same module against a broker-backed queue.

    thumbnails       {"post_id": "<id>"}    make a post's three WebP sizes, then mark it ready
    objects.delete   {"keys": ["<key>"]}    delete objects that a request could not delete itself
    search.index     {"kind": "post", "id": "<id>"}  (or "ids": [...], at most 100)
                                            make the search index hold what the database holds
                                            now for those documents: index them again, or delete
                                            the ones that are gone

Every handler is idempotent: the queue delivers at least once.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import orjson

from summit.workers import Worker

from photos import search
from photos.services.common import Context

log = logging.getLogger("photos.jobs")

THUMBNAILS = "thumbnails"
OBJECT_CLEANUP = "objects.delete"
SEARCH_INDEX = "search.index"
MAX_INDEX_IDS = 100  # documents per search.index message


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


# ---- search index ------------------------------------------------------------------------------

async def request_index(ctx: Context, *, users: Iterable[int | str] = (), posts: Iterable[int | str] = (),
                        tags: Iterable[str] = ()) -> None:
    """Queue the refresh of these search documents; call it once the write that changed them has
    committed. A failure is logged, not raised: the write stands, and the index catches up at the
    document's next change or at ``summit search reindex``."""
    for kind, ids in (("user", users), ("post", posts), ("tag", tags)):
        unique = list(dict.fromkeys(str(i) for i in ids))
        for start in range(0, len(unique), MAX_INDEX_IDS):
            chunk = unique[start : start + MAX_INDEX_IDS]
            body = {"kind": kind, "id": chunk[0]} if len(chunk) == 1 else {"kind": kind, "ids": chunk}
            try:
                await ctx.queue.send(SEARCH_INDEX, orjson.dumps(body))
            except Exception:
                log.exception("could not queue a search index update", extra={"kind": kind, "ids": chunk[:10]})


_index_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def _index_documents(ctx: Context, body: bytes) -> None:
    try:
        message = orjson.loads(body)
        kind, ids = message["kind"], message["ids"] if "ids" in message else [message["id"]]
        if kind not in search.KINDS or not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 200 for i in ids):
            raise ValueError(f"kind {kind!r}, ids {ids!r:.200}")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:  # retrying would not mend it
        log.warning("dropped a malformed search.index message: %s", error, extra={"body": body[:200].decode(errors="replace")})
        return
    # one refresh at a time in a process: two updates of one document (an edit, then another) cannot
    # interleave their read and their write, so the newer row is the one left in the index
    lock = _index_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        await search.refresh(ctx.platform, kind, ids)


# Writes made inside a transaction the app does not own (the user pool's on_confirmed hook runs in
# the pool's confirming transaction) cannot queue their refresh after the commit themselves: they
# note it here, and the app sends it once the request has been answered (``send_deferred``).
_deferred: ContextVar[list[tuple[str, str]] | None] = ContextVar("photos_deferred_index", default=None)
_soon: set[asyncio.Task[None]] = set()


@contextmanager
def deferring() -> Iterator[list[tuple[str, str]]]:
    """Collect ``index_after_commit`` calls made meanwhile (in this context); yields the list."""
    pending: list[tuple[str, str]] = []
    token = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(token)


def index_after_commit(ctx: Context, kind: str, doc_id: int | str) -> None:
    """Queue a document's refresh after the transaction now running commits: at the end of the
    request (``deferring``); outside one, a second from now."""
    pending = _deferred.get()
    if pending is not None:
        pending.append((kind, str(doc_id)))
        return

    async def soon() -> None:
        await asyncio.sleep(1.0)
        await send_deferred(ctx, [(kind, str(doc_id))])

    task = asyncio.get_running_loop().create_task(soon())
    _soon.add(task)
    task.add_done_callback(_soon.discard)


async def send_deferred(ctx: Context, pending: list[tuple[str, str]]) -> None:
    by_kind: dict[str, list[str]] = {}
    for kind, doc_id in pending:
        by_kind.setdefault(kind, []).append(doc_id)
    await request_index(ctx, users=by_kind.get("user", ()), posts=by_kind.get("post", ()), tags=by_kind.get("tag", ()))


# ---- running them ------------------------------------------------------------------------------

HANDLERS: dict[str, Callable[[Context, bytes], Awaitable[None]]] = {
    THUMBNAILS: _make_thumbnails,
    OBJECT_CLEANUP: _delete_objects,
    SEARCH_INDEX: _index_documents,
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
