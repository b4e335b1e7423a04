"""Hand-written inline SVG charts (line and bar), so the HTML report needs no library, no
script and nothing from the network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563")
FONT = 'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif"'


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (about ``count`` of them)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    for _ in range(count * 3 + 3):  # bounded
        ticks.append(round(value, 10))
        if value >= high - 1e-12:
            break
        value += step
    return ticks


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    if float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:.2g}"


class _Frame:
    def __init__(self, width: int, height: int, left: int = 64, right: int = 16, top: int = 44, bottom: int = 46):
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 720,
    height: int = 300,
    hlines: Sequence[tuple[float, str]] = (),
    vlines: Sequence[tuple[float, str]] = (),
    y_min: float | None = 0.0,
    y_max: float | None = None,
    log_y: bool = False,
) -> str:
    """Lines (one per series of (x, y) points) with axes, ticks, a legend and reference lines."""
    f = _Frame(width, height)
    points = [(x, y) for _, pts in series for x, y in pts if y is not None and math.isfinite(y)]
    out = [_open(f, title)]
    if not points:
        out.append(_empty(f))
        out.append("</svg>")
        return "".join(out)
    xs = [p[0] for p in points] + [v for v, _ in vlines]
    ys = [p[1] for p in points] + [v for v, _ in hlines]
    x0, x1 = min(xs), max(xs)
    if x1 <= x0:
        x1 = x0 + 1
    if log_y:
        positive = [y for y in ys if y > 0] or [1.0]
        lo = 10 ** math.floor(math.log10(min(positive)))
        hi = 10 ** math.ceil(math.log10(max(positive)))
        if hi <= lo:
            hi = lo * 10
        y_ticks = [lo * 10**i for i in range(int(round(math.log10(hi / lo))) + 1)]

        def sy(y: float) -> float:
            y = max(y, lo)
            return f.top + f.plot_h * (1 - (math.log10(y) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))
    else:
        lo = min(ys) if y_min is None else min(y_min, min(ys))
        hi = max(ys) if y_max is None else y_max
        y_ticks = nice_ticks(lo, hi)
        lo, hi = y_ticks[0], y_ticks[-1]
        if hi <= lo:
            hi = lo + 1

        def sy(y: float) -> float:
            return f.top + f.plot_h * (1 - (y - lo) / (hi - lo))

    x_ticks = nice_ticks(x0, x1, 8)
    x0, x1 = x_ticks[0], x_ticks[-1]

    def sx(x: float) -> float:
        return f.left + f.plot_w * (x - x0) / (x1 - x0)

    out.append(_axes(f, [(sx(t), _label(t)) for t in x_ticks], [(sy(t), _label(t)) for t in y_ticks], x_label, y_label))
    for value, text in vlines:
        x = sx(value)
        out.append(f'<line x1="{x:.1f}" y1="{f.top}" x2="{x:.1f}" y2="{f.top + f.plot_h:.1f}" stroke="#9ca3af" stroke-dasharray="3,3"/>')
        if text:
            out.append(f'<text x="{x + 3:.1f}" y="{f.top + 10}" font-size="9" fill="#6b7280" {FONT}>{escape(text)}</text>')
    for value, text in hlines:
        y = sy(value)
        out.append(f'<line x1="{f.left}" y1="{y:.1f}" x2="{f.left + f.plot_w:.1f}" y2="{y:.1f}" stroke="#ef4444" stroke-dasharray="6,4"/>')
        out.append(f'<text x="{f.left + f.plot_w - 4:.1f}" y="{y - 4:.1f}" font-size="10" text-anchor="end" fill="#ef4444" {FONT}>{escape(text)}</text>')
    for i, (name, pts) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        clean = [(x, y) for x, y in pts if y is not None and math.isfinite(y)]
        if not clean:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in clean)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{path}"><title>{escape(name)}</title></polyline>')
        if len(clean) <= 40:
            out.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.2" fill="{color}"/>' for x, y in clean)
    out.append(_legend(f, [name for name, _ in series]))
    out.append("</svg>")
    return "".join(out)


def bar_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    y_label: str,
    width: int = 720,
    height: int = 300,
    log_y: bool = False,
    hlines: Sequence[tuple[float, str]] = (),
) -> str:
    """Grouped vertical bars: one group per category, one bar per series."""
    f = _Frame(width, height, bottom=70)
    values = [v for _, vals in series for v in vals if v is not None and math.isfinite(v)]
    out = [_open(f, title)]
    if not categories or not values:
        out.append(_empty(f))
        out.append("</svg>")
        return "".join(out)
    ref = [v for v, _ in hlines]
    if log_y:
        positive = [v for v in values + ref if v > 0] or [1.0]
        lo = 10 ** math.floor(math.log10(min(positive)))
        if lo >= min(positive):  # a bar exactly on the floor would have no height
            lo /= 10
        hi = 10 ** math.ceil(math.log10(max(positive)))
        if hi <= lo:
            hi = lo * 10
        ticks = [lo * 10**i for i in range(int(round(math.log10(hi / lo))) + 1)]

        def sy(y: float) -> float:
            y = max(y, lo)
            return f.top + f.plot_h * (1 - (math.log10(y) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))
    else:
        ticks = nice_ticks(0, max(values + ref))
        lo, hi = ticks[0], ticks[-1]

        def sy(y: float) -> float:
            return f.top + f.plot_h * (1 - (y - lo) / (hi - lo))

    group_w = f.plot_w / len(categories)
    bar_w = group_w * 0.8 / max(len(series), 1)
    x_ticks = [(f.left + group_w * (i + 0.5), "") for i in range(len(categories))]
    out.append(_axes(f, x_ticks, [(sy(t), _label(t)) for t in ticks], "", y_label))
    for i, name in enumerate(categories):
        cx = f.left + group_w * (i + 0.5)
        out.append(
            f'<text x="{cx:.1f}" y="{f.top + f.plot_h + 14:.1f}" font-size="10" text-anchor="end" '
            f'transform="rotate(-25 {cx:.1f} {f.top + f.plot_h + 14:.1f})" {FONT}>{escape(name)}</text>'
        )
    base = sy(lo)
    for j, (sname, vals) in enumerate(series):
        color = PALETTE[j % len(PALETTE)]
        for i, value in enumerate(vals):
            if value is None or not math.isfinite(value):
                continue
            x = f.left + group_w * i + group_w * 0.1 + bar_w * j
            y = sy(value)
            out.append(
                f'<rect x="{x:.1f}" y="{min(y, base):.1f}" width="{bar_w:.1f}" height="{abs(base - y):.1f}" fill="{color}">'
                f"<title>{escape(categories[i])} {escape(sname)}: {_label(value)}</title></rect>"
            )
    for value, text in hlines:
        y = sy(value)
        out.append(f'<line x1="{f.left}" y1="{y:.1f}" x2="{f.left + f.plot_w:.1f}" y2="{y:.1f}" stroke="#ef4444" stroke-dasharray="6,4"/>')
        out.append(f'<text x="{f.left + f.plot_w - 4:.1f}" y="{y - 4:.1f}" font-size="10" text-anchor="end" fill="#ef4444" {FONT}>{escape(text)}</text>')
    if len(series) > 1:
        out.append(_legend(f, [name for name, _ in series]))
    out.append("</svg>")
    return "".join(out)


def _open(f: _Frame, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {f.width} {f.height}" width="{f.width}" height="{f.height}" '
        f'role="img" aria-label="{escape(title)}" class="chart">'
        f'<rect width="100%" height="100%" fill="#ffffff"/>'
        f'<text x="{f.left}" y="18" font-size="13" font-weight="600" {FONT}>{escape(title)}</text>'
    )


def _empty(f: _Frame) -> str:
    return f'<text x="{f.width / 2}" y="{f.height / 2}" text-anchor="middle" font-size="12" fill="#6b7280" {FONT}>no data</text>'


def _axes(f: _Frame, x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[tuple[float, str]], x_label: str, y_label: str) -> str:
    parts = []
    for y, text in y_ticks:
        parts.append(f'<line x1="{f.left}" y1="{y:.1f}" x2="{f.left + f.plot_w:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{f.left - 6}" y="{y + 3.5:.1f}" font-size="10" text-anchor="end" fill="#374151" {FONT}>{escape(text)}</text>')
    for x, text in x_ticks:
        parts.append(f'<line x1="{x:.1f}" y1="{f.top + f.plot_h:.1f}" x2="{x:.1f}" y2="{f.top + f.plot_h + 4:.1f}" stroke="#6b7280"/>')
        if text:
            parts.append(f'<text x="{x:.1f}" y="{f.top + f.plot_h + 16:.1f}" font-size="10" text-anchor="middle" fill="#374151" {FONT}>{escape(text)}</text>')
    parts.append(f'<line x1="{f.left}" y1="{f.top + f.plot_h:.1f}" x2="{f.left + f.plot_w:.1f}" y2="{f.top + f.plot_h:.1f}" stroke="#6b7280"/>')
    parts.append(f'<line x1="{f.left}" y1="{f.top}" x2="{f.left}" y2="{f.top + f.plot_h:.1f}" stroke="#6b7280"/>')
    if x_label:
        parts.append(f'<text x="{f.left + f.plot_w / 2:.1f}" y="{f.height - 8}" font-size="11" text-anchor="middle" fill="#374151" {FONT}>{escape(x_label)}</text>')
    if y_label:
        cy = f.top + f.plot_h / 2
        parts.append(f'<text x="14" y="{cy:.1f}" font-size="11" text-anchor="middle" fill="#374151" transform="rotate(-90 14 {cy:.1f})" {FONT}>{escape(y_label)}</text>')
    return "".join(parts)


def _legend(f: _Frame, names: Sequence[str]) -> str:
    parts = []
    x = f.left
    for i, name in enumerate(names):
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="25" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="34" font-size="11" fill="#374151" {FONT}>{escape(name)}</text>')
        x += 24 + 6.5 * len(name)
    return "".join(parts)
