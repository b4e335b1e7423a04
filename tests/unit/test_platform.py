"""summit.platform: one adapter per port, opened from the blueprint, closed together."""

from __future__ import annotations

from pathlib import Path

from summit.blueprint import load_blueprint
from summit.platform import PORTS, Platform
from summit.ports import SearchIndex
from summit.wiring import ADAPTERS


def test_every_port_of_the_wiring_is_a_field_of_the_platform() -> None:
    assert sorted(PORTS) == sorted(ADAPTERS)
    assert list(Platform.__dataclass_fields__) == ["blueprint", "db", *PORTS[1:]]


async def test_the_platform_opens_the_search_port_lazily(tmp_path: Path) -> None:
    data = tmp_path / "data"
    platform = Platform.from_blueprint(load_blueprint(environ={}, overrides={"data_dir": str(data)}))
    async with platform:
        assert isinstance(platform.search, SearchIndex)
        assert not (data / "search.db").exists()  # nothing opened before the first call
        await platform.search.index("user", "1", {"name": "alice"})
        assert [hit.doc_id for hit in (await platform.search.query("ali")).hits] == ["1"]
    assert (data / "search.db").is_file()
