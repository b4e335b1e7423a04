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

from summit.bench import baselines, frontdoor, procs
from summit.bench.net import free_port, tls_for, trust, verify_for
from summit.bench.options import LONG_TOKENS, BenchError, Options
from summit.bench.session import Session


@dataclass
class Stage:
    url: str  # where the load goes: the public URL (https://127.0.0.1:<https_port> when the front door speaks TLS)
    blueprint: Any
    port: int
    https_port: int | None = None  # HTTPS at the front door (engines.haproxy.tls), a free port of the run's own
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
        ca = Path(o.data_dir).resolve() / "certs" / "ca.pem"  # a stage whose front door speaks HTTPS: its own CA
        if (o.url or "").startswith("https://") and ca.is_file():
            trust(o.url or "", ca)
    blueprint = load_blueprint(o.config, overrides=overrides)
    running = running_stage(o.url or "")
    if running != blueprint.stage:
        blueprint = load_blueprint(o.config, overrides={**overrides, "stage": running})
    return blueprint


def running_stage(url: str) -> str:
    import httpx

    try:
        health = httpx.get(url.rstrip("/") + "/healthz", timeout=5, verify=verify_for(url))
    except httpx.HTTPError as error:
        raise BenchError(f"{url}/healthz: {error}: is the stage running?") from None
    if not health.is_success:
        raise BenchError(f"{url}/healthz answered {health.status_code}: is the stage running?")
    return str(health.json().get("stage", ""))


def start(session: Session, blueprint: Any, env_extra: dict[str, str], port: int | None = None,
          https_port: int | None = None) -> tuple[Stage, procs.Started]:
    """``summit up`` on a free loopback port (or ``port``; and ``https_port`` for HTTPS when the
    front door speaks TLS), pinned to the server's core; the seconds from its start to the first
    200 on ``/healthz`` (over plain HTTP: the front door lets it through) go in ``startup``."""
    port = port or free_port()
    if blueprint.tls:
        while https_port is None or https_port == port:
            https_port = free_port()
    engines = blueprint.engines.any()
    if engines:
        engines_can_enter(session.workdir)
    summit = Path(sys.executable).with_name("summit")
    argv = [str(summit) if summit.exists() else "summit", "up", "--port", str(port), "--data-dir", str(blueprint.data_dir)]
    if https_port is not None:
        argv += ["--https-port", str(https_port)]
    if session.o.stage:
        argv += ["--stage", session.o.stage]
    config = config_file(session.o)
    if config is not None:
        argv += ["--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMMIT_")}
    env.update(LONG_TOKENS)
    env.update(shield_exemption(blueprint))
    env.update(env_extra)
    # stage 1 is one process, the web process: pinned from the start. With engines, the supervisor
    # and its engines float over every core; the app servers alone are pinned once they run
    core = None if engines else session.server_core
    proc = session.track(
        procs.start("summit up", procs.pinned(argv, core), env=env, log_path=session.workdir / "server.log", cwd=session.workdir)
    )
    # a stage with engines stops them all before it exits: PostgreSQL's fast shutdown, the app's 20 s grace
    proc.grace = 90.0 if engines else 15.0
    seconds = baselines.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=180 if engines else 90, process=proc, interval=0.01)
    session.server_pid = proc.pid
    if (note := SHIELD_NOTE.format(address=LOAD_GENERATOR)) not in session.notes:  # started twice: seeding, then measured
        session.notes.append(note)
    session.parts = {}
    session.app_servers = []
    session.haproxy_stats = None
    if engines:
        record = wait_ready(blueprint.data_dir, proc)
        session.parts = parts_of(record, proc.pid)
        session.app_servers = app_server_urls(record)
        session.haproxy_stats = frontdoor.stats_url(blueprint.data_dir) if "proxy" in session.parts else None
        if session.server_core is not None and "app" in session.parts:
            for pid in session.parts["app"].pids:
                procs.pin_tree(pid, session.server_core)
    url = f"http://127.0.0.1:{port}"
    if https_port is not None:  # the load goes over HTTPS, as a user's would, verified against the stage's own CA
        url = f"https://127.0.0.1:{https_port}"
        ca = Path(blueprint.data_dir) / "certs" / "ca.pem"
        trust(url, ca)
        baselines.wait_http(url + "/healthz", timeout=30, process=proc, verify=tls_for(url))
        if (note := TLS_NOTE.format(port=https_port)) not in session.notes:
            session.notes.append(note)
    return Stage(url, blueprint, port, https_port, {"first_start_s": seconds}), proc


