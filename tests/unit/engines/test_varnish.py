"""Varnish as the control plane runs it: an edge tier, then a regional tier, then two small real
origin servers. Photos are cached by both tiers as the origin's Cache-Control says, pages pass,
large objects stream, and a purge through the cdn port removes a photo from every tier."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from summit.engines import Layout, Supervisor
from summit.engines.layout import free_port
from summit.engines.varnish import Varnish
from summit.testing.engines import SmallOrigin
from summit.wiring import open_port

@pytest.fixture
async def cdn() -> AsyncIterator[tuple[str, str, Supervisor]]:
    root = Path(tempfile.mkdtemp(prefix="summit-varnish-", dir="/tmp"))
    root.chmod(0o755)  # varnishd's own user (under root) must reach its files
    origin = SmallOrigin("web-1")
    regional = Varnish("varnish-regional", free_port(), "regional", [origin], size_mb=32)
    edge = Varnish("varnish-edge", free_port(), "edge", [regional], size_mb=32)
    supervisor = Supervisor(Layout(root), [origin, regional, edge], on_event=lambda text: None)
    await supervisor.start()
    try:
        yield f"http://127.0.0.1:{edge.port}", f"varnish://{regional.address},{edge.address}", supervisor
    finally:
        await supervisor.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_photos_are_cached_by_both_tiers_and_pages_pass(cdn) -> None:  # noqa: ANN001
    url, _, _ = cdn
    async with httpx.AsyncClient(base_url=url) as client:
        first, second = await client.get("/media/p/a.jpg"), await client.get("/media/p/a.jpg")
        assert first.status_code == second.status_code == 200
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
        assert second.headers["x-cache-tier"] == "edge" and second.text == "/media/p/a.jpg from web-1"
        assert second.headers["x-origin-hits"] == first.headers["x-origin-hits"]  # the origin saw it once
        pages = [await client.get("/u/someone") for _ in range(2)]
        assert [p.headers["x-cache"] for p in pages] == ["MISS", "MISS"]  # not a cached path: passes
        private = [await client.get("/media/private/x") for _ in range(2)]
        assert private[1].headers["x-cache"] == "MISS"  # the origin said no-store


async def test_a_large_object_streams_through_both_tiers(cdn) -> None:  # noqa: ANN001
    url, _, _ = cdn
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with client.stream("GET", "/media/big/1") as response:
            size = sum([len(chunk) async for chunk in response.aiter_bytes()])
        assert response.status_code == 200 and size == 3_000_000
        assert (await client.get("/media/big/1")).headers["x-cache"] == "HIT"


async def test_a_purge_through_the_cdn_port_removes_a_photo_from_every_tier(cdn) -> None:  # noqa: ANN001
    url, cdn_url, _ = cdn
    port = open_port("cdn", cdn_url)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            await client.get("/media/p/b.jpg")
            assert (await client.get("/media/p/b.jpg")).headers["x-cache"] == "HIT"
            await port.purge(["/media/p/b.jpg"])
            again = await client.get("/media/p/b.jpg")
            assert again.headers["x-cache"] == "MISS"  # neither the edge nor the regional tier kept it
            assert int(again.headers["x-origin-hits"]) >= 2  # the origin was asked again
        with pytest.raises(ValueError, match="starts with '/'"):
            await port.purge(["media/no-slash"])
    finally:
        await port.close()


async def test_a_purge_reports_a_tier_it_cannot_reach(cdn) -> None:  # noqa: ANN001
    from summit.ports.cdn import CdnError

    _, cdn_url, _ = cdn
    port = open_port("cdn", cdn_url + f",127.0.0.1:{free_port()}")  # a third tier that does not exist
    try:
        with pytest.raises(CdnError, match="did not take the purge"):
            await port.purge(["/media/p/c.jpg"])
    finally:
        await port.close()
