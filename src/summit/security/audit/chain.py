"""One chain's files and digests, as its writer makes them.

Order of operations, so that a crash at any instant leaves a state that ``verify`` reads as a
crash (an unsealed file) and never as tampering (a gap):

- start: take the chain's lock, open file 1, then write digest 0 (with the witness);
- roll: fsync and close file N, open file N+1, then write digest N;
- close: fsync and close the last file, then write its digest, marked final.

A digest is written to a temporary file, fsynced, then linked into place (never replacing one),
and the directory is fsynced.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from summit.security.audit.format import FORMAT_VERSION, LOCK_FILE, digest_name, file_name, fsync_dir, iso_ms, new_chain_id
from summit.security.audit.keys import key_id, sign_digest
from summit.security.audit.witness import witness


class Chain:
    """The files and digests of one chain; used by the writer thread only (and start/close)."""

    def __init__(self, audit_dir: Path, key: Ed25519PrivateKey, clock: Callable[[], float], max_bytes: int, period_s: int):
        self.key = key
        self.key_id = key_id(key.public_key())
        self.clock = clock
        self.max_bytes = max_bytes
        self.period_ms = period_s * 1000
        self.chain_id = new_chain_id(clock())
        self.path = audit_dir / self.chain_id
        self.audit_dir = audit_dir
        self.seq = 0  # the open file's number
        self.prev_signature: str | None = None
        self.lock_fd: int | None = None
        self.close_error: BaseException | None = None
        self.fd: int | None = None

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def begin(self) -> None:
        os.mkdir(self.path, 0o700)
        self.lock_fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)  # waits only for a reader's instant probe (writer_alive)
        seen = witness(self.audit_dir, self.key.public_key(), exclude=self.chain_id)
        started = iso_ms(self.now_ms())
        self._open(1)  # before the genesis digest: a crash in between leaves an unsealed file, never a gap
        self._write_digest({"file": None, "started_at": started, "reason": "start", "final": False, "witness": seen}, seq=0)

    def _open(self, seq: int) -> None:
        opened = self.now_ms()
        path = self.path / file_name(seq)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self.seq, self.opened_ms, self.period = seq, opened, opened // self.period_ms
        self.hash, self.size, self.records = hashlib.sha256(), 0, 0
        self.first_time: str | None = None
        self.last_time: str | None = None
        header = {"audit_file": FORMAT_VERSION, "chain": self.chain_id, "seq": seq, "opened_at": iso_ms(opened), "key_id": self.key_id}
        self._write(orjson.dumps(header) + b"\n")
        os.fsync(self.fd)
        fsync_dir(self.path)

    def _write(self, data: bytes) -> None:
        _write_all(self.fd, data)
        self.hash.update(data)
        self.size += len(data)

    def seconds_to_roll(self, tick: float) -> float:
        ends_ms = (self.period + 1) * self.period_ms
        return max(0.001, min(tick, (ends_ms - self.now_ms()) / 1000))

    def roll_if_due(self) -> None:
        period = self.now_ms() // self.period_ms
        if period > self.period:
            if self.records:
                self._roll("time")
            else:
                self.period = period  # an empty file is not sealed: it waits for its first record

    def append(self, line: bytes, epoch_ms: int, when: str) -> None:
        period = epoch_ms // self.period_ms
        if self.records and period > self.period:
            self._roll("time")
        elif self.records and self.size + len(line) > self.max_bytes:
            self._roll("size")
        self.period = max(self.period, period)
        self._write(line)
        self.records += 1
        self.first_time = self.first_time or when
        self.last_time = max(self.last_time or when, when)

    def sync(self) -> None:
        os.fdatasync(self.fd)  # appends: data and size, which is what reading them back needs

    def _roll(self, reason: str) -> None:
        sealed = self._close_file()
        self._open(self.seq + 1)  # the next file exists before the digest: no crash leaves a gap
        self._write_digest({**sealed, "reason": reason, "final": False}, seq=sealed["seq"])

    def finish(self) -> None:
        sealed = self._close_file()
        self._write_digest({**sealed, "reason": "close", "final": True}, seq=sealed["seq"])

    def _close_file(self) -> dict:
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        return {
            "seq": self.seq,
            "file": file_name(self.seq),
            "sha256": self.hash.hexdigest(),
            "bytes": self.size,
            "records": self.records,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "opened_at": iso_ms(self.opened_ms),
        }

    def _write_digest(self, fields: dict, *, seq: int) -> None:
        body = {
            "digest": FORMAT_VERSION,
            "chain": self.chain_id,
            **fields,
            "seq": seq,
            "prev_signature": self.prev_signature,
            "key_id": self.key_id,
            "sealed_at": iso_ms(self.now_ms()),
        }
        signed = sign_digest(self.key, body)
        target = self.path / digest_name(seq)
        tmp = self.path / f".{target.name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, orjson.dumps(signed, option=orjson.OPT_INDENT_2) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, target)  # never replaces an existing digest
        tmp.unlink()
        fsync_dir(self.path)
        self.prev_signature = signed["signature"]

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # a failed chain: its file stays unsealed, as after a crash
            self.fd = None
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
