"""The key figures of a report, each beside what good looks like (the targets of the stage-1
speed work; from 1k, of the front door and the content tier): ratios against a baseline of the
same run, so that they mean the same on a quiet machine and on a shared one, and a few absolute
counts that do not depend on the machine.

``figures(report)`` reads them from any version-1 report (an older one simply lacks some: None,
shown as "not measured"); ``compare(a, b)`` puts two reports side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float | None
    target: str  # what good looks like, e.g. ">= 0.4"

    @property
    def met(self) -> bool | None:
        """Whether the value meets the target (None: no value, or no target to meet)."""
        return meets(self.value, self.target)


def meets(value: float | None, target: str) -> bool | None:
    """``value`` against a target written ">= 0.5", "> 1", "<= 2", "< 0.1" or "0" (None: no value, or "-")."""
    if value is None:
        return None
    text = target.strip()
    for op, test in ((">=", lambda a, b: a >= b), ("<=", lambda a, b: a <= b), (">", lambda a, b: a > b), ("<", lambda a, b: a < b), ("", lambda a, b: a == b)):
        if text.startswith(op):
            try:
                bound = float(text[len(op):].strip())
            except ValueError:
                return None
            return bool(test(value, bound))
    return None


def _raw(report: dict[str, Any], key: str) -> dict[str, Any]:
    names = {"photo": "media photo", "media": "media 200k"}
    for row in report.get("raw") or []:
        if row.get("key", row.get("name")) == key or row.get("name") == names.get(key):
            return row
    return {}


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _ratio(value: Any, base: Any) -> float | None:
    return value / base if isinstance(value, int | float) and isinstance(base, int | float) and base else None


def figures(report: dict[str, Any]) -> list[Figure]:
    extra = report.get("extra") or {}
    hello = (report.get("baselines") or {}).get("asgi_hello_rps")
    rss = _get(extra, "stage", "rss_at_rest_bytes")
    feed, media = _raw(report, "feed"), _raw(report, "media")
    return [
        Figure("healthz_per_hello", "GET /healthz / ASGI hello", _raw(report, "healthz").get("ratio_to_hello"), ">= 0.4"),
        Figure("post_per_hello", "GET /api/v1/posts/<id> (warm) / hello", _raw(report, "post").get("ratio_to_hello"), ">= 0.15"),
        Figure("feed_per_hello", "GET /api/v1/feed (warm, bearer) / hello", feed.get("ratio_to_hello"), ">= 0.1"),
        Figure("media_per_nginx", "GET /media/<photo> (~200 KB) / nginx, same file", media.get("ratio_to_nginx_same_file"), ">= 0.3"),
        Figure(
            "feed_per_hello_front_door", "GET /api/v1/feed (warm, bearer) / hello, both via HAProxy (from 1k)",
            feed.get("ratio_to_hello_front_door"), ">= 0.5",
        ),
        Figure(
            "media_per_nginx_front_door", "GET /media/<photo> (~200 KB; CDN hit at 10k) / nginx, both via HAProxy",
            media.get("ratio_to_nginx_front_door"), ">= 0.8",
        ),
        Figure("post_per_pgbench", "GET /api/v1/posts/<id> (warm) / pgbench -S (1 client)", _raw(report, "post").get("ratio_to_pgbench"), "-"),
        Figure("mix_per_hello", "user-journey mix capacity / hello", _ratio(report.get("capacity_rps"), hello), ">= 0.04"),
        Figure("sql_per_warm_feed", "SQL statements per warm feed read", _get(feed, "counters", "sql_statements_per_request"), "0"),
        Figure("cpu_ms_per_feed_read", "server CPU ms per warm feed read (every process of the stage)", feed.get("cpu_ms_per_request"), "-"),
        Figure("cache_hit_ratio", "cache hit ratio (mix)", report.get("cache_hit_ratio"), "-"),
        Figure("feed_db_share", "share of feed reads reaching the database (mix, warm cache)", _get(extra, "counters", "mix", "feed_db_share"), "< 0.1"),
        Figure("rss_at_rest_mb", "RSS at rest after seeding (MB)", rss / 1e6 if isinstance(rss, int | float) else None, "< 150"),
        Figure("first_start_s", "summit up to first 200 on /healthz, empty data (s)", _get(extra, "stage", "first_start_s"), "< 2"),
        Figure("restart_s", "summit up to first 200 on /healthz, seeded data (s)", _get(extra, "stage", "restart_s"), "< 2"),
    ]


def as_dict(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The figures as the report's ``extra.headline`` keeps them."""
    return {f.key: {"label": f.label, "value": f.value, "target": f.target, "met": f.met} for f in figures(report)}


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, float | None, float | None, float | None]]:
    """(figure, stage-1 target, value in A, value in B, B / A) for each key figure."""
    rows = []
    for fa, fb in zip(figures(a), figures(b), strict=True):
        ratio = fb.value / fa.value if fa.value and fb.value is not None else None
        rows.append((fa.label, fa.target, fa.value, fb.value, ratio))
    return rows
