"""Reading the audit directory: chains, digests, liveness of writers, witnesses, and search.

Search reads records; it does not verify them (``summit audit verify`` does).
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import heapq
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from summit.security.audit.format import AUDIT_DIR, CHAIN_RE, DIGEST_RE, FILE_RE, LOCK_FILE, AuditEvent
from summit.security.audit.keys import signature_valid


@dataclass
class Finding:
    """One thing ``verify`` found, about a chain and a file of it when it is that specific."""

    level: str  # error | warning | note
    code: str  # e.g. file_changed, digest_missing, wrong_key, unsealed
    message: str
    chain: str | None = None
    file: str | None = None


@dataclass
class ChainDir:
    """What one chain's directory holds, by sequence number taken from the file names."""

    chain_id: str
    path: Path
    files: dict[int, Path] = field(default_factory=dict)
    digests: dict[int, Path] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)


def list_chains(audit_dir: Path) -> tuple[list[ChainDir], list[str]]:
    """The chains under ``audit_dir`` (oldest first) and the names of entries that are not chains."""
    chains, strays = [], []
    try:
        entries = sorted(os.scandir(audit_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return [], []
    for entry in entries:
        if not (entry.is_dir(follow_symlinks=False) and CHAIN_RE.match(entry.name)):
            strays.append(entry.name)
            continue
        chains.append(load_chain(Path(entry.path)))
    return chains, strays


def load_chain(path: Path) -> ChainDir:
    """What one chain's directory holds now."""
    chain = ChainDir(path.name, path)
    for item in sorted(os.listdir(path)):
        if m := FILE_RE.match(item):
            chain.files[int(m.group(1))] = chain.path / item
        elif m := DIGEST_RE.match(item):
            chain.digests[int(m.group(1))] = chain.path / item
        elif item != LOCK_FILE and not (item.startswith(".") and item.endswith(".tmp")):
            chain.others.append(item)
    return chain


def writer_alive(chain_path: Path) -> bool:
    """Is the chain's writer still running? It holds an exclusive flock on its lock file until it
    closes or dies (the kernel drops the lock with the process, so a crash reads as not alive)."""
    try:
        fd = os.open(chain_path / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops our shared lock
    return False


def load_digest(path: Path) -> dict:
    """A digest file's JSON object; ValueError if it is not one."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise ValueError(f"unreadable: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("seq"), int):
        raise ValueError("not a digest object")
    return data


def sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def head(chain: ChainDir, public_key: Ed25519PublicKey) -> dict | None:
    """The chain's last validly signed digest, or None."""
    for seq in sorted(chain.digests, reverse=True):
        try:
            digest = load_digest(chain.digests[seq])
        except ValueError:
            continue
        if digest["seq"] == seq and digest.get("chain") == chain.chain_id and signature_valid(public_key, digest):
            return digest
    return None


# --- search -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What ``search`` keeps: every given criterion must match. Times are ISO 8601 UTC strings in
    the records' own format (``iso_ms``), so comparing strings compares instants."""

    user_id: str | None = None
    action: str | None = None  # glob, e.g. auth:* or posts:Delete
    resource: str | None = None  # glob
    since: str | None = None  # inclusive
    until: str | None = None  # exclusive
    result: str | None = None

    def matches(self, record: dict) -> bool:
        time = record.get("time", "")
        return (
            (self.user_id is None or record.get("user_id") == self.user_id)
            and (self.action is None or fnmatch.fnmatchcase(record.get("action") or "", self.action))
            and (self.resource is None or fnmatch.fnmatchcase(record.get("resource") or "", self.resource))
            and (self.since is None or time >= self.since)
            and (self.until is None or time < self.until)
            and (self.result is None or record.get("result") == self.result)
        )

    def may_hold(self, digest: dict | None) -> bool:
        """Can a sealed file with this digest hold a match? (Skips files outside the time range.)"""
        if digest is None or not digest.get("records"):
            return digest is None
        first, last = digest.get("first_time") or "", digest.get("last_time") or "~"
        return (self.since is None or last >= self.since) and (self.until is None or first < self.until)


def search(data_dir: Path, query: Query, *, limit: int | None = None, newest_first: bool = False) -> list[AuditEvent]:
    """Records of every chain that match ``query``, ordered by time (oldest first, or newest
    first), at most ``limit`` of them."""
    found = _matches(Path(data_dir) / AUDIT_DIR, query)
    if limit is not None:
        pick = heapq.nlargest if newest_first else heapq.nsmallest
        ordered = pick(limit, found, key=lambda item: item[0])
    else:
        ordered = sorted(found, key=lambda item: item[0], reverse=newest_first)
    return [AuditEvent.from_dict(record, chain=key[1]) for key, record in ordered]


def _matches(audit_dir: Path, query: Query) -> Iterator[tuple[tuple, dict]]:
    for chain in list_chains(audit_dir)[0]:
        for seq, path in sorted(chain.files.items()):
            digest = None
            if seq in chain.digests:
                try:
                    digest = load_digest(chain.digests[seq])
                except ValueError:
                    pass
            if not query.may_hold(digest):
                continue
            for number, record in enumerate(iter_records(path)):
                if query.matches(record):
                    yield (record.get("time", ""), chain.chain_id, seq, number), record


def iter_records(path: Path) -> Iterator[dict]:
    """The records of one file: the header line is skipped, and so is a torn last line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n")[1:]:
        if not line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and "event_id" in record:
            yield record
