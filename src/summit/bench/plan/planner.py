"""The planner's entry points: from the inputs to one plan per user count, and the sweep the chart draws.

Inputs: the blueprint's user model (``[workload]``), the planner's assumptions (``Assumptions``:
defaults with their sources, overridden by a ``[plan]`` table in the blueprint file or by
``--set NAME=VALUE``), and per-request service demands (measured by ``summit bench`` where a
report is given, published or assumed otherwise; every figure says which).

The other modules of the package are listed in ``summit.bench.plan``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from summit.blueprint import BlueprintError, load_blueprint
from summit.blueprint.model import DEFAULT_FILE, Workload
from summit.bench.plan.demands import resolve
from summit.bench.plan.model import STAGES, Assumptions, PlanError, compute, talk_stage
from summit.bench.plan.stages import MAX_USERS, crossings, next_bottleneck, stage_of

__all__ = ["STAGES", "Assumptions", "PlanError", "apply_settings", "load_inputs", "make_plans", "parse_users", "sweep", "talk_stage"]

NOTES = (
    "Demands measured on the shared 2-core machine are CPU milliseconds per request, not throughput: "
    "the plan multiplies them by the rates it computes and never scales a measured requests-per-second figure.",
    "Peak rates are the peak hour (peak_to_average x the daily average); pools are sized to stay under their target "
    "utilisation at that peak, and the web pool is checked against the p99 target with an M/M/c queue.",
    "Data and storage figures hold history_days of uploads and writes at this user count.",
)
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}


def parse_users(text: str | int | float) -> list[int]:
    """``"10000000"``, ``"10M"``, ``"1.5k"``, ``"1e7"``, ``"10_000_000"``, or several separated by
    commas. Each must be a whole number from 1 to 10^10."""
    items = [text] if isinstance(text, int | float) else [t.strip() for t in str(text).split(",")]
    out = []
    for item in items:
        if isinstance(item, int | float):
            value = float(item)
        else:
            match = re.fullmatch(r"([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?|-[0-9.e_]+)\s*([kmbg]?)", item.lower())
            if not match:
                raise PlanError(f"users {item!r}: give a whole number such as 10000000, 10M or 1e7")
            value = float(match.group(1).replace("_", "")) * _SUFFIX[match.group(2)]
        if not math.isfinite(value) or value < 1:
            raise PlanError(f"users {item!r}: must be at least 1")
        if value > MAX_USERS:
            raise PlanError(f"users {item!r}: the planner goes up to 10^10")
        if abs(value - round(value)) > 1e-6:
            raise PlanError(f"users {item!r}: must be a whole number")
        out.append(round(value))
    return out


def load_inputs(config: str | Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[Workload, Assumptions, str]:
    """The user model and assumptions from the blueprint (preset, file, environment) and its
    ``[plan]`` table, with a description of where they came from. Errors are PlanError."""
    environ = dict(os.environ if environ is None else environ)
    file = Path(config or environ.get("SUMMIT_CONFIG") or DEFAULT_FILE)
    try:
        blueprint = load_blueprint(config, environ=environ)
    except BlueprintError as error:
        raise PlanError(f"{file}: {error}" if str(file) not in str(error) else str(error)) from None
    origin = str(file) if file.is_file() else "blueprint defaults"
    if not blueprint.plan:
        return blueprint.workload, Assumptions(), origin
    try:
        assumptions = Assumptions.with_overrides(blueprint.plan, where=f"[plan] of {origin}")
    except TypeError as error:
        raise PlanError(f"[plan] of {origin}: {error}") from None
    return blueprint.workload, assumptions, f"{origin} (with [plan])"


def apply_settings(workload: Workload, assumptions: Assumptions, settings: Iterable[str]) -> tuple[Workload, Assumptions]:
    """Apply ``NAME=VALUE`` settings: a workload field (``daily_active_ratio=0.3``) or an assumption
    (``cache_hit_ratio=0.8``)."""
    wl: dict[str, Any] = {}
    plan: dict[str, Any] = {}
    for setting in settings:
        name, sep, value = setting.partition("=")
        name = name.strip().removeprefix("workload.").removeprefix("plan.")
        if not sep or not name:
            raise PlanError(f"--set {setting!r}: write NAME=VALUE, e.g. cache_hit_ratio=0.8")
        try:
            number = float(value)
        except ValueError:
            raise PlanError(f"--set {setting!r}: {value!r} is not a number") from None
        (wl if name in Workload.model_fields else plan)[name] = number
    if wl:
        try:
            workload = Workload.model_validate({**workload.model_dump(), **wl})
        except ValueError as error:
            raise PlanError(f"--set: invalid workload value: {error}") from None
    return workload, Assumptions.with_overrides(plan, base=assumptions, where="--set") if plan else assumptions


def _memory(p: dict[str, Any], sources: dict[str, Any]) -> None:
    p["web"]["rss_bytes_per_process"] = sources["web"]["rss_bytes"]["value"]
    p["web"]["memory_bytes"] = p["web"]["processes"] * p["web"]["rss_bytes_per_process"]


def make_plans(
    users: Sequence[int],
    workload: Workload,
    assumptions: Assumptions | None = None,
    report: dict[str, Any] | None = None,
    report_path: str | Path | None = None,
) -> list[dict[str, Any]]:
    """One plan per user count (the ceilings are computed once and shared)."""
    a = assumptions or Assumptions()
    demands, sources, warnings = resolve(report, report_path)
    ceilings = crossings(workload, a, demands)
    plans = []
    for count in users:
        p = compute(count, workload, a, demands)
        _memory(p, sources)
        p["stage"] = stage_of(count, p.pop("talk_stage"), ceilings)
        p["next_bottleneck"] = next_bottleneck(count, workload, a, demands, ceilings)
        p["ceilings"] = ceilings
        p["demands"] = sources
        p["workload"] = workload.model_dump()
        p["assumptions"] = a.describe()
        p["notes"] = [*NOTES, *warnings]
        if report is not None:
            measured = {k: report.get(k) for k in ("stage", "capacity_rps", "cache_hit_ratio", "db_read_share", "client_bottleneck")}
            p["bench"] = {"report": str(report_path) if report_path else None, **measured}
            if measured.get("cache_hit_ratio") is not None:
                p["notes"].append(f"the bench measured a cache hit ratio of {measured['cache_hit_ratio']}; the plan assumes "
                                  f"{a.cache_hit_ratio} (use --set cache_hit_ratio=... to plan with the measured one)")
        plans.append(p)
    return plans


SERIES = (  # (key, label, unit, path into a plan)
    ("peak_rps", "peak requests/s", "req/s", ("peak_rps", "total")),
    ("web_cores", "web processes", "cores", ("web", "cores")),
    ("worker_cores", "worker processes", "cores", ("worker", "cores")),
    ("db_shards", "database primaries", "shards", ("db", "shards")),
    ("db_replicas", "read replicas", "count", ("db", "replicas")),
    ("cache_gb", "cache memory", "GB", ("cache", "memory_bytes")),
    ("objects_tb", "object storage", "TB", ("objects", "stored_bytes")),
    ("egress_gbps", "CDN egress", "Gbit/s", ("cdn", "egress_bytes_per_s")),
    ("queue_msgs", "queue messages/s", "msg/s", ("queue", "messages_per_s")),
)
_SCALE = {"cache_gb": 1e-9, "objects_tb": 1e-12, "egress_gbps": 8e-9}


def series_value(plan: Mapping[str, Any], key: str) -> float:
    path = next(s[3] for s in SERIES if s[0] == key)
    return float(plan[path[0]][path[1]]) * _SCALE.get(key, 1.0)


def sweep(workload: Workload, assumptions: Assumptions | None = None, report: dict[str, Any] | None = None,
          low: int = 1, high: int = 10**8, per_decade: int = 8) -> dict[str, Any]:
    """Resources against users on a log grid (the chart's data): {"users": [...], series: [...]}."""
    a = assumptions or Assumptions()
    demands, _, _ = resolve(report)
    decades = math.log10(high / low)
    grid = sorted({round(low * 10 ** (i / per_decade)) for i in range(int(decades * per_decade) + 1)})
    plans = [compute(u, workload, a, demands, queueing=False) for u in grid]
    return {"users": grid, **{key: [series_value(p, key) for p in plans] for key, *_ in SERIES}}
