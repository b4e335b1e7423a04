"""The guard on HAProxy's own access log: the stage's front door, as the control plane renders and
supervises it, in front of a small real server that answers 404 for what it does not have; a
scanner on one loopback address and an ordinary client on another. The lines the guard reads are
the ones HAProxy wrote (``logs/haproxy.log``), readiness probes and statistics requests included."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from summit.blueprint.model import Guard
from summit.engines import Layout, Supervisor
from summit.engines.haproxy import HAProxy
from summit.engines.layout import Engine, free_port, tcp_open
from summit.engines.process import Command
from summit.security.guard import Detector

pytestmark = [
    pytest.mark.haproxy,
    pytest.mark.skipif(not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()), reason="needs HAProxy"),
]

SITE = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        status = 200 if self.path in ("/", "/healthz") else 404
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class Site(Engine):
    """An app server's stand-in: / and /healthz exist, nothing else does."""

    kind = "app"

    def __init__(self) -> None:
        super().__init__("web-1", "web", free_port())

    def command(self, layout: Layout) -> Command:
        return Command([sys.executable, "-c", SITE, str(self.port)])

    def ready(self, layout: Layout) -> bool:
        return tcp_open(self.host, self.port, timeout=0.2)


@pytest.fixture
async def front_door(tmp_path: Path) -> AsyncIterator[str]:
    site = Site()
    proxy = HAProxy("haproxy", "127.0.0.1", free_port(), free_port(), [site], check_interval_ms=200)
    supervisor = Supervisor(Layout(tmp_path), [site, proxy], on_event=lambda _: None)
    await supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while set(proxy.server_states().values()) != {"UP"} and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{proxy.port}"
    finally:
        await supervisor.stop()


async def get_all(url: str, paths: list[str], source: str) -> list[int]:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=10) as client:
        return [(await client.get(path)).status_code for path in paths]


async def test_a_scanner_behind_haproxy(front_door: str, tmp_path: Path) -> None:
    assert await get_all(front_door, ["/", "/", "/nothing-here"], "127.0.0.1") == [200, 200, 404]  # an ordinary visitor
    assert await get_all(front_door, [f"/probe{n}.php?x={n}" for n in range(30)], "127.0.0.2") == [404] * 30
    log = tmp_path / "logs" / "haproxy.log"
    deadline = time.monotonic() + 5
    while log.read_text().count('"GET /') < 33 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)

    detector = Detector(tmp_path, Guard(), access_logs=["logs/haproxy.log"])
    report = detector.run()
    assert report.requests == 33, log.read_text()
    [finding] = detector.findings()
    assert (finding.type, finding.source, finding.count, finding.account) == ("Recon:Network/Scanning", "127.0.0.2", 30, None)
    assert finding.evidence[0]["request"] == "GET /probe0.php" and finding.evidence[0]["log"] == "logs/haproxy.log"
    lines = log.read_text().splitlines()
    assert all("127.0.0.2:" in lines[e["line"] - 1] and e["status"] == 404 for e in finding.evidence)
