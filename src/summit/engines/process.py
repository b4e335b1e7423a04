"""One engine process: spawned in a process group of its own, its output appended to a log file,
stopped with its stop signal, a grace period, then SIGKILL for the whole group.

The process runs as the user the command names (PostgreSQL and PgBouncer refuse to run as root,
so a root supervisor hands them to ``postgres``); everything else runs as the caller.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Command:
    """What to run for an engine: the argument list (never a shell line), its environment and user."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the supervisor's environment
    cwd: Path | None = None
    user: str | None = None  # run as this user (only when the supervisor is root)
    stop_signal: int = signal.SIGTERM
    grace: float = 10.0  # seconds between the stop signal and SIGKILL


class Process:
    """A running (or exited) engine process."""

    def __init__(self, name: str, command: Command, log_path: Path):
        self.name = name
        self.command = command
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> int:
        command = self.command
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- summit: starting {self.name}: {' '.join(command.argv)}\n".encode())
            log.flush()
            user = command.user if os.geteuid() == 0 else None
            self._popen = subprocess.Popen(  # noqa: S603  (an argument list, no shell)
                command.argv,
                cwd=command.cwd,
                env={**os.environ, **command.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops its children too
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        self.started_at = time.time()
        return self._popen.pid

    def poll(self) -> int | None:
        """The exit code, or None while it runs (or if it never started)."""
        return self._popen.poll() if self._popen else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self, grace: float | None = None) -> int | None:
        """Send the stop signal to the group, wait up to ``grace`` seconds, then SIGKILL it."""
        if self._popen is None:
            return None
        grace = self.command.grace if grace is None else grace
        if self._popen.poll() is None:
            signal_group(self._popen.pid, self.command.stop_signal)
            try:
                self._popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                signal_group(self._popen.pid, signal.SIGKILL)
                self._popen.wait(timeout=10)
        signal_group(self._popen.pid, signal.SIGKILL)  # whatever the leader left behind in its group
        return self._popen.returncode

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group (for fault tests: SIGKILL, SIGSTOP, SIGCONT)."""
        if self._popen is not None:
            signal_group(self._popen.pid, sig)


def signal_group(pid: int, sig: int) -> bool:
    """Send ``sig`` to the process group led by ``pid``; False if it is gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def alive(pid: int | None) -> bool:
    """Is a process with this pid running (and not a zombie)?"""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file ('' if there is none)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
