"""``summit bench profile``: its arguments, the bounded closed-loop load (against a tiny local
server), and the flame graph and own-time table built from collapsed stacks."""

from __future__ import annotations

import asyncio
import re

import pytest
from typer.testing import CliRunner

from summit.bench import flame
from summit.bench.http import HttpClient
from summit.bench.options import BenchError
from summit.bench.profile import ROUTES, check_route, closed_loop
from summit.cli import bench, main  # noqa: F401  (registers the bench commands)


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main.app, ["bench", "profile", *args], env={"COLUMNS": "200"})


# ---- arguments ----
def test_routes_are_the_raw_endpoints_names() -> None:
    assert {"healthz", "post", "feed", "media"} <= set(ROUTES)
    assert check_route("feed").path is not None
    with pytest.raises(BenchError, match="unknown route 'fed'; the routes are: healthz, .*feed"):
        check_route("fed")


def test_a_bad_route_is_refused_before_anything_starts_and_the_valid_ones_are_listed() -> None:
    result = invoke("fed")
    assert result.exit_code == 2
    assert "unknown route 'fed'" in result.output
    for name in ROUTES:
        assert name in result.output


def test_a_target_off_loopback_is_refused() -> None:
    result = invoke("healthz", "--url", "http://example.com:8000")
    assert result.exit_code == 2
    assert "loopback" in result.output


@pytest.mark.parametrize("args", [["healthz", "--seconds", "0"], ["healthz", "--requests", "0"], ["healthz", "--connections", "0"], []])
def test_bounds_and_the_route_are_required(args: list[str]) -> None:
    assert invoke(*args).exit_code == 2


# ---- the load ----
def test_closed_loop_stops_at_its_request_count() -> None:
    seen: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                seen.append(head.split(" ")[1])
                status = b"200 OK" if len(seen) % 10 else b"500 Oops"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def go() -> tuple[int, int]:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with HttpClient("127.0.0.1", port, max_connections=4, timeout=5) as client:
                return await closed_loop(client, ("GET", "/healthz", {}, b""), connections=4, max_requests=50, seconds=60)
        finally:
            server.close()
            await server.wait_closed()

    done, errors = asyncio.run(go())
    assert done == 50 and len(seen) == 50 and set(seen) == {"/healthz"}
    assert errors == 5  # every tenth answer was a 500


def test_closed_loop_stops_at_its_deadline() -> None:
    async def go() -> tuple[int, int]:
        async with HttpClient("127.0.0.1", 9, max_connections=1, timeout=0.2) as client:  # nothing listens on port 9
            return await closed_loop(client, ("GET", "/", {}, b""), connections=1, max_requests=10**9, seconds=0.3)

    done, errors = asyncio.run(go())
    assert done == errors and done < 10**9  # every request failed, and the loop ended on its deadline


# ---- flame graphs ----
RAW = """\
process 10:"summit up";process 11:"summit up";run (asyncio/events.py:80);feed (photos/api/routes.py:104);execute (sqlalchemy/engine.py:12) 30
process 10:"summit up";process 11:"summit up";run (asyncio/events.py:80);feed (photos/api/routes.py:105);render (photos/api/json.py:9) 10
process 10:"summit up";process 11:"summit up";run (asyncio/events.py:80);feed (photos/api/routes.py:104) 5
_bootstrap (threading.py:1002);worker (aiosqlite/core.py:59) 55
not a stack line
"""


def test_collapsed_stacks_merge_by_function_and_rank_own_time() -> None:
    stacks = flame.parse(RAW.splitlines())
    assert stacks[("run (asyncio/events.py)", "feed (photos/api/routes.py)", "execute (sqlalchemy/engine.py)")] == 30
    assert sum(stacks.values()) == 100
    top = flame.top_own(stacks, 3)
    assert [(name, n) for name, n, _ in top] == [("worker (aiosqlite/core.py)", 55), ("execute (sqlalchemy/engine.py)", 30), ("render (photos/api/json.py)", 10)]
    assert top[0][2] == pytest.approx(0.55)


def test_the_flame_graph_is_a_self_contained_svg() -> None:
    page = flame.svg(flame.parse(RAW.splitlines()), "profile <feed>")
    assert page.startswith("<svg") and page.rstrip().endswith("</svg>")
    assert "profile &lt;feed&gt;" in page
    assert "feed (photos/api/routes.py) (45 samples, 45.0%)" in page  # inclusive time in the box's title
    assert "<script" not in page and not re.search(r"(src|href)=\"https?://", page)
