"""``summit guard findings`` and ``summit guard archive``: evaluation, filters, text and JSON output,
archiving, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from summit.cli import guard as guard_cli  # noqa: F401  (registers the commands)
from summit.cli import main

from guard_script import Script


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's console took its width when it was first imported (80 columns without a
    terminal, as in CI): wide enough for the tables' whole cells here."""
    monkeypatch.setattr(main.console, "width", 250)

BRUTE_FORCE = "UnauthorizedAccess:User/BruteForce"
STUFFING = "CredentialAccess:User/CredentialStuffing"


@pytest.fixture
def script(tmp_path: Path) -> Iterator[Script]:
    s = Script(tmp_path)
    yield s
    s.log.close()


def cli(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main.app, ["guard", *args], env={"COLUMNS": "250"})


def test_the_commands(script: Script, tmp_path: Path) -> None:
    script.sign_up("7", "10.0.0.1")
    for _ in range(10):
        script.fail("7", "203.0.113.1")
    for n in range(10):
        script.fail(None, "198.51.100.7")
    result = cli("findings", "--data-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["count"] == 2 and listed["run"]["audit_records"] == 21
    assert [f["type"] for f in listed["findings"]] == [STUFFING, BRUTE_FORCE]  # newest first
    assert listed["findings"][0]["severity_label"] == "medium" and len(listed["findings"][0]["evidence"]) == 10

    only = json.loads(cli("findings", "--data-dir", str(tmp_path), "--json", "--type", "UnauthorizedAccess:*").stdout)
    assert [f["type"] for f in only["findings"]] == [BRUTE_FORCE] and only["run"]["audit_records"] == 0
    recent = json.loads(cli("findings", "--data-dir", str(tmp_path), "--json", "--since", "2h").stdout)
    assert recent["count"] == 0  # the records are from 2026-01-01 (the script's clock)
    since = json.loads(cli("findings", "--data-dir", str(tmp_path), "--json", "--since", "2026-01-01T00:00:15Z").stdout)
    assert [f["type"] for f in since["findings"]] == [STUFFING]

    table = cli("findings", "--data-dir", str(tmp_path))
    assert table.exit_code == 0 and "medium 5.0" in table.output and "read 0 audit record(s)" in table.output
    assert "UnauthorizedAccess:User/BruteForce" in table.output and "10 failed sign-ins on account 7" in table.output

    brute = listed["findings"][1]["id"]
    archived = cli("archive", brute, "--data-dir", str(tmp_path))
    assert archived.exit_code == 0 and f"archived {brute}" in archived.output
    assert [f["id"] for f in json.loads(cli("findings", "--data-dir", str(tmp_path), "--json").stdout)["findings"]] == [listed["findings"][0]["id"]]
    both = json.loads(cli("findings", "--data-dir", str(tmp_path), "--json", "--archived", "--no-update").stdout)
    assert [(f["id"], f["archived"]) for f in both["findings"]][1] == (brute, True) and both["run"] is None

    missing = cli("archive", "0123456789abcdef", "--data-dir", str(tmp_path))
    assert missing.exit_code == 1 and "no finding" in missing.output
    bad_type = cli("findings", "--data-dir", str(tmp_path), "--type", "Backdoor:*")
    assert bad_type.exit_code == 2 and "matches no finding type" in bad_type.output
    assert cli("types").exit_code == 0


def test_findings_on_an_empty_data_directory(tmp_path: Path) -> None:
    result = cli("findings", "--data-dir", str(tmp_path))
    assert result.exit_code == 0 and "no findings" in result.output
    assert "no access log found" in result.output and "logs/summit-up.log" in result.output
    assert (tmp_path / "guard" / "guard.db").exists()


def test_a_missing_data_directory_is_an_error(tmp_path: Path) -> None:
    result = cli("findings", "--data-dir", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and "no data directory" in result.output
    assert not (tmp_path / "nowhere").exists()
