"""Process helpers: pinning and niceness prefixes, CPU and run-queue figures of a process tree."""

from __future__ import annotations

import sys
import time

import psutil

from summit.bench import procs


def test_pinned_prefixes(monkeypatch) -> None:  # noqa: ANN001
    assert procs.pinned(["wrk", "x"], None) == ["wrk", "x"]
    assert procs.pinned(["wrk", "x"], 1) == ["taskset", "-c", "1", "wrk", "x"]
    monkeypatch.setattr(procs, "NICE", -5)
    assert procs.pinned(["wrk"], 0) == ["nice", "-n", "-5", "taskset", "-c", "0", "wrk"]


def test_own_tree_figures() -> None:
    me = [psutil.Process()]
    assert procs.tree_cpu_seconds(me) > 0
    assert procs.tree_rss(me) > 0
    wait = procs.tree_run_delay_seconds(me)
    assert wait is None or wait >= 0


def test_started_process_group_is_stopped(tmp_path) -> None:  # noqa: ANN001
    """The whole process group goes: the leader and the child it started."""
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    started = procs.start("sleeper", [sys.executable, "-c", code], log_path=tmp_path / "log")
    try:
        for _ in range(100):  # until the child exists (bounded: 10 s)
            if len(procs.tree(started.pid)) >= 2:
                break
            time.sleep(0.1)
        children = procs.tree(started.pid)[1:]
        assert children
    finally:
        started.stop(grace=5)
    assert not started.alive()
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
