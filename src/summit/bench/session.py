"""What every phase of a bench run shares: the options, the console, the notes for the report,
the processes started (all stopped on the way out, Ctrl-C included), the cores, the server's
process and the monitor that samples it."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from summit.bench import counters, procs
from summit.bench.options import BenchError, Options


class Session:
    def __init__(self, options: Options, console: Console):
        self.o = options
        self.console = console
        self.notes: list[str] = list(options.extra_notes)
        self.started_procs: list[procs.Started] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="summit-bench-"))
        self.monitor: procs.Monitor | None = None
        self.phases: list[dict[str, Any]] = []
        self.server_pid: int | None = None  # the stage's root process: its tree is "the server"
        # the server's parts when the stage runs engines ("app", "database", "supervisor"), measured
        # apart; empty at stage 1 (one process) or when they cannot be seen
        self.parts: dict[str, procs.Group] = {}
        # each app server's own URL when the stage has several (or runs under a supervisor), from its
        # state file: their /metrics are scraped one by one and added up; empty: the public URL's
        self.app_servers: list[str] = []
        self.haproxy_stats: str | None = None  # the statistics address of the stage's HAProxy, if it has one
        self.server_core, self.client_core = procs.pin_plan()
        self.old_affinity: set[int] | None = None
        self.old_nice: int | None = None

    def set_nice(self, value: int | None) -> None:
        """Run this process, and every one it starts, at niceness ``value`` (a negative one needs root)."""
        if value is None:
            return
        try:
            self.old_nice = procs.set_self_nice(value)
        except PermissionError:
            raise BenchError(f"--nice {value}: not allowed (a negative niceness needs root)") from None
        procs.NICE = value
        self.notes.append(
            f"every process of the bench (server, baselines, wrk, Python client) ran at niceness {value}, "
            "to keep other work on the machine from skewing the figures"
        )

    def pin_client(self) -> None:
        """Pin this process (the Python load generator) to the client's core."""
        if self.old_affinity is None:
            self.old_affinity = procs.pin_self(self.client_core)

    def phase(self, name: str, label: str = "") -> None:
        """Say what starts now, and mark it on the report's time axis."""
        if self.monitor and self.monitor.started:
            self.phases.append({"name": label or name.split(":")[0][:12], "t": round(time.monotonic() - self.monitor.started, 2), "detail": name})
        self.console.print(f"[bold cyan]>[/bold cyan] {name}")

    def server_wait(self) -> float | None:
        return procs.tree_run_delay_seconds(procs.tree(self.server_pid)) if self.server_pid else None

    def server_cpu(self) -> float:
        return procs.tree_cpu_seconds(procs.tree(self.server_pid)) if self.server_pid else 0.0

    def server_rss(self) -> int | None:
        return procs.tree_rss(procs.tree(self.server_pid)) if self.server_pid else None

    def meter(self, url: str) -> counters.Meter:
        """The app's counters around a phase: every app server's, added up (``url``'s alone at stage 1)."""
        return counters.Meter(counters.server_urls(url, self.app_servers))

    def part_cpu(self) -> dict[str, float]:
        """CPU seconds of each part of the server now ({} when it has none)."""
        return {name: group.cpu_seconds() for name, group in self.parts.items()}

    def part_memory(self) -> dict[str, int]:
        """Memory of each part of the server now (RSS; PSS for a proportional group)."""
        return {name: group.memory() for name, group in self.parts.items()}

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

    def track(self, proc: procs.Started) -> procs.Started:
        self.started_procs.append(proc)
        return proc

    def stop(self, proc: procs.Started) -> None:
        proc.stop()
        if proc in self.started_procs:
            self.started_procs.remove(proc)

    def cleanup(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        for proc in reversed(self.started_procs):
            try:
                proc.stop()
            except Exception as error:  # noqa: BLE001
                self.console.print(f"[yellow]warning:[/yellow] stopping {proc.name}: {error}")
        self.started_procs.clear()
        procs.unpin_self(self.old_affinity)
        self.old_affinity = None
        if self.old_nice is not None:
            os.setpriority(os.PRIO_PROCESS, 0, self.old_nice)
            self.old_nice = None
        procs.NICE = None
        if not self.o.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
