"""Baselines measured in the same run as the app, pinned the same way, so that every figure can be
read as a ratio of what the machine and the server do with no application at all:

- a bare ASGI hello (``summit.bench.hello``) served by granian with ``summit up``'s settings;
- nginx serving a 1 KiB static file, and the photo the app serves (a temporary config on a free
  loopback port, no daemon);
- ``redis-benchmark`` and ``pgbench -S``, only against engines that the stage runs (pgbench with
  one client, through the primary's PgBouncer as the app's role: the app's own path).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from summit.bench import procs, wrk
from summit.bench.net import free_port


def wait_http(url: str, *, timeout: float = 30.0, process: procs.Started | None = None, interval: float = 0.1,
              verify: ssl.SSLContext | bool = True) -> float:
    """Until ``url`` answers 2xx (bounded by ``timeout``), polling every ``interval`` seconds;
    raise if the process died first. Returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            tail = ""
            if process.log_path and process.log_path.exists():
                tail = "\n".join(process.log_path.read_text(errors="replace").splitlines()[-8:])
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}" + (f"; the end of its log:\n{tail}" if tail else ""))
        try:
            if httpx.get(url, timeout=1, verify=verify).is_success:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def granian_argv(target: str, port: int, *, factory: bool = False, workers: int = 1) -> list[str]:
    """granian with the settings ``summit up`` uses (ASGI, one worker by default, no access log)."""
    granian = Path(sys.executable).with_name("granian")
    argv = [str(granian) if granian.exists() else "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log"]
    if factory:
        argv.append("--factory")
    return [*argv, target]


@dataclass
class Measured:
    rps: float | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_ms_per_request: float | None = None
    note: str = ""


def measure_wrk(url: str, pid: int | None, *, seconds: float, client_core: int | None, **kwargs) -> tuple[wrk.WrkResult, float | None]:  # noqa: ANN003
    """Run wrk against url; return its result and the server tree's CPU ms per request."""
    tree = procs.tree(pid) if pid else []
    before = procs.tree_cpu_seconds(tree)
    result = wrk.run(url, seconds=seconds, core=client_core, **kwargs)
    used = procs.tree_cpu_seconds(tree) - before
    per_request = used * 1000 / result.requests if tree and result.requests else None
    return result, per_request


Watch = Callable[[str, int], None]


def asgi_hello(workdir: Path, *, seconds: float, server_core: int | None, client_core: int | None, watch: Watch | None = None) -> Measured:
    port = free_port()
    proc = procs.start("asgi-hello", procs.pinned(granian_argv("summit.bench.hello:app", port), server_core), log_path=workdir / "hello.log")
    if watch:
        watch("asgi hello", proc.pid)
    try:
        wait_http(f"http://127.0.0.1:{port}/", process=proc)
        result, cpu = measure_wrk(f"http://127.0.0.1:{port}/", proc.pid, seconds=seconds, client_core=client_core)
        return Measured(result.good_rps, result.p50_ms, result.p99_ms, cpu)
    finally:
        proc.stop()


NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp_body;
  proxy_temp_path {dir}/tmp_proxy;
  fastcgi_temp_path {dir}/tmp_fastcgi;
  uwsgi_temp_path {dir}/tmp_uwsgi;
  scgi_temp_path {dir}/tmp_scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    root {dir}/www;
    location / {{ }}
  }}
}}
"""


def nginx_files(
    workdir: Path, files: dict[str, bytes], *, seconds: float, server_core: int | None, client_core: int | None, watch: Watch | None = None
) -> dict[str, Measured]:
    """nginx serving each of ``files`` (name -> bytes) in turn from one temporary root, one wrk
    run per file: the 1 KiB static baseline, and the very photo the app serves."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if binary is None:
        missing = Measured(None, note="nginx is not installed (scripts/install.sh --bench installs it): no static baseline")
        return dict.fromkeys(files, missing)
    base = Path(tempfile.mkdtemp(prefix="nginx-", dir=workdir))
    base.chmod(0o755)
    (base / "www").mkdir()
    (base / "www").chmod(0o755)
    for name, data in files.items():
        (base / "www" / name).write_bytes(data)
        (base / "www" / name).chmod(0o644)
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    (base / "nginx.conf").write_text(NGINX_CONF.format(dir=base, port=port, user=user))
    argv = procs.pinned([binary, "-p", str(base), "-e", str(base / "error.log"), "-c", str(base / "nginx.conf")], server_core)
    proc = procs.start("nginx", argv, log_path=workdir / "nginx.log")
    if watch:
        watch("nginx", proc.pid)
    try:
        out = {}
        for name in files:
            url = f"http://127.0.0.1:{port}/{name}"
            wait_http(url, process=proc)
            result, cpu = measure_wrk(url, proc.pid, seconds=seconds, client_core=client_core)
            out[name] = Measured(result.good_rps, result.p50_ms, result.p99_ms, cpu)
        return out
    finally:
        proc.stop(grace=5, sig=15)


def redis_benchmark(url: str, *, requests: int = 100_000, client_core: int | None = None) -> Measured:
    """GET and SET per second (unpipelined, 50 clients) against the stage's Redis."""
    if shutil.which("redis-benchmark") is None:
        return Measured(None, note="redis-benchmark is not installed (Debian redis-tools)")
    parts = urlsplit(url)
    argv = ["redis-benchmark", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379), "-t", "get,set", "-n", str(requests), "-q", "--csv"]
    if parts.password:
        argv += ["-a", unquote(parts.password)]
    done = subprocess.run(procs.pinned(argv, client_core), capture_output=True, text=True, timeout=120, check=False)
    rates = []
    for line in done.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) >= 2 and cells[0] in ("GET", "SET"):
            try:
                rates.append(float(cells[1]))
            except ValueError:
                pass
    if not rates:
        return Measured(None, note=f"redis-benchmark gave no figure: {done.stderr.strip()[-200:]}")
    return Measured(sum(rates) / len(rates))


@dataclass(frozen=True)
class PgTarget:
    """Where ``pgbench -S`` runs at a stage whose PostgreSQL summit runs: through ``host:port``
    (the primary's PgBouncer, the app's own path) as ``user`` (the app's role), its password from
    the stage's ``passfile``; the scratch database is made by the superuser straight on the
    primary (``admin_port``)."""

    host: str
    port: int
    user: str
    passfile: Path
    admin_port: int
    admin_password: str
    database: str = "summit_bench"


