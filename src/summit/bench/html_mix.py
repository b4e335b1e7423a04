"""The sections of the bench page about the user-journey mix: its steps, its time series, the
latency of each scenario, and the CPU and memory of each process over the run."""

from __future__ import annotations

from typing import Any

from summit.bench import svg
from summit.bench.htmlkit import Raw, charts, table
from summit.bench.report import fmt

STEP_HEADERS = [
    "rate req/s", "achieved req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "client CPU", "server CPU",
    "other processes CPU", "server waiting for CPU (s/s)", "client lag p99 ms", "client-bound", "",
]


def _step_row(s: dict[str, Any]) -> list[Any]:
    held = Raw(f'<span class="{"ok" if s["held"] else "bad"}">{"held" if s["held"] else "not held"}</span>')
    return [
        s["rate"], s["achieved_rps"], s["p50_ms"], s["p95_ms"], s["p99_ms"], f'{s["error_ratio"] * 100:.2f}%',
        f'{s["client_cpu"] * 100:.0f}%', f'{(s["server_cpu"] or 0) * 100:.0f}%' if s["server_cpu"] is not None else "-",
        f'{s["other_cpu"] * 100:.0f}%' if s.get("other_cpu") is not None else "-",
        s.get("server_cpu_wait"), s.get("dispatch_lag_p99_ms"), "yes" if s.get("client_bound") else "no", held,
    ]


def steps(report: dict[str, Any], target: float | None) -> str:
    cap = report["capacity_rps"]
    by_rate = sorted(report["steps"], key=lambda s: s["rate"])
    return (
        "<h2>User-journey mix at fixed arrival rates (open model)</h2>"
        '<p class="muted">Requests are scheduled by the clock; latency counts from the scheduled time, so it stays honest '
        "when the server falls behind. A step holds when p99 is under the target and errors under the allowed ratio.</p>"
        + table(STEP_HEADERS, [_step_row(s) for s in report["steps"]], left=0)
        + charts(
            svg.line_chart(
                [(k, [(s["rate"], s[f"{k}_ms"]) for s in by_rate]) for k in ("p50", "p95", "p99")],
                title="Latency against arrival rate", x_label="scheduled rate (req/s)", y_label="ms (log)",
                hlines=[(target, f"p99 target {fmt(target)} ms")] if target else [], vlines=[(cap, "capacity")] if cap else [],
                log_y=True, width=530,
            ),
            svg.line_chart(
                [("achieved", [(s["rate"], s["achieved_rps"]) for s in by_rate]), ("scheduled", [(s["rate"], s["rate"]) for s in by_rate])],
                title="Achieved against scheduled rate", x_label="scheduled rate (req/s)", y_label="req/s", width=530,
            ),
        )
    )


def series(extra: dict[str, Any], target: float | None) -> str:
    points = extra.get("series") or []
    bounds = [(b["t"], f'{fmt(b["rate"])}/s') for b in (extra.get("step_bounds") or [])]
    return charts(
        svg.line_chart(
            [("achieved req/s", [(p["t"], p["rps"]) for p in points]), ("scheduled", [(p["t"], p.get("rate")) for p in points if p.get("rate") is not None])],
            title="Throughput over time", x_label="seconds into the mix", y_label="req/s", vlines=bounds, width=1080,
        ),
        svg.line_chart(
            [(k, [(p["t"], p[f"{k}_ms"]) for p in points]) for k in ("p50", "p95", "p99")],
            title="Latency over time (per second of answers, from scheduled time)", x_label="seconds into the mix", y_label="ms (log)",
            hlines=[(target, "p99 target")] if target else [], vlines=bounds, log_y=True, width=1080,
        ),
        svg.line_chart(
            [("errors per second", [(p["t"], p["errors"]) for p in points])],
            title="Errors over time", x_label="seconds into the mix", y_label="errors/s", vlines=bounds, width=1080, height=220,
        ),
    )


def scenarios(report: dict[str, Any], extra: dict[str, Any], target: float | None) -> str:
    scen = report["scenarios"]
    classes = extra.get("scenario_class") or {}
    weights = extra.get("mix_weights") or {}
    rows = [
        [n, classes.get(n, "-"), f"{weights.get(n, 0) * 100:.2f}%" if n in weights else "-", s["count"], s["p50_ms"], s.get("p95_ms"), s["p99_ms"], s["errors"]]
        for n, s in scen.items()
    ]
    names = list(scen)
    return (
        "<h2>Per-scenario latency (steps that held; all steps if none held)</h2>"
        + table(["scenario", "class", "share of mix", "count", "p50 ms", "p95 ms", "p99 ms", "errors"], rows, left=2)
        + charts(
            svg.bar_chart(
                names, [("p50", [scen[n]["p50_ms"] for n in names]), ("p99", [scen[n]["p99_ms"] for n in names])],
                title="Latency per scenario (ms, log)", y_label="ms", log_y=True, width=1080, hlines=[(target, "p99 target")] if target else [],
            )
        )
    )


def processes(extra: dict[str, Any]) -> str:
    procs = extra.get("processes") or {}
    t = procs.get("t") or []
    phases = [(p["t"], p["name"]) for p in (extra.get("phases") or [])]
    cpu = [(name, list(zip(t, [v * 100 for v in values], strict=False))) for name, values in (procs.get("cpu") or {}).items()]
    rss = [(name, list(zip(t, [v / 2**20 for v in values], strict=False))) for name, values in (procs.get("rss") or {}).items()]
    return "<h2>CPU and memory per process</h2>" + charts(
        svg.line_chart(cpu, title="CPU (% of one core)", x_label="seconds into the run", y_label="% of a core", vlines=phases, width=1080),
        svg.line_chart(rss, title="Resident memory (MiB)", x_label="seconds into the run", y_label="MiB", vlines=phases, width=1080, height=240),
    )
