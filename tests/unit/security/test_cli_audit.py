"""``summit audit verify`` and ``summit audit search``: exit codes, text and JSON output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from summit.cli import audit as audit_cli  # noqa: F401  (registers the commands)
from summit.cli import main
from summit.cli.audit import parse_time
from summit.security.audit import AuditLog
from summit.security.audit.format import file_name

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main.app, ["audit", *args], env={"COLUMNS": "200"})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Three records of two users, 30 minutes apart, in one closed chain."""
    now = [T0]
    log = AuditLog(tmp_path, clock=lambda: now[0]).start()
    for user, action, status in [("1", "auth:SignIn", 200), ("2", "auth:SignIn", 401), ("1", "posts:Create", 201)]:
        log.submit(action, user_id=user, resource="arn:summit:photos:::post/5", status=status).result(timeout=10)
        now[0] += 1800
    log.close()
    return tmp_path


def chain_dir(data: Path) -> Path:
    [chain] = [p for p in (data / "audit").iterdir() if p.is_dir()]
    return chain


def test_verify_an_intact_log(data: Path) -> None:
    result = run("verify", "--data-dir", str(data), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["errors"] == []
    assert report["summary"] | {"chains": 1, "closed": 1, "files": 2, "records": 3} == report["summary"]
    assert (report["summary"]["first_time"], report["summary"]["last_time"]) == ("2026-01-01T00:00:00.000Z", "2026-01-01T01:00:00.000Z")
    text = run("verify", "--data-dir", str(data))
    assert text.exit_code == 0 and "intact" in text.output and "records" in text.output


def test_verify_a_tampered_log_exits_1(data: Path) -> None:
    path = chain_dir(data) / file_name(1)
    path.write_bytes(path.read_bytes().replace(b'"status":401', b'"status":200'))
    result = run("verify", "--data-dir", str(data), "--json")
    assert result.exit_code == 1
    [error] = json.loads(result.stdout)["errors"]
    assert (error["code"], error["file"], error["chain"]) == ("file_changed", file_name(1), chain_dir(data).name)
    text = run("verify", "--data-dir", str(data))
    assert text.exit_code == 1 and "file_changed" in text.output and "1 problem(s)" in text.output


def test_verify_an_unsealed_log_warns_and_exits_0(data: Path) -> None:
    os.unlink(chain_dir(data) / "00000002.digest.json")  # as if the writer had crashed
    result = run("verify", "--data-dir", str(data), "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert [w["code"] for w in report["warnings"]] == ["unsealed"] and report["summary"]["unsealed"] == 1


def test_verify_against_a_pinned_key(data: Path, tmp_path: Path) -> None:
    assert run("verify", "--data-dir", str(data), "--public-key", str(data / "keys" / "audit-signing.pub")).exit_code == 0
    result = run("verify", "--data-dir", str(data), "--public-key", str(tmp_path / "nope.pub"))
    assert result.exit_code == 2 and "cannot read the audit public key" in result.output


def test_verify_an_empty_data_directory(tmp_path: Path) -> None:
    result = run("verify", "--data-dir", str(tmp_path), "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["summary"]["chains"] == 0


def test_search_json(data: Path) -> None:
    result = run("search", "--data-dir", str(data), "--user", "1", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert (found["count"], found["truncated"]) == (2, False)
    assert [r["action"] for r in found["records"]] == ["auth:SignIn", "posts:Create"]
    assert found["records"][0]["chain"] == chain_dir(data).name


@pytest.mark.parametrize(
    ("args", "actions"),
    [
        (["--action", "auth:*"], ["auth:SignIn", "auth:SignIn"]),
        (["--result", "failure"], ["auth:SignIn"]),
        (["--resource", "*post/5"], ["auth:SignIn", "auth:SignIn", "posts:Create"]),
        (["--since", "2026-01-01T00:30:00Z"], ["auth:SignIn", "posts:Create"]),
        (["--until", "2026-01-01T00:30"], ["auth:SignIn"]),
        (["--limit", "1", "--newest-first"], ["posts:Create"]),
    ],
)
def test_search_options(data: Path, args: list[str], actions: list[str]) -> None:
    result = run("search", "--data-dir", str(data), "--json", *args)
    assert result.exit_code == 0, result.output
    assert [r["action"] for r in json.loads(result.stdout)["records"]] == actions


def test_search_text_and_limit(data: Path) -> None:
    result = run("search", "--data-dir", str(data), "--limit", "2")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("2026-01-01T00:30:00.000Z  auth:SignIn  user=2")
    assert "failure 401" in lines[1] and "more match" in result.output
    assert "no matching records" in run("search", "--data-dir", str(data), "--user", "9").output


@pytest.mark.parametrize("args", [["--since", "yesterday"], ["--result", "maybe"], ["--limit", "0"]])
def test_search_bad_options_exit_2(data: Path, args: list[str]) -> None:
    assert run("search", "--data-dir", str(data), *args).exit_code == 2


def test_parse_time() -> None:
    assert parse_time("2h", now=T0) == "2025-12-31T22:00:00.000Z"
    assert parse_time("7d", now=T0) == "2025-12-25T00:00:00.000Z"
    assert parse_time("2026-01-01") == "2026-01-01T00:00:00.000Z"
    assert parse_time("2026-01-01T02:00:00+02:00") == "2026-01-01T00:00:00.000Z"
    assert parse_time(None) is None
    with pytest.raises(typer.BadParameter):
        parse_time("soon")
