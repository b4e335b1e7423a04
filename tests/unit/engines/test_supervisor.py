"""The supervisor on small real processes (Python one-liners): dependency order, readiness,
a start that fails with its log, restarts with backoff, a stop that escalates to SIGKILL, the
stop order, and the port allocation that a restart reuses."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import pytest

from summit.engines import Command, Engine, EngineError, Layout, Supervisor
from summit.engines.layout import free_port
from summit.engines.process import alive
from summit.engines.supervisor import ordered

SERVE = (  # listens on its port until stopped; prints a line first
    "import socket, sys, time; print('hello from', sys.argv[1], flush=True); "
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
    "s.bind(('127.0.0.1', int(sys.argv[2]))); s.listen(); time.sleep(3600)"
)


class Toy(Engine):
    """A process that listens on its port; ready once the port answers."""

    kind = "toy"

    def __init__(self, name: str, needs: tuple[str, ...] = (), *, script: str = SERVE, ready_timeout: float = 10.0,
                 stop_signal: int = signal.SIGTERM, grace: float = 5.0, events: list[str] | None = None):
        super().__init__(name, "test", free_port(), needs)
        self.script, self.ready_timeout, self.stop_signal, self.grace = script, ready_timeout, stop_signal, grace
        self.events = events if events is not None else []

    def prepare(self, layout: Layout) -> None:
        self.events.append(f"prepare {self.name}")

    def command(self, layout: Layout) -> Command:
        return Command([sys.executable, "-c", self.script, self.name, str(self.port)], stop_signal=self.stop_signal, grace=self.grace)

    def ready(self, layout: Layout) -> bool:
        from summit.engines.layout import tcp_open

        return tcp_open(self.host, self.port, timeout=0.2)

    def started(self, layout: Layout) -> None:
        self.events.append(f"started {self.name}")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


def test_order_puts_each_engine_after_what_it_needs() -> None:
    a, b, c = Toy("a", needs=("b",)), Toy("b", needs=("c",)), Toy("c")
    assert [e.name for e in ordered([a, b, c])] == ["c", "b", "a"]
    with pytest.raises(EngineError, match="circle"):
        ordered([Toy("x", needs=("y",)), Toy("y", needs=("x",))])
    with pytest.raises(EngineError, match="needs z, which this stage does not run"):
        ordered([Toy("x", needs=("z",))])


async def test_start_in_order_log_output_and_stop_in_reverse(layout: Layout) -> None:
    events: list[str] = []
    told: list[str] = []
    engines = [Toy("web", needs=("db",), events=events), Toy("db", events=events)]
    supervisor = Supervisor(layout, engines, on_event=told.append)
    await supervisor.start()
    try:
        assert events == ["prepare db", "started db", "prepare web", "started web"]
        assert all(r["state"] == "running" and alive(r["pid"]) for r in supervisor.records())
        assert "hello from db" in layout.log("db").read_text()
    finally:
        await supervisor.stop()
    assert [line.split()[0] for line in told if "stopped" in line] == ["web", "db"]
    assert all(r["state"] == "stopped" and r["pid"] is None for r in supervisor.records())


async def test_an_engine_that_exits_while_starting_fails_with_its_log(layout: Layout) -> None:
    crashing = Toy("broken", script="import sys; print('cannot read my config', flush=True); sys.exit(3)")
    supervisor = Supervisor(layout, [Toy("first"), crashing], on_event=lambda text: None)
    with pytest.raises(EngineError, match=r"(?s)broken exited with code 3 while starting.*cannot read my config"):
        await supervisor.start()
    first = supervisor.unit("first")
    assert first.state == "stopped" and not first.process.running()  # what had started is stopped again


async def test_an_engine_that_never_answers_times_out(layout: Layout) -> None:
    silent = Toy("silent", script="import time; time.sleep(60)", ready_timeout=0.5)
    supervisor = Supervisor(layout, [silent], on_event=lambda text: None)
    started = time.monotonic()
    with pytest.raises(EngineError, match="did not answer within 0.5 s"):
        await supervisor.start()
    assert time.monotonic() - started < 10
    assert not supervisor.unit("silent").process.running()


async def test_a_dead_engine_is_restarted_with_backoff(layout: Layout) -> None:
    told: list[str] = []
    supervisor = Supervisor(layout, [Toy("db")], on_event=told.append, poll_interval=0.05)
    stop = asyncio.Event()
    await supervisor.start()
    watching = asyncio.create_task(supervisor.watch(stop))
    try:
        unit = supervisor.unit("db")
        first_pid = unit.process.pid
        unit.process.kill(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not (unit.state == "running" and unit.process.pid != first_pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert unit.state == "running" and unit.process.pid != first_pid and unit.process.running()
        assert unit.restarts == 1
        assert any("db exited with code -9" in line and "restarting in 1 s" in line for line in told)
        unit.process.kill(signal.SIGKILL)  # dies again at once: the delay doubles
        while "restarting in 2 s" not in " ".join(told) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert any("restarting in 2 s" in line for line in told)
    finally:
        stop.set()
        await watching
        await supervisor.stop()


async def test_stop_escalates_to_sigkill_after_the_grace(layout: Layout) -> None:
    stubborn = Toy("stubborn", grace=0.3, script="import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SERVE)
    supervisor = Supervisor(layout, [stubborn], on_event=lambda text: None)
    await supervisor.start()
    started = time.monotonic()
    await supervisor.stop()
    assert time.monotonic() - started < 5
    assert supervisor.unit("stubborn").process.poll() == -signal.SIGKILL


def test_ports_are_kept_for_the_next_start(layout: Layout) -> None:
    first = layout.ports(["a", "b"])
    assert len(set(first.values())) == 2
    assert layout.ports(["b", "a", "c"])["a"] == first["a"]
    assert Layout(layout.data_dir).ports(["a"]) == {"a": first["a"]}


def test_secrets_are_generated_once_and_owner_only(layout: Layout) -> None:
    value = layout.secret("postgres-summit")
    assert len(value) >= 24 and layout.secret("postgres-summit") == value
    path = layout.secrets_dir / "postgres-summit"
    assert path.stat().st_mode & 0o777 == 0o600
    assert layout.secrets_dir.stat().st_mode & 0o777 == 0o700
