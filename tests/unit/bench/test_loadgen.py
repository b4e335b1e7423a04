"""The load generator's arithmetic: schedule, open-loop timing with a fake clock, the mix, figures."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from summit.bench import loadgen
from summit.bench.loadgen import Mix, Result, arrival_offsets, class_shares, percentile, run_open_loop, scenario_weights, summarize


class FakeClock:
    """Time moves only when someone sleeps; sleeping yields to the event loop once."""

    def __init__(self, start: float = 1000.0):
        self.t = start

    def now(self) -> float:
        return self.t

    async def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)
        await asyncio.sleep(0)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.t + seconds)


def workload(**kw):  # noqa: ANN003, ANN201
    base = dict(reads_per_write=100, uploads_per_dau=0.3, sessions_per_day=8, requests_per_session=15)
    base.update(kw)
    return SimpleNamespace(**base)


# ---- schedule ----
def test_schedule_count_and_spacing() -> None:
    offsets = arrival_offsets(50, 2.0)
    assert len(offsets) == 100
    gaps = {round(b - a, 9) for a, b in zip(offsets, offsets[1:], strict=False)}
    assert gaps == {0.02}
    assert offsets[0] == 0.0


def test_schedule_is_bounded() -> None:
    assert len(arrival_offsets(1000, 60, max_requests=500)) == 500
    assert arrival_offsets(0, 10) == []
    assert arrival_offsets(10, 0) == []
    assert len(arrival_offsets(2.5, 3)) == 7  # floor(7.5)


def test_open_loop_measures_from_the_scheduled_time() -> None:
    clock = FakeClock()
    service = 0.05

    def make_job(name: str):  # noqa: ANN202
        async def job() -> tuple[int, bool]:
            await clock.sleep(service)
            return 200, True

        return job

    offsets = arrival_offsets(10, 1.0)
    results = asyncio.run(run_open_loop(offsets, ["feed"] * len(offsets), make_job, clock=clock, deadline=30))
    assert len(results) == 10
    assert [round(r.scheduled - 1000.0, 6) for r in results] == [round(o, 6) for o in offsets]
    for r in results:
        assert r.ok and r.status == 200
        assert r.latency == pytest.approx(r.finished - r.scheduled)
        assert r.latency >= service - 1e-9
        assert r.dispatched is not None and r.dispatched >= r.scheduled


def test_queueing_shows_in_latency_when_slots_are_full() -> None:
    """One slot, jobs slower than the arrival gap: each waits for the one before, and that wait
    is in its latency (no coordinated omission)."""
    clock = FakeClock()

    def make_job(name: str):  # noqa: ANN202
        async def job() -> tuple[int, bool]:
            await clock.sleep(0.3)
            return 200, True

        return job

    offsets = arrival_offsets(10, 0.5)  # 5 requests, 0.1 s apart, each taking 0.3 s
    results = asyncio.run(run_open_loop(offsets, ["x"] * 5, make_job, clock=clock, max_in_flight=1, deadline=60))
    latencies = [round(r.latency, 6) for r in results]
    assert latencies == sorted(latencies)
    # the last one was due 0.4 s after the first and could only start after four others (1.2 s)
    assert latencies[-1] >= 5 * 0.3 - 0.4 - 1e-9
    assert all(r.started >= r.scheduled for r in results)
    queued = results[1:]
    assert all(r.started > r.scheduled and r.latency > r.finished - r.started for r in queued)


def test_failures_and_exceptions_are_errors() -> None:
    clock = FakeClock()
    calls = iter([(200, True), (500, False)])

    def make_job(name: str):  # noqa: ANN202
        async def job() -> tuple[int, bool]:
            if name == "boom":
                raise ConnectionResetError
            return next(calls)

        return job

    results = asyncio.run(run_open_loop([0, 0.1, 0.2], ["a", "b", "boom"], make_job, clock=clock))
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].status == 500 and results[2].status == 0 and results[2].error == "ConnectionResetError"


def test_deadline_bounds_the_run() -> None:
    clock = FakeClock()

    def make_job(name: str):  # noqa: ANN202
        async def job() -> tuple[int, bool]:
            await asyncio.sleep(3600)  # never answers in real time
            return 200, True

        return job

    offsets = arrival_offsets(10, 2.0)  # due up to 1.9 s; the deadline is at 1 s
    results = asyncio.run(asyncio.wait_for(run_open_loop(offsets, ["x"] * 20, make_job, clock=clock, deadline=1.0), 10))
    assert len(results) == 20
    assert not any(r.ok for r in results)
    assert {r.error for r in results} <= {"deadline", "not sent"}
    assert sum(r.error == "not sent" for r in results) == 10


# ---- the mix ----
def test_class_shares_follow_the_workload() -> None:
    shares = class_shares(workload())
    assert shares["read"] == pytest.approx(100 / 101)
    assert shares["upload"] == pytest.approx(0.3 / 120)
    assert shares["write"] + shares["upload"] == pytest.approx(1 / 101)
    assert sum(shares.values()) == pytest.approx(1)


def test_uploads_never_exceed_the_writes() -> None:
    shares = class_shares(workload(reads_per_write=1, uploads_per_dau=1000))
    assert shares["upload"] == pytest.approx(0.5) and shares["write"] == pytest.approx(0)


def test_mix_counts_follow_the_weights() -> None:
    weights = scenario_weights(workload())
    mix = Mix(weights)
    n = 40_400
    names = mix.take(n)
    for name, weight in weights.items():
        assert abs(names.count(name) - weight * n) <= 1.0, name
    reads = sum(names.count(k) for k in loadgen.READ_SPLIT)
    writes = n - reads
    assert reads / writes == pytest.approx(100, rel=0.01)
    assert names.count("post_photo") == pytest.approx(n * 0.3 / 120, abs=1)


def test_mix_spreads_rare_scenarios_evenly() -> None:
    mix = Mix({"read": 0.99, "upload": 0.01})
    names = mix.take(1000)
    positions = [i for i, n in enumerate(names) if n == "upload"]
    assert len(positions) == 10
    assert {b - a for a, b in zip(positions, positions[1:], strict=False)} == {100}


def test_mix_rejects_empty_weights() -> None:
    with pytest.raises(ValueError):
        Mix({"a": 0})


# ---- figures ----
def test_percentile() -> None:
    assert percentile([], 99) == 0
    assert percentile([5], 50) == 5
    values = list(range(1, 101))
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 100) == 100


def test_summarize_counts_errors_and_rate() -> None:
    results = [Result("a", 0.0, 0.0, 0.010 * (i + 1), 200, True) for i in range(99)] + [Result("a", 0.0, 0.0, 5.0, 0, False, "TimeoutError")]
    s = summarize(results, duration=10.0)
    assert s["count"] == 100
    assert s["achieved_rps"] == pytest.approx(9.9)
    assert s["error_ratio"] == pytest.approx(0.01)
    assert s["p50_ms"] == pytest.approx(505)
    assert s["p99_ms"] > 990


def test_by_scenario_and_time_series() -> None:
    results = [Result("feed" if i % 2 else "photo", i * 0.1, i * 0.1, i * 0.1 + 0.02, 200, True) for i in range(30)]
    groups = loadgen.by_scenario(results)
    assert groups["feed"]["count"] == 15 and groups["photo"]["count"] == 15
    assert groups["feed"]["p50_ms"] == pytest.approx(20)
    series = loadgen.time_series(results, origin=0.0)
    assert [p["t"] for p in series] == [0.0, 1.0, 2.0]
    assert series[0]["rps"] == pytest.approx(10)
    assert sum(p["rps"] * (1 if p["t"] < 2 else 0.92) for p in series) == pytest.approx(30, rel=0.01)


def test_seeded_likes_are_distinct_pairs() -> None:
    import random

    from summit.bench.seed import SeedPost, SeedUser, like_pairs

    users = [SeedUser(f"u{i}", "t") for i in range(3)]
    posts = [SeedPost(str(i), "u0", f"/media/{i}") for i in range(2)]
    pairs = like_pairs(random.Random(1), users, posts, 5)
    assert len(pairs) == 5 and len({(u.username, p.id) for u, p in pairs}) == 5
    assert len(like_pairs(random.Random(1), users, posts, 50)) == 6  # no more than there are pairs
    assert like_pairs(random.Random(2), users, posts, 4) == like_pairs(random.Random(2), users, posts, 4)  # deterministic
