"""``summit secrets``: put from stdin, get masked unless --show, list, describe, rotate with a
remembered strategy, and a failed rotation's message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from summit.cli import main
from summit.cli import secrets as secrets_cli  # noqa: F401  (registers the commands)
from summit.cli.secrets import masked
from summit.security.secrets import SecretsManager


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's console took its width when it was first imported (80 columns without a
    terminal, as in CI): wide enough for the tables' whole cells here."""
    monkeypatch.setattr(main.console, "width", 250)


def run(*args: str, input: bytes | str | None = None):  # noqa: ANN201, A002
    return CliRunner().invoke(main.app, ["secrets", *args], input=input, env={"COLUMNS": "200"})


def test_put_get_list_describe(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert "no secrets" in run("list", *d).output
    value = json.dumps({"username": "summit_a", "password": "hunter2-but-longer"})
    put = run("put", "db/app", "--description", "the app's login", *d, input=value + "\n")
    assert put.exit_code == 0 and "[AWSCURRENT]" in put.output
    got = run("get", "db/app", *d)
    assert got.exit_code == 0 and "hunter2" not in got.output and "summit_a" not in got.output
    assert '"password": "********"' in got.stdout and "AWSCURRENT" in got.stdout and "--show" in got.output
    assert run("get", "db/app", "--show", *d).stdout == value  # the final newline of stdin dropped
    assert run("put", "db/app", "--stage", "AWSPENDING", *d, input="next").exit_code == 0
    assert run("get", "db/app", "--stage", "AWSPENDING", "--show", *d).stdout == "next"
    assert run("put", "db/app", *d, input="third").exit_code == 0
    assert run("get", "db/app", "--stage", "AWSPREVIOUS", "--show", *d).stdout == value
    described = json.loads(run("describe", "db/app", "--json", *d).stdout)
    assert [v["stages"] for v in described["versions"]] == [["AWSPREVIOUS"], ["AWSPENDING"], ["AWSCURRENT"]]
    assert described["description"] == "the app's login"
    text = run("describe", "db/app", *d).output
    assert "AWSPENDING" in text and "third" not in text
    first = described["versions"][0]["version_id"]
    assert run("get", "db/app", "--version-id", first, "--show", *d).stdout == value
    listed = json.loads(run("list", "--json", *d).stdout)
    assert [(s["name"], len(s["versions"])) for s in listed] == [("db/app", 3)]
    assert "db/app" in run("list", *d).output
    missing = run("get", "nope", *d)
    assert missing.exit_code == 1 and "summit secrets put nope" in missing.output


def test_binary_secrets(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert run("put", "tls/key", "--binary", *d, input=b"\x00\xffkey\n").exit_code == 0
    assert run("get", "tls/key", "--show", *d).stdout_bytes == b"\x00\xffkey\n"
    assert "6 bytes, binary" in run("get", "tls/key", *d).stdout
    bad = run("put", "text", *d, input=b"\xff\xfe")
    assert bad.exit_code == 2 and "--binary" in bad.output


def test_rotate_with_a_remembered_strategy(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    run("put", "app/signing", *d, input="first")
    no_strategy = run("rotate", "app/signing", *d)
    assert no_strategy.exit_code == 1 and "has no rotation strategy" in no_strategy.output
    rotated = run("rotate", "app/signing", "--strategy", "random", "--option", "nbytes=24", *d)
    assert rotated.exit_code == 0 and "is AWSCURRENT" in rotated.output
    assert len(run("get", "app/signing", "--show", *d).stdout) == 32
    again = run("rotate", "app/signing", *d)  # the strategy was remembered
    assert again.exit_code == 0
    assert len(SecretsManager.for_data_dir(tmp_path).describe("app/signing").versions) == 3
    assert "random" in run("list", *d).output
    assert run("rotate", "app/signing", "--option", "nbytes=3", *d).exit_code == 2
    assert run("rotate", "app/signing", "--strategy", "random", "--option", "bad", *d).exit_code == 2
    unknown = run("rotate", "app/signing", "--strategy", "nope", *d)
    assert unknown.exit_code == 1 and "unknown rotation strategy" in unknown.output


def test_a_failed_rotation_says_which_step_and_lists_it(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    run("put", "db/app", *d, input=json.dumps({"username": "summit_a", "password": "x", "host": "127.0.0.1", "port": 1}))
    run("put", "db/admin", *d, input=json.dumps({"username": "postgres", "password": "x", "host": "127.0.0.1", "port": 1}))
    failed = run("rotate", "db/app", "--strategy", "postgres-alternating-users", "--option", "admin_secret=db/admin", *d)
    assert failed.exit_code == 1
    assert "failed at set_secret" in failed.output and "cannot connect to PostgreSQL" in failed.output
    assert "AWSCURRENT is still version" in failed.output
    assert "failed at set_secret" in run("list", *d).output


def test_masking() -> None:
    assert masked("plain") == "******** (5 characters)"
    assert masked('{"a": 1, "b": "c"}') == '{"a": "********", "b": "********"}'
    assert masked("[1, 2]") == "******** (6 characters)"
    assert masked(b"\x00") == "******** (1 bytes, binary)"
