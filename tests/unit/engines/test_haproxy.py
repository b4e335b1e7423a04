"""HAProxy as the control plane runs it, in front of two small real HTTP servers: it spreads the
load, adds X-Forwarded-For and a request id, takes a dead server out by its health checks without a
failed GET, retries a POST only when it carries an Idempotency-Key, and shows server states."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from summit.engines import Command, Engine, Layout, Supervisor
from summit.engines.haproxy import HAProxy
from summit.engines.layout import free_port, tcp_open


# answers every request with its name and the headers it got; /slow-post waits before answering
SERVE = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, port = sys.argv[1], int(sys.argv[2])
class Handler(BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        if self.path == "/slow":
            time.sleep(5)
        body = json.dumps({"server": name, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class Web(Engine):
    kind = "app"

    def __init__(self, name: str):
        super().__init__(name, "web", free_port())

    def command(self, layout: Layout) -> Command:
        return Command([sys.executable, "-c", SERVE, self.name, str(self.port)])

    def ready(self, layout: Layout) -> bool:
        return tcp_open(self.host, self.port, timeout=0.2)


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[tuple[HAProxy, Supervisor, str]]:
    webs = [Web("web-1"), Web("web-2")]
    proxy = HAProxy("haproxy", "127.0.0.1", free_port(), free_port(), webs, check_interval_ms=200)
    supervisor = Supervisor(Layout(tmp_path), [*webs, proxy], on_event=lambda text: None)
    await supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while set(proxy.server_states().values()) != {"UP"} and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        yield proxy, supervisor, f"http://127.0.0.1:{proxy.port}"
    finally:
        await supervisor.stop()


async def test_it_spreads_requests_and_adds_the_client_address_and_a_request_id(front) -> None:  # noqa: ANN001
    proxy, _, url = front
    async with httpx.AsyncClient(base_url=url) as client:
        seen = [(await client.get("/", headers={"x-forwarded-for": "6.6.6.6"})).json() for _ in range(20)]
        given = (await client.get("/", headers={"x-request-id": "mine-123"})).json()
    assert Counter(s["server"] for s in seen).keys() == {"web-1", "web-2"}
    assert seen[0]["headers"]["x-forwarded-for"] == "127.0.0.1"  # what HAProxy saw; the client's claim is dropped
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", seen[0]["headers"]["x-request-id"])  # one the app keeps as its own
    assert seen[0]["headers"]["x-request-id"] != seen[1]["headers"]["x-request-id"]
    assert given["headers"]["x-request-id"] == "mine-123"  # a client's id is kept
    assert proxy.server_states() == {"web-1": "UP", "web-2": "UP"}


async def test_a_dead_server_costs_no_get_and_leaves_by_its_health_checks(front) -> None:  # noqa: ANN001
    proxy, supervisor, url = front
    failures = 0
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for n in range(200):
            if n == 50:
                supervisor.unit("web-1").process.kill(signal.SIGKILL)
            r = await client.get("/")
            failures += r.status_code != 200
        assert failures == 0
        deadline = time.monotonic() + 5
        while proxy.server_states().get("web-1") != "DOWN" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert proxy.server_states()["web-1"] == "DOWN"
        assert {(await client.get("/")).json()["server"] for _ in range(10)} == {"web-2"}


async def test_a_post_is_retried_elsewhere_only_with_an_idempotency_key(front) -> None:  # noqa: ANN001
    """A server that dies after taking a request leaves an empty response: HAProxy sends that
    request again only if resending it cannot do anything twice."""
    proxy, supervisor, url = front
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:

        async def kill_whoever_serves_slow() -> None:
            await asyncio.sleep(1.0)  # both slow requests are in flight, one on each server
            supervisor.unit("web-1").process.kill(signal.SIGKILL)

        killer = asyncio.create_task(kill_whoever_serves_slow())
        plain, keyed = await asyncio.gather(
            client.post("/slow", content=b"x"), client.post("/slow", content=b"x", headers={"idempotency-key": "k1"}),
        )
        await killer
    statuses = {plain.status_code, keyed.status_code}
    # the one that was on web-1 failed if it was the plain POST, and was answered by web-2 if keyed
    assert 200 in statuses
    if plain.status_code != 200:
        assert keyed.status_code == 200 and plain.status_code == 502
    else:
        assert keyed.status_code == 200 and keyed.json()["server"] == "web-2"


async def test_the_internal_l4_listener_carries_tcp_to_an_internal_service(tmp_path: Path) -> None:
    """``engines.haproxy.internal``: a TCP listener per internal service (PgBouncer, Redis), so the
    app reaches them through the load balancer; here a small server stands for the service."""
    service = Web("pgbouncer-primary")
    l4_port = free_port()
    proxy = HAProxy("haproxy", "127.0.0.1", free_port(), free_port(), [], internal={service.name: (l4_port, service)})
    assert proxy.needs == ("pgbouncer-primary",)  # it starts before the app servers, after the service
    supervisor = Supervisor(Layout(tmp_path), [service, proxy], on_event=lambda text: None)
    await supervisor.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{l4_port}") as client:
            answer = (await client.get("/through-l4")).json()
        assert answer["server"] == "pgbouncer-primary" and "x-forwarded-for" not in answer["headers"]  # bytes, not HTTP
        assert proxy.server_states() == {}  # no web backend servers here
    finally:
        await supervisor.stop()


def test_the_runtime_socket_path_fits_haproxys_limit(tmp_path: Path) -> None:
    """HAProxy refuses a unix socket path over 97 bytes (it binds ``<path>.<pid>.tmp`` first):
    a deep data directory (pytest's, under xdist) puts the socket in the temporary directory."""
    from summit.engines import Layout
    from summit.engines.haproxy import runtime_socket

    shallow = runtime_socket(Layout(tmp_path / "d"), 40001)
    deep = runtime_socket(Layout(tmp_path / ("x" * 80) / "d"), 40002)
    assert len(str(deep)) <= 97 and deep.name == "summit-haproxy-40002.sock"
    assert len(str(shallow)) <= 97


async def test_a_stopped_haproxy_leaves_no_runtime_socket_behind(tmp_path: Path) -> None:
    from summit.engines.haproxy import runtime_socket

    layout = Layout(tmp_path / ("x" * 80) / "d")  # deep: the socket lives in the temporary directory
    proxy = HAProxy("haproxy", "127.0.0.1", free_port(), free_port(), [])
    supervisor = Supervisor(layout, [proxy], on_event=lambda text: None)
    await supervisor.start()
    try:
        socket_path = runtime_socket(layout, proxy.stats_port)
        assert socket_path.exists() and not socket_path.is_relative_to(tmp_path)
    finally:
        await supervisor.stop()
    assert not socket_path.exists()
