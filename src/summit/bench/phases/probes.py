"""Sequential probes: the server's CPU per photo upload (the request, then the worker until the
thumbnails are ready) and per sign-up, less the stage's idle CPU and the polling requests.

psutil's CPU times tick every 10 ms, so one request's figure is coarse: the means over the
probes are what the report keeps."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from summit.bench.http import HttpClient, multipart
from summit.bench.net import check_loopback_url, tls_for
from summit.bench.seed import Seeded
from summit.bench.session import Session


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


async def _uploads(session: Session, client: HttpClient, data: Seeded, photo: bytes, idle: float, poll_cost_ms: float, count: int) -> tuple[list[float], list[float]]:
    """(web ms, worker ms) of each upload: the request, then until its thumbnails are ready."""
    user = data.users[-1]
    body, ctype = multipart({"caption": "probe"}, {"photo": ("photo.jpg", photo, "image/jpeg")})
    web: list[float] = []
    worker: list[float] = []
    for _ in range(count):
        await asyncio.to_thread(session.wait_idle, timeout=10)
        c0, t0 = session.server_cpu(), time.monotonic()
        r = await client.request("POST", "/api/v1/posts", headers={**user.auth, "Content-Type": ctype}, body=body)
        c1, t1 = session.server_cpu(), time.monotonic()
        if r.status != 201:
            session.notes.append(f"upload probe: status {r.status}")
            continue
        post_id = r.json()["id"]
        polls, ready = 0, False
        for _ in range(600):  # at most ~60 s
            await asyncio.sleep(0.1)
            polls += 1
            p = await client.request("GET", f"/api/v1/posts/{post_id}", headers=user.auth)
            if p.status == 200 and p.json()["thumbnails"]["ready"]:
                ready = True
                break
        c2, t2 = session.server_cpu(), time.monotonic()
        web.append(max(0.0, (c1 - c0) - idle * (t1 - t0)) * 1000)
        if ready:
            worker.append(max(0.0, (c2 - c1) * 1000 - idle * (t2 - t1) * 1000 - polls * poll_cost_ms))
    return web, worker


async def _signups(session: Session, client: HttpClient, data: Seeded, idle: float, count: int) -> list[float]:
    out: list[float] = []
    for i in range(count):
        await asyncio.to_thread(session.wait_idle, timeout=10)
        name = f"{data.prefix}_p{i:04d}"
        body = f'{{"username":"{name}","email":"{name}@example.com","password":"probe-password-1"}}'.encode()
        c0, t0 = session.server_cpu(), time.monotonic()
        r = await client.request("POST", "/api/v1/accounts", headers={"Content-Type": "application/json"}, body=body)
        c1, t1 = session.server_cpu(), time.monotonic()
        if r.status == 201:
            out.append(max(0.0, (c1 - c0) - idle * (t1 - t0)) * 1000)
    return out


def measure(session: Session, url: str, data: Seeded, photo: bytes, idle_share: float, get_post_cpu_ms: float | None) -> dict[str, Any]:
    """Means of ``--probes`` uploads and sign-ups, one at a time (bounded: 10 minutes)."""
    host, port = check_loopback_url(url)
    count = max(1, session.o.probes)

    async def go() -> dict[str, Any]:
        async with HttpClient(host, port, max_connections=2, timeout=60, ssl=tls_for(url)) as client:
            web, worker = await _uploads(session, client, data, photo, idle_share, get_post_cpu_ms or 0.0, count)
            signups = await _signups(session, client, data, idle_share, count)
        return {"upload_web_ms": _mean(web), "upload_worker_ms": _mean(worker), "signup_ms": _mean(signups), "uploads": len(web), "signups": len(signups)}

    return asyncio.run(asyncio.wait_for(go(), timeout=600))
