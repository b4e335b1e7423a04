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


def per_scenario_cpu(raw_rows: list[dict[str, Any]], probe: dict[str, Any]) -> dict[str, float | None]:
    """Server CPU ms per request of each mix scenario: raw wrk runs for reads and writes, the
    sequential probes for sign-ups and uploads (web part + worker)."""
    raw = {row["key"]: row["cpu_ms_per_request"] for row in raw_rows}
    upload = (probe["upload_web_ms"] or 0) + (probe["upload_worker_ms"] or 0) if probe["upload_web_ms"] is not None else None
    return {
        "feed": raw.get("feed"), "photo": raw.get("photo"), "profile": raw.get("profile"),
        "like": raw.get("like"), "comment": raw.get("comment"), "follow": raw.get("follow"),
        "signup": probe["signup_ms"], "post_photo": upload,
    }


def app_demands(steps: list[dict[str, Any]], cpu: dict[str, float | None], probe: dict[str, Any], peak_rss: int, blueprint: Any) -> dict[str, dict[str, Any]]:
    """The report's ``demands``: the app tier over the steps that held (all if none did), and the
    worker's CPU per upload. Empty if no request was answered."""
    counted = [s for s in steps if s["held"]] or steps
    cpu_s = sum(s["server_cpu_seconds"] or 0 for s in counted)
    answered = sum(s["answered"] for s in counted)
    if not answered:
        return {}
    out = {
        "app": {
            "cpu_ms_per_request": cpu_s * 1000 / answered,
            "cpu_ms_per_read": weighted({k: cpu[k] for k in loadgen.READ_SPLIT}, loadgen.READ_SPLIT),
            "cpu_ms_per_write": weighted({k: cpu[k] for k in loadgen.WRITE_SPLIT}, loadgen.WRITE_SPLIT),
            "cpu_ms_per_upload": probe["upload_web_ms"],
            "rss_bytes": int(peak_rss),
            "method": "request: whole process tree over the held mix steps / answers (worker included at stage 1); "
            "read/write: raw wrk runs per endpoint weighted by the mix; upload: sequential probe, web part",
            "processes": "web + database (SQLite) + in-process worker" if blueprint.worker.in_process else "web",
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
