"""``summit bench run``: start (or target) a stage, seed it, measure baselines, raw endpoints, the
user-journey mix at stepped arrival rates, and the service demands; write the report.

Every phase is bounded in count and time, every process started here runs in its own process
group and is stopped (SIGTERM, then SIGKILL) on the way out, Ctrl-C included.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from summit.bench import baselines, loadgen, procs, wrk
from summit.bench import html as html_report
from summit.bench import report as rep
from summit.bench.http import HttpClient, multipart
from summit.bench.net import check_loopback_url, free_port
from summit.bench.scenarios import Scenarios
from summit.bench.seed import Seeded, SeedPost, SeedUser, make_jpeg, seed

FAST_ARGON2 = {"SUMMIT_AUTH__ARGON2_TIME_COST": "1", "SUMMIT_AUTH__ARGON2_MEMORY_KIB": "1024"}
# the seeded users' access tokens must outlast the run (a real client would refresh every few minutes)
LONG_TOKENS = {"SUMMIT_AUTH__ACCESS_TOKEN_TTL_SECONDS": "86400"}
RAW_WEIGHTS_READ = {"feed": "feed", "photo": "media photo", "profile": "profile"}
RAW_WEIGHTS_WRITE = {"like": "like", "comment": "comment", "follow": "follow"}


@dataclass
class Options:
    url: str | None = None
    data_dir: Path | None = None  # with --url: the stage's data directory, to read confirmation codes
    start: bool = False
    stage: str | None = None
    config: Path | None = None
    duration: float = 10.0  # seconds per rate step
    rates: list[float] | None = None
    out: Path = Path("bench/results")
    raw_seconds: float = 5.0
    photo_bytes: int | None = None
    users: int = 200
    posts: int = 500
    refine: int = 2
    max_steps: int = 12
    max_in_flight: int = 256
    connections: int = 64
    request_timeout: float = 10.0
    probes: int = 6
    skip_raw: bool = False
    keep: bool = False
    nice: int | None = None
    command: str = ""
    extra_notes: list[str] = field(default_factory=list)


def _outbox_reader(data_dir: Path | None):  # noqa: ANN202
    """``await read(email)``: the newest confirmation code mailed to ``email``, from the stage's outbox."""
    if data_dir is None:
        return None
    import re

    from summit.adapters.outbox.mailer import OutboxMailer

    outbox = OutboxMailer(data_dir / "outbox")

    async def read(email: str) -> str | None:
        for _ in range(50):
            mails = await outbox.list(limit=1, to=email)
            found = re.search(r"\b(\d{6})\b", mails[0].subject) if mails else None
            if found:
                return found.group(1)
            await asyncio.sleep(0.1)
        return None

    return read


class BenchError(RuntimeError):
    """A run that cannot go on; the message says why and what to do."""


def machine_info() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count() or 1, "cpu_model": model, "memory_bytes": int(psutil.virtual_memory().total)}


def planned_rates(estimate_rps: float | None) -> list[float]:
    """Rates to step through when none are given: fractions of the capacity the raw per-endpoint
    demands predict (so a slow stage and a fast one both get a useful ramp), else a fixed ramp."""
    if not estimate_rps or estimate_rps <= 0:
        return [10, 25, 50, 100, 200, 400]
    out = []
    for fraction in (0.2, 0.4, 0.6, 0.75, 0.9, 1.05, 1.25):
        rate = estimate_rps * fraction
        step = 5 if rate < 100 else 10 if rate < 1000 else 50
        out.append(float(max(step, round(rate / step) * step)))
    return sorted(set(out))


