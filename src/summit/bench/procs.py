"""Processes the bench starts (each in its own process group, stopped with SIGTERM then SIGKILL;
descendants that left the group, as a stage's engines do, are stopped with it) and what it
measures of them: CPU seconds and resident memory of a process tree, or of a group of processes
measured together (psutil)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def cores() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def pin_plan() -> tuple[int | None, int | None]:
    """(server core, client core): the server on one core, the load generator on another.

    With fewer than two cores, nothing is pinned (None, None) and the report says so.
    """
    available = cores()
    if len(available) < 2 or shutil.which("taskset") is None:
        return None, None
    return available[0], available[1]


# niceness for every process the bench starts (None: inherit); set by the runner's --nice
NICE: int | None = None


def pinned(argv: Sequence[str], core: int | None) -> list[str]:
    """``argv`` run on ``core`` (taskset) at the bench's niceness (nice), when they are set."""
    out = ["taskset", "-c", str(core), *argv] if core is not None else list(argv)
    return ["nice", "-n", str(NICE), *out] if NICE is not None else out


def set_self_nice(value: int | None) -> int | None:
    """Set this process's niceness; return the old one to restore (None if unchanged)."""
    if value is None:
        return None
    old = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, value)
    return old


def pin_self(core: int | None) -> set[int] | None:
    """Pin this process (the load generator) to ``core``; return the old affinity to restore."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return None
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    return old


def unpin_self(old: set[int] | None) -> None:
    if old is not None:
        os.sched_setaffinity(0, old)


def pin_tree(pid: int, core: int | None) -> int:
    """Pin every thread of ``pid``'s process tree to ``core`` (threads and children it makes later
    inherit it); the number of threads pinned. For processes another one started (the app
    servers of a stage, under its supervisor), where ``taskset`` on the command line cannot reach."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return 0
    pinned_threads = 0
    for proc in tree(pid):
        try:
            tids = [int(entry.name) for entry in Path(f"/proc/{proc.pid}/task").iterdir()]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, {core})
                pinned_threads += 1
            except OSError:  # gone meanwhile, or not ours
                pass
    return pinned_threads


@dataclass
class Started:
    """A process the bench started, in its own session (process group)."""

    name: str
    popen: subprocess.Popen
    log_path: Path | None = None
    grace: float = 15.0  # seconds its clean stop may take (a stage stopping its engines takes longer)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float | None = None, sig: int = signal.SIGTERM) -> None:
        """``sig`` to its process group, SIGKILL after ``grace`` seconds; then SIGKILL whatever
        it started that is still there (a supervisor's engines live in sessions of their own:
        normally it stops them itself, this is for a supervisor that did not)."""
        descendants = tree(self.pid)[1:] if self.alive() else []
        stop_group(self.popen, grace=self.grace if grace is None else grace, sig=sig)
        kill_left(descendants)


def start(name: str, argv: Sequence[str], *, env: dict[str, str] | None = None, log_path: Path | None = None, cwd: Path | None = None) -> Started:
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        popen = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True
        )
    finally:
        if log_path:
            log.close()  # the child holds its own descriptor
    return Started(name, popen, log_path)


