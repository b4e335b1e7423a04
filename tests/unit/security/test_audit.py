"""summit.security.audit: records, rolling, chains per process, verification of tampering, search.

Everything runs on real files under tmp_path; other processes are real processes (spawned).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import signal
import stat
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from summit.security import audit as audit_module
from summit.security.audit import AuditError, AuditLog, Origin, Query, bind_origin, reset_origin, search, verify
from summit.security.audit.format import digest_name, file_name
from summit.security.audit.keys import key_id, public_pem, sign_digest

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the start of an hour


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0):
        self.now = now
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def chains(data: Path) -> list[Path]:
    return sorted(p for p in (data / "audit").iterdir() if p.is_dir())


def codes(report, level: str = "error") -> list[str]:  # noqa: ANN001
    return [f.code for f in report.findings if f.level == level]


def write(data: Path, n: int, *, clock: Clock | None = None, step: float = 1.0, **options) -> AuditLog:  # noqa: ANN003
    """A closed chain of ``n`` records by users 0..n-1."""
    log = AuditLog(data, **({"clock": clock} if clock else {}), **options).start()
    for i in range(n):
        log.submit("posts:Create", user_id=i, resource=f"arn:summit:photos:::post/{i}", status=201).result(timeout=10)
        if clock:
            clock.advance(step)
    log.close()
    return log


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, Path]:
    """A closed chain of 10 records in 4 size-rolled files (3 records each, at most)."""
    data = tmp_path / "data"
    write(data, 10, clock=Clock(), max_file_bytes=1024)
    [chain] = chains(data)
    assert sorted(p.name for p in chain.glob("*.jsonl")) == [file_name(i) for i in (1, 2, 3, 4)]
    assert verify(data).ok
    return data, chain


def test_public_api_is_explicit() -> None:
    assert sorted(audit_module.__all__) == sorted(n for n in dir(audit_module) if not n.startswith("_") and n != "annotations")


# --- records ---------------------------------------------------------------------------------------


async def test_a_record_round_trips(tmp_path: Path) -> None:
    data = tmp_path / "data"
    origin = Origin(source_ip="203.0.113.7", user_agent="Mozilla/5.0 " + "x" * 400, request_id="req-1")
    async with AuditLog(data, clock=Clock(T0 + 0.1234)) as log:
        event = await log.record(
            "posts:Delete",
            user_id="1234567890",
            resource="arn:summit:photos:::post/99",
            status=403,
            reason="not_owner",
            origin=origin,
            details={"moderator": False, "attempt": 2},
        )
    assert (event.time, event.result, event.user_id) == ("2026-01-01T00:00:00.123Z", "failure", "1234567890")
    assert len(event.user_agent) == 256 and len(event.event_id) == 32
    [found] = search(data, Query())
    assert found.as_dict() == {**event.as_dict(), "chain": log.chain_id}
    line = (chains(data)[0] / file_name(1)).read_bytes().split(b"\n")[1]
    assert json.loads(line) == event.as_dict()
    assert verify(data).ok


async def test_records_take_the_origin_bound_for_the_request(tmp_path: Path) -> None:
    scope = {"type": "http", "client": ("198.51.100.4", 5555), "headers": [(b"user-agent", b"curl/8.5")]}
    async with AuditLog(tmp_path) as log:
        token = bind_origin(Origin.from_scope(scope, request_id="abc"))
        try:
            bound = await log.record("auth:SignIn", user_id=7, status=200)
            explicit = await log.record("auth:SignIn", user_id=7, status=200, origin=Origin("::1"))
        finally:
            reset_origin(token)
        outside = await log.record("auth:SignOut", user_id=7, result="success")
    assert (bound.source_ip, bound.user_agent, bound.request_id) == ("198.51.100.4", "curl/8.5", "abc")
    assert (explicit.source_ip, explicit.user_agent, explicit.request_id) == ("::1", None, None)
    assert outside.source_ip is None


async def test_result_follows_the_status_when_not_given(tmp_path: Path) -> None:
    async with AuditLog(tmp_path) as log:
        assert (await log.record("auth:SignIn", status=302)).result == "success"
        assert (await log.record("auth:SignIn", status=401, reason="bad_password")).result == "failure"
        with pytest.raises(ValueError, match="needs a result"):
            await log.record("auth:SignIn")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "create post"}, "service:Verb"),
        ({"user_id": "alice@example.com"}, "never a name or e-mail"),
        ({"resource": "/users/alice@example.com/follow"}, "e-mail"),
        ({"resource": "/a b"}, "without spaces"),
        ({"reason": "wrong password for alice"}, "short code"),
        ({"status": 42}, "HTTP status"),
        ({"result": "ok"}, "'success' or 'failure'"),
        ({"details": {"email": "bob@example.org"}}, "e-mail"),
        ({"details": {"nested": {"a": 1}}}, "string, number"),
    ],
)
async def test_bad_fields_are_refused(tmp_path: Path, fields: dict, message: str) -> None:
    call = {"action": "posts:Create", "user_id": "1", "status": 201, **fields}
    async with AuditLog(tmp_path) as log:
        with pytest.raises(ValueError, match=message):
            await log.record(call.pop("action"), **call)
        with pytest.raises(TypeError, match="unknown audit field"):
            log.submit("posts:Create", username="alice", status=201)
    assert search(tmp_path, Query()) == []


async def test_records_hold_ids_not_personal_data(tmp_path: Path) -> None:
    user = {"id": "7304918273", "email": "alice.liddell@example.com", "username": "alice_liddell"}
    origin = Origin("192.0.2.1", f"Bot/1.0 (+mailto:{user['email']})", "r1")
    async with AuditLog(tmp_path) as log:
        await log.record("auth:SignUp", user_id=user["id"], resource=f"arn:summit:auth:::user/{user['id']}", status=201, origin=origin)
        await log.record("auth:SignIn", user_id=user["id"], status=200, origin=origin, details={"mfa": True})
        await log.record("auth:SignIn", result="failure", reason="unknown_user", status=401, origin=origin)
    written = b"".join(p.read_bytes() for p in (tmp_path / "audit").rglob("*") if p.is_file())
    assert user["id"].encode() in written
    assert user["email"].encode() not in written and user["username"].encode() not in written
    assert b"[email]" in written


async def test_an_acknowledged_record_is_in_the_file(tmp_path: Path) -> None:
    async with AuditLog(tmp_path) as log:
        event = await log.record("posts:Create", user_id=1, status=201)
        current = tmp_path / "audit" / log.chain_id / file_name(1)
        assert event.event_id.encode() in current.read_bytes()  # before close: written, synced
        from_a_thread = await asyncio.to_thread(lambda: log.submit("posts:Like", user_id=2, status=200).result(timeout=10))
        assert from_a_thread.event_id.encode() in current.read_bytes()


async def test_many_concurrent_records_all_land_once(tmp_path: Path) -> None:
    async with AuditLog(tmp_path) as log:
        events = await asyncio.gather(*(log.record("posts:Like", user_id=i, status=200) for i in range(300)))
    found = search(tmp_path, Query())
    assert sorted(e.event_id for e in found) == sorted(e.event_id for e in events)
    assert verify(tmp_path).summary()["records"] == 300


def test_life_cycle_errors(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    with pytest.raises(AuditError, match="new"):
        log.submit("posts:Create", status=201)
    log.start()
    with pytest.raises(AuditError, match="already open"):
        log.start()
    log.close()
    log.close()  # idempotent
    with pytest.raises(AuditError, match="closed"):
        log.submit("posts:Create", status=201)
    with pytest.raises(ValueError, match="at least hourly"):
        AuditLog(tmp_path, max_file_seconds=7200)


def test_the_signing_key_is_private_and_shared_by_the_processes(tmp_path: Path) -> None:
    write(tmp_path, 1)
    write(tmp_path, 1)
    keys = tmp_path / "keys"
    assert stat.S_IMODE((keys / "audit-signing.key.kms").stat().st_mode) == 0o600
    assert not (keys / "audit-signing.key").exists()  # the private key is stored only encrypted (KMS)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for path in (tmp_path / "audit").rglob("*.json*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    report = verify(tmp_path)
    assert report.ok and report.summary()["chains"] == 2
    (keys / "audit-signing.pub").write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(AuditError, match="does not match"):
        AuditLog(tmp_path).start()


def test_a_key_readable_by_others_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, 1)
    os.chmod(tmp_path / "keys" / "audit-signing.key.kms", 0o644)
    report = verify(tmp_path)
    assert report.ok and codes(report, "warning") == ["key_permissions"]


# --- rolling ---------------------------------------------------------------------------------------


def test_files_roll_when_the_hour_turns(tmp_path: Path) -> None:
    clock = Clock(T0 + 600)
    log = AuditLog(tmp_path, clock=clock).start()
    for step in (0, 1800, 1199, 1, 3600):  # 00:10, 00:40, 00:59:59, 01:00, 02:00
        clock.advance(step)
        log.submit("posts:Create", user_id=1, status=201).result(timeout=10)
    log.close()
    [chain] = chains(tmp_path)
    digests = [json.loads((chain / digest_name(i)).read_text()) for i in (1, 2, 3)]
    assert [(d["records"], d["reason"], d["final"]) for d in digests] == [(3, "time", False), (1, "time", False), (1, "close", True)]
    assert digests[0]["last_time"] == "2026-01-01T00:59:59.000Z" and digests[1]["first_time"] == "2026-01-01T01:00:00.000Z"
    assert verify(tmp_path).summary()["records"] == 5


def test_an_idle_file_is_sealed_when_the_hour_turns(tmp_path: Path) -> None:
    clock = Clock(T0 + 3000)
    log = AuditLog(tmp_path, clock=clock, tick=0.01).start()
    try:
        log.submit("posts:Create", user_id=1, status=201).result(timeout=10)
        clock.advance(600)  # 01:00, and no record comes
        digest = tmp_path / "audit" / log.chain_id / digest_name(1)
        deadline = time.monotonic() + 10
        while not digest.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert json.loads(digest.read_text())["reason"] == "time"
        report = verify(tmp_path)
        assert report.ok and report.chains[0].state == "live"
    finally:
        log.close()
    assert not (tmp_path / "audit" / log.chain_id / file_name(3)).exists()  # an empty file is not rolled


def test_files_roll_by_size(tmp_path: Path) -> None:
    write(tmp_path, 25, max_file_bytes=2048)
    [chain] = chains(tmp_path)
    files = sorted(chain.glob("*.jsonl"))
    assert len(files) >= 4
    assert all(f.stat().st_size <= 2048 for f in files)
    assert [json.loads((chain / digest_name(i + 1)).read_text())["reason"] for i in range(len(files))][-2:] == ["size", "close"]
    assert [e.user_id for e in search(tmp_path, Query())] == [str(i) for i in range(25)]
    assert verify(tmp_path).ok


# --- several processes ----------------------------------------------------------------------------


def _child_writes(data: str, n: int, crash: bool) -> None:
    log = AuditLog(Path(data)).start()
    for i in range(n):
        log.submit("posts:Create", user_id=f"{os.getpid()}-{i}", status=201).result(timeout=10)
    if crash:
        os._exit(0)  # no close, no atexit: as if killed
    log.close()


def run_children(data: Path, *jobs: tuple[int, bool]) -> None:
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_child_writes, args=(str(data), n, crash)) for n, crash in jobs]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0, "a writer process failed or hung"


def test_two_processes_write_two_valid_chains(tmp_path: Path) -> None:
    run_children(tmp_path, (40, False), (40, False))
    report = verify(tmp_path)
    assert report.ok, report.findings
    assert [c.state for c in report.chains] == ["closed", "closed"] and report.summary()["records"] == 80
    times = [e.time for e in search(tmp_path, Query())]
    assert times == sorted(times) and len(times) == 80
    assert {e.chain for e in search(tmp_path, Query())} == {c.name for c in chains(tmp_path)}


def test_a_crash_leaves_an_unsealed_file_that_the_next_start_witnesses(tmp_path: Path) -> None:
    run_children(tmp_path, (5, True))
    report = verify(tmp_path)
    assert report.ok and codes(report, "warning") == ["unsealed"]
    assert report.chains[0].state == "unsealed" and report.chains[0].records == 5
    assert len(search(tmp_path, Query(action="posts:*"))) == 5  # the tail's records stay searchable
    [crashed] = chains(tmp_path)
    write(tmp_path, 1)  # the next start: a new chain, whose first digest vouches for the tail
    report = verify(tmp_path)
    assert report.ok and codes(report, "note") == ["witnessed"] and codes(report, "warning") == ["unsealed"]
    [restarted] = [c for c in chains(tmp_path) if c != crashed]
    genesis = json.loads((restarted / digest_name(0)).read_text())
    assert genesis["witness"][0]["state"] == "dead" and genesis["witness"][0]["tail"][0]["file"] == file_name(1)
    with (crashed / file_name(1)).open("ab") as tail:
        tail.write(b'{"event_id":"forged"}\n')
    assert codes(verify(tmp_path)) == ["file_extended"]


def test_a_chain_that_closes_while_another_starts_is_witnessed_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of processes starting and stopping at once: the first chain seals its end after the
    starting one listed the directory and before it asked whether the first's writer lives."""
    from summit.security.audit import witness as witness_module

    first = AuditLog(tmp_path).start()
    first.submit("posts:Create", user_id=1, status=201).result(timeout=10)
    alive = witness_module.writer_alive

    def closing_meanwhile(path: Path) -> bool:
        first.close()  # idempotent: only the first call seals
        return alive(path)

    monkeypatch.setattr(witness_module, "writer_alive", closing_meanwhile)
    second = AuditLog(tmp_path).start()
    second.close()
    report = verify(tmp_path)
    assert report.ok, report.findings
    genesis = json.loads((tmp_path / "audit" / second._chain.chain_id / digest_name(0)).read_text())
    assert [w["state"] for w in genesis["witness"]] == ["final"]


