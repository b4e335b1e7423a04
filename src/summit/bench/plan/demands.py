"""Service demands for the planner: CPU milliseconds per request, per tier.

Measured demands come from a ``summit bench`` report (``"demands": {"<tier>": {"cpu_ms_per_read",
...}}``); tiers that no report measured use the published or assumed figures below, and every
figure carries its source. On this shared 2-core machine a bench figure is a demand (CPU time one
request costs), not a throughput: the planner multiplies demands by rates, it never scales a
measured requests-per-second figure up to a fleet.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from summit.bench.plan.model import ENGINES, PlanError

# tier -> kind -> (CPU ms, source)
PUBLISHED: dict[str, dict[str, tuple[float, str]]] = {
    "web": {
        "read": (6.0, "assumed: ~6 ms CPU per page of a Python ASGI app with an ORM and templates; measure it with `summit bench`"),
        "write": (8.0, "assumed: ~8 ms CPU per write request (validation, a transaction, cache invalidation)"),
        "upload": (300.0, "assumed: decode + re-encode of a 2 MB photo in the request (photos.media.clean), ~half the thumbnail job below"),
    },
    "worker": {
        "upload": (590.0, f"published: {ENGINES}: Pillow, 12 MP JPEG to three thumbnails + WebP in 0.59 s (no draft mode, as photos.media.thumbnails)"),
        "task": (2.0, "assumed: ~2 ms CPU per background task (notification, feed fan-out)"),
    },
    "db": {
        "read": (1.0, f"assumed: 3-5 indexed queries per read request that misses the cache; pgbench -S does ~64k single-row selects/s on 2 cores ({ENGINES})"),
        "write": (3.0, "assumed: one transaction of 2-4 statements with index and WAL writes per write request"),
    },
    "cache": {"op": (1000 / 60_000, f"published: {ENGINES}: redis-benchmark ~120k GET/SET per second unpipelined on 2 cores, ~60k per core")},
    "lb": {"request": (1000 / 29_000, f"published: {ENGINES}: HAProxy http -> nginx ~58k req/s on 2 cores shared with wrk, ~29k per core")},
    "waf": {"request": (1000 / 1_300, f"published: {ENGINES}: nginx + ModSecurity + CRS ~2.4-2.9k req/s on 2 cores, ~1.3k per core")},
    "edge": {"request": (1000 / 27_500, f"published: {ENGINES}: Varnish hit -> ~55k req/s on 2 cores shared with wrk, ~27.5k per core")},
}
PUBLISHED_PHOTO_BYTES = 2_000_000
DEFAULT_RSS = (150 * 2**20, "assumed: ~150 MiB resident per Python web process")

# names a bench report may give a tier
ALIASES = {
    "web": ("web", "app", "api", "granian", "uvicorn"),
    "worker": ("worker", "workers", "media"),
    "db": ("db", "sql", "database", "postgres", "postgresql", "pgbouncer"),
    "cache": ("cache", "redis", "memcached"),
    "lb": ("lb", "haproxy"),
    "waf": ("waf", "modsecurity"),
    "edge": ("edge", "cdn", "varnish"),
}
KIND_KEYS = {"read": "cpu_ms_per_read", "write": "cpu_ms_per_write", "upload": "cpu_ms_per_upload"}


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a bench report; a missing file, bad JSON or a non-object is a PlanError."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"bench report {path}: no such file (run `summit bench` first)") from None
    except IsADirectoryError:
        raise PlanError(f"bench report {path}: is a directory, not a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PlanError(f"bench report {path}: not valid JSON ({error})") from None
    if not isinstance(report, dict):
        raise PlanError(f"bench report {path}: not a JSON object")
    for key in ("demands", "machine", "workload"):
        if report.get(key) is not None and not isinstance(report[key], dict):
            raise PlanError(f"bench report {path}: {key!r} must be an object")
    if report.get("steps") is not None and not isinstance(report["steps"], list):
        raise PlanError(f"bench report {path}: 'steps' must be a list")
    return report


def number(value: Any) -> float | None:
    """A finite, non-negative number, or None (null, missing, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def measured_photo_bytes(report: dict[str, Any]) -> float | None:
    """The photo size the bench's uploads used: ``extra.photo_bytes`` (what it really sent), else
    the report's ``workload.photo_bytes``."""
    extra = report.get("extra") if isinstance(report.get("extra"), dict) else {}
    workload = report.get("workload") if isinstance(report.get("workload"), dict) else {}
    return number(extra.get("photo_bytes")) or number(workload.get("photo_bytes")) or None


def measured_tiers(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The report's demands by planner tier (aliases resolved; the first alias found wins)."""
    raw = report.get("demands") or {}
    out: dict[str, dict[str, Any]] = {}
    for tier, names in ALIASES.items():
        for name in names:
            if isinstance(raw.get(name), dict):
                out[tier] = {"name": name, **raw[name]}
                break
    return out


def resolve(report: dict[str, Any] | None = None, report_path: str | Path | None = None) -> tuple[dict[str, dict[str, float]], dict[str, Any], list[str]]:
    """Demands (tier -> kind -> ms), their sources (same shape, with the figure), and warnings."""
    values = {tier: {kind: ms for kind, (ms, _) in kinds.items()} for tier, kinds in PUBLISHED.items()}
    sources: dict[str, Any] = {tier: {kind: {"cpu_ms": ms, "source": src} for kind, (ms, src) in kinds.items()} for tier, kinds in PUBLISHED.items()}
    sources["web"]["rss_bytes"] = {"value": DEFAULT_RSS[0], "source": DEFAULT_RSS[1]}
    for tier in ("web", "worker"):  # the published upload figures are for the default 2 MB photo
        values[tier]["upload_photo_bytes"] = PUBLISHED_PHOTO_BYTES
        sources[tier]["upload"]["photo_bytes"] = PUBLISHED_PHOTO_BYTES
    warnings: list[str] = []
    if report is None:
        return values, sources, warnings
    photo_bytes = measured_photo_bytes(report)
    where = f"measured: {report_path or 'bench report'} (stage {report.get('stage', '?')})"
    found = measured_tiers(report)
    db_share = number(report.get("db_read_share"))
    for tier, entry in found.items():
        per_request = number(entry.get("cpu_ms_per_request"))
        for kind in PUBLISHED[tier]:
            value = number(entry.get(KIND_KEYS.get(kind, "")))
            note = ""
            if value is None and per_request is not None and (tier != "worker" or kind == "upload"):
                value, note = per_request, " (cpu_ms_per_request)"
            if value is None:
                if entry.get(KIND_KEYS.get(kind, "")) is not None:
                    warnings.append(f"demands.{entry['name']}.{KIND_KEYS[kind]} is not a non-negative number: using the published figure")
                continue
            if tier == "db" and kind == "read" and db_share and db_share < 1:
                value, note = value / db_share, f" / db_read_share {db_share:g}"
            values[tier][kind] = value
            sources[tier][kind] = {"cpu_ms": value, "source": f"{where}, demands.{entry['name']}{note}"}
            if kind == "upload":
                values[tier]["upload_photo_bytes"] = photo_bytes or PUBLISHED_PHOTO_BYTES
                sources[tier][kind]["photo_bytes"] = photo_bytes
                if photo_bytes is None:
                    warnings.append(f"demands.{entry['name']}: the report does not say the photo size its uploads used: taken as {PUBLISHED_PHOTO_BYTES:,} bytes")
        rss = number(entry.get("rss_bytes"))
        if tier == "web" and rss:
            sources["web"]["rss_bytes"] = {"value": rss, "source": f"{where}, demands.{entry['name']}.rss_bytes"}
    planned = number((report.get("workload") or {}).get("photo_bytes"))
    if photo_bytes and planned and not 0.5 <= photo_bytes / planned <= 2 and any(t in found for t in ("web", "worker")):
        warnings.append(f"the bench's uploads used {photo_bytes:,.0f}-byte photos: upload demands are scaled linearly to the plan's photo size "
                        "(re-run the bench with --photo-bytes at that size for a measured figure)")
    if "web" in found and "db" not in found and str(report.get("stage", "1")) == "1":
        warnings.append("stage 1 runs the database, cache and queue inside the app process: its measured demand is counted "
                        "in the web tier, an upper bound once those move to their own tiers")
    unknown = sorted(set(report.get("demands") or {}) - {e["name"] for e in found.values()})
    if unknown:
        warnings.append(f"report tiers not used by the planner: {', '.join(unknown)}")
    if not found:
        warnings.append("the report has no demands the planner knows: every figure is published or assumed")
    return values, sources, warnings