def stop_group(popen: subprocess.Popen, *, grace: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Signal the process group (``sig``, then SIGKILL after ``grace`` seconds) and reap."""
    if popen.poll() is not None:
        _kill_group_leftovers(popen.pid)
        return
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        pass
    try:
        popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        popen.wait(timeout=10)
    _kill_group_leftovers(popen.pid)


def _kill_group_leftovers(pgid: int) -> None:
    """Children that outlived the leader (same process group): SIGKILL them."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_left(processes: Sequence[psutil.Process], *, wait: float = 10.0) -> list[int]:
    """SIGKILL those of ``processes`` still running (the same processes: psutil checks their
    start time, so a reused pid is left alone); the pids killed."""
    killed = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                proc.kill()
                killed.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    psutil.wait_procs([p for p in processes if p.pid in killed], timeout=wait)
    return killed


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(procs: Sequence[psutil.Process]) -> float:
    """User + system CPU seconds of these processes (a process gone meanwhile counts 0)."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def tree_run_delay_seconds(procs: Sequence[psutil.Process]) -> float | None:
    """Seconds the threads of these processes spent runnable but waiting for a CPU (Linux
    ``/proc/<pid>/task/<tid>/schedstat``): high when other work takes the server's core."""
    total = 0.0
    seen = False
    for proc in procs:
        try:
            for task in Path(f"/proc/{proc.pid}/task").iterdir():
                try:
                    fields = (task / "schedstat").read_text().split()
                except OSError:
                    continue
                total += int(fields[1]) / 1e9
                seen = True
        except OSError:
            continue
    return total if seen else None


def tree_rss(procs: Sequence[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def tree_pss(procs: Sequence[psutil.Process]) -> int:
    """Proportional set size of these processes: memory they share (PostgreSQL's shared buffers,
    mapped by every backend) counted once over all of them, not once per process as RSS does.
    Falls back to RSS for a process whose memory map cannot be read."""
    total = 0
    for proc in procs:
        try:
            try:
                total += proc.memory_full_info().pss
            except (psutil.AccessDenied, AttributeError):
                total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


@dataclass(frozen=True)
class Group:
    """Processes measured together, as one part of a stage: the trees of ``pids`` (or those
    processes alone, ``recursive=False``); their memory as RSS or, ``proportional``, as PSS."""

    pids: tuple[int, ...]
    recursive: bool = True
    proportional: bool = False

    def processes(self) -> list[psutil.Process]:
        if self.recursive:
            return [proc for pid in self.pids for proc in tree(pid)]
        out = []
        for pid in self.pids:
            try:
                out.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        return out

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.processes())

    def memory(self, procs: Sequence[psutil.Process] | None = None) -> int:
        procs = self.processes() if procs is None else procs
        return tree_pss(procs) if self.proportional else tree_rss(procs)


def processes_of(target: int | Group) -> list[psutil.Process]:
    """A watched target's processes: a pid's tree, or a group's processes."""
    return target.processes() if isinstance(target, Group) else tree(target)


def memory_of(target: int | Group, procs: Sequence[psutil.Process]) -> int:
    return target.memory(procs) if isinstance(target, Group) else tree_rss(procs)


def self_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def system_busy_seconds() -> float:
    """CPU seconds all CPUs of the machine spent busy (not idle, not waiting for I/O)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def listeners(port: int) -> list[int]:
    """PIDs with a TCP socket listening on ``port`` (needs the right to see them; root can)."""
    pids = set()
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                pids.add(conn.pid)
    except (psutil.AccessDenied, PermissionError):
        return []
    return sorted(pids)


def server_root(port: int) -> int | None:
    """The top process of the server listening on ``port`` (granian's main process, whose
    workers also hold the socket), or None if it cannot be seen."""
    pids = listeners(port)
    if not pids:
        return None
    candidates = set(pids)
    for pid in pids:
        try:
            parent = psutil.Process(pid).parent()
        except psutil.NoSuchProcess:
            continue
        if parent is not None and parent.pid in candidates:
            candidates.discard(pid)
    return min(candidates) if candidates else None


OTHER = "other processes"


@dataclass
class Sample:
    t: float  # seconds since the monitor started
    cpu: dict[str, float]  # share of one core over the last interval, per watched name
    rss: dict[str, int]


@dataclass
class Monitor:
    """Samples CPU (share of one core) and RSS of named process trees every ``interval`` seconds
    in a background thread, for the report's time series. Bounded: at most ``max_samples``."""

    watched: dict[str, int | Group]  # name -> root pid (its tree), or a group of processes
    interval: float = 0.5
    max_samples: int = 20_000
    samples: list[Sample] = field(default_factory=list)
    peak_rss: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    started: float = 0.0

    def watch(self, name: str, pid: int | Group) -> None:
        self.watched[name] = pid

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last: dict[str, float] = {}
        last_t = time.monotonic()
        last_busy = system_busy_seconds()
        for name, target in list(self.watched.items()):
            last[name] = tree_cpu_seconds(processes_of(target))
        while not self._stop.wait(self.interval) and len(self.samples) < self.max_samples:
            now = time.monotonic()
            cpu: dict[str, float] = {}
            rss: dict[str, int] = {}
            for name, target in list(self.watched.items()):
                procs = processes_of(target)
                seconds = tree_cpu_seconds(procs)
                cpu[name] = max(0.0, (seconds - last.get(name, seconds)) / max(now - last_t, 1e-6))
                last[name] = seconds
                rss[name] = memory_of(target, procs)
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss[name])
            busy = system_busy_seconds()
            # what the rest of the machine used meanwhile (other users' work shares these cores)
            cpu[OTHER] = max(0.0, (busy - last_busy) / max(now - last_t, 1e-6) - sum(cpu.values()))
            last_busy = busy
            last_t = now
            self.samples.append(Sample(round(now - self.started, 3), cpu, rss))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