def weighted(values: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """Weighted mean of the values present (weights renormalised over them)."""
    pairs = [(values[k], w) for k, w in weights.items() if values.get(k) is not None and w > 0]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


class Run:
    def __init__(self, options: Options, console: Console):
        self.o = options
        self.console = console
        self.notes: list[str] = list(options.extra_notes)
        self.started_procs: list[procs.Started] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="summit-bench-"))
        self.monitor: procs.Monitor | None = None
        self.phases: list[dict[str, Any]] = []
        self.server_pid: int | None = None
        self.server_core, self.client_core = procs.pin_plan()
        self.old_affinity: set[int] | None = None
        self.old_nice: int | None = None

    # ---- helpers ----
    def phase(self, name: str, label: str = "") -> None:
        if self.monitor and self.monitor.started:
            self.phases.append({"name": label or name.split(":")[0][:12], "t": round(time.monotonic() - self.monitor.started, 2), "detail": name})
        self.console.print(f"[bold cyan]>[/bold cyan] {name}")

    def server_wait(self) -> float | None:
        return procs.tree_run_delay_seconds(procs.tree(self.server_pid)) if self.server_pid else None

    def server_cpu(self) -> float:
        return procs.tree_cpu_seconds(procs.tree(self.server_pid)) if self.server_pid else 0.0

    def wait_idle(self, *, share: float = 0.08, window: float = 0.5, timeout: float = 30.0) -> bool:
        """Until the server uses less than ``share`` of a core over ``window`` seconds."""
        if not self.server_pid:
            time.sleep(min(2.0, timeout))
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.server_cpu()
            time.sleep(window)
            if (self.server_cpu() - before) / window < share:
                return True
        return False

    # ---- the stage ----
    def start_stage(self, env_extra: dict[str, str], port: int, data_dir: Path) -> procs.Started:
        summit = Path(sys.executable).with_name("summit")
        argv = [str(summit) if summit.exists() else "summit", "up", "--port", str(port), "--data-dir", str(data_dir)]
        if self.o.stage:
            argv += ["--stage", self.o.stage]
        if self.o.config:
            argv += ["--config", str(self.o.config)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUMMIT_")}
        env.update(LONG_TOKENS)
        env.update(env_extra)
        proc = procs.start("summit up", procs.pinned(argv, self.server_core), env=env, log_path=self.workdir / "server.log", cwd=self.workdir)
        self.started_procs.append(proc)
        baselines.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=90, process=proc)
        return proc

    def stop(self, proc: procs.Started) -> None:
        proc.stop(grace=15)
        if proc in self.started_procs:
            self.started_procs.remove(proc)

    def cleanup(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        for proc in reversed(self.started_procs):
            try:
                proc.stop(grace=15)
            except Exception as error:  # noqa: BLE001
                self.console.print(f"[yellow]warning:[/yellow] stopping {proc.name}: {error}")
        self.started_procs.clear()
        procs.unpin_self(self.old_affinity)
        if self.old_nice is not None:
            os.setpriority(os.PRIO_PROCESS, 0, self.old_nice)
        procs.NICE = None
        if not self.o.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- phases ----
    def seed_stage(self, url: str, data_dir: Path | None) -> Seeded:
        host, port = check_loopback_url(url)
        with Progress(TextColumn("  seeding {task.description:<9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=self.console, transient=False) as bar:
            tasks: dict[str, Any] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.update(tasks[name], completed=done)

            async def go() -> Seeded:
                async with HttpClient(host, port, max_connections=16, timeout=120) as client:
                    return await asyncio.wait_for(
                        seed(client, users=self.o.users, posts=self.o.posts, progress=progress, mailed_code=_outbox_reader(data_dir)),
                        timeout=900,
                    )

            return asyncio.run(go())

    def raw_endpoints(self, url: str, data: Seeded, hello_rps: float | None) -> list[dict[str, Any]]:
        user = data.users[0]
        other = data.users[1]
        post = data.posts[0]
        auth = user.auth
        endpoints = [
            ("healthz", "GET", "/healthz", {}, None),
            ("profile", "GET", f"/api/v1/users/{other.username}", auth, None),
            ("feed", "GET", "/api/v1/feed", auth, None),
            ("post", "GET", f"/api/v1/posts/{post.id}", auth, None),
            ("media photo", "GET", post.photo_path, {}, None),
            ("like", "PUT", f"/api/v1/posts/{post.id}/like", auth, None),
            ("follow", "PUT", f"/api/v1/users/{other.username}/follow", auth, None),
            ("comment", "POST", f"/api/v1/posts/{post.id}/comments", {**auth, "Content-Type": "application/json"}, '{"body":"wrk comment"}'),
        ]
        rows = []
        for name, method, path, headers, body in endpoints:
            self.wait_idle(timeout=10)
            try:
                result, cpu = baselines.measure_wrk(
                    url + path, self.server_pid, seconds=self.o.raw_seconds, client_core=self.client_core, method=method, headers=headers, body=body
                )
            except Exception as error:  # noqa: BLE001
                self.notes.append(f"raw {name}: wrk failed: {error}")
                continue
            if result.errors:
                self.notes.append(f"raw {name}: {result.errors} of {result.requests} requests failed or were not 2xx/3xx")
            rps = result.good_rps
            rows.append(
                {
                    "name": name,
                    "method": method,
                    "path": path,
                    "rps": rps,
                    "p50_ms": result.p50_ms,
                    "p99_ms": result.p99_ms,
                    "ratio_to_hello": rps / hello_rps if hello_rps else None,
                    "cpu_ms_per_request": cpu,
                    "errors": result.errors,
                }
            )
            self.console.print(f"    {name:<12} {rps:>9,.0f} req/s  p99 {result.p99_ms:6.1f} ms  server CPU {cpu or 0:.2f} ms/req" + (f"  ({rps / hello_rps:.3f} x hello)" if hello_rps else ""))
        return rows

    def probe(self, url: str, data: Seeded, photo: bytes, idle_share: float, get_post_cpu_ms: float | None) -> dict[str, float | None]:
        """Sequential uploads and sign-ups: server CPU per request, and the worker's CPU per upload
        (from the request's answer until its thumbnails are ready), less the idle CPU of the stage
        and the polling requests."""
        host, port = check_loopback_url(url)
        count = max(1, self.o.probes)

        async def go() -> dict[str, float | None]:
            async with HttpClient(host, port, max_connections=2, timeout=60) as client:
                user = data.users[-1]
                body, ctype = multipart({"caption": "probe"}, {"photo": ("photo.jpg", photo, "image/jpeg")})
                web, worker, polls_cost = [], [], get_post_cpu_ms or 0.0
                for _ in range(count):
                    await asyncio.to_thread(self.wait_idle, timeout=10)
                    c0, t0 = self.server_cpu(), time.monotonic()
                    r = await client.request("POST", "/api/v1/posts", headers={**user.auth, "Content-Type": ctype}, body=body)
                    c1, t1 = self.server_cpu(), time.monotonic()
                    if r.status != 201:
                        self.notes.append(f"upload probe: status {r.status}")
                        continue
                    post_id = r.json()["id"]
                    polls, ready = 0, False
                    for _ in range(600):  # at most ~60 s
                        await asyncio.sleep(0.1)
                        polls += 1
                        p = await client.request("GET", f"/api/v1/posts/{post_id}", headers=user.auth)
                        if p.status == 200 and p.json()["thumbnails"]["ready"]:
                            ready = True
                            break
                    c2, t2 = self.server_cpu(), time.monotonic()
                    web.append(max(0.0, (c1 - c0) - idle_share * (t1 - t0)) * 1000)
                    if ready:
                        worker.append(max(0.0, (c2 - c1) * 1000 - idle_share * (t2 - t1) * 1000 - polls * polls_cost))
                signups = []
                for i in range(count):
                    await asyncio.to_thread(self.wait_idle, timeout=10)
                    name = f"{data.prefix}_p{i:04d}"
                    c0, t0 = self.server_cpu(), time.monotonic()
                    r = await client.request(
                        "POST", "/api/v1/accounts", headers={"Content-Type": "application/json"},
                        body=f'{{"username":"{name}","email":"{name}@example.com","password":"probe-password-1"}}'.encode(),
                    )
                    c1, t1 = self.server_cpu(), time.monotonic()
                    if r.status == 201:
                        signups.append(max(0.0, (c1 - c0) - idle_share * (t1 - t0)) * 1000)
            # means of the totals: psutil's CPU times tick every 10 ms, so one request's figure is coarse
            mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
            return {"upload_web_ms": mean(web), "upload_worker_ms": mean(worker), "signup_ms": mean(signups), "uploads": len(web), "signups": len(signups)}

        return asyncio.run(asyncio.wait_for(go(), timeout=600))

    def mix(self, url: str, data: Seeded, photo: bytes, workload: Any, rates: list[float]) -> tuple[list[dict], list[loadgen.Result], list[dict], list[dict]]:
        host, port = check_loopback_url(url)
        weights = loadgen.scenario_weights(workload)
        mix = loadgen.Mix(weights)
        steps: list[dict[str, Any]] = []
        all_results: list[list[loadgen.Result]] = []
        series: list[dict[str, Any]] = []
        bounds: list[dict[str, Any]] = []
        mix_origin = time.monotonic()
        target, max_err = workload.p99_target_ms, workload.max_error_ratio
        planned = sorted(float(r) for r in rates)
        min_gap = max(2.0, planned[0] * 0.1) if planned else 2.0
        for _ in range(self.o.max_steps):
            todo = rep.next_rates(steps, planned, refine=self.o.refine, min_gap=min_gap)
            if not todo:
                break
            rate = todo[0]
            self.wait_idle(timeout=20)
            offsets = loadgen.arrival_offsets(rate, self.o.duration, max_requests=200_000)
            names = mix.take(len(offsets))
            stats = {"done": 0, "errors": 0}
            latencies: list[float] = []

            with Progress(
                TextColumn(f"  {rate:>7,.1f} req/s"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("p99 {task.fields[p99]:>8}  errors {task.fields[errors]}"),
                TimeElapsedColumn(),
                console=self.console,
                refresh_per_second=4,
            ) as bar:
                task = bar.add_task("step", total=len(offsets), p99="-", errors=0)

                def on_result(r: loadgen.Result) -> None:
                    stats["done"] += 1
                    stats["errors"] += not r.ok
                    latencies.append(r.latency * 1000)
                    if stats["done"] % max(1, int(rate // 2)) == 0:
                        bar.update(task, completed=stats["done"], p99=f"{loadgen.percentile(latencies[-int(rate * 2) - 1:], 99):.1f} ms", errors=stats["errors"])

                async def go() -> tuple[list[loadgen.Result], float, float]:
                    async with HttpClient(host, port, max_connections=self.o.connections, timeout=self.o.request_timeout) as client:
                        scen = Scenarios(client, data, photo=photo, upload_timeout=max(self.o.request_timeout, 30))
                        t0 = time.monotonic()
                        results = await loadgen.run_open_loop(
                            offsets, names, scen.make_job, max_in_flight=self.o.max_in_flight,
                            deadline=self.o.duration + self.o.request_timeout + 5, on_result=on_result,
                        )
                        return results, t0, time.monotonic()

                busy0, wait0 = procs.system_busy_seconds(), self.server_wait()
                client0, server0, wall0 = procs.self_cpu_seconds(), self.server_cpu(), time.monotonic()
                results, t0, t1 = asyncio.run(go())
                client1, server1, wall1 = procs.self_cpu_seconds(), self.server_cpu(), time.monotonic()
                busy1, wait1 = procs.system_busy_seconds(), self.server_wait()
                bar.update(task, completed=len(results), p99=f"{loadgen.percentile(latencies, 99):.1f} ms", errors=stats["errors"])
            wall = max(wall1 - wall0, 1e-6)
            span = max(self.o.duration, (max((r.finished for r in results), default=t0) - t0))
            summary = loadgen.summarize(results, span)
            client_cpu = (client1 - client0) / wall
            server_cpu = (server1 - server0) / wall if self.server_pid else None
            answered = sum(1 for r in results if r.status)
            step = {
                "rate": float(rate),
                "achieved_rps": summary["achieved_rps"],
                "p50_ms": summary["p50_ms"],
                "p95_ms": summary["p95_ms"],
                "p99_ms": summary["p99_ms"],
                "error_ratio": summary["error_ratio"],
                "client_cpu": client_cpu,
                "server_cpu": server_cpu,
                "held": False,
                "requests": len(results),
                "answered": answered,
                "server_cpu_seconds": (server1 - server0) if self.server_pid else None,
                "errors_by_kind": _error_kinds(results),
                "other_cpu": max(0.0, (busy1 - busy0) / wall - client_cpu - (server_cpu or 0.0)),
                "server_cpu_wait": (wait1 - wait0) / wall if wait0 is not None and wait1 is not None else None,
                "dispatch_lag_p99_ms": summary["dispatch_lag_p99_ms"],
            }
            step["held"] = rep.step_held(step, target, max_err)
            step["client_bound"] = client_bound(step, target)
            steps.append(step)
            all_results.append(results)
            offset = t0 - mix_origin
            bounds.append({"t": round(offset, 2), "rate": rate})
            for point in loadgen.time_series(results, t0):
                point["t"] = round(point["t"] + offset, 2)
                point["rate"] = rate
                series.append(point)
            verdict = "[green]held[/green]" if step["held"] else "[red]not held[/red]"
            self.console.print(
                f"    rate {rate:,.1f}: achieved {step['achieved_rps']:,.1f} req/s, p50 {step['p50_ms']:.1f} / p95 {step['p95_ms']:.1f} / "
                f"p99 {step['p99_ms']:.1f} ms, errors {step['error_ratio'] * 100:.2f}%, client CPU {client_cpu * 100:.0f}%, "
                f"server CPU {(server_cpu or 0) * 100:.0f}% (threads waiting for a CPU {step['server_cpu_wait'] or 0:.2f} s/s), "
                f"other processes {step['other_cpu'] * 100:.0f}%: {verdict}" + (" [yellow](client-bound)[/yellow]" if step["client_bound"] else "")
            )
        flat_held = [r for s, rs in zip(steps, all_results, strict=True) if s["held"] for r in rs]
        return steps, flat_held or [r for rs in all_results for r in rs], series, bounds


def _error_kinds(results: list[loadgen.Result]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for r in results:
        if not r.ok:
            kinds[r.error or "error"] = kinds.get(r.error or "error", 0) + 1
    return kinds


CLIENT_LAG_MS = 20.0


def client_bound(step: dict[str, Any], target_ms: float = 250.0) -> bool:
    """The load generator, not the server, limited this step: it used more than half its core; or
    its own dispatch fell behind the schedule (p99 lag over ``CLIENT_LAG_MS``); or it fell short of
    the scheduled rate while the server had CPU to spare and answered in time (a shortfall that
    comes with long server latencies is the server's queue, not the client)."""
    if step["client_cpu"] > 0.5:
        return True
    if (step.get("dispatch_lag_p99_ms") or 0.0) > CLIENT_LAG_MS:
        return True
    server = step.get("server_cpu")
    return step["achieved_rps"] < 0.95 * step["rate"] and server is not None and server < 0.6 and step["p99_ms"] <= target_ms


def overall_client_bottleneck(steps: list[dict[str, Any]]) -> bool:
    """True if a step that decided the capacity (every step up to the first that failed) was
    client-bound: the capacity is then a lower bound."""
    for step in sorted(steps, key=lambda s: s["rate"]):
        if step.get("client_bound"):
            return True
        if not step["held"]:
            break
    return False


def run(options: Options, console: Console | None = None, *, on_report: Callable[[dict], None] | None = None) -> tuple[dict[str, Any], Path, Path]:
    console = console or Console(stderr=True)
    from summit.blueprint import load_blueprint

    if options.start == bool(options.url):
        raise BenchError("give either --url URL (a running stage on loopback) or --start (start one here)")
    if options.url:
        check_loopback_url(options.url)
    if options.start and not shutil.which("taskset"):
        console.print("[yellow]warning:[/yellow] taskset not found: the server and the client are not pinned")
    r = Run(options, console)
    if options.nice is not None:
        try:
            r.old_nice = procs.set_self_nice(options.nice)
        except PermissionError:
            r.cleanup()
            raise BenchError(f"--nice {options.nice}: not allowed (a negative niceness needs root)") from None
        procs.NICE = options.nice
        r.notes.append(f"every process of the bench (server, baselines, wrk, Python client) ran at niceness {options.nice}, to keep other work on the machine from skewing the figures")
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    try:
        return _run(r, options, console, load_blueprint, started_at, on_report)
    finally:
        r.cleanup()


def _run(r: Run, o: Options, console: Console, load_blueprint, started_at: str, on_report) -> tuple[dict[str, Any], Path, Path]:  # noqa: ANN001, C901, PLR0915
    overrides = {"stage": o.stage} if o.stage else {}
    blueprint = load_blueprint(o.config, overrides=overrides)
    if o.url:
        import httpx

        health = httpx.get(o.url.rstrip("/") + "/healthz", timeout=5)
        if not health.is_success:
            raise BenchError(f"{o.url}/healthz answered {health.status_code}: is the stage running?")
        stage = str(health.json().get("stage", blueprint.stage))
        if stage != blueprint.stage:
            blueprint = load_blueprint(o.config, overrides={"stage": stage})
    workload = blueprint.workload
    report = rep.empty_report(blueprint.stage, started_at, machine_info(), workload.model_dump())
    extra = report[rep.EXTRA_KEY]
    extra["command"] = o.command
    extra["settings"] = {
        "duration_per_step_s": o.duration, "raw_seconds": o.raw_seconds, "users": o.users, "posts": o.posts,
        "server_core": r.server_core, "client_core": r.client_core, "max_in_flight": o.max_in_flight, "connections": o.connections,
    }
    photo_bytes = o.photo_bytes or workload.photo_bytes
    if r.server_core is not None:
        r.notes.append(f"server pinned to CPU {r.server_core} (when started here), load generators (wrk, Python) to CPU {r.client_core}")
    else:
        r.notes.append("fewer than two CPUs (or no taskset): nothing is pinned; figures include the client's own CPU use")

    # ---- the stage ----
    if o.start:
        port = free_port()
        data_dir = r.workdir / "data"
        url = f"http://127.0.0.1:{port}"
        r.phase(f"starting stage {blueprint.stage} for seeding (fast password hashing) at {url}")
        seeding = r.start_stage(FAST_ARGON2, port, data_dir)
        r.server_pid = seeding.pid
        r.old_affinity = procs.pin_self(r.client_core)
        r.phase(f"seeding {o.users} users, their follows, {o.posts} posts through the API")
        data = r.seed_stage(url, data_dir)
        r.wait_idle(timeout=120)  # thumbnails of the seeded posts
        r.stop(seeding)
        r.phase("restarting the stage with the blueprint's settings")
        server = r.start_stage({}, port, data_dir)
        r.server_pid = server.pid
        r.notes.append(
            "access tokens last a day on the measured stage (the seeded users keep theirs through the run); "
            "seeded with cheap password hashing (argon2 t=1, 1 MiB) to save time, then restarted with the blueprint's "
            f"settings (t={blueprint.auth.argon2_time_cost}, {blueprint.auth.argon2_memory_kib} KiB): sign-ups in the mix pay the real cost"
        )
    else:
        url = o.url.rstrip("/")
        parts = urlsplit(url)
        r.server_pid = procs.server_root(parts.port or 80)
        if r.server_pid is None:
            r.notes.append("could not see the server's process (not root?): server CPU and demands are not measured")
        r.notes.append("--url: the server was started elsewhere and is not pinned by the bench; only the client is")
        r.old_affinity = procs.pin_self(r.client_core)
        r.phase(f"seeding {o.users} users, their follows, {o.posts} posts through the API of {url}")
        if o.data_dir is None:
            r.notes.append("--url without --data-dir: the bench cannot read confirmation codes, so seeding works only if the stage does not require them")
        data = r.seed_stage(url, o.data_dir)
    extra["seed"] = data.as_dict()

    r.monitor = procs.Monitor({"bench client": os.getpid()})
    if r.server_pid:
        r.monitor.watch("app", r.server_pid)
    r.monitor.start()
    r.phase("waiting for the stage to be idle", "idle")
    r.wait_idle(timeout=60)
    idle_share = 0.0
    if r.server_pid:
        c0 = r.server_cpu()
        time.sleep(2)
        idle_share = (r.server_cpu() - c0) / 2
    extra["idle_server_cpu"] = idle_share

    # ---- baselines ----
    hello = None
    raw_rows: list[dict[str, Any]] = []
    baseline_detail: dict[str, Any] = {}
    if not wrk.available():
        r.notes.append("wrk is not installed (scripts/install.sh --bench): no raw throughput, no baselines")
    elif o.skip_raw:
        r.notes.append("raw endpoints and baselines skipped (--skip-raw)")
    else:
        r.phase("baseline: bare ASGI hello on granian", "hello")
        m = baselines.asgi_hello(r.workdir, seconds=o.raw_seconds, server_core=r.server_core, client_core=r.client_core, watch=r.monitor.watch)
        hello = m.rps
        report["baselines"]["asgi_hello_rps"] = m.rps
        baseline_detail["ASGI hello (granian)"] = {"p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "cpu_ms_per_request": m.cpu_ms_per_request}
        console.print(f"    ASGI hello   {m.rps or 0:>9,.0f} req/s  p99 {m.p99_ms or 0:6.1f} ms")
        r.phase("baseline: nginx, 1 KiB static file", "nginx")
        m = baselines.nginx_static(r.workdir, seconds=o.raw_seconds, server_core=r.server_core, client_core=r.client_core, watch=r.monitor.watch)
        report["baselines"]["nginx_static_rps"] = m.rps
        baseline_detail["nginx static 1 KiB"] = {"p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "cpu_ms_per_request": m.cpu_ms_per_request}
        if m.note:
            r.notes.append(m.note)
        else:
            console.print(f"    nginx static {m.rps or 0:>9,.0f} req/s  p99 {m.p99_ms or 0:6.1f} ms")
        engines = _stage_engines(blueprint)
        if "redis" in engines:
            r.phase("baseline: redis-benchmark")
            m = baselines.redis_benchmark(engines["redis"], client_core=r.client_core)
            report["baselines"]["redis_ops"] = m.rps
            if m.note:
                r.notes.append(m.note)
        if "postgresql" in engines:
            r.phase("baseline: pgbench -S")
            m = baselines.pgbench_select(engines["postgresql"], seconds=o.raw_seconds, client_core=r.client_core)
            report["baselines"]["pgbench_tps"] = m.rps
            if m.note:
                r.notes.append(m.note)
        if not engines:
            r.notes.append(
                f"stage {blueprint.stage} runs no Redis and no PostgreSQL (SQLite, files, in-process cache and queue): "
                "redis_ops and pgbench_tps are not measured at this stage"
            )
        r.phase("raw single-endpoint throughput (wrk)", "raw (wrk)")
        raw_rows = r.raw_endpoints(url, data, hello)
    report["raw"] = [{k: row[k] for k in rep.RAW_KEYS} | {"cpu_ms_per_request": row["cpu_ms_per_request"], "errors": row["errors"]} for row in raw_rows]
    extra["baseline_detail"] = baseline_detail
    raw_cpu = {row["name"]: row["cpu_ms_per_request"] for row in raw_rows}

    # ---- probes: uploads (web + worker) and sign-ups ----
    r.phase(f"making a {photo_bytes:,}-byte test photo", "photo")
    photo = make_jpeg(photo_bytes)
    extra["photo_bytes"] = len(photo)
    probe = {"upload_web_ms": None, "upload_worker_ms": None, "signup_ms": None}
    if r.server_pid:
        r.phase(f"probes: {o.probes} sequential uploads and sign-ups (CPU per request, worker CPU per upload)", "probes")
        probe = r.probe(url, data, photo, idle_share, raw_cpu.get("post"))
        console.print(
            f"    upload: web {probe['upload_web_ms'] or 0:.1f} ms CPU + worker {probe['upload_worker_ms'] or 0:.1f} ms CPU; "
            f"sign-up {probe['signup_ms'] or 0:.1f} ms CPU"
        )
    extra["probes"] = probe

    # ---- the mix ----
    weights = loadgen.scenario_weights(workload)
    per_scenario_cpu = {
        "feed": raw_cpu.get("feed"), "photo": raw_cpu.get("media photo"), "profile": raw_cpu.get("profile"),
        "like": raw_cpu.get("like"), "comment": raw_cpu.get("comment"), "follow": raw_cpu.get("follow"),
        "signup": probe["signup_ms"],
        "post_photo": (probe["upload_web_ms"] or 0) + (probe["upload_worker_ms"] or 0) if probe["upload_web_ms"] is not None else None,
    }
    predicted_ms = weighted(per_scenario_cpu, weights)
    estimate = 1000 / predicted_ms if predicted_ms else None
    rates = o.rates or planned_rates(estimate)
    extra["mix_weights"] = weights
    extra["scenario_class"] = loadgen.SCENARIO_CLASS
    extra["predicted_cpu_ms_per_request"] = predicted_ms
    extra["planned_rates"] = rates
    r.phase(f"user-journey mix, {o.duration:g} s per step, rates {', '.join(f'{x:g}' for x in rates)} req/s (then refined)", "mix")
    steps, results_for_scenarios, series, bounds = r.mix(url, data, photo, workload, rates)
    r.phase("done", "end")
    r.monitor.stop()

    report["steps"] = steps
    report["capacity_rps"] = rep.capacity(steps)
    report["scenarios"] = {
        name: {"count": int(s["count"]), "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"], "p99_ms": s["p99_ms"], "errors": int(s["errors"])}
        for name, s in loadgen.by_scenario(results_for_scenarios).items()
    }
    report["client_bottleneck"] = overall_client_bottleneck(steps)
    extra["series"] = series
    extra["step_bounds"] = bounds
    extra["phases"] = r.phases
    extra["processes"] = _process_series(r.monitor)

    # ---- demands ----
    counted = [s for s in steps if s["held"]] or steps
    cpu_s = sum(s["server_cpu_seconds"] or 0 for s in counted)
    answered = sum(s["answered"] for s in counted)
    peak_rss = r.monitor.peak_rss.get("app", 0) if r.server_pid else 0
    if r.server_pid and answered:
        read_ms = weighted({k: per_scenario_cpu[k] for k in loadgen.READ_SPLIT}, loadgen.READ_SPLIT)
        write_ms = weighted({k: per_scenario_cpu[k] for k in loadgen.WRITE_SPLIT}, loadgen.WRITE_SPLIT)
        report["demands"]["app"] = {
            "cpu_ms_per_request": cpu_s * 1000 / answered,
            "cpu_ms_per_read": read_ms,
            "cpu_ms_per_write": write_ms,
            "cpu_ms_per_upload": probe["upload_web_ms"],
            "rss_bytes": int(peak_rss),
            "method": "request: whole process tree over the held mix steps / answers (worker included at stage 1); "
            "read/write: raw wrk runs per endpoint weighted by the mix; upload: sequential probe, web part",
            "processes": "web + database (SQLite) + in-process worker" if blueprint.worker.in_process else "web",
        }
        if probe["upload_worker_ms"] is not None:
            report["demands"]["worker"] = {
                "cpu_ms_per_request": probe["upload_worker_ms"],
                "cpu_ms_per_read": None,
                "cpu_ms_per_write": None,
                "cpu_ms_per_upload": probe["upload_worker_ms"],
                "rss_bytes": 0 if blueprint.worker.in_process else int(peak_rss),
                "in_process": blueprint.worker.in_process,
                "method": "sequential probe: server CPU from an upload's answer until its thumbnails are ready, less idle CPU and polling",
            }
        extra["demand_check"] = {"predicted_from_raw_ms": predicted_ms, "measured_in_mix_ms": cpu_s * 1000 / answered}
        if blueprint.worker.in_process:
            r.notes.append(
                "demands.worker is the thumbnail job's CPU per upload; at this stage it runs inside the app process, so it is "
                "already part of demands.app.cpu_ms_per_request (do not add the two)"
            )
    else:
        r.notes.append("server CPU not measured: no service demands")

    # ---- cache and database ----
    r.notes.append(
        "cache hit ratio and share of reads reaching the database: not measured at this stage (the app exports no cache or "
        "database counters; stage 1 has no shared cache, so every API read queries SQLite and photos are read from files)"
    )
    waits = [s["server_cpu_wait"] for s in steps if s.get("server_cpu_wait") is not None]
    if waits and max(waits) > 0.05:
        r.notes.append(
            f"the server's threads waited for a CPU (runnable, not running) up to {max(waits):.2f} thread-seconds per second "
            "in a step: other work took its core, so its latencies include that queueing"
        )
    others = [s["other_cpu"] for s in steps]
    if others and max(others) > 0.1:
        r.notes.append(
            f"the machine was shared: other processes used up to {max(others) * 100:.0f}% of a core during the mix steps "
            f"(mean {sum(others) / len(others) * 100:.0f}%); throughput figures are lower than on an idle machine, ratios less so"
        )
    if report["client_bottleneck"]:
        r.notes.append("the load generator was the bottleneck in a step that decided the capacity: the capacity is a lower bound")
    for step in steps:
        if step.get("client_bound") and not report["client_bottleneck"]:
            r.notes.append(f"client-bound at {step['rate']:g} req/s (above the capacity; does not change it)")
    if photo_bytes != workload.photo_bytes:
        r.notes.append(f"uploads used {photo_bytes:,}-byte photos instead of the blueprint's {workload.photo_bytes:,} (--photo-bytes)")
    if report["capacity_rps"] is None:
        r.notes.append("no rate held: try lower --rates")
    report["notes"] = r.notes

    o.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = o.out / f"stage-{report['stage']}-{stamp}.json"
    html_path = json_path.with_suffix(".html")
    rep.write(report, json_path)
    html_path.write_text(html_report.render(report))
    if on_report:
        on_report(report)
    return report, json_path, html_path


def _stage_engines(blueprint) -> dict[str, str]:  # noqa: ANN001
    """Engines of the stage that have a baseline: {"redis": url, "postgresql": url}."""
    found: dict[str, str] = {}
    for name in type(blueprint.ports).model_fields:
        url = blueprint.port_url(name)
        scheme = url.split(":", 1)[0].split("+", 1)[0]
        if scheme in ("redis", "rediss") and "redis" not in found:
            found["redis"] = url
        if scheme in ("postgresql", "postgres") and "postgresql" not in found:
            found["postgresql"] = url
    return found


def _process_series(monitor: procs.Monitor) -> dict[str, Any]:
    names = sorted({n for s in monitor.samples for n in s.cpu})
    return {
        "t": [s.t for s in monitor.samples],
        "cpu": {n: [round(s.cpu.get(n, 0.0), 4) for s in monitor.samples] for n in names},
        "rss": {n: [s.rss.get(n, 0) for s in monitor.samples] for n in names},
        "peak_rss": dict(monitor.peak_rss),
    }


__all__ = ["BenchError", "Options", "run", "client_bound", "overall_client_bottleneck", "planned_rates", "SeedPost", "SeedUser"]
