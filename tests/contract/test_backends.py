"""The tables of adapters the contract suites run against (``summit.testing.backends``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from summit.testing.backends import BACKENDS, Backend, Entry, backend_fixture
from summit.wiring import ADAPTERS, adapter_class, scheme_of

LINES = [pytest.param(port, line, id=f"{port}-{line.id}") for port, lines in BACKENDS.items() for line in lines]


def test_every_port_has_a_table_with_unique_ids() -> None:
    assert sorted(BACKENDS) == sorted(ADAPTERS)
    for port, lines in BACKENDS.items():
        ids = [line.id for line in lines]
        assert ids and len(set(ids)) == len(ids), (port, ids)


@pytest.mark.parametrize(("port", "line"), LINES)
def test_a_line_needing_a_server_carries_a_registered_marker(request: pytest.FixtureRequest, port: str, line) -> None:  # noqa: ANN001
    """So that ``pytest -m "not <engine>"`` needs no server, and an embedded line always runs."""
    entry: Entry = line.values[0]
    registered = {marker.split(":")[0] for marker in request.config.getini("markers")}
    names = {mark.name for mark in line.marks}
    if entry.engine is None:
        assert names == set(), f"{line.id}: an embedded adapter needs no marker"
    else:
        assert names and names <= registered, f"{line.id}: mark it with its engine's marker"


@pytest.mark.parametrize(("port", "line"), LINES)
async def test_each_line_names_an_adapter_of_its_port(port: str, line, tmp_path: Path) -> None:  # noqa: ANN001
    entry: Entry = line.values[0]
    assert scheme_of(entry.url) in ADAPTERS[port]
    if entry.engine is None:  # an embedded adapter opens from its URL alone
        url = entry.url.format(tmp=tmp_path)
        adapter = Backend(url).open(port)
        try:
            assert isinstance(adapter, adapter_class(port, url))
        finally:
            await adapter.close()


def test_an_unknown_port_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no table of adapters for port 'quuee'; the tables are: cache, cdn, mail"):
        backend_fixture("quuee")
