"""Baselines through the front door: what the stage's HAProxy configuration costs with no
application behind it, so that a request through the stage's public port can be read as a ratio
of the same trip with nothing to do at the end of it.

A second HAProxy is started, rendered by the stage's own engine unit
(``summit.engines.haproxy.HAProxy``, the same configuration: health checks, retries, headers,
request ids, its access log), under the control plane's ``Supervisor``, in front of:

- as many bare ASGI hello servers (``summit.bench.hello`` on granian, ``summit up``'s settings) as
  the stage runs app servers, each pinned like an app server; ``GET /`` reaches them;
- nginx where the stage's CDN would be (the ``cdn`` backend: ``/media/`` and ``/static/``),
  serving the very photo the app serves at the same path; ``GET /media/<photo>`` reaches it.

HAProxy and nginx float over the cores like the stage's engines do. Everything is on loopback,
on free ports, in a directory of the run; the supervisor stops it all before the stage is measured.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from summit.bench import baselines, procs, wrk

HELLO_PATH = "/"


@dataclass
class FrontDoor:
    """What the front-door baselines measured (None: not measured, with ``note`` saying why)."""

    hello: baselines.Measured = field(default_factory=lambda: baselines.Measured(None))
    photo: baselines.Measured = field(default_factory=lambda: baselines.Measured(None))
    servers: int = 0
    note: str = ""


def _engines() -> tuple[Any, Any, Any, Any]:
    from summit.engines import Command, Engine, Layout
    from summit.engines.layout import tcp_open

    return Command, Engine, Layout, tcp_open


def _answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def hello_engine(name: str, port: int, *, workers: int, core: int | None) -> Any:
    """A bare ASGI hello on granian as an engine of the control plane (kind ``app``), pinned to
    ``core`` like an app server; ready when ``/healthz`` answers (the hello answers any path)."""
    Command, Engine, _, tcp_open = _engines()

    class HelloServer(Engine):
        kind = "app"
        ready_timeout = 30.0

        def command(self, layout: Any) -> Any:
            argv = baselines.granian_argv("summit.bench.hello:app", self.port, workers=workers)
            return Command(procs.pinned(argv, core), stop_signal=signal.SIGINT, grace=5.0)

        def ready(self, layout: Any) -> bool:
            return tcp_open(self.host, self.port, timeout=0.2) and _answers(f"http://{self.address}/healthz")

    return HelloServer(name, "hello (front-door baseline)", port)


def nginx_engine(name: str, port: int, files: dict[str, bytes], home: Path) -> Any:
    """nginx serving ``files`` (URL path -> bytes) and ``/healthz`` (HAProxy's check of its CDN
    backend) from a root of its own; not pinned (in the place of the stage's CDN, an engine)."""
    Command, Engine, _, tcp_open = _engines()
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

    class Nginx(Engine):
        kind = "nginx"
        ready_timeout = 15.0

        def prepare(self, layout: Any) -> None:
            www = home / "www"
            www.mkdir(parents=True, exist_ok=True)
            for path, data in {**files, "/healthz": b"ok\n"}.items():
                target = www / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            for entry in [home, *home.rglob("*")]:
                entry.chmod(0o755 if entry.is_dir() else 0o644)
            user = "user root;" if os.geteuid() == 0 else ""
            (home / "nginx.conf").write_text(baselines.NGINX_CONF.format(dir=home, port=self.port, user=user))

        def command(self, layout: Any) -> Any:
            return Command([str(binary), "-p", str(home), "-e", str(home / "error.log"), "-c", str(home / "nginx.conf")], grace=5.0)

        def ready(self, layout: Any) -> bool:
            return tcp_open(self.host, self.port, timeout=0.2) and _answers(f"http://{self.address}/healthz")

    return Nginx(name, "nginx (front-door baseline, in the CDN's place)", port)


def measure(
    workdir: Path, *, servers: int, workers: int, check_interval_ms: int, photo: tuple[str, bytes] | None, seconds: float,
    server_core: int | None, client_core: int | None, watch: Any = None,
) -> FrontDoor:
    """The hello through a second HAProxy in front of ``servers`` hello servers, and ``photo``
    (its path under ``/media/``, its bytes) through the same HAProxy in front of nginx; one wrk run
    each (``-t1 -c64``, pinned to the client's core). Bounded: a minute to start, ``seconds`` per
    run, a stop with grace periods."""
    from summit.engines import EngineError, Layout, Supervisor
    from summit.engines.haproxy import HAProxy
    from summit.engines.layout import free_port

    out = FrontDoor(servers=servers)
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        out.note = "HAProxy is not installed: no front-door baselines"
        return out
    base = workdir / "front-door"
    base.mkdir(parents=True, exist_ok=True)
    hellos = [hello_engine(f"web-{n}", free_port(), workers=workers, core=server_core) for n in range(1, servers + 1)]
    nginx = None
    if photo is not None and (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        nginx = nginx_engine("nginx", free_port(), {photo[0]: photo[1]}, base / "nginx")
    elif photo is not None:
        out.note = "nginx is not installed: no photo baseline through the front door"
    proxy = HAProxy("haproxy", "127.0.0.1", free_port(), free_port(), hellos, cdn=nginx, check_interval_ms=check_interval_ms)
    supervisor = Supervisor(Layout(base), [*hellos, *([nginx] if nginx else []), proxy], on_event=lambda text: None)
    try:
        asyncio.run(asyncio.wait_for(supervisor.start(), timeout=90))
    except (EngineError, asyncio.TimeoutError, OSError) as error:
        asyncio.run(supervisor.stop())
        lines = [line for line in str(error).splitlines() if line.strip()]
        # the first line says what failed, the last ones (the engine's own log) why
        said = " / ".join(lines[:1] + lines[1:][-3:]) if lines else type(error).__name__
        out.note = f"the front-door baseline did not start: {said}"
        return out
    try:
        group = procs.Group(tuple(pid for u in supervisor.units if (pid := u.process and u.process.pid)))
        if watch:
            watch("front-door baseline", group)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and set(_states(proxy).values()) != {"UP"}:
            time.sleep(0.05)
        front = f"http://127.0.0.1:{proxy.port}"
        out.hello = _run(f"{front}{HELLO_PATH}", group, seconds=seconds, client_core=client_core)
        if nginx is not None and photo is not None:
            baselines.wait_http(f"{front}{photo[0]}", timeout=15)
            out.photo = _run(f"{front}{photo[0]}", group, seconds=seconds, client_core=client_core)
    except (RuntimeError, ValueError) as error:
        out.note = f"the front-door baseline failed: {error}"
    finally:
        asyncio.run(supervisor.stop())
    return out


def _states(proxy: Any) -> dict[str, str]:
    try:
        return proxy.server_states()
    except (OSError, ValueError):
        return {}


def _run(url: str, group: procs.Group, *, seconds: float, client_core: int | None) -> baselines.Measured:
    """One wrk run; the CPU per request of every process of the baseline (hellos, HAProxy, nginx)."""
    before = group.cpu_seconds()
    result = wrk.run(url, seconds=seconds, core=client_core)
    used = group.cpu_seconds() - before
    note = f"{url}: {result.errors} of {result.requests} requests failed" if result.errors else ""
    return baselines.Measured(result.good_rps, result.p50_ms, result.p99_ms, used * 1000 / result.requests if result.requests else None, note)


def stats_url(data_dir: Path) -> str | None:
    """The statistics address of the stage's HAProxy (``haproxy-stats`` in ``engines/ports.json``), if it has one."""
    import json

    try:
        port = int(json.loads((Path(data_dir) / "engines" / "ports.json").read_text())["haproxy-stats"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return f"http://127.0.0.1:{port}"


def in_flight_from_csv(text: str) -> int:
    """Requests HAProxy has in progress towards its backends (the ``scur`` of each backend's
    BACKEND row, added up), from its ``/stats;csv``."""
    import csv
    import io

    total = 0
    for row in csv.DictReader(io.StringIO(text.lstrip("# "))):
        if row.get("svname") == "BACKEND":
            try:
                total += int(row.get("scur") or 0)
            except ValueError:
                pass
    return total


def in_flight(url: str) -> int | None:
    """Requests the HAProxy whose statistics are at ``url`` has in progress now (None: no answer)."""
    try:
        with urllib.request.urlopen(url + "/stats;csv", timeout=2) as response:  # noqa: S310 (loopback)
            return in_flight_from_csv(response.read().decode())
    except (urllib.error.URLError, OSError, ValueError):
        return None
