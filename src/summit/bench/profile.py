"""``summit bench profile <route>``: where one route's time goes under load, in minutes.

Start the stage here (or find it with ``--url``), seed it lightly, then send one route's request
from a closed loop of connections (bounded in count and time) while py-spy samples the server's
process tree (``py-spy record --pid <server> --subprocesses``: granian runs the app in a child
process). The samples become a flame graph beside the bench reports
(``bench/results/profile-<route>-<time>.svg``, and the collapsed stacks as ``.txt``), and the
functions with the most time of their own are printed.

py-spy reads a running process from outside (it needs root or ptrace permission); pyinstrument
cannot attach to one, and ``summit up`` has no in-process profiler hook, so py-spy is the one
profiler here: when it cannot attach, the error says what to do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from summit.bench import flame, mailcodes
from summit.bench.http import HttpClient
from summit.bench.net import check_loopback_url, tls_for
from summit.bench.options import BenchError, Options
from summit.bench.phases import raw, seeding, stage
from summit.bench.session import Session

ROUTES = tuple(raw.BY_KEY)


@dataclass
class ProfileOptions:
    route: str
    url: str | None = None
    data_dir: Path | None = None
    stage: str | None = None
    config: Path | None = None
    seconds: float = 10.0
    max_requests: int = 20_000
    connections: int = 16
    users: int = 4
    posts: int = 8
    rate: int = 250  # py-spy samples per second
    top: int = 12
    out: Path = Path("bench/results")
    keep: bool = False


@dataclass
class Profiled:
    svg_path: Path
    stacks_path: Path
    profiler: str
    requests: int
    errors: int
    seconds: float
    samples: int
    top: list[tuple[str, int, float]] = field(default_factory=list)


def check_route(route: str) -> raw.Endpoint:
    endpoint = raw.BY_KEY.get(route)
    if endpoint is None:
        raise BenchError(f"unknown route {route!r}; the routes are: {', '.join(ROUTES)}")
    return endpoint


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def closed_loop(client: HttpClient, request: tuple[str, str, dict[str, str], bytes], *, connections: int, max_requests: int, seconds: float) -> tuple[int, int]:
    """``connections`` loops sending ``request`` back to back until ``max_requests`` were sent
    or ``seconds`` passed; (requests answered, errors: failures or not 2xx/3xx)."""
    method, path, headers, body = request
    deadline = time.monotonic() + seconds
    counts = {"sent": 0, "done": 0, "errors": 0}

    async def loop() -> None:
        while counts["sent"] < max_requests and time.monotonic() < deadline:
            counts["sent"] += 1
            try:
                response = await client.request(method, path, headers=headers, body=body)
                counts["errors"] += not 200 <= response.status < 400
            except Exception:  # noqa: BLE001  (a failed request is counted, the loop goes on)
                counts["errors"] += 1
            counts["done"] += 1

    await asyncio.gather(*(loop() for _ in range(max(1, connections))))
    return counts["done"], counts["errors"]


def _start_sampler(binary: str, pid: int, out: Path, *, seconds: float, rate: int, log: Path) -> subprocess.Popen:
    argv = [binary, "record", "--format", "raw", "--output", str(out), "--pid", str(pid), "--subprocesses", "--nonblocking",
            "--rate", str(rate), "--duration", str(int(seconds) + 30)]
    with open(log, "wb") as sink:
        sampler = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sampler.poll() is None and b"Sampling" not in log.read_bytes():
        time.sleep(0.05)
    if sampler.poll() is not None:
        raise BenchError(
            f"py-spy could not attach to the server (pid {pid}): {log.read_text(errors='replace').strip()[-300:]}\n"
            "py-spy needs root or ptrace permission: run as root, or `sysctl kernel.yama.ptrace_scope=0`"
        )
    return sampler


def _stop_sampler(sampler: subprocess.Popen, out: Path, log: Path) -> None:
    """Ctrl-C to py-spy: it stops sampling and writes what it has."""
    if sampler.poll() is None:
        sampler.send_signal(signal.SIGINT)
    try:
        sampler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        sampler.kill()
        sampler.wait(timeout=10)
    if not out.exists():
        raise BenchError(f"py-spy wrote no profile: {log.read_text(errors='replace').strip()[-300:]}")


def _target(session: Session, o: ProfileOptions, blueprint: Any, reader: mailcodes.CodeReader) -> tuple[str, tuple[str, str, dict[str, str], bytes]]:
    """The stage's URL and the request to send, after a light seeding."""
    if o.url:
        target = stage.attach(session, blueprint, o.url)
        if session.server_pid is None:
            raise BenchError(f"cannot see the process of the server at {o.url} (run as root), or profile a stage started here (no --url)")
    else:
        session.phase(f"starting stage {blueprint.stage}")
        target, _ = stage.start(session, blueprint, {})
    session.pin_client()
    session.phase(f"seeding {o.users} users and {o.posts} posts")
    data = seeding.seed_stage(session, target.url, reader, users=o.users, posts=o.posts)
    endpoint = check_route(o.route)
    media = seeding.media_photo(session, target.url, data, Options().media_bytes) if endpoint.key == "media" else None
    request = raw.request_of(endpoint, data, media)
    if request is None:
        raise BenchError(f"could not prepare a {o.route} request (the media photo could not be posted)")
    path, headers, body = request
    return target.url, (endpoint.method, path, headers, (body or "").encode())


def profile(o: ProfileOptions, console: Console | None = None) -> Profiled:
    console = console or Console(stderr=True)
    check_route(o.route)
    if o.url:
        check_loopback_url(o.url)
    binary = py_spy()  # after the arguments: a bad one is reported whether or not py-spy is here
    if binary is None:
        raise BenchError("py-spy is not installed: pip install 'summit[bench]' (or pip install py-spy)")
    session = Session(Options(url=o.url, data_dir=o.data_dir, start=not o.url, stage=o.stage, config=o.config, keep=o.keep), console)
    try:
        blueprint = stage.blueprint_for(session.o, session.workdir)
        url, request = _target(session, o, blueprint, mailcodes.open_reader(blueprint))
        session.wait_idle(timeout=60)
        o.out.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        stacks_path, log = o.out / f"profile-{o.route}-{stamp}.txt", session.workdir / "py-spy.log"
        session.phase(f"profiling {request[0]} {request[1]} with py-spy: {o.connections} connections, at most {o.max_requests:,} requests or {o.seconds:g} s")
        assert session.server_pid is not None
        sampler = _start_sampler(binary, session.server_pid, stacks_path, seconds=o.seconds, rate=o.rate, log=log)
        host, port = check_loopback_url(url)

        async def load() -> tuple[int, int]:
            async with HttpClient(host, port, max_connections=o.connections, timeout=30, ssl=tls_for(url)) as client:
                return await closed_loop(client, request, connections=o.connections, max_requests=o.max_requests, seconds=o.seconds)

        t0 = time.monotonic()
        try:
            done, errors = asyncio.run(load())
        finally:
            elapsed = time.monotonic() - t0
            _stop_sampler(sampler, stacks_path, log)
        stacks = flame.parse(stacks_path.read_text(errors="replace").splitlines())
        svg_path = stacks_path.with_suffix(".svg")
        title = f"summit bench profile {o.route}: {request[0]} {request[1]}, {done:,} requests in {elapsed:.1f} s, {sum(stacks.values()):,} samples (py-spy)"
        svg_path.write_text(flame.svg(stacks, title))
        return Profiled(svg_path, stacks_path, "py-spy", done, errors, elapsed, sum(stacks.values()), flame.top_own(stacks, o.top))
    finally:
        session.cleanup()
