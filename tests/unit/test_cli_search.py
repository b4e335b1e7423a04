"""``summit search``: reindex feeds the search port from the function the blueprint's
``app.search_documents`` names (here a small app of the test's own), query reads it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from summit.cli import main, search  # noqa: F401  (registers the commands)

runner = CliRunner()
SEARCHY = '''
from summit.ports import Document


async def documents(platform):
    assert platform.search is not None and platform.db is not None
    for i in range(1234):
        yield Document("post", str(i), {"caption": f"bulk caption number {i}"}, rank=i % 3)
    yield ("user", "alice", {"name": "Alice Liddell", "bio": "curious"}, 5)   # a tuple will do
    yield Document("tag", "wonderland", {"tag": "wonderland"}, rank=2)


async def not_documents(platform):
    yield {"kind": "user"}


def not_a_generator(platform):
    return [1, 2]
'''


def summit(*args: str, **env: str):  # noqa: ANN003, ANN201
    return runner.invoke(main.app, list(args), env={"SUMMIT_APP__SEARCH_DOCUMENTS": "searchy:documents", **env})


def said(result) -> str:  # noqa: ANN001
    """What a command printed, its lines joined (rich wraps them at the terminal's width)."""
    return " ".join(result.output.split())


@pytest.fixture(autouse=True)
def searchy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "searchy.py").write_text(SEARCHY)
    monkeypatch.syspath_prepend(str(tmp_path / "apps"))
    monkeypatch.chdir(tmp_path)  # no ./summit.toml
    yield
    sys.modules.pop("searchy", None)


def test_reindex_then_query(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    done = summit("search", "reindex", "-d", data)
    assert done.exit_code == 0, done.output
    assert "indexed 1,236 documents (post 1,234, tag 1, user 1)" in said(done) and "documents/s" in said(done)
    assert (tmp_path / "data" / "search.db").is_file()

    found = summit("search", "query", "ali", "-d", data)
    assert found.exit_code == 0, found.output
    assert "user" in found.output and "alice" in found.output and "next page" not in found.output

    first = summit("search", "query", "bulk caption", "-d", data, "--kind", "post", "-n", "100", "--json")
    assert first.exit_code == 0, first.output
    page = json.loads(first.stdout)
    assert len(page["hits"]) == 100 and {hit["kind"] for hit in page["hits"]} == {"post"} and page["next_cursor"]
    second = summit("search", "query", "bulk caption", "-d", data, "-k", "post", "-n", "100", "--json", "--cursor", page["next_cursor"])
    assert not {hit["id"] for hit in page["hits"]} & {hit["id"] for hit in json.loads(second.stdout)["hits"]}

    again = summit("search", "reindex", "-d", data)  # the index is emptied first: the same count
    assert "indexed 1,236 documents" in said(again)
    nothing = summit("search", "query", "cheshire", "-d", data)
    assert nothing.exit_code == 0 and "no hits in the index's 1,236 documents" in said(nothing)


def test_a_refused_query_says_what_to_fix(tmp_path: Path) -> None:
    for args in (["x" * 201], ["a b c d e f g h i"], ["alice", "-n", "0"], ["alice", "--cursor", "nonsense"]):
        result = summit("search", "query", *args, "-d", str(tmp_path / "data"))
        assert result.exit_code == 2, result.output
    assert "at most 200 characters" in said(summit("search", "query", "x" * 201, "-d", str(tmp_path / "data")))


def test_an_app_without_search_documents(tmp_path: Path) -> None:
    result = summit("search", "reindex", "-d", str(tmp_path / "data"), SUMMIT_APP__SEARCH_DOCUMENTS="")
    assert result.exit_code == 2 and "app.search_documents names no function" in said(result)
    missing = summit("search", "reindex", "-d", str(tmp_path / "data"), SUMMIT_APP__SEARCH_DOCUMENTS="searchy:missing")
    assert missing.exit_code == 2 and "'searchy' has no function 'missing'" in said(missing)


@pytest.mark.parametrize(("function", "complaint"), [
    ("not_documents", "yields Document or (kind, id, fields, rank)"),
    ("not_a_generator", "must be an async generator function"),
])
def test_what_the_app_yields_must_be_documents(tmp_path: Path, function: str, complaint: str) -> None:
    result = summit("search", "reindex", "-d", str(tmp_path / "data"), SUMMIT_APP__SEARCH_DOCUMENTS=f"searchy:{function}")
    assert result.exit_code == 1 and complaint in said(result), result.output


def test_the_photos_documents_need_a_migrated_database(tmp_path: Path) -> None:
    result = summit("search", "reindex", "-d", str(tmp_path / "data"), SUMMIT_APP__SEARCH_DOCUMENTS="photos.search:documents")
    assert result.exit_code == 1, result.output
    assert "reading the app's data failed" in said(result) and "summit db upgrade" in said(result)


def test_a_stage_that_is_not_running(tmp_path: Path) -> None:
    result = summit("search", "query", "alice", "-d", str(tmp_path / "data"), "--stage", "1+")
    assert result.exit_code == 2 and "summit up --stage 1+" in said(result), result.output
