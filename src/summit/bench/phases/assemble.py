"""The report: its skeleton at the start, the cache and database figures from the counters, the
notes the reader needs, and the JSON and HTML files at the end."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import psutil

from summit.bench import counters, procs
from summit.bench import html as html_report
from summit.bench import report as rep
from summit.bench.session import Session

COUNTER_NOTES = {
    counters.CACHE_LOOKUPS: "cache hit ratio",
    counters.REACHING_SQL: "share of reads reaching the database",
    counters.SQL_STATEMENTS: "SQL statements per request",
    counters.PORT_OPERATIONS: "port operations",
}


def machine_info() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count() or 1, "cpu_model": model, "memory_bytes": int(psutil.virtual_memory().total)}


def new_report(session: Session, blueprint: Any, started_at: str) -> dict[str, Any]:
    o = session.o
    report = rep.empty_report(blueprint.stage, started_at, machine_info(), blueprint.workload.model_dump())
    report[rep.EXTRA_KEY]["command"] = o.command
    report[rep.EXTRA_KEY]["settings"] = {
        "duration_per_step_s": o.duration, "raw_seconds": o.raw_seconds, "users": o.users, "posts": o.posts,
        "server_core": session.server_core, "client_core": session.client_core, "max_in_flight": o.max_in_flight, "connections": o.connections,
    }
    if session.server_core is not None and o.start and blueprint.engines.any():
        pass  # what runs where is said once the stage runs (stage.pinning_note): its engines float
    elif session.server_core is not None:
        session.notes.append(f"server pinned to CPU {session.server_core} (when started here), load generators (wrk, Python) to CPU {session.client_core}")
    else:
        session.notes.append("fewer than two CPUs (or no taskset): nothing is pinned; figures include the client's own CPU use")
    return report


def process_series(monitor: procs.Monitor) -> dict[str, Any]:
    names = sorted({n for s in monitor.samples for n in s.cpu})
    return {
        "t": [s.t for s in monitor.samples],
        "cpu": {n: [round(s.cpu.get(n, 0.0), 4) for s in monitor.samples] for n in names},
        "rss": {n: [s.rss.get(n, 0) for s in monitor.samples] for n in names},
        "peak_rss": dict(monitor.peak_rss),
    }


def fill_counters(report: dict[str, Any], session: Session, mix_deltas: list[counters.Snapshot | None], raw_rows: list[dict[str, Any]]) -> None:
    """``cache_hit_ratio`` and ``db_read_share`` from the mix's counters, the rest under
    ``extra.counters``; a note for each series the server does not export."""
    figs = counters.figures(counters.total(mix_deltas), ignored=counters.WORKLOAD_ONLY)
    report["cache_hit_ratio"] = figs["cache_hit_ratio"]
    report["db_read_share"] = figs["read_db_share"]
    report[rep.EXTRA_KEY]["counters"] = {"mix": figs, "raw": {row["name"]: row.get("counters") for row in raw_rows}}
    if not mix_deltas:
        return
    if not figs["measured"]:
        session.notes.append("the server's /metrics could not be read around every mix step: cache and database figures are not measured")
        return
    missing = [label for series, label in COUNTER_NOTES.items() if series not in figs["measured"]]
    if missing:
        session.notes.append(
            f"{', '.join(missing)}: not measured (the server's /metrics has no "
            + ", ".join(s for s in COUNTER_NOTES if s not in figs["measured"]) + ": an older server)"
        )
    if figs["cache_lookups"] == 0:
        session.notes.append("the mix made no cache lookup: no cache hit ratio")


def shared_machine_notes(report: dict[str, Any], session: Session) -> None:
    steps = report["steps"]
    waits = [s["server_cpu_wait"] for s in steps if s.get("server_cpu_wait") is not None]
    if waits and max(waits) > 0.05:
        session.notes.append(
            f"the server's threads waited for a CPU (runnable, not running) up to {max(waits):.2f} thread-seconds per second "
            "in a step: other work took its core, so its latencies include that queueing"
        )
    others = [s["other_cpu"] for s in steps]
    if others and max(others) > 0.1:
        session.notes.append(
            f"the machine was shared: other processes used up to {max(others) * 100:.0f}% of a core during the mix steps "
            f"(mean {sum(others) / len(others) * 100:.0f}%); throughput figures are lower than on an idle machine, ratios less so"
        )
    if report["client_bottleneck"]:
        session.notes.append("the load generator was the bottleneck in a step that decided the capacity: the capacity is a lower bound")
    for step in steps:
        if step.get("client_bound") and not report["client_bottleneck"]:
            session.notes.append(f"client-bound at {step['rate']:g} req/s (above the capacity; does not change it)")
    if report["capacity_rps"] is None:
        session.notes.append("no rate held: try lower --rates")


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``stage-<stage>-<time>.json`` and ``.html`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = out / f"stage-{report['stage']}-{stamp}.json"
    html_path = json_path.with_suffix(".html")
    rep.write(report, json_path)
    html_path.write_text(html_report.render(report))
    return json_path, html_path
