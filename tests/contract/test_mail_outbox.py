"""What is particular to the embedded outbox: files, order, readers (the mail contract runs on it in
``test_mail.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from summit.adapters.outbox.mailer import OutboxMailer
from summit.blueprint import load_blueprint
from summit.ports.mail import MailError, MailMessage, Outbox
from summit.testing.mail import message
from summit.wiring import open_port


@pytest.fixture
async def outbox(tmp_path: Path):
    mailer = OutboxMailer(tmp_path / "outbox")
    yield mailer
    await mailer.close()


async def test_one_json_file_per_message_with_owner_only_permissions(outbox: OutboxMailer) -> None:
    before = datetime.now(UTC)
    message_id = await outbox.send(
        MailMessage("alice@example.com", "Your code", "Code: 123456", html="<b>123456</b>", reply_to="help@example.com")
    )
    after = datetime.now(UTC)
    files = sorted(p.name for p in outbox.root.iterdir())
    assert files == sorted([f"{message_id}.json", "tmp"])
    path = outbox.root / f"{message_id}.json"
    record = json.loads(path.read_text())
    assert record["id"] == message_id
    assert record["to"] == ["alice@example.com"]
    assert (record["subject"], record["text"], record["html"]) == ("Your code", "Code: 123456", "<b>123456</b>")
    assert record["reply_to"] == "help@example.com" and record["headers"] == {}
    sent_at = datetime.fromisoformat(record["sent_at"])
    assert before - timedelta(seconds=1) <= sent_at <= after + timedelta(seconds=1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox.root.stat().st_mode) & 0o077 == 0
    assert list((outbox.root / "tmp").iterdir()) == []


async def test_unicode_is_kept_as_written(outbox: OutboxMailer) -> None:
    message_id = await outbox.send(message(subject="Код ✓", text="日本語 😀"))
    text = (outbox.root / f"{message_id}.json").read_text(encoding="utf-8")
    assert "Код ✓" in text and "日本語 😀" in text


async def test_list_is_newest_first_with_a_limit(outbox: OutboxMailer) -> None:
    ids = [await outbox.send(message(subject=f"n{n}")) for n in range(5)]
    listed = await outbox.list(10)
    assert [m.id for m in listed] == ids[::-1]
    assert [m.subject for m in listed] == ["n4", "n3", "n2", "n1", "n0"]
    assert [m.subject for m in await outbox.list(2)] == ["n4", "n3"]
    assert await outbox.list(0) == []
    assert listed[0].sent_at >= listed[-1].sent_at and listed[0].sent_at.tzinfo is not None


async def test_list_by_recipient_ignores_case(outbox: OutboxMailer) -> None:
    await outbox.send(message(to="alice@example.com", subject="for alice"))
    await outbox.send(message(to=["bob@example.com", "Carol@Example.com"], subject="for bob and carol"))
    await outbox.send(message(to="alice@example.com", subject="for alice again"))
    assert [m.subject for m in await outbox.list(10, to="alice@example.com")] == ["for alice again", "for alice"]
    assert [m.subject for m in await outbox.list(10, to="carol@example.com")] == ["for bob and carol"]
    assert [m.subject for m in await outbox.list(1, to="ALICE@example.com")] == ["for alice again"]
    assert await outbox.list(10, to="nobody@example.com") == []


async def test_an_empty_or_missing_outbox_lists_nothing(tmp_path: Path) -> None:
    assert await OutboxMailer(tmp_path / "never-written").list() == []
    assert not (tmp_path / "never-written").exists()  # reading creates nothing


async def test_keep_removes_the_oldest(tmp_path: Path) -> None:
    mailer = OutboxMailer.from_url(f"outbox://{tmp_path}/outbox?keep=3")
    for n in range(6):
        await mailer.send(message(subject=f"n{n}"))
    assert [m.subject for m in await mailer.list(10)] == ["n5", "n4", "n3"]
    assert len(list(mailer.root.glob("*.json"))) == 3


async def test_ids_increase_even_when_sent_at_once(outbox: OutboxMailer) -> None:
    ids = await asyncio.gather(*(outbox.send(message(subject=str(n))) for n in range(30)))
    assert len(set(ids)) == 30
    assert [m.id for m in await outbox.list(100)] == sorted(ids, reverse=True)


def test_threads_sharing_one_outbox(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox", keep=0)
    ids: list[str] = []

    def work(n: int) -> None:
        async def run() -> None:
            for i in range(10):
                ids.append(await mailer.send(message(subject=f"{n}:{i}")))

        asyncio.run(run())

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 40
    assert len(asyncio.run(mailer.list(100))) == 40


async def test_readable_from_another_process(outbox: OutboxMailer) -> None:
    await outbox.send(message(to="alice@example.com", subject="Your code", text="Code: 424242"))
    script = (
        "import asyncio, sys\n"
        "from summit.wiring import open_port\n"
        "mailer = open_port('mail', 'outbox://' + sys.argv[1])\n"
        "[mail] = asyncio.run(mailer.list(1, to='alice@example.com'))\n"
        "print(mail.text)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(outbox.root)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Code: 424242"


async def test_files_it_did_not_write_are_ignored_and_half_written_ones_unseen(outbox: OutboxMailer) -> None:
    await outbox.send(message(subject="real"))
    (outbox.root / "notes.txt").write_text("hello")
    (outbox.root / "tmp" / "00000000000000000001-aaaaaaaaaaaa.json.part").write_text("{")
    (outbox.root / "sub").mkdir()
    assert [m.subject for m in await outbox.list()] == ["real"]


@pytest.mark.parametrize(
    "content", ["{", "[]", '{"id": "x"}', '{"id": "x", "to": 5, "subject": "s", "text": "t", "sent_at": "now"}']
)
async def test_a_damaged_message_file_is_a_clear_error(outbox: OutboxMailer, content: str) -> None:
    await outbox.send(message())
    (outbox.root / "99999999999999999999-aaaaaaaaaaaa.json").write_text(content)
    with pytest.raises(MailError, match="99999999999999999999-aaaaaaaaaaaa.json is not a message"):
        await outbox.list()


async def test_an_unwritable_outbox_is_a_mail_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    mailer = OutboxMailer(tmp_path / "file" / "outbox")
    with pytest.raises(MailError, match="could not write to the outbox"):
        await mailer.send(message())


async def test_list_arguments_are_checked(outbox: OutboxMailer) -> None:
    with pytest.raises(ValueError):
        await outbox.list(-1)
    for bad in (1.5, "3", None, True):
        with pytest.raises(TypeError):
            await outbox.list(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await outbox.list(5, to=["alice@example.com"])  # type: ignore[arg-type]


def test_the_wiring_and_the_stage_1_preset(tmp_path: Path) -> None:
    mailer = open_port("mail", "outbox://.summit/outbox")
    assert isinstance(mailer, OutboxMailer) and isinstance(mailer, Outbox)
    assert mailer.root == Path(os.path.abspath(".summit/outbox")) and mailer.keep == 1000
    assert OutboxMailer.from_url("outbox:///srv/mail?keep=0").root == Path("/srv/mail")
    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(tmp_path)})
    assert blueprint.port_url("mail") == f"outbox://{tmp_path}/outbox"
    assert open_port("mail", blueprint.port_url("mail")).root == tmp_path / "outbox"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("outbox://", "outbox://relative/dir"),
        ("outbox:///x#frag", "outbox://relative/dir"),
        ("outbox:///x?keep=-1", "keep must be an integer"),
        ("outbox:///x?keep=many", "keep must be an integer"),
        ("outbox:///x?kept=3", "unknown option kept"),
        ("file:///x", "not an outbox:// URL"),
    ],
)
def test_url_errors(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        OutboxMailer.from_url(url)
