"""What `summit status` asks each running process, beyond "is its pid alive": an app server's own
`/healthz`, HAProxy's view of its servers, a Varnish tier's hits and misses, a WAF process's own
health and how many events it logged. Each answer is bounded (a second or two) and never raises: a
process that does not answer is unhealthy."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import urllib.error
import urllib.request
from typing import Any

from summit.engines.layout import Layout

TIMEOUT = 2.0


def app_healthy(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=TIMEOUT) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def waf_healthy(address: str) -> bool:
    """A WAF process answers its own health path (``summit.engines.waf``)."""
    from summit.engines.waf import HEALTH_PATH

    try:
        with urllib.request.urlopen(f"http://{address}{HEALTH_PATH}", timeout=TIMEOUT) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def waf_events(path: str) -> dict[str, Any]:
    """How many transactions a WAF process logged as events (blocked or scored), from its event log."""
    count = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                count += chunk.count(b"\n")
    except OSError:
        return {}
    return {"events": count}


def haproxy_servers(stats_port: int) -> dict[str, str]:
    """Each server of each backend (``web/web-1``, ``cdn/varnish-edge``) with HAProxy's state of it
    (UP, DOWN, DRAIN, MAINT, or UP/DOWN in transition: ``UP 1/2``)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=TIMEOUT) as response:  # noqa: S310
            rows = csv.DictReader(io.StringIO(response.read().decode().lstrip("# ")))
            return {f"{row['pxname']}/{row['svname']}": row["status"] for row in rows
                    if row["svname"] not in ("FRONTEND", "BACKEND") and row["pxname"] != "stats"}
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return {}


def varnish_hits(work_dir: str) -> dict[str, Any]:
    """A Varnish tier's cache hits and misses since it started, and the hit ratio."""
    try:
        done = subprocess.run(["varnishstat", "-n", work_dir, "-1", "-j", "-f", "MAIN.cache_hit", "-f", "MAIN.cache_miss"],  # noqa: S603, S607
                              capture_output=True, text=True, timeout=TIMEOUT)
        counters = json.loads(done.stdout).get("counters", {})
        hits, misses = int(counters["MAIN.cache_hit"]["value"]), int(counters["MAIN.cache_miss"]["value"])
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return {}
    return {"hits": hits, "misses": misses, "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None}


def details(process: dict[str, Any], layout: Layout) -> dict[str, Any]:
    """What a process of the stage shows beyond its pid (empty when it has nothing more to say)."""
    kind = process.get("kind")
    if kind == "haproxy":
        try:
            port = json.loads((layout.data_dir / "engines" / "ports.json").read_text())["haproxy-stats"]
        except (OSError, ValueError, KeyError):
            return {}
        return {"servers": haproxy_servers(port)}
    if kind == "varnish":
        return varnish_hits(str(layout.engine_dir(process["name"]) / "work"))
    if kind == "waf":
        return waf_events(str(layout.data_dir / "logs" / f"{process['name']}-events.log"))
    return {}
