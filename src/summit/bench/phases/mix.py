"""The user-journey mix at stepped arrival rates (open model): each step runs ``--duration``
seconds at one rate, then the rates go up until one does not hold, then ``--refine`` bisections.
Around each step, ``/metrics`` is scraped: the steps' differences give the cache and database
figures of the mix."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from summit.bench import counters, loadgen, procs
from summit.bench import report as rep
from summit.bench.http import HttpClient
from summit.bench.net import check_loopback_url, tls_for
from summit.bench.scenarios import Scenarios
from summit.bench.seed import Seeded
from summit.bench.session import Session

CLIENT_LAG_MS = 20.0


def planned_rates(estimate_rps: float | None) -> list[float]:
    """Rates to step through when none are given: fractions of the capacity the raw per-endpoint
    demands predict (so a slow stage and a fast one both get a useful ramp), else a fixed ramp."""
    if not estimate_rps or estimate_rps <= 0:
        return [10, 25, 50, 100, 200, 400]
    out = []
    for fraction in (0.2, 0.4, 0.6, 0.75, 0.9, 1.05, 1.25):
        rate = estimate_rps * fraction
        step = 5 if rate < 100 else 10 if rate < 1000 else 50
        out.append(float(max(step, round(rate / step) * step)))
    return sorted(set(out))


def client_bound(step: dict[str, Any], target_ms: float = 250.0) -> bool:
    """The load generator, not the server, limited this step: it used more than half its core; or
    its own dispatch fell behind the schedule (p99 lag over ``CLIENT_LAG_MS``); or it fell short of
    the scheduled rate while the server had CPU to spare and answered in time (a shortfall that
    comes with long server latencies is the server's queue, not the client)."""
    if step["client_cpu"] > 0.5:
        return True
    if (step.get("dispatch_lag_p99_ms") or 0.0) > CLIENT_LAG_MS:
        return True
    server = step.get("server_cpu")
    return step["achieved_rps"] < 0.95 * step["rate"] and server is not None and server < 0.6 and step["p99_ms"] <= target_ms


def overall_client_bottleneck(steps: list[dict[str, Any]]) -> bool:
    """True if a step that decided the capacity (every step up to the first that failed) was
    client-bound: the capacity is then a lower bound."""
    for step in sorted(steps, key=lambda s: s["rate"]):
        if step.get("client_bound"):
            return True
        if not step["held"]:
            break
    return False


def error_kinds(results: list[loadgen.Result]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for r in results:
        if not r.ok:
            kinds[r.error or "error"] = kinds.get(r.error or "error", 0) + 1
    return kinds


@dataclass
class Mixed:
    steps: list[dict[str, Any]] = field(default_factory=list)
    results: list[list[loadgen.Result]] = field(default_factory=list)  # per step
    series: list[dict[str, Any]] = field(default_factory=list)
    bounds: list[dict[str, Any]] = field(default_factory=list)
    deltas: list[counters.Snapshot | None] = field(default_factory=list)  # per step

    def for_scenarios(self) -> list[loadgen.Result]:
        """The results of the steps that held (all steps' if none held)."""
        held = [r for s, rs in zip(self.steps, self.results, strict=True) if s["held"] for r in rs]
        return held or [r for rs in self.results for r in rs]


@dataclass
class _Usage:
    """CPU and wall clock read before and after a step."""

    busy: float
    wait: float | None
    client: float
    server: float
    wall: float
    parts: dict[str, float] = field(default_factory=dict)  # CPU seconds of each part of the server

    @classmethod
    def now(cls, session: Session) -> _Usage:
        return cls(procs.system_busy_seconds(), session.server_wait(), procs.self_cpu_seconds(), session.server_cpu(), time.monotonic(), session.part_cpu())


def _drive(session: Session, url: str, data: Seeded, photo: bytes, rate: float, names: list[str], offsets: list[float]) -> tuple[list[loadgen.Result], float]:
    """Send the step's requests at their due times with a progress bar; (results, start time)."""
    host, port = check_loopback_url(url)
    o = session.o
    stats = {"done": 0, "errors": 0}
    latencies: list[float] = []
    columns = (TextColumn(f"  {rate:>7,.1f} req/s"), BarColumn(), MofNCompleteColumn(), TextColumn("p99 {task.fields[p99]:>8}  errors {task.fields[errors]}"), TimeElapsedColumn())
    with Progress(*columns, console=session.console, refresh_per_second=4) as bar:
        task = bar.add_task("step", total=len(offsets), p99="-", errors=0)

        def on_result(r: loadgen.Result) -> None:
            stats["done"] += 1
            stats["errors"] += not r.ok
            latencies.append(r.latency * 1000)
            if stats["done"] % max(1, int(rate // 2)) == 0:
                bar.update(task, completed=stats["done"], p99=f"{loadgen.percentile(latencies[-int(rate * 2) - 1:], 99):.1f} ms", errors=stats["errors"])

        async def go() -> tuple[list[loadgen.Result], float]:
            async with HttpClient(host, port, max_connections=o.connections, timeout=o.request_timeout, ssl=tls_for(url)) as client:
                scen = Scenarios(client, data, photo=photo, upload_timeout=max(o.request_timeout, 30))
                t0 = time.monotonic()
                results = await loadgen.run_open_loop(
                    offsets, names, scen.make_job, max_in_flight=o.max_in_flight, deadline=o.duration + o.request_timeout + 5, on_result=on_result,
                )
                return results, t0

        results, t0 = asyncio.run(go())
        bar.update(task, completed=len(results), p99=f"{loadgen.percentile(latencies, 99):.1f} ms", errors=stats["errors"])
    return results, t0


def summarize_step(session: Session, rate: float, results: list[loadgen.Result], t0: float, u0: _Usage, u1: _Usage, workload: Any) -> dict[str, Any]:
    """A step's figures (the report's ``steps[]`` entry) from its results and the CPU it used."""
    wall = max(u1.wall - u0.wall, 1e-6)
    span = max(session.o.duration, (max((r.finished for r in results), default=t0) - t0))
    summary = loadgen.summarize(results, span)
    client_cpu = (u1.client - u0.client) / wall
    server_cpu = (u1.server - u0.server) / wall if session.server_pid else None
    step = {
        "rate": float(rate), "achieved_rps": summary["achieved_rps"],
        "p50_ms": summary["p50_ms"], "p95_ms": summary["p95_ms"], "p99_ms": summary["p99_ms"], "error_ratio": summary["error_ratio"],
        "client_cpu": client_cpu, "server_cpu": server_cpu, "held": False,
        "requests": len(results), "answered": sum(1 for r in results if r.status),
        "server_cpu_seconds": (u1.server - u0.server) if session.server_pid else None,
        "errors_by_kind": error_kinds(results),
        "other_cpu": max(0.0, (u1.busy - u0.busy) / wall - client_cpu - (server_cpu or 0.0)),
        "server_cpu_wait": (u1.wait - u0.wait) / wall if u0.wait is not None and u1.wait is not None else None,
        "dispatch_lag_p99_ms": summary["dispatch_lag_p99_ms"],
    }
    if u0.parts and u1.parts:
        step["server_cpu_seconds_by_part"] = {name: max(0.0, u1.parts[name] - u0.parts.get(name, 0.0)) for name in u1.parts}
    step["held"] = rep.step_held(step, workload.p99_target_ms, workload.max_error_ratio)
    step["client_bound"] = client_bound(step, workload.p99_target_ms)
    return step


def _parts(step: dict[str, Any]) -> str:
    """" (app 40%, database 20%, supervisor 0%)": the server's CPU by part, when it has parts."""
    parts = step.get("server_cpu_seconds_by_part")
    span = (step.get("server_cpu_seconds") or 0) / step["server_cpu"] if step.get("server_cpu") else None
    if not parts or not span:
        return ""
    return " (" + ", ".join(f"{name} {seconds / span * 100:.0f}%" for name, seconds in parts.items()) + ")"


def _say(session: Session, step: dict[str, Any]) -> None:
    verdict = "[green]held[/green]" if step["held"] else "[red]not held[/red]"
    session.console.print(
        f"    rate {step['rate']:,.1f}: achieved {step['achieved_rps']:,.1f} req/s, p50 {step['p50_ms']:.1f} / p95 {step['p95_ms']:.1f} / "
        f"p99 {step['p99_ms']:.1f} ms, errors {step['error_ratio'] * 100:.2f}%, client CPU {step['client_cpu'] * 100:.0f}%, "
        f"server CPU {(step['server_cpu'] or 0) * 100:.0f}%{_parts(step)} (threads waiting for a CPU {step['server_cpu_wait'] or 0:.2f} s/s), "
        f"other processes {step['other_cpu'] * 100:.0f}%: {verdict}" + (" [yellow](client-bound)[/yellow]" if step["client_bound"] else "")
    )


def run_step(session: Session, url: str, data: Seeded, photo: bytes, mix: loadgen.Mix, rate: float, workload: Any) -> tuple[dict[str, Any], list[loadgen.Result], float, counters.Snapshot | None]:
    """One step at ``rate``: (its figures, its results, its start time, what the server counted)."""
    session.wait_idle(timeout=20)
    offsets = loadgen.arrival_offsets(rate, session.o.duration, max_requests=200_000)
    names = mix.take(len(offsets))
    with session.meter(url).phase() as reading:
        u0 = _Usage.now(session)
        results, t0 = _drive(session, url, data, photo, rate, names, offsets)
        u1 = _Usage.now(session)
    step = summarize_step(session, rate, results, t0, u0, u1, workload)
    figs = counters.figures(reading.delta, ignored=counters.WORKLOAD_ONLY)
    step["counters"] = {k: figs[k] for k in ("cache_hit_ratio", "feed_db_share", "read_db_share", "sql_statements_per_request")}
    return step, results, t0, reading.delta


def measure(session: Session, url: str, data: Seeded, photo: bytes, workload: Any, rates: list[float]) -> Mixed:
    """Steps until the rates are done or one fails and the refinements are spent (at most ``--max-steps``)."""
    mix = loadgen.Mix(loadgen.scenario_weights(workload))
    out = Mixed()
    origin = time.monotonic()
    planned = sorted(float(r) for r in rates)
    min_gap = max(2.0, planned[0] * 0.1) if planned else 2.0
    for _ in range(session.o.max_steps):
        todo = rep.next_rates(out.steps, planned, refine=session.o.refine, min_gap=min_gap)
        if not todo:
            break
        rate = todo[0]
        step, results, t0, delta = run_step(session, url, data, photo, mix, rate, workload)
        out.steps.append(step)
        out.results.append(results)
        out.deltas.append(delta)
        offset = t0 - origin
        out.bounds.append({"t": round(offset, 2), "rate": rate})
        for point in loadgen.time_series(results, t0):
            point["t"] = round(point["t"] + offset, 2)
            point["rate"] = rate
            out.series.append(point)
        _say(session, step)
    return out
