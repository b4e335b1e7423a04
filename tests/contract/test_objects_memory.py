"""What is particular to the in-memory object store (the objects contract runs on it in
``test_objects.py``)."""

from __future__ import annotations

import pytest

from summit.adapters.memory.objects import MemoryObjectStore
from summit.wiring import open_port


async def test_each_instance_has_its_own_objects() -> None:
    first, second = MemoryObjectStore.from_url("memory://"), MemoryObjectStore.from_url("memory://")
    await first.put("k", b"first")
    assert [info.key for info in await first.list()] == ["k"]
    assert await second.list() == []


def test_opened_by_the_wiring() -> None:
    assert isinstance(open_port("objects", "memory://"), MemoryObjectStore)


@pytest.mark.parametrize("url", ["memory://name", "memory://?max_items=3", "memory:///path", "file:///x"])
def test_url_errors(url: str) -> None:
    with pytest.raises(ValueError, match="memory"):
        MemoryObjectStore.from_url(url)
