"""``Kms``: named keys with versions, envelope encryption, data keys, derived keys and MACs.

    kms = Kms.for_data_dir(blueprint.data_dir)          # <data_dir>/keys/kms/
    kms.ensure_key("secrets-manager")                    # or create_key / `summit kms create`
    blob = kms.encrypt("secrets-manager", b"...", {"secret": "db/app"})
    kms.decrypt(blob, {"secret": "db/app"})              # -> b"..."

Every ``encrypt`` draws a fresh 256-bit data key, seals the plaintext with it (AES-256-GCM), wraps
it under the key's current version (AES-256-GCM) and returns one blob that names the key and the
version (``blob.py``); ``decrypt`` finds the version the blob names, so every older version keeps
decrypting after a rotation. A key rotates on demand (``rotate``) and when its current version is
older than its ``rotation_days`` (checked by ``encrypt`` and by ``rotate_due``).

The object is thread-safe and cheap to keep for a process's life; other processes' keys and
rotations are seen at the next call (the directory is read again, the immutable versions are
cached).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from summit.security.kms.blob import DATA_DOMAIN, KEY_NAME, WRAP_DOMAIN, Blob
from summit.security.kms.crypto import KEY_BYTES, NONCE_BYTES, encode_context, equal, hkdf, hmac_sha256, seal, unseal
from summit.security.kms.errors import InvalidCiphertext, KeyExists, KeyNotFound, KmsError
from summit.security.kms.keystore import (
    KEYS_DIR,
    MASTER_KEY_FILE,
    META_FILE,
    VERSION_FILE,
    VersionRecord,
    load_or_create_master_key,
    make_private_dir,
    publish,
    unwrap_version,
    version_file,
    version_from_json,
    version_to_json,
    wrap_version,
)

DAY = 86_400
DEFAULT_ROTATION_DAYS = 365
DERIVE_DOMAIN = b"summit-kms/derive/v1\0"

Context = Mapping[str, str]


@dataclass(frozen=True)
class KeyVersion:
    version: int
    created: float  # Unix time


@dataclass(frozen=True)
class KeyInfo:
    name: str
    description: str
    created: float
    rotation_days: int  # 0: never rotated automatically
    versions: tuple[KeyVersion, ...] = field(default=())

    @property
    def current_version(self) -> int:
        return self.versions[-1].version if self.versions else 0

    @property
    def next_rotation(self) -> float | None:
        """When the current version falls due (Unix time); None when the key never rotates by age."""
        if not self.rotation_days or not self.versions:
            return None
        return self.versions[-1].created + self.rotation_days * DAY

    def as_dict(self) -> dict:
        return {
            "name": self.name, "description": self.description, "created": self.created, "rotation_days": self.rotation_days,
            "current_version": self.current_version, "next_rotation": self.next_rotation,
            "versions": [{"version": v.version, "created": v.created} for v in self.versions],
        }  # fmt: skip


@dataclass(frozen=True)
class DataKey:
    """What ``generate_data_key`` returns, like AWS's GenerateDataKey: use ``plaintext`` and forget
    it; keep ``ciphertext_blob``, which ``Kms.decrypt`` (with the same context) turns back into it."""

    key_name: str
    key_version: int
    plaintext: bytes
    ciphertext_blob: bytes

    def __repr__(self) -> str:  # never print the key
        return f"DataKey(key_name={self.key_name!r}, key_version={self.key_version}, plaintext=<{len(self.plaintext)} bytes>)"


class Kms:
    def __init__(self, directory: Path | str, *, master_key_file: Path | str | None = None, clock: Callable[[], float] = time.time):
        self.directory = Path(directory)
        self.master_key_file = Path(master_key_file) if master_key_file else self.directory / MASTER_KEY_FILE
        self._clock = clock
        self._lock = threading.RLock()
        make_private_dir(self.directory)
        make_private_dir(self.directory / KEYS_DIR)
        self._master = load_or_create_master_key(self.master_key_file)
        self._meta: dict[str, dict] = {}
        self._keys: dict[tuple[str, int], tuple[VersionRecord, bytes]] = {}
        self._derived: dict[tuple[str, int, str, int], bytes] = {}

    @classmethod
    def for_data_dir(cls, data_dir: Path | str, **options) -> Kms:  # noqa: ANN003
        """The data directory's KMS: ``<data_dir>/keys/kms/``, beside the audit and identity keys."""
        return cls(Path(data_dir) / "keys" / "kms", **options)

    # -- keys ------------------------------------------------------------------------------------
    def create_key(self, name: str, *, rotation_days: int = DEFAULT_ROTATION_DAYS, description: str = "") -> KeyInfo:
        """A new key with its first version; ``KeyExists`` if the name is taken."""
        if not self._make_key(name, rotation_days, description):
            raise KeyExists(f"a KMS key named {name!r} exists already (see `summit kms list`)")
        return self.describe_key(name)

    def ensure_key(self, name: str, *, rotation_days: int = DEFAULT_ROTATION_DAYS, description: str = "") -> KeyInfo:
        """The key ``name``, made if missing (processes racing to make it share the winner's)."""
        self._make_key(name, rotation_days, description)
        return self.describe_key(name)

    def describe_key(self, name: str) -> KeyInfo:
        meta = self._metadata(name)
        versions = tuple(KeyVersion(r.version, float(r.created)) for r in (self._version_key(name, n)[0] for n in self._version_numbers(name, create=True)))
        return KeyInfo(name, meta["description"], float(meta["created"]), int(meta["rotation_days"]), versions)

    def list_keys(self) -> list[KeyInfo]:
        root = self.directory / KEYS_DIR
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and KEY_NAME.match(p.name) and (p / META_FILE).exists())
        return [self.describe_key(name) for name in names]

    def rotate(self, name: str) -> int:
        """Add a version to ``name`` and make it current; returns its number. Older versions keep
        decrypting what they encrypted."""
        with self._lock:
            while True:
                numbers = self._version_numbers(name, create=True)
                if self._add_version(name, numbers[-1] + 1):
                    return numbers[-1] + 1

    def rotate_due(self) -> list[tuple[str, int]]:
        """Rotate every key whose current version is older than its ``rotation_days``; returns the
        (name, new version) pairs."""
        rotated = []
        for info in self.list_keys():
            version = self._rotate_if_due(info.name)
            if version is not None:
                rotated.append((info.name, version))
        return rotated

    # -- envelope encryption ---------------------------------------------------------------------
    def encrypt(self, key_name: str, plaintext: bytes, context: Context | None = None) -> bytes:
        """Seal ``plaintext`` under a fresh data key wrapped by ``key_name``'s current version, the
        encryption ``context`` bound to both; returns the blob (see ``blob.py``)."""
        return self._encrypt(key_name, plaintext, context)[0]

    def decrypt(self, blob: bytes, context: Context | None = None, *, key_name: str | None = None) -> bytes:
        """The plaintext of ``blob``, given the context it was encrypted with. ``InvalidCiphertext``
        when the blob was changed, the context differs, the key or version is unknown, or the
        blob is under another key than ``key_name`` (when given)."""
        parsed = Blob.parse(blob)
        encoded = encode_context(context)
        if key_name is not None and parsed.key_name != key_name:
            raise InvalidCiphertext(f"the blob is encrypted under key {parsed.key_name!r}, not {key_name!r}")
        try:
            _, version_key = self._version_key(parsed.key_name, parsed.key_version)
        except KeyNotFound:
            raise InvalidCiphertext(f"the blob is encrypted under key {parsed.key_name!r}, which this KMS ({self.directory}) does not have") from None
        except _UnknownVersion:
            raise InvalidCiphertext(
                f"the blob is encrypted under version {parsed.key_version} of key {parsed.key_name!r}, which this KMS does not have"
            ) from None
        try:
            data_key = unseal(version_key, parsed.wrap_nonce, parsed.wrapped_key, WRAP_DOMAIN + parsed.header() + encoded)
            return unseal(data_key, parsed.data_nonce, parsed.payload, DATA_DOMAIN + parsed.before_payload() + encoded)
        except InvalidCiphertext:
            raise InvalidCiphertext(
                "the blob does not authenticate: it was changed, or the encryption context is not the one it was encrypted with"
            ) from None

    def generate_data_key(self, key_name: str, context: Context | None = None) -> DataKey:
        """A fresh 256-bit key, in plaintext and encrypted under ``key_name`` (with ``context``)."""
        plaintext = secrets.token_bytes(KEY_BYTES)
        blob, version = self._encrypt(key_name, plaintext, context)
        return DataKey(key_name, version, plaintext, blob)

    # -- derived keys ----------------------------------------------------------------------------
    def derive_key(self, key_name: str, purpose: str, *, length: int = KEY_BYTES, version: int | None = None) -> bytes:
        """A subkey of ``key_name`` (its current version, or ``version``) for one ``purpose``:
        HKDF-SHA256 with info ``"summit-kms/derive/v1\\0" + name + "\\0" + purpose``. The same
        inputs always give the same key; a rotation gives new keys for the new version."""
        if not purpose or "\0" in purpose:
            raise KmsError("a derived key needs a purpose: a non-empty string without NUL")
        number = version if version is not None else self._version_numbers(key_name, create=True)[-1]
        cache_key = (key_name, number, purpose, length)
        with self._lock:
            derived = self._derived.get(cache_key)
        if derived is None:
            try:
                _, ikm = self._version_key(key_name, number)
            except _UnknownVersion:
                raise KmsError(f"key {key_name!r} has no version {number}") from None
            derived = hkdf(ikm, salt=None, info=DERIVE_DOMAIN + key_name.encode() + b"\0" + purpose.encode(), length=length)
            with self._lock:
                self._derived[cache_key] = derived
        return derived

    def mac(self, key_name: str, data: bytes, *, version: int | None = None) -> bytes:
        """HMAC-SHA256 of ``data`` under a key derived from ``key_name`` for MACs (its current
        version, or ``version``). For lookups by keyed hash (a normalised email, say), store the
        version with the MAC, or use a key made with ``rotation_days=0``."""
        return hmac_sha256(self.derive_key(key_name, "mac", version=version), data)

    def verify_mac(self, key_name: str, data: bytes, tag: bytes) -> int | None:
        """The version whose MAC of ``data`` is ``tag`` (compared in constant time), or None."""
        found = None
        for number in self._version_numbers(key_name, create=True):
            if equal(self.mac(key_name, data, version=number), tag):
                found = number
        return found

    # -- inside ----------------------------------------------------------------------------------
    def _encrypt(self, key_name: str, plaintext: bytes, context: Context | None) -> tuple[bytes, int]:
        if not isinstance(plaintext, (bytes, bytearray, memoryview)):
            raise KmsError(f"KMS encrypts bytes, not {type(plaintext).__name__}")
        encoded = encode_context(context)
        self._rotate_if_due(key_name)
        number = self._version_numbers(key_name, create=True)[-1]
        _, version_key = self._version_key(key_name, number)
        data_key = secrets.token_bytes(KEY_BYTES)
        wrap_nonce, data_nonce = secrets.token_bytes(NONCE_BYTES), secrets.token_bytes(NONCE_BYTES)
        draft = Blob(key_name, number, wrap_nonce, b"", data_nonce, b"")
        wrapped = seal(version_key, wrap_nonce, data_key, WRAP_DOMAIN + draft.header() + encoded)
        blob = Blob(key_name, number, wrap_nonce, wrapped, data_nonce, b"")
        payload = seal(data_key, data_nonce, bytes(plaintext), DATA_DOMAIN + blob.before_payload() + encoded)
        return blob.before_payload() + payload, number

    def _key_dir(self, name: str) -> Path:
        if not isinstance(name, str) or not KEY_NAME.match(name):
            raise KmsError(f"{name!r} is not a valid KMS key name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return self.directory / KEYS_DIR / name

    def _make_key(self, name: str, rotation_days: int, description: str) -> bool:
        if not isinstance(rotation_days, int) or not 0 <= rotation_days <= 36_500:
            raise KmsError(f"rotation_days must be a whole number of days from 0 (never) to 36500, not {rotation_days!r}")
        directory = self._key_dir(name)
        make_private_dir(directory)
        meta = {"name": name, "created": int(self._clock()), "rotation_days": rotation_days, "description": description}
        made = publish(directory / META_FILE, json.dumps(meta, indent=1).encode())
        self._add_version(name, 1)  # the winner's, or this process's if the winner has not made it yet
        return made

    def _metadata(self, name: str) -> dict:
        with self._lock:
            meta = self._meta.get(name)
        if meta is None:
            path = self._key_dir(name) / META_FILE
            try:
                meta = json.loads(path.read_bytes())
            except FileNotFoundError:
                raise KeyNotFound(f"no KMS key named {name!r} in {self.directory}: make it with `summit kms create {name}`") from None
            except (OSError, ValueError) as error:
                raise KmsError(f"cannot read {path}: {error}") from None
            with self._lock:
                self._meta[name] = meta
        return meta

    def _version_numbers(self, name: str, *, create: bool = False) -> list[int]:
        """The key's version numbers, oldest first, read from its directory."""
        self._metadata(name)
        directory = self._key_dir(name)
        numbers = sorted(int(m.group(1)) for m in map(VERSION_FILE.match, (p.name for p in directory.iterdir())) if m)
        if not numbers and create:  # a key whose maker has not written its first version yet
            self._add_version(name, 1)
            return self._version_numbers(name)
        if not numbers:
            raise KmsError(f"KMS key {name!r} has no versions ({directory}): restore it from your backup")
        return numbers

    def _add_version(self, name: str, number: int) -> bool:
        record = wrap_version(self._master, name, number, int(self._clock()), secrets.token_bytes(KEY_BYTES))
        return publish(self._key_dir(name) / version_file(number), version_to_json(record))

    def _version_key(self, name: str, number: int) -> tuple[VersionRecord, bytes]:
        with self._lock:
            cached = self._keys.get((name, number))
        if cached is not None:
            return cached
        path = self._key_dir(name) / version_file(number)
        if not path.exists():
            self._metadata(name)  # KeyNotFound when the key itself is missing
            raise _UnknownVersion(f"key {name!r} has no version {number}")
        record = version_from_json(path)
        if (record.key_name, record.version) != (name, number):
            raise KmsError(f"{path} holds version {record.version} of key {record.key_name!r}: it was moved; restore it from your backup")
        entry = (record, unwrap_version(self._master, record, path))
        with self._lock:
            self._keys[(name, number)] = entry
        return entry

    def _rotate_if_due(self, name: str) -> int | None:
        rotation_days = int(self._metadata(name)["rotation_days"])
        if not rotation_days:
            return None
        numbers = self._version_numbers(name, create=True)
        record, _ = self._version_key(name, numbers[-1])
        if self._clock() - record.created < rotation_days * DAY:
            return None
        if self._add_version(name, numbers[-1] + 1):
            return numbers[-1] + 1
        return None  # another process rotated it just now: its version is current


class _UnknownVersion(KmsError):
    pass
