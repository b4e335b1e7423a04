"""The KMS on real files: keys and versions, envelope encryption round trips, every field of the
blob tampered with, contexts, rotation (on demand and by age), data keys, derived keys and MACs,
the master key's permissions, and processes racing to create the key store."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from summit.security.kms import DataKey, InvalidCiphertext, KeyExists, KeyNotFound, Kms, KmsError, MasterKeyError

DAY = 86_400
CTX = {"purpose": "test", "tenant": "42"}


@pytest.fixture
def kms(tmp_path: Path) -> Kms:
    kms = Kms.for_data_dir(tmp_path)
    kms.create_key("app")
    return kms


def test_the_store_is_made_private_on_first_use(tmp_path: Path) -> None:
    kms = Kms.for_data_dir(tmp_path)
    kms.create_key("app", description="the app's data")
    root = tmp_path / "keys" / "kms"
    assert kms.directory == root
    assert (root.stat().st_mode & 0o777) == 0o700
    assert (root / "master.key").stat().st_mode & 0o777 == 0o600
    assert len(bytes.fromhex((root / "master.key").read_text().strip())) == 32
    for path in (root / "keys" / "app").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert sorted(p.name for p in (root / "keys" / "app").iterdir()) == ["key.json", "v000001.json"]
    info = kms.describe_key("app")
    assert (info.name, info.description, info.rotation_days, info.current_version) == ("app", "the app's data", 365, 1)
    assert info.next_rotation == pytest.approx(info.versions[0].created + 365 * DAY)


@pytest.mark.parametrize("plaintext", [b"", b"x", b"hello world" * 1000, bytes(range(256))])
def test_round_trip(kms: Kms, plaintext: bytes) -> None:
    blob = kms.encrypt("app", plaintext, CTX)
    assert len(plaintext) < 8 or plaintext[:8] not in blob
    assert kms.decrypt(blob, CTX) == plaintext
    assert kms.decrypt(blob, dict(reversed(CTX.items()))) == plaintext  # order does not matter
    assert Kms(kms.directory).decrypt(blob, CTX) == plaintext  # another process's view of the files


def test_every_call_makes_a_fresh_data_key(kms: Kms) -> None:
    a, b = kms.encrypt("app", b"same", CTX), kms.encrypt("app", b"same", CTX)
    assert a != b and a[: 2 + 3 + 4] == b[: 2 + 3 + 4]  # same header, everything after differs
    assert a[9:] != b[9:]


def test_the_blob_format(kms: Kms) -> None:
    blob = kms.encrypt("app", b"12345", CTX)
    assert blob[0] == 1 and blob[1] == 3 and blob[2:5] == b"app"
    assert struct.unpack(">I", blob[5:9]) == (1,)
    assert len(blob) == 1 + 1 + 3 + 4 + 12 + 48 + 12 + 5 + 16


FIELDS = {  # offsets in a blob of key "app" (name of 3 bytes)
    "format": 0, "name length": 1, "name": 3, "version": 8, "wrap nonce": 9 + 5, "wrapped key": 21 + 20,
    "wrapped key tag": 21 + 40, "data nonce": 69 + 3, "ciphertext": 81 + 2, "tag": -1,
}  # fmt: skip


@pytest.mark.parametrize("field", FIELDS)
def test_a_change_to_any_field_is_refused(kms: Kms, field: str) -> None:
    blob = bytearray(kms.encrypt("app", b"secret message", CTX))
    blob[FIELDS[field]] ^= 0x01
    with pytest.raises(InvalidCiphertext):
        kms.decrypt(bytes(blob), CTX)


def test_every_single_bit_flip_is_refused(kms: Kms) -> None:
    blob = kms.encrypt("app", b"abc", CTX)
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            changed = bytearray(blob)
            changed[i] ^= bit
            with pytest.raises(InvalidCiphertext):
                kms.decrypt(bytes(changed), CTX)


def test_truncated_extended_or_foreign_blobs_are_refused(kms: Kms) -> None:
    blob = kms.encrypt("app", b"abc", CTX)
    for bad in (b"", blob[:1], blob[:10], blob[:-1], blob + b"\x00", b"\x02" + blob[1:], b"not a blob at all"):
        with pytest.raises(InvalidCiphertext):
            kms.decrypt(bad, CTX)
    with pytest.raises(InvalidCiphertext, match="format byte 0x02"):
        kms.decrypt(b"\x02" + blob[1:], CTX)
    with pytest.raises(InvalidCiphertext, match="bytes, not str"):
        kms.decrypt("text", CTX)  # type: ignore[arg-type]


@pytest.mark.parametrize("context", [{}, None, {"purpose": "test"}, {**CTX, "extra": "1"}, {"purpose": "test", "tenant": "43"}, {"Purpose": "test", "tenant": "42"}])
def test_a_wrong_context_is_refused(kms: Kms, context: dict | None) -> None:
    blob = kms.encrypt("app", b"abc", CTX)
    with pytest.raises(InvalidCiphertext, match="encryption context"):
        kms.decrypt(blob, context)


def test_a_blob_moved_to_another_key_or_version_is_refused(kms: Kms) -> None:
    kms.create_key("web")
    blob = kms.encrypt("app", b"abc", CTX)
    as_web = blob[:2] + b"web" + blob[5:]  # same length: a well-formed blob naming the other key
    with pytest.raises(InvalidCiphertext, match="encryption context"):
        kms.decrypt(as_web, CTX)
    as_gone = blob[:2] + b"old" + blob[5:]
    with pytest.raises(InvalidCiphertext, match="key 'old', which this KMS"):
        kms.decrypt(as_gone, CTX)
    with pytest.raises(InvalidCiphertext, match="under key 'app', not 'web'"):
        kms.decrypt(blob, CTX, key_name="web")
    as_v7 = blob[:5] + struct.pack(">I", 7) + blob[9:]
    with pytest.raises(InvalidCiphertext, match="version 7 of key 'app'"):
        kms.decrypt(as_v7, CTX)
    kms.rotate("app")
    as_v2 = blob[:5] + struct.pack(">I", 2) + blob[9:]
    with pytest.raises(InvalidCiphertext, match="encryption context"):
        kms.decrypt(as_v2, CTX)


def test_a_blob_from_another_key_store_is_refused(kms: Kms, tmp_path: Path) -> None:
    other = Kms(tmp_path / "other")
    other.create_key("app")
    with pytest.raises(InvalidCiphertext):
        kms.decrypt(other.encrypt("app", b"abc", CTX), CTX)


def test_rotation_on_demand_keeps_old_versions_decrypting(kms: Kms) -> None:
    blobs = {1: kms.encrypt("app", b"one", CTX)}
    for version in (2, 3):
        assert kms.rotate("app") == version
        blobs[version] = kms.encrypt("app", str(version).encode(), CTX)
        assert blobs[version][5:9] == struct.pack(">I", version)
    assert [v.version for v in kms.describe_key("app").versions] == [1, 2, 3]
    fresh = Kms(kms.directory)
    assert [fresh.decrypt(blobs[v], CTX) for v in (1, 2, 3)] == [b"one", b"2", b"3"]


def test_rotation_by_age_at_the_next_encrypt_and_by_rotate_due(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    kms = Kms.for_data_dir(tmp_path, clock=lambda: now[0])
    kms.create_key("app")
    kms.create_key("yearly", rotation_days=365)
    kms.create_key("monthly", rotation_days=30)
    kms.create_key("never", rotation_days=0)
    old = kms.encrypt("app", b"old", CTX)
    now[0] += 364 * DAY
    assert kms.encrypt("app", b"x", CTX)[5:9] == struct.pack(">I", 1)
    assert kms.rotate_due() == [("monthly", 2)]
    now[0] += 2 * DAY  # 366 days after creation
    assert kms.describe_key("app").next_rotation == pytest.approx(now[0] - DAY)
    fresh = kms.encrypt("app", b"new", CTX)
    assert fresh[5:9] == struct.pack(">I", 2)  # rotated when used
    assert kms.describe_key("app").current_version == 2
    assert kms.rotate_due() == [("yearly", 2)]  # monthly's version 2 is only 2 days old
    assert kms.rotate_due() == []
    assert kms.describe_key("never").next_rotation is None
    assert (kms.decrypt(old, CTX), kms.decrypt(fresh, CTX)) == (b"old", b"new")


def test_concurrent_rotations_make_consecutive_versions(kms: Kms) -> None:
    made: list[int] = []
    threads = [threading.Thread(target=lambda k=Kms(kms.directory): made.extend(k.rotate("app") for _ in range(5))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == list(range(2, 22))
    assert [v.version for v in kms.describe_key("app").versions] == list(range(1, 22))


def test_keys_are_named_listed_and_refused_when_missing_or_taken(kms: Kms) -> None:
    with pytest.raises(KeyExists, match="'app' exists already"):
        kms.create_key("app")
    assert kms.ensure_key("app").current_version == 1
    kms.create_key("z-last", rotation_days=0)
    assert [k.name for k in kms.list_keys()] == ["app", "z-last"]
    with pytest.raises(KeyNotFound, match="summit kms create nope"):
        kms.encrypt("nope", b"x", CTX)
    with pytest.raises(KeyNotFound):
        kms.rotate("nope")
    for bad in ("", "../x", "a/b", "-lead", "x" * 65, "sp ace"):
        with pytest.raises(KmsError, match="not a valid KMS key name"):
            kms.create_key(bad)
    with pytest.raises(KmsError, match="rotation_days"):
        kms.create_key("neg", rotation_days=-1)
    with pytest.raises(KmsError, match="encrypts bytes, not str"):
        kms.encrypt("app", "text", CTX)  # type: ignore[arg-type]


def test_generate_data_key(kms: Kms) -> None:
    data_key = kms.generate_data_key("app", CTX)
    assert isinstance(data_key, DataKey) and len(data_key.plaintext) == 32 and data_key.key_version == 1
    assert data_key.plaintext.hex() not in repr(data_key)
    assert kms.decrypt(data_key.ciphertext_blob, CTX) == data_key.plaintext
    with pytest.raises(InvalidCiphertext):
        kms.decrypt(data_key.ciphertext_blob, {})
    assert kms.generate_data_key("app", CTX).plaintext != data_key.plaintext


def test_derived_keys_and_macs(kms: Kms) -> None:
    k1 = kms.derive_key("app", "search-index")
    assert len(k1) == 32 and k1 == Kms(kms.directory).derive_key("app", "search-index")
    assert kms.derive_key("app", "other") != k1 and len(kms.derive_key("app", "x", length=64)) == 64
    tag = kms.mac("app", b"alice@example.com")
    assert tag == kms.mac("app", b"alice@example.com") != kms.mac("app", b"bob@example.com")
    assert len(tag) == 32 and kms.verify_mac("app", b"alice@example.com", tag) == 1
    kms.rotate("app")
    assert kms.derive_key("app", "search-index") != k1 == kms.derive_key("app", "search-index", version=1)
    assert kms.mac("app", b"alice@example.com") != tag == kms.mac("app", b"alice@example.com", version=1)
    assert kms.verify_mac("app", b"alice@example.com", tag) == 1
    assert kms.verify_mac("app", b"alice@example.com", kms.mac("app", b"alice@example.com")) == 2
    assert kms.verify_mac("app", b"mallory@example.com", tag) is None
    with pytest.raises(KmsError, match="no version 9"):
        kms.mac("app", b"x", version=9)
    with pytest.raises(KmsError, match="purpose"):
        kms.derive_key("app", "")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o602])
def test_a_master_key_open_to_group_or_others_is_refused(kms: Kms, mode: int) -> None:
    path = kms.directory / "master.key"
    path.chmod(mode)
    with pytest.raises(MasterKeyError, match=rf"mode 0{mode:o}.*`chmod 600 {path}`"):
        Kms(kms.directory)
    path.chmod(0o600)
    assert Kms(kms.directory).describe_key("app").current_version == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_master_key_owned_by_someone_else_is_refused(kms: Kms) -> None:
    path = kms.directory / "master.key"
    os.chown(path, 65534, -1)
    with pytest.raises(MasterKeyError, match="owned by uid 65534"):
        Kms(kms.directory)


def test_a_master_key_elsewhere(tmp_path: Path) -> None:
    secret_dir = tmp_path / "vault"
    kms = Kms.for_data_dir(tmp_path / "data", master_key_file=secret_dir / "summit-master.key")
    kms.create_key("app")
    blob = kms.encrypt("app", b"abc", CTX)
    assert not (tmp_path / "data" / "keys" / "kms" / "master.key").exists()
    assert (secret_dir / "summit-master.key").stat().st_mode & 0o777 == 0o600
    assert Kms.for_data_dir(tmp_path / "data", master_key_file=secret_dir / "summit-master.key").decrypt(blob, CTX) == b"abc"


def test_a_wrong_or_damaged_master_key_says_to_restore_it(kms: Kms) -> None:
    blob = kms.encrypt("app", b"abc", CTX)
    path = kms.directory / "master.key"
    original = path.read_text()
    path.write_text(os.urandom(32).hex())
    with pytest.raises(MasterKeyError, match="does not unwrap under the master key.*restore the matching master.key"):
        Kms(kms.directory).decrypt(blob, CTX)
    path.write_text("zz")
    with pytest.raises(MasterKeyError, match="cannot read the KMS master key"):
        Kms(kms.directory)
    path.write_text(os.urandom(16).hex())
    with pytest.raises(MasterKeyError, match="16 bytes, not 32"):
        Kms(kms.directory)
    path.write_text(original)
    assert Kms(kms.directory).decrypt(blob, CTX) == b"abc"


def test_an_edited_or_moved_version_file_is_refused(kms: Kms) -> None:
    kms.rotate("app")
    directory = kms.directory / "keys" / "app"
    text = (directory / "v000002.json").read_text()
    (directory / "v000002.json").write_text(text.replace('"created": ', '"created": 1'))
    with pytest.raises(MasterKeyError, match="version 2 of key 'app'"):
        Kms(kms.directory).encrypt("app", b"x", CTX)
    (directory / "v000002.json").write_text((directory / "v000001.json").read_text())
    with pytest.raises(KmsError, match="holds version 1 of key 'app': it was moved"):
        Kms(kms.directory).encrypt("app", b"x", CTX)


RACER = """
import sys, time
from pathlib import Path
from summit.security.kms import Kms
data, go, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
(go.parent / f"ready-{me}").touch()
while not go.exists():
    time.sleep(0.0005)
kms = Kms.for_data_dir(data)
kms.ensure_key("shared")
print(kms.encrypt("shared", me.encode(), {"racer": me}).hex())
"""


def test_processes_racing_to_create_the_store_share_one_winner(tmp_path: Path) -> None:
    data, go, n = tmp_path / "data", tmp_path / "go", 6
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(data), str(go), str(i)], stdout=subprocess.PIPE, text=True, env=env) for i in range(n)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = [racer.communicate(timeout=60)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0] * n
    root = data / "keys" / "kms"
    assert sorted(p.name for p in root.iterdir()) == ["keys", "master.key"]
    assert sorted(p.name for p in (root / "keys" / "shared").iterdir()) == ["key.json", "v000001.json"]  # no temp files left
    kms = Kms.for_data_dir(data)
    assert [kms.decrypt(bytes.fromhex(out.strip()), {"racer": str(i)}) for i, out in enumerate(outputs)] == [str(i).encode() for i in range(n)]
