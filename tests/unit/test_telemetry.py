"""Port counters and the SQL a request costs, as /metrics shows them."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from summit import telemetry
from summit.wiring import open_port


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_port_operations_and_cache_reads_are_counted_by_every_adapter(tmp_path: Path) -> None:
    cache = open_port("cache", "memory://?max_items=10")
    db = open_port("sql", f"sqlite:///{tmp_path}/app.db")
    before = dict(telemetry.OPERATIONS), dict(telemetry.CACHE_LOOKUPS)
    await cache.set("feed:1", b"x")
    assert await cache.get("feed:1") == b"x"
    assert await cache.get("feed:2") is None
    assert await cache.get("no-namespace") is None
    async with db.read() as conn:
        await conn.execute(sa.text("SELECT 1"))
        await conn.scalar(sa.text("SELECT 2"))
    await db.close()

    def grew(counter: dict, key: tuple[str, str], old: dict) -> int:
        return counter.get(key, 0) - old.get(key, 0)

    ops, lookups = telemetry.OPERATIONS, telemetry.CACHE_LOOKUPS
    assert grew(ops, ("cache", "set"), before[0]) == 1
    assert grew(ops, ("cache", "get"), before[0]) == 3
    assert grew(ops, ("sql", "read"), before[0]) == 1
    assert grew(ops, ("sql", "statement"), before[0]) == 2
    assert grew(lookups, ("feed", "hit"), before[1]) == 1
    assert grew(lookups, ("feed", "miss"), before[1]) == 1
    assert grew(lookups, ("other", "miss"), before[1]) == 1


def test_namespaces_are_a_bounded_set() -> None:
    assert telemetry.namespace("post:123") == "post"
    assert telemetry.namespace("identity:state:9") == "identity"
    assert telemetry.namespace("no colon") == "other"
    assert telemetry.namespace("Évil label\n:1") == "other"
    assert telemetry.namespace("x" * 40 + ":1") == "other"


async def test_metrics_show_the_sql_each_route_costs(client, make_user) -> None:  # noqa: ANN001
    user = await make_user()
    for _ in range(3):
        assert (await client.get("/api/v1/feed", headers=user.auth)).status_code == 200
    assert (await client.get("/healthz")).status_code == 200
    found = samples((await client.get("/metrics")).text)
    feed = (("method", "GET"), ("route", "/api/v1/feed"))
    assert found[("summit_http_requests_total", (*feed, ("status", "200")))] == 3
    assert found[("summit_sql_statements_total", feed)] >= 1
    assert 1 <= found[("summit_http_requests_reaching_sql_total", feed)] <= 3
    assert found[("summit_port_operations_total", (("operation", "statement"), ("port", "sql")))] >= 1
    assert any(name == "summit_cache_lookups_total" for name, _ in found)
