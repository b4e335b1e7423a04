"""The supervisor: start a stage's engines in dependency order, restart any that dies (with
backoff), stop them all in reverse order. Like ``docker compose up`` in the foreground.

Each start is: ``prepare`` (render files, create data) -> spawn -> poll ``ready`` until it answers
(or the process exits, or ``ready_timeout`` passes) -> ``started`` (bootstrap). A process that
exits while the stage runs is started again after 1, 2, 4 ... up to ``max_backoff`` seconds; the
delay goes back to 1 s once it has stayed up for a minute. An engine with a ``maintain_interval``
has its ``maintain`` called that often while it runs (HAProxy renews its certificate); a failure
is told and tried again within a minute. Every change is published through
``on_change`` (the stage's state file) and told through ``on_event`` (the console, a log).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from summit.engines.layout import Engine, EngineError, Layout
from summit.engines.process import Process, tail

STABLE_AFTER = 60.0  # seconds up after which a restart counts as a fresh failure again


@dataclass
class Unit:
    """An engine and what the supervisor knows of its process."""

    engine: Engine
    process: Process | None = None
    state: str = "stopped"  # starting, running, restarting, failed, stopped
    restarts: int = 0
    failures: int = 0  # consecutive, for the backoff
    retry_at: float = 0.0
    last_error: str = ""
    started_at: float = 0.0
    maintain_at: float = 0.0  # monotonic time of the next ``maintain`` call (0: none due)
    history: list[str] = field(default_factory=list)

    def record(self) -> dict[str, object]:
        e = self.engine
        return {
            "name": e.name, "kind": e.kind, "role": e.role, "address": e.address,
            "pid": self.process.pid if self.process and self.process.running() else None,
            "state": self.state, "started_at": self.started_at, "restarts": self.restarts, "error": self.last_error,
        }


def ordered(engines: list[Engine]) -> list[Engine]:
    """The engines with every engine after those it needs (a stable topological order)."""
    by_name = {e.name: e for e in engines}
    done: dict[str, Engine] = {}

    def visit(engine: Engine, path: tuple[str, ...]) -> None:
        if engine.name in done:
            return
        if engine.name in path:
            raise EngineError(f"engines need each other in a circle: {' -> '.join((*path, engine.name))}")
        for need in engine.needs:
            if need not in by_name:
                raise EngineError(f"{engine.name} needs {need}, which this stage does not run")
            visit(by_name[need], (*path, engine.name))
        done[engine.name] = engine

    for engine in engines:
        visit(engine, ())
    return list(done.values())


class Supervisor:
    def __init__(
        self,
        layout: Layout,
        engines: list[Engine],
        *,
        on_event: Callable[[str], None] = print,
        on_change: Callable[[list[dict[str, object]]], None] = lambda records: None,
        max_backoff: float = 30.0,
        poll_interval: float = 0.25,
    ):
        self.layout = layout
        self.units = [Unit(e) for e in ordered(engines)]
        self.on_event = on_event
        self.on_change = on_change
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.stopping = False

    def unit(self, name: str) -> Unit:
        for unit in self.units:
            if unit.engine.name == name:
                return unit
        raise KeyError(name)

    def records(self) -> list[dict[str, object]]:
        return [u.record() for u in self.units]

    def _changed(self) -> None:
        self.on_change(self.records())

    # ---- starting -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every engine in order; on a failure, stop what started and raise EngineError."""
        for unit in self.units:
            try:
                await self._start(unit)
            except BaseException:
                await self.stop()
                raise

    async def _start(self, unit: Unit) -> None:
        engine, layout = unit.engine, self.layout
        unit.state = "starting"
        self._changed()
        began = time.monotonic()
        note = await asyncio.to_thread(engine.prepare, layout)
        if note:
            self.on_event(f"{engine.name}: {note}")
        process = Process(engine.name, engine.command(layout), layout.log(engine.name))
        unit.process = process
        process.start()
        deadline = time.monotonic() + engine.ready_timeout
        while not await asyncio.to_thread(engine.ready, layout):
            code = process.poll()
            if code is not None:
                unit.state = "failed"
                unit.last_error = f"exited with code {code} while starting"
                self._changed()
                raise EngineError(f"{engine.name} exited with code {code} while starting; the end of its log "
                                  f"({layout.log(engine.name)}):\n{tail(layout.log(engine.name))}")
            if time.monotonic() > deadline:
                await asyncio.to_thread(process.stop)
                unit.state = "failed"
                unit.last_error = f"not ready after {engine.ready_timeout:g} s"
                self._changed()
                raise EngineError(f"{engine.name} did not answer within {engine.ready_timeout:g} s; the end of its log "
                                  f"({layout.log(engine.name)}):\n{tail(layout.log(engine.name))}")
            await asyncio.sleep(0.05)
        await asyncio.to_thread(engine.started, layout)
        unit.state, unit.last_error, unit.started_at = "running", "", time.time()
        unit.maintain_at = time.monotonic() + engine.maintain_interval if engine.maintain_interval > 0 else 0.0
        self._changed()
        self.on_event(f"{engine.name} ({engine.kind}, {engine.role}) ready at {engine.address} "
                      f"in {time.monotonic() - began:.1f} s (pid {process.pid})")

    # ---- watching -------------------------------------------------------------------------------

    async def watch(self, stop: asyncio.Event) -> None:
        """Restart what dies until ``stop`` is set."""
        while not stop.is_set():
            await self.check_once()
            try:
                await asyncio.wait_for(stop.wait(), self.poll_interval)
            except asyncio.TimeoutError:
                pass

    async def check_once(self) -> None:
        now = time.monotonic()
        for unit in self.units:
            if self.stopping:
                return
            if unit.state == "running" and unit.process is not None and not unit.process.running():
                code = unit.process.poll()
                up_for = time.time() - unit.started_at
                unit.failures = 1 if up_for > STABLE_AFTER else unit.failures + 1
                delay = min(self.max_backoff, 2 ** (unit.failures - 1))
                unit.state, unit.retry_at = "restarting", now + delay
                unit.last_error = f"exited with code {code}"
                self._changed()
                self.on_event(f"{unit.engine.name} exited with code {code} after {up_for:.0f} s; restarting in {delay:g} s")
            elif unit.state in ("restarting", "failed") and unit.retry_at and now >= unit.retry_at:
                unit.restarts += 1
                try:
                    await self._start(unit)
                except EngineError as error:
                    unit.failures += 1
                    delay = min(self.max_backoff, 2 ** (unit.failures - 1))
                    unit.state, unit.retry_at, unit.last_error = "failed", time.monotonic() + delay, str(error).splitlines()[0]
                    self._changed()
                    self.on_event(f"{unit.engine.name}: restart failed ({unit.last_error}); next try in {delay:g} s")
        for unit in self.units:
            if self.stopping:
                return
            if unit.state == "running" and unit.maintain_at and time.monotonic() >= unit.maintain_at:
                await self._maintain(unit)

    async def _maintain(self, unit: Unit) -> None:
        interval = unit.engine.maintain_interval
        unit.maintain_at = time.monotonic() + interval
        try:
            note = await asyncio.to_thread(unit.engine.maintain, self.layout)
        except Exception as error:  # noqa: BLE001  (told, and tried again soon: the engine keeps running)
            unit.maintain_at = time.monotonic() + min(interval, 60.0)
            self.on_event(f"{unit.engine.name}: maintenance failed ({error}); trying again in {min(interval, 60.0):g} s")
            return
        if note:
            self.on_event(f"{unit.engine.name}: {note}")

    # ---- stopping -------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop every engine, the last started first."""
        self.stopping = True
        for unit in reversed(self.units):
            if unit.process is not None and unit.process.pid is not None:
                was_running = unit.process.running()
                code = await asyncio.to_thread(unit.process.stop)
                await asyncio.to_thread(unit.engine.stopped, self.layout)
                if was_running:
                    self.on_event(f"{unit.engine.name} stopped (exit code {code})")
            unit.state = "stopped"
        self._changed()

    async def run(self, stop: asyncio.Event, *, on_ready: Callable[[], None] = lambda: None) -> None:
        """Start everything, call ``on_ready``, restart what dies until ``stop`` is set, stop everything."""
        await self.start()
        try:
            on_ready()
            await self.watch(stop)
        finally:
            await self.stop()
