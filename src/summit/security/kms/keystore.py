"""The KMS's files: the master key and, per named key, its metadata and its versions.

    <data_dir>/keys/kms/                 0700
        master.key                       0600: 32 random bytes, hex; the only secret not wrapped
        keys/<name>/key.json             0600: name, created, rotation_days, description
        keys/<name>/v000001.json         0600: one key version, wrapped under the master key

Every file is written once and never changed: to a private temporary file (fsynced), then
hard-linked into place, which fails if the name exists. So when processes race to make the
master key, a key or its next version, exactly one wins and the others read the winner's file;
nobody ever reads half a file. A version's 32-byte key is wrapped with AES-256-GCM under the
master key, with its key name, version number and creation time as associated data: a version file
moved to another name or number, or edited, does not unwrap.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from summit.security.kms.crypto import KEY_BYTES, NONCE_BYTES, encode_context, seal, unseal
from summit.security.kms.errors import InvalidCiphertext, KmsError, MasterKeyError

MASTER_KEY_FILE = "master.key"
KEYS_DIR = "keys"
META_FILE = "key.json"
VERSION_FILE = re.compile(r"^v(\d{6,10})\.json$")
VERSION_DOMAIN = b"summit-kms/version/v1\0"


@dataclass(frozen=True)
class VersionRecord:
    key_name: str
    version: int
    created: int  # Unix seconds
    nonce: bytes
    wrapped: bytes

    def aad(self) -> bytes:
        return VERSION_DOMAIN + encode_context({"key": self.key_name, "version": str(self.version), "created": str(self.created)})


def version_file(version: int) -> str:
    return f"v{version:06d}.json"


# -- the master key ------------------------------------------------------------------------------
def load_or_create_master_key(path: Path) -> bytes:
    """The master key in ``path``, made on first use (race-safe between processes); refused when
    the file is not a regular file owned by this user with no permissions for group or others."""
    if not path.exists():
        make_private_dir(path.parent)
        publish(path, secrets.token_bytes(KEY_BYTES).hex().encode() + b"\n")
    check_private_file(path, "the KMS master key")
    try:
        text = path.read_text().strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise MasterKeyError(f"cannot read the KMS master key {path}: {error}; restore it from your backup") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"the KMS master key {path} holds {len(key)} bytes, not {KEY_BYTES}: restore it from your backup")
    return key


def check_private_file(path: Path, what: str) -> None:
    try:
        st = path.stat()
    except OSError as error:
        raise MasterKeyError(f"cannot read {what} {path}: {error.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise MasterKeyError(f"{what} {path} is not a regular file")
    if st.st_uid != os.geteuid():
        raise MasterKeyError(
            f"{what} {path} is owned by uid {st.st_uid}, not by this process's user (uid {os.geteuid()}): "
            f"run summit as its owner, or `chown {os.geteuid()} {path}`"
        )
    if st.st_mode & 0o077:
        raise MasterKeyError(
            f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others may read or write it, "
            f"so it is refused; make it private with `chmod 600 {path}` (and check who may have copied it)"
        )


def make_private_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as error:
        raise KmsError(f"cannot make the KMS directory {path} private (0700): {error.strerror}") from None


# -- versions ------------------------------------------------------------------------------------
def wrap_version(master: bytes, key_name: str, version: int, created: int, key: bytes) -> VersionRecord:
    nonce = secrets.token_bytes(NONCE_BYTES)
    draft = VersionRecord(key_name, version, created, nonce, b"")
    return VersionRecord(key_name, version, created, nonce, seal(master, nonce, key, draft.aad()))


def unwrap_version(master: bytes, record: VersionRecord, path: Path) -> bytes:
    try:
        key = unseal(master, record.nonce, record.wrapped, record.aad())
    except InvalidCiphertext:
        raise MasterKeyError(
            f"version {record.version} of key {record.key_name!r} ({path}) does not unwrap under the master key: "
            "the master key file is not the one this key store was made with (restore the matching master.key "
            "from your backup), or the version file was changed"
        ) from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"version {record.version} of key {record.key_name!r} ({path}) holds a key of {len(key)} bytes")
    return key


def version_to_json(record: VersionRecord) -> bytes:
    return json.dumps({
        "key": record.key_name, "version": record.version, "created": record.created,
        "algorithm": "AES-256-GCM", "wrapped_by": "master", "nonce": record.nonce.hex(), "wrapped": record.wrapped.hex(),
    }, indent=1).encode()  # fmt: skip


def version_from_json(path: Path) -> VersionRecord:
    try:
        doc = json.loads(path.read_bytes())
        return VersionRecord(str(doc["key"]), int(doc["version"]), int(doc["created"]), bytes.fromhex(doc["nonce"]), bytes.fromhex(doc["wrapped"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise KmsError(f"cannot read the key version {path}: {error}; restore the key store from your backup") from None


# -- files ---------------------------------------------------------------------------------------
def publish(path: Path, data: bytes) -> bool:
    """Write ``data`` (mode 0600) to ``path`` unless it exists; True if this call made it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
                made = True
            except FileExistsError:
                made = False
        finally:
            tmp.unlink(missing_ok=True)
        if made:
            fsync_dir(path.parent)
    except OSError as error:
        raise KmsError(f"cannot write {path}: {error.strerror}") from None
    return made


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
