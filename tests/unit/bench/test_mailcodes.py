"""The bench reads confirmation codes through the stage's mail port (the Outbox ability), never
through an adapter, and refuses up front a mailer it cannot read back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import summit.bench
from summit.bench import mailcodes
from summit.bench.options import BenchError
from summit.blueprint import load_blueprint
from summit.ports.mail import MailMessage
from summit.wiring import open_port


def blueprint(tmp_path: Path, mail: str | None = None):  # noqa: ANN201
    overrides: dict = {"data_dir": str(tmp_path / "data")}
    if mail:
        overrides["ports"] = {"mail": mail}
    return load_blueprint(environ={}, overrides=overrides)


async def test_reads_the_newest_code_sent_to_an_address(tmp_path: Path) -> None:
    bp = blueprint(tmp_path)
    sender = open_port("mail", bp.port_url("mail"))  # the stage's own mailer, as the app opens it
    await sender.send(MailMessage("ann@example.com", "Your code is 111111", "old code"))
    await sender.send(MailMessage("bob@example.com", "Your code is 222222", "not Ann's"))
    await sender.send(MailMessage("ann@example.com", "Confirm your account", "Your code: 333333"))  # code in the text
    reader = mailcodes.open_reader(bp)
    try:
        assert await reader.code("ann@example.com") == "333333"
        assert await reader.code("BOB@example.com") == "222222"
        reader.wait = 0.2
        assert await reader.code("nobody@example.com") is None  # bounded wait, then None
    finally:
        await reader.close()
    assert reader.url == bp.port_url("mail")


def test_a_mailer_that_cannot_be_read_back_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"smtp://127\.0\.0\.1:2525.*cannot read it back.*outbox://"):
        mailcodes.open_reader(blueprint(tmp_path, "smtp://127.0.0.1:2525?from=noreply@example.com"))


def test_a_bad_mail_url_is_a_bench_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="cannot be opened"):
        mailcodes.open_reader(blueprint(tmp_path, "carrier-pigeon://loft"))


def test_the_bench_imports_no_adapter() -> None:
    root = Path(summit.bench.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n == "summit.adapters" or n.startswith("summit.adapters.")]
    assert offenders == []
