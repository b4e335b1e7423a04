"""``summit mail``: the embedded outbox of a stage, read from outside the server."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import summit.cli.mail  # noqa: F401  (registers the command)
from summit.adapters.outbox.mailer import OutboxMailer
from summit.cli.main import app
from summit.ports.mail import MailMessage

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty working directory (no ./summit.toml) and no SUMMIT_* variables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SUMMIT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A stage-1 data directory whose outbox holds three messages."""
    directory = tmp_path / "data"
    mailer = OutboxMailer.from_url(f"outbox://{directory}/outbox")  # the stage-1 preset's URL

    async def send() -> None:
        await mailer.send(MailMessage("alice@example.com", "Confirm your account", "Your code is 111111.\n"))
        await mailer.send(MailMessage(["bob@example.com", "Carol@example.com"], "Код", "Ваш код: 222222"))
        await mailer.send(
            MailMessage("alice@example.com", "Reset your password", "Your code is 333333.", html="<b>333333</b>")
        )

    asyncio.run(send())
    return directory


def run(*args: str):  # noqa: ANN201
    return runner.invoke(app, ["mail", *args])


def test_json_lists_newest_first(data_dir: Path) -> None:
    result = run("--data-dir", str(data_dir), "--json")
    assert result.exit_code == 0, result.output
    messages = json.loads(result.stdout)
    assert [m["subject"] for m in messages] == ["Reset your password", "Код", "Confirm your account"]
    newest = messages[0]
    assert newest["to"] == ["alice@example.com"]
    assert newest["text"] == "Your code is 333333."
    assert newest["html"] == "<b>333333</b>"
    assert newest["sent_at"] >= messages[1]["sent_at"] >= messages[2]["sent_at"]
    assert {"id", "to", "subject", "text", "sent_at"} <= set(newest)
    assert messages[1]["text"] == "Ваш код: 222222"


def test_to_and_limit(data_dir: Path) -> None:
    result = run("--data-dir", str(data_dir), "--to", "ALICE@example.com", "--json")
    assert [m["text"] for m in json.loads(result.stdout)] == ["Your code is 333333.", "Your code is 111111.\n"]
    result = run("-d", str(data_dir), "--to", "alice@example.com", "--limit", "1", "--json")
    assert [m["subject"] for m in json.loads(result.stdout)] == ["Reset your password"]
    result = run("-d", str(data_dir), "--to", "carol@example.com", "--json")
    assert [m["subject"] for m in json.loads(result.stdout)] == ["Код"]
    result = run("-d", str(data_dir), "--to", "nobody@example.com", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_text_output_shows_to_subject_text_and_time(data_dir: Path) -> None:
    result = run("--data-dir", str(data_dir), "--limit", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("Subject: Reset your password") < out.index("Subject: Код")
    assert "to alice@example.com" in out and "to bob@example.com, Carol@example.com" in out
    assert "Your code is 333333." in out and "Ваш код: 222222" in out
    assert "111111" not in out  # beyond the limit
    assert "Z  to " in out  # the UTC time of sending


def test_the_default_data_dir_is_the_working_directorys(data_dir: Path, tmp_path: Path) -> None:
    data_dir.rename(tmp_path / ".summit")
    result = run("--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


def test_an_empty_outbox(tmp_path: Path) -> None:
    result = run("--data-dir", str(tmp_path / "fresh"))
    assert result.exit_code == 0
    assert "no mail in" in result.stderr and result.stdout == ""
    result = run("--data-dir", str(tmp_path / "fresh"), "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_a_stage_that_sends_by_smtp_has_no_outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMIT_PORTS__MAIL", "smtp://user:s3cret@127.0.0.1:1025?from=noreply@example.com")
    result = run("--data-dir", str(tmp_path), "--json")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "no outbox to read" in message and "outbox://" in message
    assert "smtp://user:***@127.0.0.1:1025" in message and "s3cret" not in result.output


def test_an_unknown_mail_scheme_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMIT_PORTS__MAIL", "outbx:///x")
    result = run("--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "did you mean outbox://" in " ".join(result.stderr.split())


def test_a_damaged_outbox_is_a_clear_error(data_dir: Path) -> None:
    (data_dir / "outbox" / "99999999999999999999-aaaaaaaaaaaa.json").write_text("{")
    result = run("--data-dir", str(data_dir))
    assert result.exit_code == 1
    assert "is not a message this outbox wrote" in " ".join(result.stderr.split())


def test_limit_must_be_positive(data_dir: Path) -> None:
    result = run("--data-dir", str(data_dir), "--limit", "0")
    assert result.exit_code == 2
