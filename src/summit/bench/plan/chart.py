"""The planner's chart: resources against users from 1 to 10^8, log axes, as a self-contained SVG
or an HTML page around it (no script, no external asset)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from summit.bench.plan.planner import SERIES
from summit.bench.plan.model import PlanError, STAGE_USERS

COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563")
FONT = 'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif"'
W, H = 960, 560
LEFT, RIGHT, TOP, BOTTOM = 70, 260, 40, 56
DASHES = ("", "", "6 3", "2 3", "", "", "", "", "8 3 2 3")


def _power_label(exponent: int) -> str:
    names = {0: "1", 1: "10", 2: "100", 3: "1k", 4: "10k", 5: "100k", 6: "1M", 7: "10M", 8: "100M", 9: "1G", 10: "10G"}
    return names.get(exponent, f"1e{exponent}")


def svg(data: Mapping[str, Sequence[float]], *, marks: Sequence[int] = (), title: str = "What the service needs, by users") -> str:
    """An SVG document: one line per series of ``data`` (from ``plan.sweep``), stage thresholds as
    dashed lines, ``marks`` (planned user counts) as solid lines."""
    users = list(data["users"])
    if not users or min(users) <= 0:
        raise PlanError("the chart needs user counts of at least 1")
    values = [v for key, *_ in SERIES for v in data.get(key, []) if v and v > 0 and math.isfinite(v)]
    y_lo = math.floor(math.log10(max(min(values), 1e-2))) if values else 0
    y_hi = math.ceil(math.log10(max(values))) if values else 1
    y_hi = max(y_hi, y_lo + 1)
    x_lo, x_hi = math.floor(math.log10(min(users))), math.ceil(math.log10(max(users)))
    x_hi = max(x_hi, x_lo + 1)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(u: float) -> float:
        return LEFT + (math.log10(u) - x_lo) / (x_hi - x_lo) * pw

    def y(v: float) -> float:
        return TOP + ph - (math.log10(max(v, 10.0**y_lo)) - y_lo) / (y_hi - y_lo) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" {FONT} font-size="12" role="img">',
           f"<title>{escape(title)}</title>", f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
           f'<text x="{LEFT}" y="24" font-size="16" font-weight="600">{escape(title)}</text>']
    for e in range(x_lo, x_hi + 1):
        out.append(f'<line x1="{x(10**e):.1f}" y1="{TOP}" x2="{x(10**e):.1f}" y2="{TOP + ph}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{x(10**e):.1f}" y="{TOP + ph + 18}" text-anchor="middle">{_power_label(e)}</text>')
    for e in range(y_lo, y_hi + 1):
        out.append(f'<line x1="{LEFT}" y1="{y(10.0**e):.1f}" x2="{LEFT + pw}" y2="{y(10.0**e):.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y(10.0**e) + 4:.1f}" text-anchor="end">{_power_label(e) if e >= 0 else f"1e{e}"}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#9ca3af"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 14}" text-anchor="middle">users (log scale)</text>')
    out.append(f'<text x="18" y="{TOP + ph / 2}" text-anchor="middle" transform="rotate(-90 18 {TOP + ph / 2})">resource, in its own unit (log scale)</text>')
    for n, (stage, limit) in enumerate(sorted(STAGE_USERS.items(), key=lambda s: s[1])):
        if stage != "1" and 10**x_lo < limit < 10**x_hi:
            out.append(f'<g class="stage" data-stage="{escape(stage)}"><line x1="{x(limit):.1f}" y1="{TOP}" x2="{x(limit):.1f}" y2="{TOP + ph}" '
                       f'stroke="#6b7280" stroke-dasharray="4 4"/><text x="{x(limit) + 3:.1f}" y="{TOP + 12 + 14 * (n % 2)}" fill="#6b7280">&gt;{escape(stage)}</text></g>')
    for mark in marks:
        if 10**x_lo <= mark <= 10**x_hi:
            out.append(f'<g class="mark"><line x1="{x(mark):.1f}" y1="{TOP}" x2="{x(mark):.1f}" y2="{TOP + ph}" stroke="#111827" stroke-width="1.5"/>'
                       f'<text x="{x(mark) + 3:.1f}" y="{TOP + ph - 6}" fill="#111827">{mark:,} users</text></g>')
    for i, (key, label, unit, _) in enumerate(SERIES):
        colour = COLOURS[i % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for u, v in zip(users, data.get(key, []), strict=False):
            if v and v >= 10.0**y_lo and math.isfinite(v):
                runs[-1].append(f"{x(u):.1f},{y(v):.1f}")
            elif runs[-1]:
                runs.append([])
        d = " ".join("M" + " L".join(run) for run in runs if run)
        out.append(f'<path class="series" data-series="{key}" d="{d}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{DASHES[i % len(DASHES)]}"><title>{escape(label)} ({unit})</title></path>')
        ly = TOP + 10 + i * 22
        out.append(f'<g class="legend"><line x1="{LEFT + pw + 14}" y1="{ly}" x2="{LEFT + pw + 36}" y2="{ly}" stroke="{colour}" stroke-width="3" stroke-dasharray="{DASHES[i % len(DASHES)]}"/>'
                   f'<text x="{LEFT + pw + 42}" y="{ly + 4}">{escape(label)} ({escape(unit)})</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def html(data: Mapping[str, Sequence[float]], plans: Sequence[Mapping[str, Any]] = (), *, marks: Sequence[int] = ()) -> str:
    """A self-contained page: the chart, and the series' values at each decade and planned count."""
    from summit.bench.plan.planner import series_value

    rows = []
    for u in sorted({*(u for u in data["users"] if math.log10(u).is_integer())}):
        i = list(data["users"]).index(u)
        rows.append((f"{u:,}", [data[key][i] for key, *_ in SERIES]))
    for p in plans:
        rows.append((f"<b>{p['users']:,} (plan, stage {escape(p['stage']['stage'])})</b>", [series_value(p, key) for key, *_ in SERIES]))
    head = "".join(f"<th>{escape(label)}<br><small>{escape(unit)}</small></th>" for _, label, unit, _ in SERIES)
    body = "".join(f"<tr><td>{name}</td>{''.join(f'<td>{_fmt(v)}</td>' for v in vals)}</tr>" for name, vals in rows)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>summit plan</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#111827}table{border-collapse:collapse;margin-top:16px}"
            "td,th{border:1px solid #d1d5db;padding:4px 8px;text-align:right;font-size:13px}th{background:#f3f4f6}</style></head><body>"
            "<h1>summit plan: resources against users</h1><p>Figures come from the planner's model (docs/scaling.md); "
            "dashed lines are the talk's stage thresholds.</p>\n" + svg(data, marks=marks) +
            f"\n<table><tr><th>users</th>{head}</tr>{body}</table></body></html>\n")


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def write(path: str | Path, data: Mapping[str, Sequence[float]], plans: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the chart as .svg or .html (by the file's suffix)."""
    path = Path(path)
    marks = [int(p["users"]) for p in plans]
    if path.suffix.lower() == ".svg":
        text = '<?xml version="1.0" encoding="UTF-8"?>\n' + svg(data, marks=marks)
    elif path.suffix.lower() in (".html", ".htm"):
        text = html(data, plans, marks=marks)
    else:
        raise PlanError(f"chart {path}: give a file ending in .svg or .html")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as error:
        raise PlanError(f"chart {path}: cannot write it ({error.strerror})") from None
    return path