TLS_NOTE = ("the front door speaks HTTPS (engines.haproxy.tls): every request of the run goes to https://127.0.0.1:{port} "
            "(TLS 1.3 from HAProxy, a keep-alive connection per client connection); the Python client verifies the stage's own "
            "CA (<data_dir>/certs/ca.pem), wrk does not verify certificates; the time to the first /healthz is over plain HTTP")


# the bench's load generators (wrk, the Python client) reach the stage from this address
LOAD_GENERATOR = "127.0.0.1"


def shield_exemption(blueprint: Any) -> dict[str, str]:
    """The blueprint override that exempts the load generators from the stage's rate limits (the
    edge's and the app's, ``shield.exempt``): the bench measures capacity, not the limits."""
    exempt = [*blueprint.shield.exempt, f"{LOAD_GENERATOR}/32"]
    return {"SUMMIT_SHIELD__EXEMPT": ",".join(dict.fromkeys(exempt))}


SHIELD_NOTE = ("the stage started here exempts the load generators' address ({address}) from its rate limits, at the edge and "
               "in the app (shield.exempt, docs/shield.md): requests are measured, never answered 429 by a limit")


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
PART_OF_KIND = {
    "app": "app", "postgres": "database", "pgbouncer": "database", "redis": "cache", "seaweedfs": "objects",
    "haproxy": "proxy", "varnish": "cdn", "waf": "waf",
}
# what each part is, for the notes
PART_NAMES = {
    "app": "the app servers (summit serve: granian's parent and worker, the thumbnail worker inside)",
    "database": "the database (PostgreSQL{servers} with its backends, a PgBouncer in front of each server; memory as PSS)",
    "cache": "Redis",
    "objects": "SeaweedFS (the S3 store)",
    "proxy": "HAProxy (the front door)",
    "cdn": "Varnish (the CDN's edge and regional tiers)",
    "waf": "the WAF tier (nginx + ModSecurity + OWASP CRS, each process)",
    "other engines": "other engines",
    "supervisor": "the supervisor (summit up) alone",
}


def parts_of(record: dict[str, Any] | None, root: int) -> dict[str, procs.Group]:
    """The parts of a stage with engines, from its state record (``summit.json``), by the kind of
    each process: the app's process trees (``summit serve``: granian's parent and its worker;
    every app server when there are several), the database processes (every PostgreSQL server
    with its backends, every PgBouncer; memory as PSS, since the backends share PostgreSQL's
    buffers), Redis, SeaweedFS, HAProxy, Varnish (both tiers) where the stage runs them, and the
    supervisor alone. {} if the record lists no app."""
    processes = [p for p in (record or {}).get("processes") or [] if isinstance(p, dict) and p.get("pid")]
    pids: dict[str, list[int]] = {}
    for process in processes:
        pids.setdefault(PART_OF_KIND.get(str(process.get("kind")), "other engines"), []).append(int(process["pid"]))
    if not pids.get("app"):
        return {}
    parts = {name: procs.Group(tuple(found), proportional=name == "database") for name, found in pids.items()}
    order = [*PART_OF_KIND.values(), "other engines"]
    parts = {name: parts[name] for name in sorted(parts, key=order.index)}
    parts["supervisor"] = procs.Group((root,), recursive=False)
    return parts