def pg_target(url: str, data_dir: Path) -> PgTarget | str:
    """The pgbench target of the stage whose sql port is ``url`` (as the stage publishes it:
    ``postgresql://summit@127.0.0.1:<pgbouncer>/summit?passfile=...``) and whose data directory
    is ``data_dir``, or why there is none (a sentence for the report's notes)."""
    from summit.engines.layout import Layout
    from summit.engines.postgres import SUPERUSER

    parts = urlsplit(url)
    passfile = dict(parse_qsl(parts.query)).get("passfile")
    if parts.password or not passfile:
        return "pgbench -S not measured: the sql port's PostgreSQL is not one this stage runs (its URL names no passfile)"
    layout = Layout(Path(data_dir))
    ports = layout.data_dir / "engines" / "ports.json"
    try:
        admin_port = int(json.loads(ports.read_text())["postgres-primary"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"pgbench -S not measured: {ports} names no postgres-primary (is {data_dir} the stage's data directory?)"
    secret = layout.secrets_dir / f"postgres-{SUPERUSER}"
    try:
        password = secret.read_text().strip()
    except OSError as error:
        return f"pgbench -S not measured: the superuser's password ({secret}) cannot be read: {error.strerror}"
    return PgTarget(parts.hostname or "127.0.0.1", parts.port or 5432, unquote(parts.username or ""), Path(passfile), admin_port, password)


def pgbench_binary() -> str | None:
    """pgbench of the PostgreSQL the stages run (Debian keeps it off PATH), else the one on PATH."""
    from summit.engines.layout import EngineError
    from summit.engines.postgres import bin_dir

    try:
        found = bin_dir() / "pgbench"
        if found.exists():
            return str(found)
    except EngineError:
        pass
    return shutil.which("pgbench")


def pgbench_args(target: PgTarget, *, seconds: float) -> list[str]:
    """``pgbench -S`` with one client for ``seconds`` through the target's PgBouncer, no vacuum
    first (the scratch database was just made and vacuumed by ``pgbench -i``)."""
    return ["-S", "-n", "-c", "1", "-j", "1", "-T", str(max(1, round(seconds))), "-h", target.host, "-p", str(target.port), "-U", target.user, target.database]


def parse_pgbench(out: str) -> tuple[float | None, int | None]:
    """(tps, transactions) from pgbench's report."""
    tps = transactions = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("tps =") and tps is None:
            try:
                tps = float(line.split("=")[1].split()[0])
            except (IndexError, ValueError):
                pass
        elif line.startswith("number of transactions actually processed:"):
            try:
                transactions = int(line.split(":")[1].split("/")[0].strip())
            except (IndexError, ValueError):
                pass
    return tps, transactions


def pgbench_select(target: PgTarget, *, seconds: float = 10, client_core: int | None = None, server_cpu: Callable[[], float] | None = None) -> Measured:
    """``pgbench -S`` (select-only: one primary-key SELECT per transaction), one client, pinned to
    the client's core, in a scratch database made for it (owned by the app's role, initialised at
    scale 1 straight on the primary) and dropped afterwards: the app's database is not touched.
    ``server_cpu`` (CPU seconds of the database processes) gives the CPU per transaction."""
    import psycopg
    from psycopg import sql

    from summit.engines.postgres import SUPERUSER

    binary = pgbench_binary()
    if binary is None:
        return Measured(None, note="pgbench is not installed (Debian postgresql-contrib): pgbench -S not measured")
    admin = {"host": target.host, "port": target.admin_port, "user": SUPERUSER, "password": target.admin_password, "dbname": "postgres", "connect_timeout": 5}
    scratch = sql.Identifier(target.database)

    def drop(conn: psycopg.Connection) -> None:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(scratch))

    try:
        with psycopg.connect(**admin, autocommit=True) as conn:
            drop(conn)  # one left by an interrupted run
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(scratch, sql.Identifier(target.user)))
    except psycopg.Error as error:
        return Measured(None, note=f"pgbench -S not measured: the scratch database could not be made: {str(error).strip()[:200]}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSFILE=str(target.passfile), PGCONNECT_TIMEOUT="5", PGAPPNAME="summit-bench")
    try:
        init = subprocess.run(  # noqa: S603
            [binary, "-i", "-s", "1", "-q", "-h", target.host, "-p", str(target.admin_port), "-U", target.user, target.database],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        if init.returncode != 0:
            return Measured(None, note=f"pgbench -i failed: {init.stderr.strip()[-200:]}")
        before = server_cpu() if server_cpu else 0.0
        done = subprocess.run(  # noqa: S603
            procs.pinned([binary, *pgbench_args(target, seconds=seconds)], client_core),
            env=env, capture_output=True, text=True, timeout=seconds + 60, check=False,
        )
        used = server_cpu() - before if server_cpu else None
    except subprocess.TimeoutExpired as error:
        return Measured(None, note=f"pgbench did not finish within {error.timeout:g} s: pgbench -S not measured")
    finally:
        try:
            with psycopg.connect(**admin, autocommit=True) as conn:
                drop(conn)
        except psycopg.Error:
            pass
    tps, transactions = parse_pgbench(done.stdout)
    if tps is None:
        return Measured(None, note=f"pgbench -S gave no figure: {done.stderr.strip()[-200:]}")
    return Measured(tps, cpu_ms_per_request=used * 1000 / transactions if used is not None and transactions else None)
