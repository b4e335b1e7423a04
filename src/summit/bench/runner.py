"""``summit bench run``: start (or target) a stage, seed it, measure baselines, raw endpoints, the
user-journey mix at stepped arrival rates, and the service demands; write the report.

This module only puts the phases in order; each lives in ``summit.bench.phases`` with a clear
input and output. Every phase is bounded in count and time, every process started here runs in
its own process group and is stopped (SIGTERM, then SIGKILL) on the way out, Ctrl-C included.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from summit.bench import headline, loadgen, mailcodes, procs, wrk
from summit.bench import report as rep
from summit.bench.net import check_loopback_url
from summit.bench.options import FAST_ARGON2, BenchError, Options
from summit.bench.phases import assemble, demands, mix, probes, raw, seeding, stage
from summit.bench.phases.baselines import Baselines, measure as measure_baselines
from summit.bench.seed import Seeded, make_jpeg
from summit.bench.session import Session


def run(options: Options, console: Console | None = None, *, on_report: Callable[[dict], None] | None = None) -> tuple[dict[str, Any], Path, Path]:
    """The whole run; (the report, its JSON file, its HTML file)."""
    console = console or Console(stderr=True)
    if options.start == bool(options.url):
        raise BenchError("give either --url URL (a running stage on loopback) or --start (start one here)")
    if options.url:
        check_loopback_url(options.url)
    if options.start and not shutil.which("taskset"):
        console.print("[yellow]warning:[/yellow] taskset not found: the server and the client are not pinned")
    session = Session(options, console)
    try:
        session.set_nice(options.nice)
        report = measure(session, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        json_path, html_path = assemble.write(report, options.out)
        if on_report:
            on_report(report)
        return report, json_path, html_path
    finally:
        session.cleanup()


def measure(session: Session, started_at: str) -> dict[str, Any]:
    o = session.o
    blueprint = stage.blueprint_for(o, session.workdir)
    reader = mailcodes.open_reader(blueprint)  # before anything starts: a mailer that cannot be read stops the run
    report = assemble.new_report(session, blueprint, started_at)
    extra = report["extra"]
    target, data = bring_up(session, blueprint, reader)
    extra["seed"] = data.as_dict()
    session.monitor = procs.Monitor({"bench client": os.getpid()})
    if session.parts:  # the stage's parts apart (disjoint, so "other processes" stays what the stage did not use)
        for name, group in session.parts.items():
            session.monitor.watch(name, group)
        session.notes.append(stage.server_note(blueprint, session.parts))
        pinning = stage.pinning_note(session, blueprint)
        if pinning:
            session.notes.append(pinning)
            extra["settings"]["engines_pinned"] = False
    elif session.server_pid:
        session.monitor.watch("app", session.server_pid)
    session.monitor.start()
    session.phase("waiting for the stage to be idle", "idle")
    rest = stage.at_rest(session)
    extra["idle_server_cpu"] = rest["idle_server_cpu"]
    extra["stage"] = {**target.startup, **{k: v for k, v in rest.items() if k != "idle_server_cpu"}}
    raw_rows = baselines_and_raw(session, report, blueprint, target.url, data, target.media)
    photo, probe = probe_stage(session, report, target.url, data, blueprint.workload, raw_rows, rest["idle_server_cpu"])
    cpu = demands.per_scenario_cpu(raw_rows, probe)
    warm_cache(session, target.url, data)
    mixed = run_mix(session, report, target.url, data, photo, blueprint.workload, cpu)
    fill_demands(session, report, blueprint, mixed.steps, cpu, probe, raw_rows)
    assemble.fill_counters(report, session, mixed.deltas, raw_rows)
    assemble.shared_machine_notes(report, session)
    if o.photo_bytes and o.photo_bytes != blueprint.workload.photo_bytes:
        session.notes.append(f"uploads used {o.photo_bytes:,}-byte photos instead of the blueprint's {blueprint.workload.photo_bytes:,} (--photo-bytes)")
    report["notes"] = session.notes
    extra["headline"] = headline.as_dict(report)
    return report


def bring_up(session: Session, blueprint: Any, reader: mailcodes.CodeReader) -> tuple[stage.Stage, Seeded]:
    """The stage started (``--start``: seeded with cheap password hashing, then restarted with the
    blueprint's settings) or found (``--url``), seeded, with the media photo posted."""
    o = session.o
    session.notes.append(f"confirmation codes of the seeded users read through the stage's mail port ({reader.url})")
    if o.start:
        session.phase(f"starting stage {blueprint.stage} for seeding (fast password hashing)")
        target, seeding_proc = stage.start(session, blueprint, FAST_ARGON2)
        session.pin_client()
    else:
        target = stage.attach(session, blueprint, o.url or "")
        session.pin_client()
    session.phase(f"seeding {o.users} users, their follows, {o.posts} posts through the API of {target.url}")
    data = seeding.seed_stage(session, target.url, reader, users=o.users, posts=o.posts)
    target.media = seeding.media_photo(session, target.url, data, o.media_bytes)
    session.wait_idle(timeout=120)  # thumbnails of the seeded posts
    if o.start:
        session.phase("restarting the stage with the blueprint's settings")
        stage.restart(session, target, seeding_proc)
        session.notes.append(
            "access tokens last a day on the measured stage (the seeded users keep theirs through the run); "
            "seeded with cheap password hashing (argon2 t=1, 1 MiB) to save time, then restarted with the blueprint's "
            f"settings (t={blueprint.auth.argon2_time_cost}, {blueprint.auth.argon2_memory_kib} KiB): sign-ups in the mix pay the real cost"
        )
    return target, data


def baselines_and_raw(session: Session, report: dict[str, Any], blueprint: Any, url: str, data: Seeded, media: seeding.MediaPhoto | None) -> list[dict[str, Any]]:
    base = Baselines()
    raw_rows: list[dict[str, Any]] = []
    if session.o.skip_raw:
        session.notes.append("raw endpoints and baselines skipped (--skip-raw)")
    elif not wrk.available():
        session.notes.append("wrk is not installed (scripts/install.sh --bench): no raw throughput, no baselines")
    else:
        base = measure_baselines(session, blueprint, media)
        session.phase("raw single-endpoint throughput (wrk)", "raw (wrk)")
        raw_rows = raw.measure(session, url, data, media, base)
    report["baselines"].update(base.values)
    report["raw"] = raw_rows
    report["extra"]["baseline_detail"] = base.detail
    report["extra"]["media_photo_bytes"] = len(media.data) if media else None
    return raw_rows


def probe_stage(session: Session, report: dict[str, Any], url: str, data: Seeded, workload: Any, raw_rows: list[dict[str, Any]], idle: float) -> tuple[bytes, dict[str, Any]]:
    """The upload photo, and the sequential upload and sign-up probes (when the server is visible)."""
    photo_bytes = session.o.photo_bytes or workload.photo_bytes
    session.phase(f"making a {photo_bytes:,}-byte test photo", "photo")
    photo = make_jpeg(photo_bytes)
    report["extra"]["photo_bytes"] = len(photo)
    probe: dict[str, Any] = {"upload_web_ms": None, "upload_worker_ms": None, "signup_ms": None}
    if session.server_pid:
        session.phase(f"probes: {session.o.probes} sequential uploads and sign-ups (CPU per request, worker CPU per upload)", "probes")
        get_post = next((row["cpu_ms_per_request"] for row in raw_rows if row["key"] == "post"), None)
        probe = probes.measure(session, url, data, photo, idle, get_post)
        session.console.print(
            f"    upload: web {probe['upload_web_ms'] or 0:.1f} ms CPU + worker {probe['upload_worker_ms'] or 0:.1f} ms CPU; "
            f"sign-up {probe['signup_ms'] or 0:.1f} ms CPU"
        )
    report["extra"]["probes"] = probe
    return photo, probe


def warm_cache(session: Session, url: str, data: Seeded) -> None:
    session.phase(f"warming the cache: each of the {len(data.users)} seeded users' feed read once", "warm")
    try:
        read = seeding.warm_feeds(session, url, data)
    except TimeoutError:
        read = 0
    session.notes.append(
        f"before the mix, each seeded user's feed was read once ({read} of {len(data.users)} answered 200): the mix starts with a "
        "warm cache, so its share of feed reads reaching the database is what writes and expiries send there"
    )


def run_mix(session: Session, report: dict[str, Any], url: str, data: Seeded, photo: bytes, workload: Any, cpu: dict[str, float | None]) -> mix.Mixed:
    extra = report["extra"]
    weights = loadgen.scenario_weights(workload)
    predicted_ms = demands.weighted(cpu, weights)
    rates = session.o.rates or mix.planned_rates(1000 / predicted_ms if predicted_ms else None)
    extra.update(mix_weights=weights, scenario_class=loadgen.SCENARIO_CLASS, predicted_cpu_ms_per_request=predicted_ms, planned_rates=rates)
    session.phase(f"user-journey mix, {session.o.duration:g} s per step, rates {', '.join(f'{x:g}' for x in rates)} req/s (then refined)", "mix")
    mixed = mix.measure(session, url, data, photo, workload, rates)
    session.phase("done", "end")
    assert session.monitor is not None
    session.monitor.stop()
    report["steps"] = mixed.steps
    report["capacity_rps"] = rep.capacity(mixed.steps)
    report["scenarios"] = {
        name: {"count": int(s["count"]), "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"], "p99_ms": s["p99_ms"], "errors": int(s["errors"])}
        for name, s in loadgen.by_scenario(mixed.for_scenarios()).items()
    }
    report["client_bottleneck"] = mix.overall_client_bottleneck(mixed.steps)
    extra.update(series=mixed.series, step_bounds=mixed.bounds, phases=session.phases, processes=assemble.process_series(session.monitor))
    return mixed


