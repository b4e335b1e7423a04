"""``summit plan check``: predict the measured stage's capacity on this machine from its measured
demands, and compare with the capacity ``summit bench`` measured.

The stage's processes share the server's cores, so a request costs the sum of its tiers' CPU
demands (mix-weighted: reads, writes, uploads). With ``c`` server cores the pool is an M/M/c
queue: the predicted capacity is the highest Poisson rate whose p99 response time stays under the
workload's target (just under c / demand, the utilisation law's ceiling). The error is
(predicted - measured) / measured; the target is within 25%.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from summit.bench.plan.demands import KIND_KEYS, measured_tiers, number
from summit.bench.plan.model import PlanError, daily_per_dau
from summit.bench.plan.queueing import max_rate, p99_ms
from summit.blueprint.model import Workload

TOLERANCE = 0.25


def _workload(report: dict[str, Any], fallback: Workload | None) -> Workload:
    base = (fallback or Workload()).model_dump()
    given = {k: v for k, v in (report.get("workload") or {}).items() if k in Workload.model_fields and v is not None}
    try:
        return Workload.model_validate({**base, **given})
    except ValueError as error:
        raise PlanError(f"the report's workload is invalid: {error}") from None


def measured_capacity(report: dict[str, Any]) -> float | None:
    """capacity_rps if given, else the highest held rate with every lower step held."""
    capacity = number(report.get("capacity_rps"))
    if capacity:
        return capacity
    best = None
    for step in sorted((s for s in report.get("steps") or [] if isinstance(s, dict) and number(s.get("rate"))), key=lambda s: s["rate"]):
        if not step.get("held"):
            break
        best = float(step["rate"])
    return best


def tier_demands(report: dict[str, Any], workload: Workload) -> dict[str, float]:
    """CPU ms per request of the mix, for each measured tier that runs in its own process:
    ``cpu_ms_per_request`` (measured over the mix itself), else the per-class demands weighted by
    the mix. A tier marked ``"in_process": true`` is already inside another tier's figure."""
    per_dau = daily_per_dau(workload)
    shares = {"read": per_dau["reads"], "write": per_dau["writes"], "upload": per_dau["uploads"]}
    total = sum(shares.values())
    out = {}
    for tier, entry in measured_tiers(report).items():
        if entry.get("in_process") is True:
            continue
        per_request = number(entry.get("cpu_ms_per_request"))
        kinds = {kind: number(entry.get(key)) for kind, key in KIND_KEYS.items()}
        if per_request is not None:
            out[tier] = per_request
        elif all(v is not None for v in kinds.values()):
            out[tier] = sum(shares[k] * kinds[k] for k in kinds) / total
        elif any(v is not None for v in kinds.values()):
            known = {k: v for k, v in kinds.items() if v is not None}
            weight = sum(shares[k] for k in known) or 1.0
            out[tier] = sum(shares[k] * v for k, v in known.items()) / weight
    return out


def server_cores(report: dict[str, Any], override: int | None) -> int:
    """Cores the server side had: the override, the report's server_cores, else 1 (summit bench
    pins the server to one core and the load generator to the other)."""
    if override is not None:
        if override < 1:
            raise PlanError("--cores must be at least 1")
        return override
    machine = report.get("machine") or {}
    for value in (machine.get("server_cores"), report.get("server_cores")):
        if number(value) and value >= 1:
            return int(value)
    return 1


def check(report: dict[str, Any], report_path: str | Path | None = None, *, workload: Workload | None = None, cores: int | None = None) -> dict[str, Any]:
    """The check's figures: predicted and measured capacity, error, and per-step p99."""
    wl = _workload(report, workload)
    demands = tier_demands(report, wl)
    if not demands or sum(demands.values()) <= 0:
        raise PlanError(f"bench report {report_path or ''}: no usable demands (CPU ms per request) to predict from".replace("  ", " "))
    measured = measured_capacity(report)
    if measured is None:
        raise PlanError(f"bench report {report_path or ''}: no capacity_rps and no held step to compare with".replace("  ", " "))
    c = server_cores(report, cores)
    demand = sum(demands.values())
    predicted = max_rate(demand, c, float(wl.p99_target_ms))
    error = (predicted - measured) / measured
    steps = []
    for step in report.get("steps") or []:
        rate = number(step.get("rate")) if isinstance(step, dict) else None
        if rate:
            predicted_p99 = p99_ms(rate, demand, c)
            steps.append({"rate": rate, "measured_p99_ms": number(step.get("p99_ms")), "predicted_p99_ms": None if math.isinf(predicted_p99) else predicted_p99,
                          "held": step.get("held"), "predicted_held": predicted_p99 <= wl.p99_target_ms})
    notes = []
    held = [s for s in report.get("steps") or [] if isinstance(s, dict)]
    if held and all(s.get("held") for s in held) and number(report.get("capacity_rps")) in (None, max(number(s.get("rate")) or 0 for s in held)):
        notes.append("every step held: the bench never reached the stage's limit, so the measured capacity is a lower bound "
                     "(run it with higher --rates)")
    if report.get("client_bottleneck"):
        notes.append("the report says the load generator was the bottleneck: the measured capacity is a lower bound")
    return {
        "report": str(report_path) if report_path else None,
        "stage": report.get("stage"),
        "server_cores": c,
        "demands_ms": demands,
        "cpu_ms_per_request": demand,
        "utilisation_law_rps": c * 1000 / demand,
        "predicted_capacity_rps": predicted,
        "measured_capacity_rps": measured,
        "error": error,
        "tolerance": TOLERANCE,
        "within_tolerance": abs(error) <= TOLERANCE,
        "p99_target_ms": wl.p99_target_ms,
        "model": "M/M/c: c = server cores, service time = sum of the tiers' mix-weighted CPU demands",
        "steps": steps,
        "notes": notes,
    }
