"""Plans as rows of text: one plan (figure, value, note) for the terminal, several side by side
as a Markdown table (docs/scaling.md is generated with it)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from summit.bench.plan.model import stage_index

Plan = Mapping[str, Any]


def num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def size(value: float, unit: str = "B") -> str:
    for prefix, factor in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{num(value)} {unit}"


def bits(bytes_per_s: float) -> str:
    return size(bytes_per_s * 8, "bit/s")


def _from(p: Plan, stage: str, what: str) -> str:
    return "" if stage_index(p["stage"]["stage"]) >= stage_index(stage) else f" ({what} before stage {stage})"


def rows(p: Plan) -> list[tuple[str, str, str]]:
    """(figure, value, note) for one plan."""
    s, r, web, db, cache, cdn, obj = p["stage"], p["peak_rps"], p["web"], p["db"], p["cache"], p["cdn"], p["objects"]
    nb = p["next_bottleneck"]
    out = [
        ("users", f"{p['users']:,}", f"{num(p['people']['daily_active'])} daily, {num(p['people']['monthly_active'])} monthly actives"),
        ("seed stage", s["stage"], f"talk: {s['talk']}, structure: {s['structure']}; adds {s['adds']}"),
        ("peak requests/s", num(r["total"]), f"reads {num(r['reads'])}, writes {num(r['writes'])}, uploads {num(r['uploads'])}; images {num(r['images'])}"),
        ("web processes", f"{web['processes']} cores", f"{web['nodes']} x {p['assumptions']['cores_per_node']['value']:g}-core nodes; busy {num(web['busy_cores'])} at peak, "
         f"{num(web['busy_cores_average'])} on average; {num(web['cpu_ms_per_request'])} ms CPU/request; p99 {num(web['predicted_p99_ms'])} ms (M/M/c)"),
        ("web memory", size(web["memory_bytes"]), f"{size(web['rss_bytes_per_process'])} per process"),
        ("load balancers", f"{p['lb']['nodes']} nodes", f"{p['lb']['cores']} core(s) at peak, images included" + _from(p, "1k", "none")),
        ("WAF", f"{p['waf']['cores']} cores", f"{p['waf']['nodes']} nodes (ModSecurity + CRS)" + _from(p, "1+", "none")),
        ("worker processes", f"{p['worker']['processes']} cores", f"thumbnails {num(p['worker']['thumbnail_cpu_ms'])} ms CPU each" + _from(p, "1m", "inside the web process")),
        ("queue", f"{num(p['queue']['messages_per_s'])} msg/s", f"{num(p['queue']['thumbnail_jobs_per_s'])} thumbnail jobs + {num(p['queue']['tasks_per_s'])} tasks; "
         f"{p['queue']['brokers']} broker node(s)" + _from(p, "1m", "SQLite queue")),
        ("cache", size(cache["memory_bytes"]), f"{cache['nodes']} node(s); {num(cache['ops_per_s'])} ops/s" + _from(p, "10k", "in-process")),
        ("database primaries (shards)", str(db["shards"]), f"{size(db['data_bytes'])} of data; writes {num(db['write_tps'])}/s, {num(db['write_busy_cores'])} cores busy"),
        ("read replicas", str(db["replicas"]), f"{db['replicas_per_shard']} per shard; reads after cache {num(db['read_qps'])}/s, {num(db['read_busy_cores'])} cores busy"),
        ("object storage", size(obj["stored_bytes"]), f"grows {size(obj['growth_bytes_per_day'])}/day, {size(obj['growth_bytes_per_year'])}/year; "
         f"{obj['volume_servers']} volume server(s) at {p['assumptions']['object_copies']['value']:g} copies"),
        ("CDN egress", bits(cdn["egress_bytes_per_s"]), f"{num(cdn['image_rps'])} images/s; offload {cdn['hit_ratio']:.0%}; origin {bits(cdn['origin_bytes_per_s'])}; "
         f"{cdn['edge_nodes']} edge node(s)" + _from(p, "10k", "served by the app")),
        ("next bottleneck", nb["name"] if nb else "none below 10^10 users", f"at {nb['users']:,} users: {nb['action']} (stage {nb['stage']})" if nb else ""),
    ]
    return out


LADDER: tuple[tuple[str, Callable[[Plan], str]], ...] = (
    ("seed stage (talk / structure)", lambda p: f"**{p['stage']['stage']}** ({p['stage']['talk']} / {p['stage']['structure']})"),
    ("daily actives", lambda p: num(p["people"]["daily_active"])),
    ("peak requests/s", lambda p: num(p["peak_rps"]["total"])),
    ("peak reads / writes / uploads per s", lambda p: " / ".join(num(p["peak_rps"][k]) for k in ("reads", "writes", "uploads"))),
    ("web processes (cores)", lambda p: f"{p['web']['processes']} ({p['web']['nodes']} nodes)"),
    ("web CPU busy at peak (cores)", lambda p: num(p["web"]["busy_cores"])),
    ("WAF cores", lambda p: str(p["waf"]["cores"]) if stage_index(p["stage"]["stage"]) >= stage_index("1+") else "-"),
    ("load balancer nodes", lambda p: str(p["lb"]["nodes"])),
    ("worker processes (cores)", lambda p: str(p["worker"]["processes"]) + ("" if stage_index(p["stage"]["stage"]) >= stage_index("1m") else " (in web)")),
    ("queue messages/s", lambda p: num(p["queue"]["messages_per_s"])),
    ("cache memory (nodes)", lambda p: f"{size(p['cache']['memory_bytes'])} ({p['cache']['nodes']})" if stage_index(p["stage"]["stage"]) >= stage_index("10k") else f"{size(p['cache']['memory_bytes'])} (in-process)"),
    ("DB primaries (shards)", lambda p: str(p["db"]["shards"])),
    ("DB read replicas", lambda p: str(p["db"]["replicas"])),
    ("DB data", lambda p: size(p["db"]["data_bytes"])),
    ("DB reads after cache / writes per s", lambda p: f"{num(p['db']['read_qps'])} / {num(p['db']['write_tps'])}"),
    ("object storage (1 year)", lambda p: size(p["objects"]["stored_bytes"])),
    ("object growth per day", lambda p: size(p["objects"]["growth_bytes_per_day"])),
    ("images/s at peak", lambda p: num(p["cdn"]["image_rps"])),
    ("CDN egress at peak", lambda p: bits(p["cdn"]["egress_bytes_per_s"])),
    ("origin egress after CDN", lambda p: bits(p["cdn"]["origin_bytes_per_s"])),
    ("next bottleneck", lambda p: f"{p['next_bottleneck']['name']} at {p['next_bottleneck']['users']:,}" if p["next_bottleneck"] else "-"),
)


def markdown_ladder(plans: Sequence[Plan]) -> str:
    """Several plans side by side: one column per user count."""
    head = "| users | " + " | ".join(f"{p['users']:,}" for p in plans) + " |"
    lines = [head, "|---|" + "---:|" * len(plans)]
    for label, cell in LADDER:
        lines.append(f"| {label} | " + " | ".join(cell(p) for p in plans) + " |")
    return "\n".join(lines)


def markdown_ceilings(ceilings: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| users | ceiling crossed | stage it needs | what to do |", "|---:|---|---|---|"]
    for c in ceilings:
        users = f"{c['users']:,}" if c["users"] is not None else "> 10^10"
        lines.append(f"| {users} | {c['name']} | {c['stage']} | {c['action']} |")
    return "\n".join(lines)


def markdown_sources(p: Plan) -> str:
    lines = ["| tier | kind | CPU ms | source |", "|---|---|---:|---|"]
    for tier, kinds in p["demands"].items():
        for kind, entry in kinds.items():
            if "cpu_ms" in entry:
                lines.append(f"| {tier} | {kind} | {num(entry['cpu_ms'])} | {entry['source']} |")
    return "\n".join(lines)
