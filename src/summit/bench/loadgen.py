"""Open-model load: requests are scheduled by a clock at a fixed arrival rate, and latency is
measured from each request's *scheduled* time, so a server that falls behind shows it in its
latencies (no coordinated omission), however slow it gets.

The pieces are pure and testable with a fake clock:
- ``arrival_offsets(rate, duration)``: when each request is due;
- ``Mix``: which scenario each request is, following the blueprint's user model exactly;
- ``run_open_loop``: dispatches jobs at their due time, bounded in count, concurrency and time;
- ``percentile`` / ``summarize`` / ``time_series``: the figures of a step.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# ---- the clock ----------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep_until(self, t: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, t: float) -> None:
        delay = t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


# ---- the schedule -------------------------------------------------------------------------------


def arrival_offsets(rate: float, duration: float, *, max_requests: int | None = None) -> list[float]:
    """Due times (seconds from the start) of a constant-rate open arrival process: one request
    every 1/rate seconds, ``floor(rate * duration)`` of them, at most ``max_requests``."""
    if rate <= 0 or duration <= 0:
        return []
    count = int(math.floor(rate * duration + 1e-9))
    if max_requests is not None:
        count = min(count, max_requests)
    return [i / rate for i in range(count)]


# ---- the mix ------------------------------------------------------------------------------------

# Within each class, how requests split between scenarios. The class shares come from the
# blueprint's workload (reads_per_write, uploads_per_dau over sessions x requests per session);
# these splits are the bench's assumptions about a photo app's sessions (documented in
# docs/benchmarks.md): a session mostly scrolls the feed and opens photos.
READ_SPLIT = {"feed": 0.4, "photo": 0.4, "profile": 0.2}
WRITE_SPLIT = {"like": 0.6, "comment": 0.2, "follow": 0.15, "signup": 0.05}  # writes other than uploads
UPLOAD_SCENARIO = "post_photo"
SCENARIO_CLASS = {**{k: "read" for k in READ_SPLIT}, **{k: "write" for k in WRITE_SPLIT}, UPLOAD_SCENARIO: "upload"}


def class_shares(workload: Any) -> dict[str, float]:
    """Share of requests that are reads, writes other than uploads, and uploads.

    A write is 1 / (1 + reads_per_write) of requests; uploads are uploads_per_dau divided by the
    requests a daily active user makes (sessions_per_day * requests_per_session), and count as
    writes (capped at the write share)."""
    write = 1.0 / (1.0 + float(workload.reads_per_write))
    per_dau = float(workload.sessions_per_day) * float(workload.requests_per_session)
    upload = min(write, float(workload.uploads_per_dau) / per_dau) if per_dau > 0 else 0.0
    return {"read": 1.0 - write, "write": write - upload, "upload": upload}


def scenario_weights(workload: Any) -> dict[str, float]:
    shares = class_shares(workload)
    weights = {name: shares["read"] * w for name, w in READ_SPLIT.items()}
    weights.update({name: shares["write"] * w for name, w in WRITE_SPLIT.items()})
    weights[UPLOAD_SCENARIO] = shares["upload"]
    return {k: v for k, v in weights.items() if v > 0}


class Mix:
    """Deterministic interleaving that follows the weights as closely as counting allows: request
    n goes to the scenario furthest behind its share (largest ``weight * n - count``), so after
    any n requests every scenario's count is within one of ``weight * n``. Rare scenarios (one
    upload in ~400 requests) still come at regular intervals instead of at random."""

    def __init__(self, weights: dict[str, float]):
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("the mix needs at least one scenario with a positive weight")
        self.weights = {k: v / total for k, v in weights.items() if v > 0}
        self.counts = dict.fromkeys(self.weights, 0)
        self.n = 0

    def next(self) -> str:
        self.n += 1
        name = max(self.weights, key=lambda k: (self.weights[k] * self.n - self.counts[k], self.weights[k]))
        self.counts[name] += 1
        return name

    def take(self, count: int) -> list[str]:
        return [self.next() for _ in range(count)]


# ---- the run ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    scenario: str
    scheduled: float  # due time (clock seconds)
    started: float  # when it was actually sent
    finished: float
    status: int  # HTTP status; 0 = no answer (connection error, timeout, not sent)
    ok: bool
    error: str = ""
    dispatched: float | None = None  # when the load generator got to it (lag = dispatched - scheduled)

    @property
    def latency(self) -> float:
        """Seconds from the scheduled time to the answer (includes any wait to be sent)."""
        return self.finished - self.scheduled


Job = Callable[[], Awaitable[tuple[int, bool]]]  # returns (status, ok)


async def run_open_loop(
    offsets: Sequence[float],
    scenarios: Sequence[str],
    make_job: Callable[[str], Job],
    *,
    clock: Clock | None = None,
    max_in_flight: int = 512,
    deadline: float = 60.0,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Send job i at ``start + offsets[i]``; return one Result per scheduled request.

    - Late dispatch (the loop itself fell behind) sends at once; latency still counts from the
      due time. At most ``max_in_flight`` requests run at once: the others wait for a slot, and
      that wait is in their latency too.
    - Bounded in time: ``deadline`` seconds after the start, requests not yet answered are
      cancelled and recorded as errors ("deadline"), and those not yet sent as "not sent".
    """
    if len(offsets) != len(scenarios):
        raise ValueError("one scenario per scheduled request")
    clock = clock or MonotonicClock()
    slots = asyncio.Semaphore(max_in_flight)
    results: list[Result | None] = [None] * len(offsets)
    start = clock.now()
    stop_at = start + deadline
    tasks: list[asyncio.Task] = []

    async def one(i: int, due: float) -> None:
        name = scenarios[i]
        sent = due
        dispatched = clock.now()
        try:
            async with slots:
                sent = clock.now()
                status, ok = await make_job(name)()
            result = Result(name, due, sent, clock.now(), status, ok, "" if ok else f"status {status}", dispatched)
        except asyncio.CancelledError:
            result = Result(name, due, sent, clock.now(), 0, False, "deadline", dispatched)
            results[i] = result
            raise
        except Exception as error:  # noqa: BLE001  (every failure is a measured error)
            result = Result(name, due, sent, clock.now(), 0, False, type(error).__name__, dispatched)
        results[i] = result
        if on_result is not None:
            on_result(result)

    for i, offset in enumerate(offsets):
        due = start + offset
        if due >= stop_at:
            break
        await clock.sleep_until(due)
        tasks.append(asyncio.ensure_future(one(i, due)))
    if tasks:
        remaining = stop_at - clock.now()
        done, pending = await asyncio.wait(tasks, timeout=max(0.0, remaining)) if remaining > 0 else (set(), set(tasks))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    end = clock.now()
    out: list[Result] = []
    for i, result in enumerate(results):
        if result is None:  # never sent: the deadline came first
            due = start + offsets[i]
            result = Result(scenarios[i], due, due, max(end, due), 0, False, "not sent")
        out.append(result)
    return out


