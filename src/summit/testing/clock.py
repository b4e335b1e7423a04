"""A clock a test moves by hand, for code that takes an injectable clock (``clock=time.time``).

    clock = ManualClock()
    queue = SQLiteQueue.from_url("sqlite://", clock=clock)
    ...
    clock.advance(31)   # the 30-second visibility timeout has run out, without sleeping

It stands still until advanced, so "not yet" and "now" can both be asserted exactly on any
machine. Reads and moves are locked: adapters may read it from their own threads.
"""

from __future__ import annotations

import math
import threading

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, in unix seconds: the start of an hour and of a day


class ManualClock:
    """Unix seconds that change only when the test says so."""

    def __init__(self, now: float = T0):
        self._now = float(now)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (a clock never runs backwards)."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"a clock moves forward by a finite number of seconds >= 0, not {seconds!r}")
        with self._lock:
            self._now += seconds

    def __repr__(self) -> str:
        return f"ManualClock({self():.3f})"
