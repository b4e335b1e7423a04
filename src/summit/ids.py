"""64-bit, time-ordered, shard-ready identifiers (Instagram's layout).

    | 41 bits: ms since EPOCH | 13 bits: logical shard | 10 bits: sequence |

The sequence comes from the database that stores the row (``Database.next_id``), so IDs are
unique across every process that writes to it, as long as one database hands out fewer than 1024
IDs per millisecond. Logical shards are fixed from day one; moving a shard later rewrites no ID.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
TIME_BITS, SHARD_BITS, SEQ_BITS = 41, 13, 10
LOGICAL_SHARDS = 1 << SHARD_BITS
SEQ_MASK = (1 << SEQ_BITS) - 1
SHARD_MASK = LOGICAL_SHARDS - 1
MAX_ID = (1 << 63) - 1  # fits a signed BIGINT


@dataclass(frozen=True)
class IdParts:
    ms: int
    shard: int
    seq: int

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp((self.ms + EPOCH_MS) / 1000, tz=timezone.utc)


def make_id(seq: int, shard: int, now_ms: int | None = None) -> int:
    """Compose an ID from a database sequence value and a logical shard."""
    if not 0 <= shard < LOGICAL_SHARDS:
        raise ValueError(f"shard must be in [0, {LOGICAL_SHARDS}), got {shard}")
    ms = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) - EPOCH_MS
    value = (ms << (SHARD_BITS + SEQ_BITS)) | (shard << SEQ_BITS) | (seq & SEQ_MASK)
    if ms < 0 or value > MAX_ID:  # a signed BIGINT holds IDs until 2059
        raise ValueError("clock is outside the ID epoch")
    return value


def parse_id(value: int) -> IdParts:
    return IdParts(value >> (SHARD_BITS + SEQ_BITS), (value >> SEQ_BITS) & SHARD_MASK, value & SEQ_MASK)


def shard_of(value: int) -> int:
    return (value >> SEQ_BITS) & SHARD_MASK


def shard_for_key(key: str) -> int:
    """A stable logical shard for a new top-level entity (a user, by username)."""
    return zlib.crc32(key.encode()) & SHARD_MASK


def id_floor(ms_since_unix: int) -> int:
    """The smallest ID that could be minted at this wall-clock time (for time-range scans)."""
    return max(0, ms_since_unix - EPOCH_MS) << (SHARD_BITS + SEQ_BITS)
