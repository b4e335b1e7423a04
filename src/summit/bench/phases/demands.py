"""Service demands, the CPU one request costs per tier, for ``summit plan``: predicted from the
raw runs and probes (to plan the mix's rates), then measured over the mix's steps."""

from __future__ import annotations

from typing import Any

from summit.bench import loadgen


def weighted(values: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """Weighted mean of the values present (weights renormalised over them)."""
    pairs = [(values[k], w) for k, w in weights.items() if values.get(k) is not None and w > 0]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _row_cpu(row: dict[str, Any], part: str | None) -> float | None:
    if part is None:
        return row.get("cpu_ms_per_request")
    return (row.get("cpu_ms_by_part") or {}).get(part)


def per_scenario_cpu(raw_rows: list[dict[str, Any]], probe: dict[str, Any], *, part: str | None = None) -> dict[str, float | None]:
    """Server CPU ms per request of each mix scenario: raw wrk runs for reads and writes (the
    whole server's, or one ``part``'s of it), the sequential probes for sign-ups and uploads (web
    part + worker; the whole server's)."""
    raw = {row["key"]: _row_cpu(row, part) for row in raw_rows}
    upload = (probe["upload_web_ms"] or 0) + (probe["upload_worker_ms"] or 0) if probe["upload_web_ms"] is not None else None
    return {
        "feed": raw.get("feed"), "photo": raw.get("photo"), "profile": raw.get("profile"),
        "like": raw.get("like"), "comment": raw.get("comment"), "follow": raw.get("follow"),
        "signup": probe["signup_ms"], "post_photo": upload,
    }


def _step_cpu(step: dict[str, Any], part: str | None) -> float:
    if part is None:
        return step["server_cpu_seconds"] or 0
    return (step.get("server_cpu_seconds_by_part") or {}).get(part) or 0


def app_demands(
    steps: list[dict[str, Any]], cpu: dict[str, float | None], probe: dict[str, Any], peak_rss: int, blueprint: Any, *, part: str | None = None,
) -> dict[str, dict[str, Any]]:
    """The report's ``demands``: the app tier over the steps that held (all if none did), and the
    worker's CPU per upload. Empty if no request was answered. With ``part`` ("app", at a stage
    whose database runs in processes of its own), the app's process tree only, from the steps'
    and raw runs' CPU by part; else the whole server's."""
    counted = [s for s in steps if s["held"]] or steps
    cpu_s = sum(_step_cpu(s, part) for s in counted)
    answered = sum(s["answered"] for s in counted)
    if not answered:
        return {}
    if part is None:
        method = ("request: whole process tree over the held mix steps / answers (worker included at stage 1); "
                  "read/write: raw wrk runs per endpoint weighted by the mix; upload: sequential probe, web part")
        processes = "web + database (SQLite) + in-process worker" if blueprint.worker.in_process else "web"
    else:
        method = ("request: the app's process tree (summit serve: granian's parent and worker) over the held mix steps / answers; "
                  "read/write: its CPU in the raw wrk runs per endpoint weighted by the mix; upload: sequential probe, web part "
                  "(the whole server's: the database's share of an upload is small)")
        processes = "web + in-process worker (the database runs apart: demands.database)" if blueprint.worker.in_process else "web"
    out = {
        "app": {
            "cpu_ms_per_request": cpu_s * 1000 / answered,
            "cpu_ms_per_read": weighted({k: cpu[k] for k in loadgen.READ_SPLIT}, loadgen.READ_SPLIT),
            "cpu_ms_per_write": weighted({k: cpu[k] for k in loadgen.WRITE_SPLIT}, loadgen.WRITE_SPLIT),
            "cpu_ms_per_upload": probe["upload_web_ms"],
            "rss_bytes": int(peak_rss),
            "method": method,
            "processes": processes,
        }
    }
    if probe["upload_worker_ms"] is not None:
        out["worker"] = {
            "cpu_ms_per_request": probe["upload_worker_ms"],
            "cpu_ms_per_read": None,
            "cpu_ms_per_write": None,
            "cpu_ms_per_upload": probe["upload_worker_ms"],
            "rss_bytes": 0 if blueprint.worker.in_process else int(peak_rss),
            "in_process": blueprint.worker.in_process,
            "method": "sequential probe: server CPU from an upload's answer until its thumbnails are ready, less idle CPU and polling",
        }
    return out


def measured_ms(steps: list[dict[str, Any]]) -> float | None:
    """Server CPU ms per answered request over the steps that held (all if none did)."""
    counted = [s for s in steps if s["held"]] or steps
    answered = sum(s["answered"] for s in counted)
    return sum(s["server_cpu_seconds"] or 0 for s in counted) * 1000 / answered if answered else None


def database_demands(steps: list[dict[str, Any]], raw_rows: list[dict[str, Any]], peak_pss: int, blueprint: Any) -> dict[str, dict[str, Any]]:
    """The database tier (PostgreSQL with its backends, PgBouncer) at a stage that runs it in
    processes of its own: its CPU per request of the mix over the held steps, per write from the
    raw write runs (every write reaches it). No per-read figure: the raw reads are warm (served
    from the cache), so the planner takes the mix's per-request figure over the share of reads
    that reach the database (``db_read_share``). Empty if no request was answered."""
    counted = [s for s in steps if s["held"]] or steps
    answered = sum(s["answered"] for s in counted)
    if not answered:
        return {}
    writes = {row["key"]: _row_cpu(row, "database") for row in raw_rows}
    pg = blueprint.engines.postgres
    servers = f"a primary and {pg.replicas} streaming replicas" if pg.replicas else "one server"
    return {
        "database": {
            "cpu_ms_per_request": sum(_step_cpu(s, "database") for s in counted) * 1000 / answered,
            "cpu_ms_per_read": None,
            "cpu_ms_per_write": weighted({k: writes.get(k) for k in loadgen.WRITE_SPLIT}, loadgen.WRITE_SPLIT),
            "cpu_ms_per_upload": None,
            "rss_bytes": int(peak_pss),
            "method": "request: PostgreSQL and PgBouncer processes over the held mix steps / answers; write: their CPU in the raw "
            "wrk write runs weighted by the mix; read: not measured apart (warm raw reads rarely reach it); rss_bytes: peak PSS",
            "processes": f"PostgreSQL ({servers}, with its backends) + PgBouncer in front of each",
        }
    }
