"""``summit migrate-data --to s3``: a stage-1 file store copied into a real S3 store (SeaweedFS,
started by the control plane): bytes and content types as they were, each object read back and
checked by its sha256; a second run copies nothing (same checksum: skipped) and an object that
differs is copied again; a corrupt source object is reported, not copied; a store that is down
ends the copy with a message saying to run it again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from summit.adapters.files.objects import FileObjectStore
from summit.blueprint import Blueprint, load_blueprint
from summit.cli import data, main  # noqa: F401  (registers the commands)
from summit.datamove import DataMoveError, copy_objects
from summit.engines.layout import free_port
from summit.wiring import open_port

pytestmark = pytest.mark.s3

OBJECTS = {
    "p/0a1b.jpg": (b"\xff\xd8jpeg" * 100, "image/jpeg"),
    "p/big.jpg": (os.urandom(3 * 1024 * 1024), "image/jpeg"),
    "t/0a1b.webp": (b"RIFFwebp", "image/webp"),
    "notes/naïve café.txt": ("é".encode(), "text/plain; charset=utf-8"),
    "empty": (b"", "application/octet-stream"),
}


@pytest.fixture
async def stage_one(tmp_path: Path) -> Blueprint:
    """A stage-1 data directory whose file store holds photos, thumbnails and odd keys."""
    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(tmp_path / "data")})
    files = open_port("objects", blueprint.port_url("objects"))
    for key, (body, content_type) in OBJECTS.items():
        await files.put(key, body, content_type=content_type)
    return blueprint


def _files(blueprint: Blueprint) -> FileObjectStore:
    return open_port("objects", blueprint.port_url("objects"))


async def test_every_object_is_copied_verified_and_a_second_run_skips_them(stage_one: Blueprint, s3_bucket) -> None:  # noqa: ANN001
    target = open_port("objects", s3_bucket.url)
    seen: list[tuple[int, int]] = []
    try:
        report = await copy_objects(_files(stage_one), target, on_progress=lambda name, done, total: seen.append((done, total)))
        assert report.ok and (report.total, report.copied, report.skipped) == (len(OBJECTS), len(OBJECTS), 0)
        assert report.bytes_copied == sum(len(body) for body, _ in OBJECTS.values())
        assert seen[0] == (0, len(OBJECTS)) and seen[-1] == (len(OBJECTS), len(OBJECTS))
        for key, (body, content_type) in OBJECTS.items():
            got = await target.get(key)
            assert (got.data, got.info.content_type) == (body, content_type)
        assert [i.key for i in await target.list()] == sorted(OBJECTS)

        again = await copy_objects(_files(stage_one), target)
        assert again.ok and (again.copied, again.skipped) == (0, len(OBJECTS))
    finally:
        await target.close()


async def test_an_object_that_differs_in_the_target_is_copied_again(stage_one: Blueprint, s3_bucket) -> None:  # noqa: ANN001
    target = open_port("objects", s3_bucket.url)
    try:
        await target.put("p/0a1b.jpg", b"an older version", content_type="image/jpeg")
        await target.put("t/0a1b.webp", *OBJECTS["t/0a1b.webp"][:1], content_type="image/webp")
        report = await copy_objects(_files(stage_one), target)
        assert report.ok and (report.copied, report.skipped) == (len(OBJECTS) - 1, 1)
        assert (await target.get("p/0a1b.jpg")).data == OBJECTS["p/0a1b.jpg"][0]
    finally:
        await target.close()


async def test_a_corrupt_source_object_is_reported_and_the_rest_are_copied(stage_one: Blueprint, s3_bucket) -> None:  # noqa: ANN001
    files = _files(stage_one)
    path = files.root / "data" / "p" / "0a1b.jpg"
    body = bytearray(path.read_bytes())
    body[10] ^= 0xFF  # one bit rot, same size: only the checksum can tell
    with open(path, "r+b") as file:  # in place: the file keeps its metadata (the sha256 of the bytes it had)
        file.write(bytes(body))
    target = open_port("objects", s3_bucket.url)
    try:
        report = await copy_objects(files, target)
        assert not report.ok and [key for key, _ in report.failed] == ["p/0a1b.jpg"]
        assert "do not match their sha256" in report.failed[0][1]
        assert report.copied == len(OBJECTS) - 1
        assert "p/0a1b.jpg" not in [i.key for i in await target.list()]
    finally:
        await target.close()


async def test_a_target_that_is_down_ends_the_copy_saying_to_run_it_again(stage_one: Blueprint, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("[default]\naws_access_key_id = a\naws_secret_access_key = b\n")
    target = open_port("objects", f"s3://summit?endpoint=http://127.0.0.1:{free_port()}&credentials={keys}&timeout=1")
    try:
        with pytest.raises(DataMoveError, match="does not answer.*run it again"):
            await copy_objects(_files(stage_one), target)
    finally:
        await target.close()


def _migrate(blueprint: Blueprint, *args: str):  # noqa: ANN202
    return CliRunner().invoke(main.app, ["migrate-data", "--to", "s3", "--from-data-dir", str(blueprint.data_dir), "--yes", *args],
                              env={"COLUMNS": "200"})


def test_the_command_copies_then_finds_everything_there(stage_one: Blueprint, s3_bucket) -> None:  # noqa: ANN001
    first = _migrate(stage_one, "--to-url", s3_bucket.url)
    assert first.exit_code == 0, first.output
    text = " ".join(first.output.split())
    assert f"{len(OBJECTS)} copied and read back with the same sha256" in text and "0 there already" in text
    second = _migrate(stage_one, "--to-url", s3_bucket.url)
    assert second.exit_code == 0, second.output
    assert f"0 copied and read back with the same sha256 (0.0 MB), {len(OBJECTS)} there already" in " ".join(second.output.split())


def test_without_a_running_stage_it_says_how_to_start_one(stage_one: Blueprint) -> None:
    result = _migrate(stage_one)
    assert result.exit_code == 1, result.output
    assert "summit up --stage 10k" in " ".join(result.output.split())


def test_a_target_that_is_not_s3_is_refused(stage_one: Blueprint, tmp_path: Path) -> None:
    result = _migrate(stage_one, "--to-url", f"file://{tmp_path}/elsewhere")
    assert result.exit_code == 2 and "not an S3 store" in result.output, result.output
