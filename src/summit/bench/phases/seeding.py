"""Seed the stage through its API (with a progress bar), and post the photo that the raw
``GET /media/<photo>`` run and nginx's same-file baseline both serve."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from summit.bench.http import HttpClient, multipart
from summit.bench.mailcodes import CodeReader
from summit.bench.net import check_loopback_url, tls_for
from summit.bench.seed import Seeded, make_jpeg, seed
from summit.bench.session import Session


@dataclass(frozen=True)
class MediaPhoto:
    """A photo as the stage serves it: its path under ``/media/`` and its bytes."""

    path: str
    data: bytes


def seed_stage(session: Session, url: str, reader: CodeReader | None, *, users: int, posts: int) -> Seeded:
    """``users`` users (confirmed with the code read through the mail port), their follows,
    ``posts`` posts, likes and comments. Bounded: 15 minutes at most."""
    host, port = check_loopback_url(url)
    columns = (TextColumn("  seeding {task.description:<9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=session.console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        async def go() -> Seeded:
            try:
                async with HttpClient(host, port, max_connections=16, timeout=120, ssl=tls_for(url)) as client:
                    mailed = reader.code if reader is not None else None
                    return await asyncio.wait_for(seed(client, users=users, posts=posts, progress=progress, mailed_code=mailed), timeout=900)
            finally:
                if reader is not None:
                    await reader.close()

        return asyncio.run(go())


async def _post_and_fetch(client: HttpClient, data: Seeded, jpeg: bytes) -> MediaPhoto | None:
    user = data.users[0]
    body, ctype = multipart({"caption": "bench media photo"}, {"photo": ("photo.jpg", jpeg, "image/jpeg")})
    r = await client.request("POST", "/api/v1/posts", headers={**user.auth, "Content-Type": ctype}, body=body, timeout=60)
    if r.status != 201:
        return None
    photo_url = r.json()["photo_url"]
    path = "/" + photo_url.split("/", 3)[3] if photo_url.startswith(("http://", "https://")) else photo_url
    got = await client.request("GET", path)
    return MediaPhoto(path, got.body) if got.status == 200 else None


def media_photo(session: Session, url: str, data: Seeded, target_bytes: int, *, attempts: int = 3) -> MediaPhoto | None:
    """Post a photo that the stage stores at about ``target_bytes`` (it re-encodes uploads, so the
    size is searched: at most ``attempts`` uploads) and fetch it back as the stage serves it."""
    host, port = check_loopback_url(url)

    async def go() -> MediaPhoto | None:
        best: MediaPhoto | None = None
        ask = target_bytes
        async with HttpClient(host, port, max_connections=2, timeout=60, ssl=tls_for(url)) as client:
            for i in range(attempts):
                got = await _post_and_fetch(client, data, make_jpeg(ask, seed=100 + i))
                if got is None:
                    continue
                if best is None or abs(len(got.data) - target_bytes) < abs(len(best.data) - target_bytes):
                    best = got
                if abs(len(got.data) - target_bytes) <= 0.1 * target_bytes:
                    break
                ask = max(10_000, int(ask * target_bytes / max(1, len(got.data))))
        return best

    photo = asyncio.run(asyncio.wait_for(go(), timeout=300))
    if photo is None:
        session.notes.append("could not post and fetch back the media photo: no GET /media/<photo> run against nginx serving the same file")
    return photo


def warm_feeds(session: Session, url: str, data: Seeded, *, concurrency: int = 8) -> int:
    """Read every seeded user's feed once, as that user (bounded: 2 minutes), so that the mix
    starts with the cache a running service has: its feed reads that reach the database are then
    the ones a write or an expiry sent there, not the cold start. The reads that answered 200."""
    host, port = check_loopback_url(url)

    async def go() -> int:
        ok = 0
        async with HttpClient(host, port, max_connections=concurrency, timeout=30, ssl=tls_for(url)) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(user: Any) -> bool:
                async with gate:
                    return (await client.request("GET", "/api/v1/feed", headers=user.auth)).status == 200

            for done in await asyncio.gather(*(one(u) for u in data.users), return_exceptions=True):
                ok += done is True
        return ok

    return asyncio.run(asyncio.wait_for(go(), timeout=120))
