"""summit.wiring: URLs to adapters through one explicit table."""

from __future__ import annotations

import pytest

from summit.adapters.files.objects import FileObjectStore
from summit.adapters.memory.cache import MemoryCache
from summit.adapters.memory.objects import MemoryObjectStore
from summit.adapters.sqlite.database import SQLiteDatabase
from summit.adapters.sqlite.search import SQLiteSearchIndex
from summit.wiring import ADAPTERS, WiringError, adapter_class, open_port, scheme_of


def test_every_table_entry_names_module_and_class() -> None:
    for port, table in ADAPTERS.items():
        for scheme, target in table.items():
            module, _, name = target.partition(":")
            assert module.startswith("summit.adapters.") and name, (port, scheme, target)


@pytest.mark.parametrize(
    ("port", "url", "cls"),
    [
        ("sql", "sqlite:///x.db", SQLiteDatabase),
        ("objects", "file://.summit/objects", FileObjectStore),
        ("objects", "memory://", MemoryObjectStore),
        ("cache", "memory://?max_items=10", MemoryCache),
        ("search", "sqlite:///search.db", SQLiteSearchIndex),
    ],
)
def test_adapter_class(port: str, url: str, cls: type) -> None:
    assert adapter_class(port, url) is cls


def test_open_port_builds_from_the_url() -> None:
    cache = open_port("cache", "memory://?max_items=7")
    assert isinstance(cache, MemoryCache) and cache.max_items == 7


def test_unknown_port_lists_the_ports() -> None:
    with pytest.raises(WiringError, match="unknown port 'kv'; the ports are: cache, cdn, mail, objects, queue, search, sql"):
        adapter_class("kv", "memory://")


def test_unknown_scheme_with_did_you_mean() -> None:
    with pytest.raises(WiringError) as caught:
        adapter_class("cache", "memroy://")
    message = str(caught.value)
    assert "no cache adapter for memroy://" in message
    assert "did you mean memory://?" in message
    assert "the cache port takes: memory://" in message


def test_unknown_scheme_without_a_close_match() -> None:
    with pytest.raises(WiringError) as caught:
        adapter_class("objects", "zzzz://bucket")
    assert "did you mean" not in str(caught.value)
    assert "the objects port takes: file://, memory://" in str(caught.value)


def test_wiring_error_is_a_value_error() -> None:
    assert issubclass(WiringError, ValueError)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("sqlite+aiosqlite:///x.db", "sqlite"),
        ("SQLite:///x.db", "sqlite"),
        ("memory://", "memory"),
        ("file://.summit/objects", "file"),
    ],
)
def test_scheme_of(url: str, scheme: str) -> None:
    assert scheme_of(url) == scheme


def test_scheme_with_a_driver_picks_the_adapter() -> None:
    assert adapter_class("sql", "sqlite+aiosqlite:///x.db") is SQLiteDatabase
    with pytest.raises(WiringError, match="no sql adapter for mysql://"):
        adapter_class("sql", "mysql+pymysql://db/app")


@pytest.mark.parametrize("url", [".summit/app.db", "/var/lib/app.db", "", "//host/path"])
def test_url_without_a_scheme(url: str) -> None:
    with pytest.raises(WiringError, match="is not a URL: it needs a scheme"):
        open_port("sql", url)
