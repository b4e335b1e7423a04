"""Process helpers: pinning and niceness prefixes, CPU and run-queue figures of a process tree."""

from __future__ import annotations

import os
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


def test_descendants_in_sessions_of_their_own_are_stopped_too(tmp_path) -> None:  # noqa: ANN001
    """A supervisor's engines live in sessions of their own: a leader that dies without stopping
    them (here: killed by the SIGTERM it does not handle) must not leave them behind."""
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True); time.sleep(60)"
    )
    started = procs.start("supervisor", [sys.executable, "-c", code], log_path=tmp_path / "log")
    try:
        for _ in range(100):  # until the child exists (bounded: 10 s)
            if len(procs.tree(started.pid)) >= 2:
                break
            time.sleep(0.1)
        child = procs.tree(started.pid)[1]
        assert child.pid != started.pid and os.getpgid(child.pid) != started.pid  # out of the leader's group
    finally:
        started.stop(grace=5)
    assert not started.alive()
    psutil.wait_procs([child], timeout=5)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_a_group_measures_several_trees_or_processes_alone(tmp_path) -> None:  # noqa: ANN001
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"
    started = procs.start("parent", [sys.executable, "-c", code], log_path=tmp_path / "log")
    try:
        for _ in range(100):
            if len(procs.tree(started.pid)) >= 2:
                break
            time.sleep(0.1)
        whole = procs.Group((started.pid,))
        alone = procs.Group((started.pid,), recursive=False)
        assert len(whole.processes()) == 2 and [p.pid for p in alone.processes()] == [started.pid]
        assert whole.cpu_seconds() >= alone.cpu_seconds() > 0
        shared = procs.Group((started.pid,), proportional=True)
        assert 0 < shared.memory() <= whole.memory()  # PSS counts the memory the two share once
        assert procs.Group((2**22 + 12345,)).processes() == []  # a pid that is gone: nothing, no error
        monitor = procs.Monitor({"whole": whole, "alone": alone}, interval=0.05)
        monitor.start()
        time.sleep(0.3)
        monitor.stop()
        assert monitor.samples and monitor.peak_rss["whole"] >= monitor.peak_rss["alone"] > 0
    finally:
        started.stop(grace=5)


def test_a_tree_started_elsewhere_is_pinned_thread_by_thread(tmp_path) -> None:  # noqa: ANN001
    """The app servers of a stage are started by its supervisor: the bench pins them afterwards,
    every thread of every process of the tree, and what they start later inherits it."""
    if len(procs.cores()) < 2:
        import pytest

        pytest.skip("needs two CPUs")
    code = (
        "import subprocess, sys, threading, time; threading.Thread(target=time.sleep, args=(30,), daemon=True).start(); "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"
    )
    started = procs.start("parent", [sys.executable, "-c", code], log_path=tmp_path / "log")
    try:
        for _ in range(100):
            if len(procs.tree(started.pid)) >= 2:
                break
            time.sleep(0.1)
        core = procs.cores()[-1]
        assert procs.pin_tree(started.pid, core) >= 3  # the parent's two threads and the child's
        for proc in procs.tree(started.pid):
            for task in os.listdir(f"/proc/{proc.pid}/task"):
                assert os.sched_getaffinity(int(task)) == {core}
        assert procs.pin_tree(started.pid, None) == 0  # nothing to pin to: left alone
    finally:
        started.stop(grace=5)