def app_server_urls(record: dict[str, Any] | None) -> list[str]:
    """Each app server's own URL (``http://<address>``), from the state record: where its
    ``/metrics`` is scraped. Behind HAProxy they are ``web-1``, ``web-2`` ... on loopback ports of
    their own; at 1+ the one ``app`` on the public port."""
    urls = []
    for process in (record or {}).get("processes") or []:
        if isinstance(process, dict) and process.get("kind") == "app" and process.get("address"):
            urls.append(f"http://{process['address']}")
    return urls


SERVER_CPU_NOTE = (
    "the server is the stage's whole process tree: {parts}; its CPU (steps' server_cpu, raw cpu_ms_per_request, the "
    "probes) is all of them. Apart: steps[].server_cpu_seconds_by_part, raw[].cpu_ms_by_part, extra.stage.rss_at_rest_by_part, "
    "demands.app (the app's trees) and demands.database (PostgreSQL + PgBouncer)"
)
PINNING_NOTE = (
    "pinning at a stage with engines: the app servers ({apps}) pinned to CPU {server}, the load generators (wrk, the Python "
    "client) to CPU {client}; the supervisor and the engines ({engines}) float over every core, so they share the client's core "
    "too (their CPU is measured wherever it ran). The front-door baselines are pinned the same way: their hello servers like "
    "the app servers, their HAProxy and nginx float like the engines"
)


def server_note(blueprint: Any, parts: dict[str, procs.Group] | None = None) -> str:
    """What the server's CPU includes: its parts (by default, those the blueprint's stage runs)."""
    replicas = blueprint.engines.postgres.replicas
    servers = f": a primary and {replicas} streaming replicas," if replicas else ""
    names = list(parts) if parts else default_parts(blueprint)
    return SERVER_CPU_NOTE.format(parts="; ".join(PART_NAMES.get(n, n).format(servers=servers) for n in names))


def default_parts(blueprint: Any) -> list[str]:
    """The parts the blueprint's stage runs (before it runs)."""
    e = blueprint.engines
    found = ["app"]
    found += ["database"] if e.postgres.enabled or e.pgbouncer.enabled else []
    found += ["cache"] if e.redis.enabled else []
    found += ["objects"] if e.seaweedfs.enabled else []
    found += ["proxy"] if e.haproxy.enabled else []
    found += ["cdn"] if e.varnish.enabled else []
    found += ["waf"] if e.waf.enabled and e.haproxy.enabled else []
    return [*found, "supervisor"]


def pinning_note(session: Session, blueprint: Any) -> str | None:
    """What ran where, at a stage with engines started here (None: nothing pinned, or stage 1)."""
    if session.server_core is None or not session.o.start or not blueprint.engines.any():
        return None
    engines = [n for n in default_parts(blueprint) if n not in ("app", "supervisor")]
    apps = ", ".join(f"web-{n}" for n in range(1, blueprint.server.processes + 1)) if blueprint.engines.haproxy.enabled else "app"
    return PINNING_NOTE.format(apps=apps, server=session.server_core, client=session.client_core, engines=", ".join(engines) or "none")


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
    again, proc = start(session, stage.blueprint, {}, port=stage.port, https_port=stage.https_port)
    stage.startup["restart_s"] = again.startup["first_start_s"]
    return proc


def attach(session: Session, blueprint: Any, url: str) -> Stage:
    """A stage started elsewhere: find its server process by its listening port (needs root);
    with engines, its supervisor and their parts from the state file of its data directory."""
    url = url.rstrip("/")
    port = urlsplit(url).port or (443 if url.startswith("https://") else 80)
    session.server_pid = procs.server_root(port)
    if session.server_pid is not None and blueprint.engines.any():
        from summit.engines import state

        record = state.running(Path(blueprint.data_dir))
        parts = parts_of(record, int(record["pid"])) if record else {}
        if parts and session.server_pid in {p.pid for p in parts["app"].processes()} | {p.pid for p in parts.get("proxy", parts["app"]).processes()}:
            session.server_pid, session.parts = int(record["pid"]), parts  # type: ignore[index]
            session.app_servers = app_server_urls(record)
            session.haproxy_stats = frontdoor.stats_url(blueprint.data_dir) if "proxy" in parts else None
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