# ---- figures ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks; 0 if empty."""
    if not values:
        return 0.0
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    low = int(math.floor(pos))
    high = min(low + 1, len(data) - 1)
    return float(data[low] + (data[high] - data[low]) * (pos - low))


def summarize(results: Sequence[Result], duration: float) -> dict[str, float]:
    """achieved_rps (answers per second of the step), p50/p95/p99 (ms, from the scheduled time,
    over all requests: a failed or timed-out one counts with the time it took), error_ratio, and
    the load generator's own lag (p99 of dispatched - scheduled, ms)."""
    latencies = [r.latency * 1000 for r in results]
    lags = [(r.dispatched - r.scheduled) * 1000 for r in results if r.dispatched is not None]
    errors = sum(1 for r in results if not r.ok)
    answered = sum(1 for r in results if r.status)
    return {
        "count": len(results),
        "achieved_rps": answered / duration if duration > 0 else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "error_ratio": errors / len(results) if results else 0.0,
        "errors": errors,
        "dispatch_lag_p99_ms": percentile(lags, 99),
    }


def by_scenario(results: Sequence[Result]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(r.scenario, []).append(r)
    out = {}
    for name, items in sorted(groups.items()):
        lat = [r.latency * 1000 for r in items]
        out[name] = {
            "count": len(items),
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
            "p99_ms": percentile(lat, 99),
            "errors": sum(1 for r in items if not r.ok),
        }
    return out


def time_series(results: Sequence[Result], origin: float, bucket: float = 1.0) -> list[dict[str, float]]:
    """Per ``bucket`` seconds of answers (by finish time, from ``origin``): throughput, p50, p95,
    p99 (ms) and errors. The last bucket is usually partial: its rate is over the time it covers,
    and a sliver under a quarter of a bucket is merged into the one before."""
    if not results:
        return []
    buckets: dict[int, list[Result]] = {}
    for r in results:
        buckets.setdefault(max(0, int((r.finished - origin) // bucket)), []).append(r)
    end = max(r.finished for r in results) - origin
    last = max(buckets)
    widths = {i: bucket for i in buckets}
    widths[last] = max(end - last * bucket, 1e-9)
    if widths[last] < bucket / 4 and last - 1 in buckets:
        buckets[last - 1].extend(buckets.pop(last))
        widths[last - 1] = bucket + widths.pop(last)
    elif widths[last] < bucket / 4:
        widths[last] = bucket
    series = []
    for index in sorted(buckets):
        items = buckets[index]
        lat = [r.latency * 1000 for r in items]
        series.append(
            {
                "t": round(index * bucket, 3),
                "rps": sum(1 for r in items if r.status) / widths[index],
                "p50_ms": percentile(lat, 50),
                "p95_ms": percentile(lat, 95),
                "p99_ms": percentile(lat, 99),
                "errors": sum(1 for r in items if not r.ok),
            }
        )
    return series
