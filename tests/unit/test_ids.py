"""summit.ids: the 41/13/10-bit identifier layout."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from summit import ids
from summit.ids import EPOCH_MS, LOGICAL_SHARDS, id_floor, make_id, parse_id, shard_for_key, shard_of

NOW = EPOCH_MS + 123_456_789  # a fixed instant after the epoch


def test_layout_constants() -> None:
    assert (ids.TIME_BITS, ids.SHARD_BITS, ids.SEQ_BITS) == (41, 13, 10)
    assert ids.TIME_BITS + ids.SHARD_BITS + ids.SEQ_BITS == 64
    assert LOGICAL_SHARDS == 8192
    assert EPOCH_MS == int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.mark.parametrize(("seq", "shard"), [(0, 0), (1, 1), (1023, 8191), (517, 4096)])
def test_roundtrip(seq: int, shard: int) -> None:
    value = make_id(seq, shard, now_ms=NOW)
    parts = parse_id(value)
    assert (parts.ms, parts.shard, parts.seq) == (NOW - EPOCH_MS, shard, seq)
    assert shard_of(value) == shard


def test_bit_layout() -> None:
    assert make_id(0, 0, now_ms=EPOCH_MS) == 0
    assert make_id(1, 0, now_ms=EPOCH_MS) == 1
    assert make_id(0, 1, now_ms=EPOCH_MS) == 1 << 10
    assert make_id(0, 0, now_ms=EPOCH_MS + 1) == 1 << 23
    value = make_id(0b1010, 0b1_0000_0000_0011, now_ms=EPOCH_MS + 0b111)
    assert value == (0b111 << 23) | (0b1_0000_0000_0011 << 10) | 0b1010
    assert make_id(1023, 8191, now_ms=EPOCH_MS) == (1 << 23) - 1


def test_the_sequence_wraps_into_its_ten_bits() -> None:
    assert parse_id(make_id(1024 + 5, 7, now_ms=NOW)).seq == 5
    assert parse_id(make_id(1024 + 5, 7, now_ms=NOW)).shard == 7


@pytest.mark.parametrize("shard", [-1, LOGICAL_SHARDS, 10**6])
def test_shard_out_of_range(shard: int) -> None:
    with pytest.raises(ValueError, match="shard must be in"):
        make_id(1, shard, now_ms=NOW)


def test_clock_before_the_epoch() -> None:
    with pytest.raises(ValueError, match="epoch"):
        make_id(1, 0, now_ms=EPOCH_MS - 1)


def test_ids_stay_within_a_signed_bigint() -> None:
    assert make_id(1023, 8191, now_ms=EPOCH_MS + (1 << 40) - 1) <= (1 << 63) - 1
    with pytest.raises(ValueError, match="epoch"):
        make_id(0, 0, now_ms=EPOCH_MS + (1 << 40))


def test_ids_sort_by_time() -> None:
    earlier = make_id(1023, LOGICAL_SHARDS - 1, now_ms=NOW)
    later = make_id(0, 0, now_ms=NOW + 1)
    assert earlier < later
    stamps = [NOW + step for step in (0, 1, 5, 1000, 86_400_000)]
    seqs, shards = (9, 3, 1000, 0, 4), (8000, 1, 50, 0, 7)  # lower bits that would sort otherwise
    minted = [make_id(seq, shard, now_ms=ms) for ms, seq, shard in zip(stamps, seqs, shards)]
    assert minted == sorted(minted)


def test_created_at() -> None:
    assert parse_id(make_id(0, 0, now_ms=EPOCH_MS)).created_at == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert parse_id(make_id(3, 2, now_ms=EPOCH_MS + 1500)).created_at == datetime(
        2025, 1, 1, 0, 0, 1, 500_000, tzinfo=timezone.utc
    )


def test_default_clock_is_now() -> None:
    before = datetime.now(timezone.utc)
    created = parse_id(make_id(1, 1)).created_at
    after = datetime.now(timezone.utc)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= created <= after


def test_shard_for_key_is_stable_and_in_range() -> None:
    # pinned: users are placed by this function, so changing it would move every user
    assert shard_for_key("alice") == 7239
    assert shard_for_key("bob") == 4416
    assert shard_for_key("alice") == shard_for_key("alice")
    shards = {shard_for_key(f"user{n}") for n in range(5000)}
    assert all(0 <= shard < LOGICAL_SHARDS for shard in shards)
    assert len(shards) > 3000  # spread over the shards, not piled on a few
    assert 0 <= shard_for_key("日本語 🙂") < LOGICAL_SHARDS


def test_id_floor() -> None:
    floor = id_floor(NOW)
    assert floor == make_id(0, 0, now_ms=NOW)
    assert floor <= make_id(1023, LOGICAL_SHARDS - 1, now_ms=NOW)
    assert floor > make_id(1023, LOGICAL_SHARDS - 1, now_ms=NOW - 1)
    assert id_floor(EPOCH_MS) == 0
    assert id_floor(EPOCH_MS - 10_000) == 0  # before the epoch: every ID is above
