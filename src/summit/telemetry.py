"""Counters of what the platform's ports do, cheap enough for the hot path.

Every port's base class calls ``instrument`` on each adapter class, so every call of a port
operation is counted whatever the adapter: a dictionary increment, no lock, no label lookup.
Prometheus reads the counters only when ``/metrics`` is scraped (``PortCollector``).

A request can tally what it causes: ``RequestContextMiddleware`` opens a ``RequestTally`` for each
request, and the sql port adds each statement executed while it runs, so ``/metrics`` can tell
how many statements a route costs and how many of its requests reached the database at all.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from typing import Any

# (port, operation) -> calls, in this process
OPERATIONS: Counter[tuple[str, str]] = Counter()
# (key namespace, "hit" | "miss") -> cache reads, in this process
CACHE_LOOKUPS: Counter[tuple[str, str]] = Counter()

_NAMESPACE = re.compile(r"[a-z0-9_.-]{1,32}")


class RequestTally:
    """What one request caused, counted while it runs."""

    __slots__ = ("sql",)

    def __init__(self) -> None:
        self.sql = 0


_tally: ContextVar[RequestTally | None] = ContextVar("summit_request_tally", default=None)


def open_tally() -> tuple[RequestTally, Token[RequestTally | None]]:
    tally = RequestTally()
    return tally, _tally.set(tally)


def close_tally(token: Token[RequestTally | None]) -> None:
    _tally.reset(token)


def sql_statement() -> None:
    tally = _tally.get()
    if tally is not None:
        tally.sql += 1


def instrument(cls: type, port: str, operations: dict[str, str], *, each_call: Callable[[], None] | None = None) -> None:
    """Count each call of the methods ``cls`` itself defines among ``operations`` (method name ->
    operation label). Abstract methods and methods already counted are left as they are."""
    for method, operation in operations.items():
        fn = cls.__dict__.get(method)
        if fn is None or getattr(fn, "__isabstractmethod__", False) or getattr(fn, "_summit_counted", False):
            continue
        setattr(cls, method, _counted(fn, (port, operation), each_call))


def _counted(fn: Callable[..., Any], key: tuple[str, str], each_call: Callable[[], None] | None) -> Callable[..., Any]:
    if each_call is None:
        def counted(*args: Any, **kwargs: Any) -> Any:
            OPERATIONS[key] += 1
            return fn(*args, **kwargs)
    else:
        def counted(*args: Any, **kwargs: Any) -> Any:
            OPERATIONS[key] += 1
            each_call()
            return fn(*args, **kwargs)
    functools.update_wrapper(counted, fn)
    counted._summit_counted = True  # type: ignore[attr-defined]
    return counted


def count_cache_reads(cls: type) -> None:
    """Count the hits and misses of ``cls.get`` and ``cls.get_many`` by key namespace (the key's
    text before ':')."""
    fn = cls.__dict__.get("get")
    if fn is not None and not getattr(fn, "__isabstractmethod__", False) and not getattr(fn, "_summit_reads_counted", False):
        async def get(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
            value = await fn(self, key, *args, **kwargs)
            CACHE_LOOKUPS[(namespace(key), "miss" if value is None else "hit")] += 1
            return value

        functools.update_wrapper(get, fn)
        get._summit_reads_counted = True  # type: ignore[attr-defined]
        cls.get = get  # type: ignore[attr-defined]
    many = cls.__dict__.get("get_many")
    if many is not None and not getattr(many, "_summit_reads_counted", False):
        async def get_many(self: Any, keys: Any, *args: Any, **kwargs: Any) -> Any:
            keys = list(keys)
            found = await many(self, keys, *args, **kwargs)
            for key in keys:
                CACHE_LOOKUPS[(namespace(key), "hit" if key in found else "miss")] += 1
            return found

        functools.update_wrapper(get_many, many)
        get_many._summit_reads_counted = True  # type: ignore[attr-defined]
        cls.get_many = get_many  # type: ignore[attr-defined]


def namespace(key: object) -> str:
    """The label a cache key is counted under: a bounded set, never the key itself."""
    head = key.partition(":")[0] if isinstance(key, str) and ":" in key else ""
    label = _labels.get(head)
    if label is None:
        label = head if _NAMESPACE.fullmatch(head) else "other"
        if len(_labels) < 1024:
            _labels[head] = label
    return label


_labels: dict[str, str] = {}  # key head -> label, remembered (a bounded set of heads)


class PortCollector:
    """A Prometheus collector of the port counters (register it on an app's registry)."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        operations = CounterMetricFamily("summit_port_operations", "Calls into each port", labels=["port", "operation"])
        for (port, operation), value in sorted(OPERATIONS.items()):
            operations.add_metric([port, operation], value)
        yield operations
        lookups = CounterMetricFamily("summit_cache_lookups", "Cache reads by key namespace", labels=["namespace", "result"])
        for (name, result), value in sorted(CACHE_LOOKUPS.items()):
            lookups.add_metric([name, result], value)
        yield lookups