def _child_hits_the_file_size_limit(data: str) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
    log = AuditLog(Path(data)).start()
    written = failed = 0
    for i in range(100):
        try:
            log.submit("posts:Create", user_id=i, status=201).result(timeout=10)
            written += 1
        except AuditError:
            failed += 1
    log.close()  # neither hangs nor raises: the records' callers were told
    os._exit(0 if written and failed and written + failed == 100 else 3)


def test_a_write_failure_fails_the_records_and_leaves_an_unsealed_chain(tmp_path: Path) -> None:
    child = multiprocessing.get_context("spawn").Process(target=_child_hits_the_file_size_limit, args=(str(tmp_path),))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    report = verify(tmp_path)
    assert report.ok and codes(report, "warning") == ["unsealed"]
    assert 0 < report.summary()["records"] == len(search(tmp_path, Query())) < 100


def test_a_torn_last_line_is_not_a_record(tmp_path: Path) -> None:
    run_children(tmp_path, (3, True))
    [chain] = chains(tmp_path)
    with (chain / file_name(1)).open("ab") as tail:
        tail.write(b'{"event_id":"half-writ')
    report = verify(tmp_path)
    assert report.ok and report.chains[0].records == 3 and len(search(tmp_path, Query())) == 3


# --- tampering ------------------------------------------------------------------------------------


