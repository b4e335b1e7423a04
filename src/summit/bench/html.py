"""The bench report as one self-contained HTML page: tables and inline SVG plots, no script, no
stylesheet or font from anywhere else (it opens offline, and from a file).

The page, top to bottom: the headline boxes and the key figures, raw endpoints and baselines,
the mix (``html_mix``: steps, time series, scenarios, processes), the service demands, the cache
and database counters, the notes."""

from __future__ import annotations

from html import escape
from typing import Any

from summit.bench import headline, html_mix, svg
from summit.bench.htmlkit import CSS, NOT_MEASURED, UNCOUNTED, charts, kpi, percent, ratio, ratio_text, table
from summit.bench.report import fmt

__all__ = ["NOT_MEASURED", "render"]


def _counted(row: dict[str, Any], key: str, *, as_percent: bool = False) -> Any:
    value = (row.get("counters") or {}).get(key)
    if value is None:
        return UNCOUNTED
    return percent(value) if as_percent else value


def _title(report: dict[str, Any], extra: dict[str, Any]) -> str:
    machine = report["machine"]
    return (
        f"<h1>summit bench: stage {escape(str(report['stage']))}</h1>"
        f'<p class="muted">started {escape(str(report["started_at"]))} &middot; {machine.get("cores")} cores, '
        f'{escape(str(machine.get("cpu_model")))}, {fmt((machine.get("memory_bytes") or 0) / 2**30)} GiB memory'
        + (f' &middot; <code>{escape(extra["command"])}</code>' if extra.get("command") else "")
        + "</p>"
    )


def _kpis(report: dict[str, Any], workload: dict[str, Any]) -> str:
    cap, baselines = report["capacity_rps"], report["baselines"]
    hello = baselines.get("asgi_hello_rps")
    boxes = [
        kpi("capacity (user mix)", f"{fmt(cap)} req/s" if cap is not None else "none held", f"p99 < {fmt(workload.get('p99_target_ms'))} ms, errors < {fmt((workload.get('max_error_ratio') or 0) * 100)}%"),
        kpi("capacity / ASGI hello", ratio_text(cap, hello), f"hello: {fmt(hello)} req/s"),
        kpi("nginx static 1 KiB", f"{fmt(baselines.get('nginx_static_rps'))} req/s", "same pinning"),
    ]
    app_demand = (report.get("demands") or {}).get("app") or {}
    if app_demand:
        boxes.append(kpi("app CPU per request (mix)", f"{fmt(app_demand.get('cpu_ms_per_request'))} ms", f"RSS {fmt((app_demand.get('rss_bytes') or 0) / 2**20)} MiB"))
    bottleneck = report["client_bottleneck"]
    boxes.append(kpi("client was the bottleneck", "yes" if bottleneck else "no", "figures are a lower bound" if bottleneck else "client stayed under half its core"))
    return '<div class="kpis">' + "".join(boxes) + "</div>"


def _key_figures(report: dict[str, Any]) -> str:
    verdicts = {True: "met", False: "not met", None: "-"}
    rows = [[f.label, UNCOUNTED if f.value is None else f.value, f.target, verdicts[f.met]] for f in headline.figures(report)]
    return (
        "<h2>Key figures</h2>"
        '<p class="muted">Ratios against baselines of this run (so they hold on a shared machine), beside what good looks like '
        "(the stage-1 targets; from 1k, those of the front door and the content tier). Counter figures come from every app "
        "server's <code>/metrics</code>, scraped before and after each measured phase and added up.</p>"
        + table(["figure", "value", "target", ""], rows)
    )


def _front_door(row: dict[str, Any]) -> Any:
    """The row against its baseline through the front door: nginx's photo for ``media``, the hello for the rest."""
    value = row.get("ratio_to_nginx_front_door") if row.get("key") == "media" else row.get("ratio_to_hello_front_door")
    return "-" if value is None else value


