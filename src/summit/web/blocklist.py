"""The Shield's blocklist in the app: a blocked source gets ``403`` on every route until its block
ends, where no front door does it first (stage 1 and 1+; behind HAProxy the edge answers, and this
is a second line).

The list is the stage's ``<data_dir>/shield/blocks.json`` (``summit.security.blocks``), written by
``summit guard``'s automatic blocking and ``summit shield block``/``unblock``; each app process
looks at the file's modification at most once per ``RELOAD_SECONDS`` and reads it again when it
changed, so a new block reaches it within about a second and a request costs a dictionary lookup.
The client address is the one ``ProxyHeadersMiddleware`` found (a trusted proxy's
``X-Forwarded-For``), an IPv6 client by its /64; exempt sources (``shield.exempt``) are never refused.

    app.add_middleware(BlocklistMiddleware, data_dir=blueprint.data_dir, exempt=blueprint.shield.exempt,
                       error_page=html_page)
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from pathlib import Path
from typing import Any


from summit.security.blocks import Block, BlockError, Blocklist, covers, source_key
from summit.web.ratelimit import ErrorPage, refuse

log = logging.getLogger("summit.shield")
RELOAD_SECONDS = 1.0


class _Loaded:
    """The blocklist file as this process last read it, looked at again at most once per RELOAD_SECONDS."""

    def __init__(self, data_dir: Path):
        self.list = Blocklist(data_dir)
        self.blocks: dict[str, Block] = {}
        self.signature: tuple[int, int] | None = None
        self.checked = -math.inf

    def current(self) -> dict[str, Block]:
        now = time.monotonic()
        if now - self.checked < RELOAD_SECONDS:
            return self.blocks
        self.checked = now
        try:
            st = self.list.path.stat()
            signature = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            self.blocks, self.signature = {}, None
            return self.blocks
        if signature != self.signature:
            try:
                self.blocks = self.list.read()
            except (BlockError, OSError) as error:  # keep what it had: a broken file lifts no block
                log.warning("blocklist not read: %s", error)
                return self.blocks
            self.signature = signature
        return self.blocks


class BlocklistMiddleware:
    """Refuses requests from blocked sources with 403 (the API's JSON error, or the app's HTML page
    from ``error_page``), with ``Retry-After`` saying when the block ends."""

    def __init__(self, app: Any, *, data_dir: Path | str, exempt: list[str] | tuple[str, ...] = (),
                 error_page: ErrorPage | None = None):
        self.app = app
        self.loaded = _Loaded(Path(data_dir))
        self.exempt = tuple(exempt)
        self.error_page = error_page

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        blocks = self.loaded.current()
        if not blocks:
            return await self.app(scope, receive, send)
        client = scope.get("client")
        block = blocks.get(_key(client[0])) if client else None
        if block is None or block.until <= time.time() or covers(self.exempt, block.source):
            return await self.app(scope, receive, send)
        return await self._refuse(scope, send, block)

    async def _refuse(self, scope: dict, send: Any, block: Block) -> None:
        wait = max(1, math.ceil(block.remaining()))
        message = f"requests from your address are blocked (summit shield) after suspicious activity; retry in {wait} s"
        extra = [(b"retry-after", str(wait).encode()), (b"cache-control", b"no-store"), (b"connection", b"close")]
        await refuse(scope, send, 403, "forbidden", message, extra, self.error_page)


def _key(address: str) -> str | None:
    """The blocklist's key of a client address (an IPv6 client's /64), None for a non-address."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    try:
        return source_key(address)
    except BlockError:
        return None