def fill_demands(
    session: Session, report: dict[str, Any], blueprint: Any, steps: list[dict[str, Any]], cpu: dict[str, float | None], probe: dict[str, Any],
    raw_rows: list[dict[str, Any]],
) -> None:
    peak = dict(session.monitor.peak_rss) if session.server_pid and session.monitor else {}
    found: dict[str, Any] = {}
    if session.server_pid and session.parts:  # the app's tree and the database processes, apart
        app_cpu = demands.per_scenario_cpu(raw_rows, probe, part="app")
        found = demands.app_demands(steps, app_cpu, probe, peak.get("app", 0), blueprint, part="app")
        if found and "database" in session.parts:
            found.update(demands.database_demands(steps, raw_rows, peak.get("database", 0), blueprint))
    elif session.server_pid:
        found = demands.app_demands(steps, cpu, probe, peak.get("app", 0), blueprint)
    if not found:
        session.notes.append("server CPU not measured: no service demands")
        return
    report["demands"] = found
    report["extra"]["demand_check"] = {"predicted_from_raw_ms": report["extra"].get("predicted_cpu_ms_per_request"), "measured_in_mix_ms": demands.measured_ms(steps)}
    if blueprint.worker.in_process and "worker" in found:
        session.notes.append(
            "demands.worker is the thumbnail job's CPU per upload; at this stage it runs inside the app process, so it is "
            "already part of demands.app.cpu_ms_per_request (do not add the two)"
        )


__all__ = ["BenchError", "Options", "run"]
