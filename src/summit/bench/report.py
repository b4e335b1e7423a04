"""The bench report: a JSON document whose top-level keys are a contract (``summit plan`` reads
it; docs/benchmarks.md documents every key). Version 1.

Also here: whether a step held, the capacity from the steps, and the comparison of two reports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

VERSION = 1

TOP_KEYS = (
    "version",
    "stage",
    "started_at",
    "machine",
    "workload",
    "baselines",
    "raw",
    "steps",
    "capacity_rps",
    "demands",
    "scenarios",
    "db_read_share",
    "cache_hit_ratio",
    "client_bottleneck",
    "notes",
)
MACHINE_KEYS = ("cores", "cpu_model", "memory_bytes")
BASELINE_KEYS = ("asgi_hello_rps", "nginx_static_rps", "redis_ops", "pgbench_tps")
RAW_KEYS = ("name", "method", "path", "rps", "p50_ms", "p99_ms", "ratio_to_hello")
STEP_KEYS = ("rate", "achieved_rps", "p50_ms", "p95_ms", "p99_ms", "error_ratio", "client_cpu", "server_cpu", "held")
DEMAND_KEYS = ("cpu_ms_per_request", "cpu_ms_per_read", "cpu_ms_per_write", "cpu_ms_per_upload", "rss_bytes")
SCENARIO_KEYS = ("count", "p50_ms", "p99_ms", "errors")
# everything else the report carries (time series, per-process samples, run settings) lives
# under "extra": free to grow, not part of the contract
EXTRA_KEY = "extra"


class ReportError(ValueError):
    """A report file that is not a bench report of a version this summit reads."""


def empty_report(stage: str, started_at: str, machine: dict[str, Any], workload: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": VERSION,
        "stage": stage,
        "started_at": started_at,
        "machine": machine,
        "workload": workload,
        "baselines": dict.fromkeys(BASELINE_KEYS),
        "raw": [],
        "steps": [],
        "capacity_rps": None,
        "demands": {},
        "scenarios": {},
        "db_read_share": None,
        "cache_hit_ratio": None,
        "client_bottleneck": False,
        "notes": [],
        EXTRA_KEY: {},
    }


def validate(report: Any) -> list[str]:
    """Problems with a report's shape (empty if it follows the contract)."""
    problems: list[str] = []
    if not isinstance(report, dict):
        return ["the report is not a JSON object"]
    for key in TOP_KEYS:
        if key not in report:
            problems.append(f"missing key {key!r}")
    if problems:
        return problems
    if report["version"] != VERSION:
        problems.append(f"version {report['version']!r}, this summit reads version {VERSION}")

    def need(obj: Any, keys: Sequence[str], where: str) -> None:
        if not isinstance(obj, dict):
            problems.append(f"{where} is not an object")
            return
        problems.extend(f"{where}: missing key {k!r}" for k in keys if k not in obj)

    need(report["machine"], MACHINE_KEYS, "machine")
    need(report["baselines"], BASELINE_KEYS, "baselines")
    for i, raw in enumerate(report["raw"] if isinstance(report["raw"], list) else []):
        need(raw, RAW_KEYS, f"raw[{i}]")
    for i, step in enumerate(report["steps"] if isinstance(report["steps"], list) else []):
        need(step, STEP_KEYS, f"steps[{i}]")
    for tier, demand in (report["demands"] or {}).items():
        need(demand, DEMAND_KEYS, f"demands[{tier!r}]")
    for name, scenario in (report["scenarios"] or {}).items():
        need(scenario, SCENARIO_KEYS, f"scenarios[{name!r}]")
    if not isinstance(report["notes"], list):
        problems.append("notes is not a list")
    return problems


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: turn them into null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(_finite(report), indent=2, sort_keys=False)


def write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(dumps(report))
    tmp.replace(path)