def _raw(report: dict[str, Any], extra: dict[str, Any]) -> str:
    baselines = report["baselines"]
    hello = baselines.get("asgi_hello_rps")
    rows = [
        [r["name"], f'{r["method"]} {r["path"]}', r["rps"], r["ratio_to_hello"], r["p50_ms"], r["p99_ms"], r.get("cpu_ms_per_request"),
         _counted(r, "sql_statements_per_request"), _counted(r, "cache_hit_ratio", as_percent=True), r.get("ratio_to_nginx_same_file", "-"),
         _front_door(r)]
        for r in report["raw"]
    ]
    photo_kb = f' ({fmt((extra.get("media_photo_bytes") or 0) / 1000)} kB)' if extra.get("media_photo_bytes") else ""
    base_rows = [
        ["ASGI hello (granian)", "GET /", hello, 1.0 if hello else None],
        ["nginx static 1 KiB", "GET /1k.bin", baselines.get("nginx_static_rps"), ratio(baselines.get("nginx_static_rps"), hello)],
        ["nginx the app's photo", f"GET /photo.jpg{photo_kb}", baselines.get("nginx_photo_rps"), ratio(baselines.get("nginx_photo_rps"), hello)],
        ["hello behind HAProxy", "GET / (the stage's HAProxy render, as many hello servers as app servers)", baselines.get("hello_front_door_rps"), ratio(baselines.get("hello_front_door_rps"), hello)],
        ["nginx photo behind HAProxy", f"GET /media/<photo>{photo_kb} (nginx in the CDN's place)", baselines.get("nginx_front_door_photo_rps"), ratio(baselines.get("nginx_front_door_photo_rps"), hello)],
        ["redis-benchmark GET/SET", "-", baselines.get("redis_ops"), None],
        ["pgbench -S", "-", baselines.get("pgbench_tps"), None],
    ]
    detail = extra.get("baseline_detail") or {}
    for row in base_rows:
        d = detail.get(row[0]) or {}
        row += [d.get("p50_ms"), d.get("p99_ms"), d.get("cpu_ms_per_request"), "-", "-", "-", "-"]
        if row[2] is None:
            row[2] = NOT_MEASURED if "redis" in row[0] or "pgbench" in row[0] else "-"
    headers = ["endpoint", "request", "req/s", "/ hello", "p50 ms", "p99 ms", "server CPU ms/req", "SQL statements/req", "cache hits", "/ nginx, same file",
               "/ the same via HAProxy (hello; media: nginx)"]
    names = ["ASGI hello", "nginx static"] + [r["name"] for r in report["raw"]]
    values = [hello, baselines.get("nginx_static_rps")] + [r["rps"] for r in report["raw"]]
    return (
        "<h2>Single-endpoint throughput (wrk) and baselines</h2>"
        '<p class="muted">wrk on one core, the server on the other; each figure also as a ratio of the bare ASGI hello '
        "served by the same server with the same settings, measured in this run. Reads repeat the same request (warm).</p>"
        + table(headers, base_rows + rows, left=2)
        + charts(svg.bar_chart(names, [("req/s", values)], title="Requests per second (log scale)", y_label="req/s", log_y=True, width=1080))
    )


def _demands(report: dict[str, Any]) -> str:
    rows = [
        [tier, d["cpu_ms_per_request"], d["cpu_ms_per_read"], d["cpu_ms_per_write"], d["cpu_ms_per_upload"], (d["rss_bytes"] or 0) / 2**20, d.get("method", "")]
        for tier, d in (report.get("demands") or {}).items()
    ]
    return "<h2>Service demands (for <code>summit plan</code>)</h2>" + table(
        ["tier", "CPU ms / request", "CPU ms / read", "CPU ms / write", "CPU ms / upload", "peak RSS MiB", "how"], rows
    )


def _cache_and_database(report: dict[str, Any]) -> str:
    mix = ((report.get("extra") or {}).get("counters") or {}).get("mix") or {}
    count = lambda key: UNCOUNTED if mix.get(key) is None else mix[key]  # noqa: E731
    parts = [
        "<h2>Cache and database (the mix's steps, from <code>/metrics</code>)</h2>",
        table(
            ["figure", "value"],
            [
                ["cache hit ratio", percent(report["cache_hit_ratio"])],
                ["cache lookups", count("cache_lookups")],
                ["share of feed reads reaching the database (GET /api/v1/feed, GET /)", percent(mix.get("feed_db_share"))],
                ["share of reads reaching the database", percent(report["db_read_share"])],
                ["SQL statements per request", count("sql_statements_per_request")],
            ],
        ),
    ]
    spaces = mix.get("cache_by_namespace") or {}
    if spaces:
        parts.append(table(["cache namespace", "lookups", "hit ratio"], [[n, s["lookups"], percent(s["hit_ratio"])] for n, s in spaces.items()]))
    per_route, shares = mix.get("sql_per_request") or {}, mix.get("db_share_by_route") or {}
    if per_route or shares:
        rows = [[r, per_route.get(r, "-"), percent(shares.get(r))] for r in sorted(set(per_route) | set(shares))]
        parts.append(table(["route", "SQL statements / request", "requests reaching the database"], rows))
    ops = mix.get("port_operations") or {}
    if ops:
        parts.append(table(["port", "operation", "calls"], [[p, op, n] for p, o in ops.items() for op, n in o.items()], left=2))
    return "".join(parts)


def render(report: dict[str, Any]) -> str:
    extra = report.get("extra") or {}
    workload = report.get("workload") or {}
    target = workload.get("p99_target_ms")
    parts = [
        _title(report, extra),
        _kpis(report, workload),
        _key_figures(report),
        _raw(report, extra),
        html_mix.steps(report, target),
        html_mix.series(extra, target),
        html_mix.scenarios(report, extra, target),
        html_mix.processes(extra),
        _demands(report),
        _cache_and_database(report),
    ]
    if report["notes"]:
        parts.append('<h2>Notes</h2><ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in report["notes"]) + "</ul>")
    parts.append('<p class="muted">JSON keys are documented in docs/benchmarks.md. Generated by <code>summit bench</code>.</p>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>summit bench: stage {escape(str(report['stage']))}</title>"
        f"<style>{CSS}</style></head><body>" + "".join(parts) + "</body></html>"
    )
