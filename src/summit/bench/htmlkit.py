"""What the bench's HTML pages are made of: the stylesheet, tables, headline boxes and the
wording of figures that were not measured."""

from __future__ import annotations

from html import escape
from typing import Any

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


class Raw(str):
    """Already-escaped HTML for a table cell."""


def table(headers: list[str], rows: list[list[Any]], left: int = 1) -> str:
    """A table; the first ``left`` columns are aligned left, values are formatted with ``fmt``."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = value if isinstance(value, Raw) else escape(fmt(value) if not isinstance(value, str) else value)
            cells.append(f'<td class="{"l" if i < left else ""}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def kpi(label: str, value: str, sub: str = "") -> str:
    return f'<div class="kpi"><span>{escape(label)}</span><b>{escape(value)}</b><span>{escape(sub)}</span></div>'


def ratio_text(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.3f}" if value / base < 10 else f"{value / base:,.1f}"


def ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value and base else None


def percent(value: float | None) -> str:
    return UNCOUNTED if value is None else f"{value * 100:.1f}%"


def charts(*svgs: str) -> str:
    return '<div class="charts">' + "".join(svgs) + "</div>"