def test_a_changed_byte_is_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    path = chain / file_name(2)
    raw = bytearray(path.read_bytes())
    raw[raw.index(b'"status":201') + 10] ^= 0x01  # 201 -> 200
    path.write_bytes(bytes(raw))
    report = verify(data)
    assert codes(report) == ["file_changed"] and report.errors[0].file == file_name(2)
    assert "SHA-256" in report.errors[0].message


def test_a_deleted_file_is_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    (chain / file_name(2)).unlink()
    [error] = verify(data).errors
    assert (error.code, error.file) == ("file_missing", file_name(2)) and "3 records" in error.message


def test_a_deleted_digest_is_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    (chain / digest_name(2)).unlink()
    [error] = verify(data).errors
    assert (error.code, error.file) == ("digest_missing", digest_name(2)) and "not sealed" in error.message


def test_a_deleted_first_digest_is_found(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    data, chain = sealed
    (chain / digest_name(0)).unlink()
    assert [(e.code, e.file) for e in verify(data).errors] == [("digest_missing", digest_name(0))]
    crashed = tmp_path / "crashed"
    run_children(crashed, (2, True))
    [chain] = chains(crashed)
    (chain / digest_name(0)).unlink()
    assert codes(verify(crashed)) == ["digest_missing"]


def test_swapped_files_are_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    a, b = chain / file_name(1), chain / file_name(2)
    a.rename(chain / "swap")
    b.rename(a)
    (chain / "swap").rename(b)
    report = verify(data)
    assert codes(report) == ["file_misplaced", "file_misplaced"]
    assert "swapped" in report.errors[0].message


def test_swapped_digests_are_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    a, b = chain / digest_name(2), chain / digest_name(3)
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(a_bytes)
    report = verify(data)
    assert codes(report) == ["digest_misplaced", "digest_misplaced"]


def test_an_edited_digest_is_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    path = chain / digest_name(2)
    digest = json.loads(path.read_text())
    path.write_text(json.dumps({**digest, "records": 2}))
    assert codes(verify(data)) == ["bad_signature"]


def test_a_digest_resigned_with_another_key_is_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    forger = Ed25519PrivateKey.generate()
    (chain / file_name(2)).write_bytes((chain / file_name(2)).read_bytes().replace(b'"status":201', b'"status":200'))
    path = chain / digest_name(2)
    digest = json.loads(path.read_text())
    altered = {**digest, "sha256": hashlib.sha256((chain / file_name(2)).read_bytes()).hexdigest()}
    path.write_text(json.dumps(sign_digest(forger, {**altered, "key_id": key_id(forger.public_key())})))
    report = verify(data)
    assert codes(report) == ["wrong_key"] and "not by this log's key" in report.errors[0].message
    path.write_text(json.dumps(sign_digest(forger, altered)))  # claims our key id
    assert codes(verify(data)) == ["bad_signature"]


def test_a_replaced_key_pair_is_found_against_a_pinned_public_key(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    data, chain = sealed
    pinned = tmp_path / "audit-signing.pub"
    shutil.copy(data / "keys" / "audit-signing.pub", pinned)
    forger = Ed25519PrivateKey.generate()
    for path in sorted(chain.glob("*.digest.json")):  # rewrite the whole chain with a new key
        digest = json.loads(path.read_text())
        previous = json.loads((chain / digest_name(digest["seq"] - 1)).read_text())["signature"] if digest["seq"] else None
        path.write_text(json.dumps(sign_digest(forger, {**digest, "key_id": key_id(forger.public_key()), "prev_signature": previous})))
    (data / "keys" / "audit-signing.pub").write_bytes(public_pem(forger.public_key()))
    assert verify(data).ok  # the data directory alone cannot tell: see docs/audit.md
    report = verify(data, public_key=pinned)
    assert set(codes(report)) == {"wrong_key"} and len(report.errors) == 5


def test_a_truncated_file_is_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    path = chain / file_name(3)
    size = path.stat().st_size
    os.truncate(path, size - 40)
    [error] = verify(data).errors
    assert error.code == "file_truncated" and f"{size - 40} of {size}" in error.message


def test_appended_bytes_are_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    with (chain / file_name(4)).open("ab") as f:
        f.write(b'{"event_id":"forged"}\n')
    assert codes(verify(data)) == ["file_extended"]


def test_a_file_after_the_final_digest_is_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    (chain / file_name(5)).write_bytes((chain / file_name(4)).read_bytes())
    assert codes(verify(data)) == ["after_final"]


def test_a_removed_chain_end_is_found_once_a_later_chain_witnessed_it(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    write(data, 1)  # a later process start witnesses the closed chain's final digest
    (chain / digest_name(4)).unlink()  # drop the final digest: the chain now looks crashed
    report = verify(data)
    assert codes(report) == ["digest_missing"] and "witnessed by chain" in report.errors[0].message
    shutil.rmtree(chain)
    assert codes(verify(data)) == ["chain_missing"]


def test_a_removed_chain_end_without_a_later_witness_reads_as_a_crash(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    (chain / digest_name(4)).unlink()
    report = verify(data)  # the limit documented in docs/audit.md
    assert report.ok and codes(report, "warning") == ["unsealed"]
    (chain / file_name(4)).unlink()
    assert codes(verify(data)) == ["no_final_digest"]


def test_many_problems_are_all_reported(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    (chain / file_name(1)).unlink()
    (chain / digest_name(3)).unlink()
    os.truncate(chain / file_name(4), 100)
    assert codes(verify(data)) == ["digest_missing", "file_missing", "file_truncated"]


def test_a_live_chain_verifies(tmp_path: Path) -> None:
    log = AuditLog(tmp_path).start()
    try:
        log.submit("posts:Create", user_id=1, status=201).result(timeout=10)
        report = verify(tmp_path)
        assert report.ok and report.chains[0].state == "live" and report.chains[0].records == 1
    finally:
        log.close()
    assert verify(tmp_path).chains[0].state == "closed"


def test_verify_while_a_writer_rolls_finds_no_problem(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, max_file_bytes=1024).start()
    done = threading.Event()

    def writer() -> None:
        for i in range(400):
            log.submit("posts:Create", user_id=i, resource=f"arn:summit:photos:::post/{i}", status=201).result(timeout=10)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        rounds = 0
        while not done.is_set() or rounds < 3:
            report = verify(tmp_path)
            assert report.ok and not report.warnings, report.findings
            rounds += 1
    finally:
        thread.join(timeout=30)
        log.close()
    report = verify(tmp_path)
    assert report.ok and report.summary()["records"] == 400 and report.summary()["files"] > 50


def test_an_empty_data_directory_verifies(tmp_path: Path) -> None:
    report = verify(tmp_path)
    assert report.ok and report.summary()["chains"] == 0


# --- search ---------------------------------------------------------------------------------------


@pytest.fixture
def history(tmp_path: Path) -> Path:
    clock = Clock(T0)
    log = AuditLog(tmp_path, clock=clock).start()
    for user, action, resource, status in [
        ("1", "auth:SignIn", "arn:summit:auth:::session", 200),
        ("2", "auth:SignIn", "arn:summit:auth:::session", 401),
        ("1", "posts:Create", "arn:summit:photos:::post/10", 201),
        ("2", "posts:Create", "arn:summit:photos:::post/11", 201),
        ("1", "posts:Delete", "arn:summit:photos:::post/11", 403),
        ("1", "auth:SignOut", "arn:summit:auth:::session", 204),
    ]:
        log.submit(action, user_id=user, resource=resource, status=status).result(timeout=10)
        clock.advance(1200)  # 20 minutes: files roll by the hour too
    log.close()
    return tmp_path


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (Query(), ["auth:SignIn", "auth:SignIn", "posts:Create", "posts:Create", "posts:Delete", "auth:SignOut"]),
        (Query(user_id="2"), ["auth:SignIn", "posts:Create"]),
        (Query(action="auth:*"), ["auth:SignIn", "auth:SignIn", "auth:SignOut"]),
        (Query(resource="arn:summit:photos:::post/1?"), ["posts:Create", "posts:Create", "posts:Delete"]),
        (Query(resource="*post/11"), ["posts:Create", "posts:Delete"]),
        (Query(result="failure"), ["auth:SignIn", "posts:Delete"]),
        (Query(since="2026-01-01T00:40:00.000Z", until="2026-01-01T01:20:00.000Z"), ["posts:Create", "posts:Create"]),
        (Query(user_id="1", action="posts:*", result="success"), ["posts:Create"]),
        (Query(user_id="3"), []),
    ],
)
def test_search_filters(history: Path, query: Query, expected: list[str]) -> None:
    assert [e.action for e in search(history, query)] == expected


def test_search_orders_and_limits(history: Path) -> None:
    assert [e.action for e in search(history, Query(), limit=2)] == ["auth:SignIn", "auth:SignIn"]
    assert [e.action for e in search(history, Query(), limit=2, newest_first=True)] == ["auth:SignOut", "posts:Delete"]
    assert len(chains(history)) == 1 and len(list(chains(history)[0].glob("*.jsonl"))) == 2


def test_extra_and_renamed_entries_are_found(sealed: tuple[Path, Path]) -> None:
    data, chain = sealed
    (chain / "notes.txt").write_text("hello")
    report = verify(data)
    assert codes(report) == ["unexpected_entry"] and report.errors[0].file == "notes.txt"
    (chain / "notes.txt").unlink()
    chain.rename(data / "audit" / "old-chain")
    assert codes(verify(data)) == ["unexpected_entry"]
