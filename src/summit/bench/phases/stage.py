"""The stage under test: its blueprint, started here (``--start``) or found at ``--url``, how long
``summit up`` takes to answer, and what it holds in memory at rest."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from summit.bench import baselines, procs
from summit.bench.net import free_port
from summit.bench.options import LONG_TOKENS, BenchError, Options
from summit.bench.session import Session


@dataclass
class Stage:
    url: str
    blueprint: Any
    port: int
    startup: dict[str, float | None] = field(default_factory=dict)  # "first_start_s", "restart_s"
    media: Any = None  # the MediaPhoto posted for the raw GET /media/<photo> run, once seeded


def config_file(o: Options) -> Path | None:
    """The blueprint file in use (``--config``, ``$SUMMIT_CONFIG``, else ``./summit.toml`` if it
    exists), as an absolute path: a server started here runs elsewhere and must be told."""
    from summit.blueprint.model import DEFAULT_FILE

    found = o.config or os.environ.get("SUMMIT_CONFIG") or (DEFAULT_FILE if Path(DEFAULT_FILE).is_file() else None)
    return Path(found).resolve() if found else None


def blueprint_for(o: Options, workdir: Path) -> Any:
    """The blueprint of the stage to measure, with the data directory the stage uses: with
    ``--start``, what the server started here sees (the presets and the blueprint file, no
    ``SUMMIT_*`` variable: they are not passed on); with ``--url``, the running stage's (its
    ``/healthz`` names the stage) and ``--data-dir`` if given."""
    from summit.blueprint import load_blueprint

    overrides: dict[str, Any] = {"stage": o.stage} if o.stage else {}
    if o.start:
        return load_blueprint(config_file(o), environ={}, overrides={**overrides, "data_dir": str(workdir / "data")})
    if o.data_dir is not None:
        overrides["data_dir"] = str(Path(o.data_dir).resolve())
    blueprint = load_blueprint(o.config, overrides=overrides)
    running = running_stage(o.url or "")
    if running != blueprint.stage:
        blueprint = load_blueprint(o.config, overrides={**overrides, "stage": running})
    return blueprint


def running_stage(url: str) -> str:
    import httpx

    try:
        health = httpx.get(url.rstrip("/") + "/healthz", timeout=5)
    except httpx.HTTPError as error:
        raise BenchError(f"{url}/healthz: {error}: is the stage running?") from None
    if not health.is_success:
        raise BenchError(f"{url}/healthz answered {health.status_code}: is the stage running?")
    return str(health.json().get("stage", ""))


def start(session: Session, blueprint: Any, env_extra: dict[str, str], port: int | None = None) -> tuple[Stage, procs.Started]:
    """``summit up`` on a free loopback port (or ``port``), pinned to the server's core; the
    seconds from its start to the first 200 on ``/healthz`` go in ``startup``."""
    port = port or free_port()
    engines = blueprint.engines.any()
    if engines:
        engines_can_enter(session.workdir)
    summit = Path(sys.executable).with_name("summit")
    argv = [str(summit) if summit.exists() else "summit", "up", "--port", str(port), "--data-dir", str(blueprint.data_dir)]
    if session.o.stage:
        argv += ["--stage", session.o.stage]
    config = config_file(session.o)
    if config is not None:
        argv += ["--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMMIT_")}
    env.update(LONG_TOKENS)
    env.update(env_extra)
    proc = session.track(
        procs.start("summit up", procs.pinned(argv, session.server_core), env=env, log_path=session.workdir / "server.log", cwd=session.workdir)
    )
    # a stage with engines stops them all before it exits: PostgreSQL's fast shutdown, the app's 20 s grace
    proc.grace = 90.0 if engines else 15.0
    seconds = baselines.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=180 if engines else 90, process=proc, interval=0.01)
    session.server_pid = proc.pid
    session.parts = {}
    if engines:
        record = wait_ready(blueprint.data_dir, proc)
        session.parts = parts_of(record, proc.pid)
    return Stage(f"http://127.0.0.1:{port}", blueprint, port, {"first_start_s": seconds}), proc


def wait_ready(data_dir: Path, proc: procs.Started, *, timeout: float = 30.0) -> dict[str, Any]:
    """The state record of the stage ``proc`` supervises, once it says every process is ready
    (the app answers a moment before the supervisor has seen it)."""
    from summit.engines import state

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = state.read(Path(data_dir))
        if record and record.get("pid") == proc.pid and record.get("ready"):
            return record
        if not proc.alive():
            break
        time.sleep(0.05)
    raise BenchError(f"the stage's supervisor (pid {proc.pid}) did not say it was ready within {timeout:g} s (see {proc.log_path})")


# the part of the server each kind of engine process belongs to (an unknown kind: "other engines")
PART_OF_KIND = {"app": "app", "postgres": "database", "pgbouncer": "database", "haproxy": "proxy"}


def parts_of(record: dict[str, Any] | None, root: int) -> dict[str, procs.Group]:
    """The parts of a stage with engines, from its state record (``summit.json``): the app's
    process trees (``summit serve``: granian's parent and its worker; every app server when there
    are several), the database processes (every PostgreSQL server with its backends, every
    PgBouncer; memory as PSS, since the backends share PostgreSQL's buffers), the load balancer
    when there is one, and the supervisor alone. {} if the record lists no app."""
    processes = [p for p in (record or {}).get("processes") or [] if isinstance(p, dict) and p.get("pid")]
    pids: dict[str, list[int]] = {}
    for process in processes:
        pids.setdefault(PART_OF_KIND.get(str(process.get("kind")), "other engines"), []).append(int(process["pid"]))
    if not pids.get("app"):
        return {}
    parts = {name: procs.Group(tuple(found), proportional=name == "database") for name, found in pids.items()}
    parts = {"app": parts.pop("app"), **parts}
    parts["supervisor"] = procs.Group((root,), recursive=False)
    return parts


SERVER_CPU_NOTE = (
    "the server is the stage's whole process tree, on its one core: the supervisor (summit up), the app (granian's parent "
    "and its worker, the thumbnail worker inside) and the database processes (PostgreSQL{servers} and its backends, a "
    "PgBouncer in front of each server); its CPU (steps' server_cpu, raw cpu_ms_per_request, the probes) is all of them. "
    "Apart: steps[].server_cpu_seconds_by_part, raw[].cpu_ms_by_part, demands.app (the app's tree) and demands.database "
    "(PostgreSQL + PgBouncer); the database's memory is PSS (shared buffers counted once)"
)


def server_note(blueprint: Any) -> str:
    replicas = blueprint.engines.postgres.replicas
    return SERVER_CPU_NOTE.format(servers=f": a primary and {replicas} streaming replicas," if replicas else "")


def engines_can_enter(workdir: Path) -> None:
    """Let the engines reach the stage's data under the bench's private temporary directory: run
    as root, PostgreSQL and PgBouncer run as ``postgres``, which must be able to pass through it
    (search only: the directory's names stay unlisted to others)."""
    mode = workdir.stat().st_mode & 0o777
    if mode & 0o011 != 0o011:
        workdir.chmod(mode | 0o011)


def restart(session: Session, stage: Stage, seeding: procs.Started) -> procs.Started:
    """Stop the seeding server, start the stage again with the blueprint's own settings."""
    session.stop(seeding)
    again, proc = start(session, stage.blueprint, {}, port=stage.port)
    stage.startup["restart_s"] = again.startup["first_start_s"]
    return proc


def attach(session: Session, blueprint: Any, url: str) -> Stage:
    """A stage started elsewhere: find its server process by its listening port (needs root);
    with engines, its supervisor and their parts from the state file of its data directory."""
    url = url.rstrip("/")
    port = urlsplit(url).port or 80
    session.server_pid = procs.server_root(port)
    if session.server_pid is not None and blueprint.engines.any():
        from summit.engines import state

        record = state.running(Path(blueprint.data_dir))
        parts = parts_of(record, int(record["pid"])) if record else {}
        if parts and session.server_pid in {p.pid for p in parts["app"].processes()}:
            session.server_pid, session.parts = int(record["pid"]), parts  # type: ignore[index]
        else:
            session.notes.append(
                f"the stage's state file ({blueprint.data_dir}/summit.json) does not name this server's processes (give its "
                "data directory with -d): server CPU is the app's only, the database processes are not measured"
            )
    if session.server_pid is None:
        session.notes.append("could not see the server's process (not root?): server CPU and demands are not measured")
    session.notes.append("--url: the server was started elsewhere and is not pinned by the bench; only the client is")
    return Stage(url, blueprint, port, {"first_start_s": None, "restart_s": None})


def at_rest(session: Session) -> dict[str, Any]:
    """Wait until the server is idle; its idle CPU (share of a core) and resident memory then:
    the app's (its process tree, as at stage 1), and with engines each part's beside it."""
    session.wait_idle(timeout=60)
    idle_share = 0.0
    if session.server_pid:
        c0 = session.server_cpu()
        time.sleep(2)
        idle_share = (session.server_cpu() - c0) / 2
    if not session.parts:
        return {"idle_server_cpu": idle_share, "rss_at_rest_bytes": session.server_rss()}
    memory = session.part_memory()
    return {"idle_server_cpu": idle_share, "rss_at_rest_bytes": memory.get("app"), "rss_at_rest_by_part": memory}