def load(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not JSON ({error})") from None
    problems = validate(report)
    if problems:
        raise ReportError(f"{path}: not a summit bench report: " + "; ".join(problems[:5]))
    return report


# ---- holding a rate, and capacity ---------------------------------------------------------------


def step_held(step: dict[str, Any], p99_target_ms: float, max_error_ratio: float) -> bool:
    """A step holds its rate when p99 is under the target and errors under the allowed ratio."""
    return step["p99_ms"] <= p99_target_ms and step["error_ratio"] <= max_error_ratio


def capacity(steps: Sequence[dict[str, Any]]) -> float | None:
    """The highest rate held with every lower rate held too (by rate, not by the order run):
    a lucky step above a failed one does not count. None if the lowest rate did not hold."""
    best = None
    for step in sorted(steps, key=lambda s: s["rate"]):
        if not step["held"]:
            break
        best = float(step["rate"])
    return best


def next_rates(steps: Sequence[dict[str, Any]], planned: Sequence[float], *, refine: int, min_gap: float) -> list[float]:
    """The rates still to run: the planned ones up to the first failure, then up to ``refine``
    bisections between the highest held rate and the lowest failed one (gaps under ``min_gap``
    requests per second are not split). If the lowest rate fails, halve it (up to three times)."""
    done = {float(s["rate"]) for s in steps}
    failed = sorted(float(s["rate"]) for s in steps if not s["held"])
    if not failed:
        return [r for r in planned if float(r) not in done]
    low = capacity(steps) or 0.0
    high = failed[0]
    if low <= 0:  # not even the lowest rate held: halve it (at most three times)
        return [round(high / 2, 1)] if high / 2 >= 1 and len(failed) <= 3 else []
    refinements = sum(1 for s in steps if float(s["rate"]) not in {float(p) for p in planned})
    if refinements >= refine or high - low < max(min_gap, 1e-9) * 2 or low <= 0:
        return []
    return [round((low + high) / 2, 1)]


# ---- compare ------------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a == 0:
        return None
    return b / a


def compare_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, float | None]]:
    """(figure, value in A, value in B, B/A) for the headline figures of two reports."""
    rows: list[tuple[str, Any, Any, float | None]] = []

    def add(label: str, va: Any, vb: Any) -> None:
        numeric = isinstance(va, int | float) and isinstance(vb, int | float) and not isinstance(va, bool)
        rows.append((label, va, vb, _ratio(float(va), float(vb)) if numeric else None))

    add("stage", a["stage"], b["stage"])
    add("started at", a["started_at"], b["started_at"])
    add("cores", a["machine"].get("cores"), b["machine"].get("cores"))
    add("capacity (req/s)", a["capacity_rps"], b["capacity_rps"])
    hello_a, hello_b = a["baselines"].get("asgi_hello_rps"), b["baselines"].get("asgi_hello_rps")
    if a["capacity_rps"] is not None and b["capacity_rps"] is not None and hello_a and hello_b:
        add("capacity / hello", a["capacity_rps"] / hello_a, b["capacity_rps"] / hello_b)
    for key in BASELINE_KEYS:
        add(f"baseline {key}", a["baselines"].get(key), b["baselines"].get(key))
    raw_a = {r["name"]: r for r in a["raw"]}
    raw_b = {r["name"]: r for r in b["raw"]}
    for name in [*raw_a, *[n for n in raw_b if n not in raw_a]]:
        ra, rb = raw_a.get(name), raw_b.get(name)
        add(f"raw {name} (req/s)", ra and ra["rps"], rb and rb["rps"])
        add(f"raw {name} / hello", ra and ra["ratio_to_hello"], rb and rb["ratio_to_hello"])
    for tier in [*a["demands"], *[t for t in b["demands"] if t not in a["demands"]]]:
        da, db = a["demands"].get(tier, {}), b["demands"].get(tier, {})
        for key in DEMAND_KEYS:
            add(f"{tier} {key}", da.get(key), db.get(key))
    add("database share of reads", a["db_read_share"], b["db_read_share"])
    add("cache hit ratio", a["cache_hit_ratio"], b["cache_hit_ratio"])
    add("client was the bottleneck", a["client_bottleneck"], b["client_bottleneck"])
    return rows


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)
