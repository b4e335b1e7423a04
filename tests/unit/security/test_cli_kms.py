"""``summit kms``: list, create, rotate (a key, or those due), encrypt and decrypt through stdin and
stdout, and the errors an operator sees."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from summit.cli import kms as kms_cli  # noqa: F401  (registers the commands)
from summit.cli import main
from summit.security.kms import Kms


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's console took its width when it was first imported (80 columns without a
    terminal, as in CI): wide enough for the tables' whole cells here."""
    monkeypatch.setattr(main.console, "width", 250)


def run(*args: str, input: bytes | str | None = None):  # noqa: ANN201, A002
    return CliRunner().invoke(main.app, ["kms", *args], input=input, env={"COLUMNS": "200"})


def test_create_list_rotate(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert "no keys" in run("list", *d).output
    created = run("create", "backups", "--rotation-days", "90", "--description", "database dumps", *d)
    assert created.exit_code == 0 and "created key backups (version 1)" in created.output
    assert run("create", "backups", *d).exit_code == 1
    assert "exists already" in run("create", "backups", *d).output
    assert run("create", "never", "--rotation-days", "0", *d).exit_code == 0
    rotated = run("rotate", "backups", *d)
    assert rotated.exit_code == 0 and "version 2 is current" in rotated.output
    listed = json.loads(run("list", "--json", *d).stdout)
    assert [(k["name"], k["current_version"], k["rotation_days"]) for k in listed] == [("backups", 2, 90), ("never", 1, 0)]
    assert listed[0]["next_rotation"] == listed[0]["versions"][-1]["created"] + 90 * 86400
    table = run("list", *d).output
    assert "backups" in table and "v2" in table and "every 90 d" in table and "database dumps" in table and "never (by age)" in table
    assert "no key is due" in run("rotate", "--due", *d).output
    assert run("rotate", *d).exit_code == 2  # neither a name nor --due
    assert "no KMS key named 'nope'" in run("rotate", "nope", *d).output


def test_rotate_due_rotates_only_the_old(tmp_path: Path) -> None:
    kms = Kms.for_data_dir(tmp_path, clock=lambda: time.time() - 400 * 86400)
    kms.create_key("old")
    Kms.for_data_dir(tmp_path).create_key("young")
    result = run("rotate", "--due", "--data-dir", str(tmp_path))
    assert result.exit_code == 0 and "rotated old: version 2" in result.output and "young" not in result.output


def test_encrypt_and_decrypt_through_pipes(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    run("create", "ops", *d)
    secret = bytes(range(256)) * 4
    encrypted = run("encrypt", "ops", "--context", "host=db1", "--context", "what=dump", *d, input=secret)
    assert encrypted.exit_code == 0, encrypted.output
    blob_b64 = encrypted.stdout_bytes.strip()
    assert Kms.for_data_dir(tmp_path).decrypt(base64.b64decode(blob_b64), {"host": "db1", "what": "dump"}) == secret
    decrypted = run("decrypt", "--context", "what=dump", "--context", "host=db1", *d, input=blob_b64)
    assert decrypted.exit_code == 0 and decrypted.stdout_bytes == secret
    raw = run("encrypt", "ops", "--binary", *d, input=b"raw")
    assert raw.stdout_bytes[:1] == b"\x01"
    assert run("decrypt", "--key", "ops", *d, input=raw.stdout_bytes).stdout_bytes == b"raw"
    wrong = run("decrypt", "--context", "host=db2", "--context", "what=dump", *d, input=blob_b64)
    assert wrong.exit_code == 1 and "encryption context" in wrong.output and secret not in wrong.stdout_bytes
    assert "not 'other'" in run("decrypt", "--key", "other", *d, input=raw.stdout_bytes).output
    assert "neither a KMS blob nor base64" in run("decrypt", *d, input=b"%%%").output
    bad = run("encrypt", "ops", "--context", "novalue", *d, input=b"x")
    assert bad.exit_code == 2 and "is not k=v" in bad.output


def test_a_master_key_open_to_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    Kms.for_data_dir(tmp_path).create_key("ops")
    master = tmp_path / "keys" / "kms" / "master.key"
    master.chmod(0o644)
    result = run("list", "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "chmod 600" in result.output and "mode 0644" in result.output
