"""The bench report as one self-contained HTML page: tables and inline SVG plots, no script, no
stylesheet or font from anywhere else (it opens offline, and from a file)."""

from __future__ import annotations

from html import escape
from typing import Any

from summit.bench import headline, svg
from summit.bench.report import fmt

NOT_MEASURED = "not measured at this stage"
UNCOUNTED = "not measured"  # the server exports no such counter (an older server), or none was read

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1120px;color:#111827;padding:0 16px}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.muted{color:#6b7280} table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:right} th{background:#f9fafb} td.l,th.l{text-align:left}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.kpi{border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:150px}
.kpi b{display:block;font-size:22px} .kpi span{font-size:12px;color:#6b7280}
.ok{color:#15803d} .bad{color:#b91c1c} .charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{border:1px solid #e5e7eb;border-radius:6px;max-width:100%;height:auto}
ul.notes li{margin:4px 0;font-size:14px} code{background:#f3f4f6;padding:1px 4px;border-radius:3px}
"""


def _table(headers: list[str], rows: list[list[Any]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = value if isinstance(value, _Raw) else escape(fmt(value) if not isinstance(value, str) else value)
            cells.append(f'<td class="{"l" if i < left else ""}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _kpi(label: str, value: str, sub: str = "") -> str:
    return f'<div class="kpi"><span>{escape(label)}</span><b>{escape(value)}</b><span>{escape(sub)}</span></div>'


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.3f}" if value / base < 10 else f"{value / base:,.1f}"


def _ratio_or_none(value: float | None, base: float | None) -> float | None:
    return value / base if value and base else None


def _percent(value: float | None) -> str:
    return UNCOUNTED if value is None else f"{value * 100:.1f}%"


def _counted(row: dict[str, Any], key: str, *, percent: bool = False) -> Any:
    value = (row.get("counters") or {}).get(key)
    if value is None:
        return UNCOUNTED
    return f"{value * 100:.1f}%" if percent else value


def _key_figures(report: dict[str, Any]) -> str:
    rows = [[f.label, UNCOUNTED if f.value is None else f.value, f.target] for f in headline.figures(report)]
    return (
        "<h2>Key figures</h2>"
        '<p class="muted">Ratios against baselines of this run (so they hold on a shared machine), beside what good looks like '
        "at stage 1. Counter figures come from the server's <code>/metrics</code>, scraped before and after each measured phase.</p>"
        + _table(["figure", "value", "stage-1 target"], rows)
    )


def _cache_and_database(report: dict[str, Any]) -> str:
    mix = ((report.get("extra") or {}).get("counters") or {}).get("mix") or {}
    parts = ["<h2>Cache and database (the mix's steps, from <code>/metrics</code>)</h2>"]
    parts.append(
        _table(
            ["figure", "value"],
            [
                ["cache hit ratio", _percent(report["cache_hit_ratio"])],
                ["cache lookups", UNCOUNTED if mix.get("cache_lookups") is None else mix["cache_lookups"]],
                ["share of feed reads reaching the database (GET /api/v1/feed, GET /)", _percent(mix.get("feed_db_share"))],
                ["share of reads reaching the database", _percent(report["db_read_share"])],
                ["SQL statements per request", UNCOUNTED if mix.get("sql_statements_per_request") is None else mix["sql_statements_per_request"]],
            ],
        )
    )
    spaces = mix.get("cache_by_namespace") or {}
    if spaces:
        parts.append(_table(["cache namespace", "lookups", "hit ratio"], [[n, s["lookups"], _percent(s["hit_ratio"])] for n, s in spaces.items()]))
    per_route, shares = mix.get("sql_per_request") or {}, mix.get("db_share_by_route") or {}
    if per_route or shares:
        routes = sorted(set(per_route) | set(shares))
        parts.append(_table(["route", "SQL statements / request", "requests reaching the database"], [[r, per_route.get(r, "-"), _percent(shares.get(r))] for r in routes]))
    ops = mix.get("port_operations") or {}
    if ops:
        parts.append(_table(["port", "operation", "calls"], [[p, op, n] for p, o in ops.items() for op, n in o.items()], left=2))
    return "".join(parts)


def render(report: dict[str, Any]) -> str:
    extra = report.get("extra") or {}
    workload = report.get("workload") or {}
    target = workload.get("p99_target_ms")
    baselines = report["baselines"]
    hello = baselines.get("asgi_hello_rps")
    parts: list[str] = []
    machine = report["machine"]
    parts.append(f"<h1>summit bench: stage {escape(str(report['stage']))}</h1>")
    parts.append(
        f'<p class="muted">started {escape(str(report["started_at"]))} &middot; {machine.get("cores")} cores, '
        f'{escape(str(machine.get("cpu_model")))}, {fmt((machine.get("memory_bytes") or 0) / 2**30)} GiB memory'
        + (f' &middot; <code>{escape(extra["command"])}</code>' if extra.get("command") else "")
        + "</p>"
    )

    # ---- headline ----
    cap = report["capacity_rps"]
    kpis = [
        _kpi("capacity (user mix)", f"{fmt(cap)} req/s" if cap is not None else "none held", f"p99 < {fmt(target)} ms, errors < {fmt((workload.get('max_error_ratio') or 0) * 100)}%"),
        _kpi("capacity / ASGI hello", _ratio(cap, hello), f"hello: {fmt(hello)} req/s"),
        _kpi("nginx static 1 KiB", f"{fmt(baselines.get('nginx_static_rps'))} req/s", "same pinning"),
    ]
    app_demand = (report.get("demands") or {}).get("app") or {}
    if app_demand:
        kpis.append(_kpi("app CPU per request (mix)", f"{fmt(app_demand.get('cpu_ms_per_request'))} ms", f"RSS {fmt((app_demand.get('rss_bytes') or 0) / 2**20)} MiB"))
    kpis.append(
        _kpi(
            "client was the bottleneck",
            "yes" if report["client_bottleneck"] else "no",
            "figures are a lower bound" if report["client_bottleneck"] else "client stayed under half its core",
        )
    )
    parts.append('<div class="kpis">' + "".join(kpis) + "</div>")
    parts.append(_key_figures(report))

    # ---- raw endpoints and baselines ----
    parts.append("<h2>Single-endpoint throughput (wrk) and baselines</h2>")
    parts.append(
        '<p class="muted">wrk on one core, the server on the other; each figure also as a ratio of the bare ASGI hello '
        "served by the same server with the same settings, measured in this run.</p>"
    )
    rows = [
        [r["name"], f'{r["method"]} {r["path"]}', r["rps"], r["ratio_to_hello"], r["p50_ms"], r["p99_ms"], r.get("cpu_ms_per_request"),
         _counted(r, "sql_statements_per_request"), _counted(r, "cache_hit_ratio", percent=True), r.get("ratio_to_nginx_same_file", "-")]
        for r in report["raw"]
    ]
    photo_kb = f' ({fmt((extra.get("media_photo_bytes") or 0) / 1000)} kB)' if extra.get("media_photo_bytes") else ""
    base_rows = [
        ["ASGI hello (granian)", "GET /", hello, 1.0 if hello else None],
        ["nginx static 1 KiB", "GET /1k.bin", baselines.get("nginx_static_rps"), _ratio_or_none(baselines.get("nginx_static_rps"), hello)],
        ["nginx the app's photo", f"GET /photo.jpg{photo_kb}", baselines.get("nginx_photo_rps"), _ratio_or_none(baselines.get("nginx_photo_rps"), hello)],
        ["redis-benchmark GET/SET", "-", baselines.get("redis_ops"), None],
        ["pgbench -S", "-", baselines.get("pgbench_tps"), None],
    ]
    bl = extra.get("baseline_detail") or {}
    for row in base_rows:
        detail = bl.get(row[0]) or {}
        row += [detail.get("p50_ms"), detail.get("p99_ms"), detail.get("cpu_ms_per_request"), "-", "-", "-"]
        if row[2] is None:
            row[2] = NOT_MEASURED if "redis" in row[0] or "pgbench" in row[0] else "-"
    headers = ["endpoint", "request", "req/s", "/ hello", "p50 ms", "p99 ms", "server CPU ms/req", "SQL statements/req", "cache hits", "/ nginx, same file"]
    parts.append(_table(headers, base_rows + rows, left=2))
    names = ["ASGI hello", "nginx static"] + [r["name"] for r in report["raw"]]
    values = [hello, baselines.get("nginx_static_rps")] + [r["rps"] for r in report["raw"]]
    parts.append('<div class="charts">' + svg.bar_chart(names, [("req/s", values)], title="Requests per second (log scale)", y_label="req/s", log_y=True, width=1080) + "</div>")

    # ---- steps ----
    parts.append("<h2>User-journey mix at fixed arrival rates (open model)</h2>")
    parts.append(
        '<p class="muted">Requests are scheduled by the clock; latency counts from the scheduled time, so it stays honest '
        "when the server falls behind. A step holds when p99 is under the target and errors under the allowed ratio.</p>"
    )
    step_rows = []
    for s in report["steps"]:
        held = _Raw(f'<span class="{"ok" if s["held"] else "bad"}">{"held" if s["held"] else "not held"}</span>')
        step_rows.append(
            [
                s["rate"], s["achieved_rps"], s["p50_ms"], s["p95_ms"], s["p99_ms"], f'{s["error_ratio"] * 100:.2f}%',
                f'{s["client_cpu"] * 100:.0f}%', f'{(s["server_cpu"] or 0) * 100:.0f}%' if s["server_cpu"] is not None else "-",
                f'{s["other_cpu"] * 100:.0f}%' if s.get("other_cpu") is not None else "-",
                s.get("server_cpu_wait"), s.get("dispatch_lag_p99_ms"), "yes" if s.get("client_bound") else "no", held,
            ]
        )
    parts.append(
        _table(
            ["rate req/s", "achieved req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "client CPU", "server CPU", "other processes CPU", "server waiting for CPU (s/s)", "client lag p99 ms", "client-bound", ""],
            step_rows,
            left=0,
        )
    )
    steps_sorted = sorted(report["steps"], key=lambda s: s["rate"])
    charts = [
        svg.line_chart(
            [(k, [(s["rate"], s[f"{k}_ms"]) for s in steps_sorted]) for k in ("p50", "p95", "p99")],
            title="Latency against arrival rate",
            x_label="scheduled rate (req/s)",
            y_label="ms (log)",
            hlines=[(target, f"p99 target {fmt(target)} ms")] if target else [],
            vlines=[(cap, "capacity")] if cap else [],
            log_y=True,
            width=530,
        ),
        svg.line_chart(
            [("achieved", [(s["rate"], s["achieved_rps"]) for s in steps_sorted]), ("scheduled", [(s["rate"], s["rate"]) for s in steps_sorted])],
            title="Achieved against scheduled rate",
            x_label="scheduled rate (req/s)",
            y_label="req/s",
            width=530,
        ),
    ]
    parts.append('<div class="charts">' + "".join(charts) + "</div>")

    series = extra.get("series") or []
    bounds = [(b["t"], f'{fmt(b["rate"])}/s') for b in (extra.get("step_bounds") or [])]
    charts = [
        svg.line_chart(
            [("achieved req/s", [(p["t"], p["rps"]) for p in series]), ("scheduled", [(p["t"], p.get("rate")) for p in series if p.get("rate") is not None])],
            title="Throughput over time",
            x_label="seconds into the mix",
            y_label="req/s",
            vlines=bounds,
            width=1080,
        ),
        svg.line_chart(
            [(k, [(p["t"], p[f"{k}_ms"]) for p in series]) for k in ("p50", "p95", "p99")],
            title="Latency over time (per second of answers, from scheduled time)",
            x_label="seconds into the mix",
            y_label="ms (log)",
            hlines=[(target, "p99 target")] if target else [],
            vlines=bounds,
            log_y=True,
            width=1080,
        ),
        svg.line_chart(
            [("errors per second", [(p["t"], p["errors"]) for p in series])],
            title="Errors over time",
            x_label="seconds into the mix",
            y_label="errors/s",
            vlines=bounds,
            width=1080,
            height=220,
        ),
    ]
    parts.append('<div class="charts">' + "".join(charts) + "</div>")

    # ---- scenarios ----
    parts.append("<h2>Per-scenario latency (steps that held; all steps if none held)</h2>")
    scen = report["scenarios"]
    classes = extra.get("scenario_class") or {}
    weights = extra.get("mix_weights") or {}
    parts.append(
        _table(
            ["scenario", "class", "share of mix", "count", "p50 ms", "p95 ms", "p99 ms", "errors"],
            [[n, classes.get(n, "-"), f'{weights.get(n, 0) * 100:.2f}%' if n in weights else "-", s["count"], s["p50_ms"], s.get("p95_ms"), s["p99_ms"], s["errors"]] for n, s in scen.items()],
            left=2,
        )
    )
    names = list(scen)
    parts.append(
        '<div class="charts">'
        + svg.bar_chart(names, [("p50", [scen[n]["p50_ms"] for n in names]), ("p99", [scen[n]["p99_ms"] for n in names])], title="Latency per scenario (ms, log)", y_label="ms", log_y=True, width=1080, hlines=[(target, "p99 target")] if target else [])
        + "</div>"
    )

    # ---- processes ----
    parts.append("<h2>CPU and memory per process</h2>")
    procs = extra.get("processes") or {}
    t = procs.get("t") or []
    phases = [(p["t"], p["name"]) for p in (extra.get("phases") or [])]
    cpu_series = [(name, list(zip(t, [v * 100 for v in values], strict=False))) for name, values in (procs.get("cpu") or {}).items()]
    rss_series = [(name, list(zip(t, [v / 2**20 for v in values], strict=False))) for name, values in (procs.get("rss") or {}).items()]
    parts.append(
        '<div class="charts">'
        + svg.line_chart(cpu_series, title="CPU (% of one core)", x_label="seconds into the run", y_label="% of a core", vlines=phases, width=1080)
        + svg.line_chart(rss_series, title="Resident memory (MiB)", x_label="seconds into the run", y_label="MiB", vlines=phases, width=1080, height=240)
        + "</div>"
    )

    # ---- demands ----
    parts.append("<h2>Service demands (for <code>summit plan</code>)</h2>")
    parts.append(
        _table(
            ["tier", "CPU ms / request", "CPU ms / read", "CPU ms / write", "CPU ms / upload", "peak RSS MiB", "how"],
            [
                [tier, d["cpu_ms_per_request"], d["cpu_ms_per_read"], d["cpu_ms_per_write"], d["cpu_ms_per_upload"], (d["rss_bytes"] or 0) / 2**20, d.get("method", "")]
                for tier, d in (report.get("demands") or {}).items()
            ],
        )
    )

    parts.append(_cache_and_database(report))

    # ---- notes ----
    if report["notes"]:
        parts.append("<h2>Notes</h2><ul class=\"notes\">" + "".join(f"<li>{escape(n)}</li>" for n in report["notes"]) + "</ul>")
    parts.append('<p class="muted">JSON keys are documented in docs/benchmarks.md. Generated by <code>summit bench</code>.</p>')
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>summit bench: stage {escape(str(report['stage']))}</title>"
        f"<style>{CSS}</style></head><body>" + "".join(parts) + "</body></html>"
    )
