"""``SecretsManager``: versioned secrets, encrypted under the KMS, with staging labels, like AWS
Secrets Manager.

    secrets = SecretsManager.for_data_dir(blueprint.data_dir)
    secrets.put_secret_value("db/app", json.dumps({"username": "summit_a", "password": "..."}))
    secrets.get_secret_value("db/app").value                       # AWSCURRENT
    secrets.get_secret_value("db/app", stage="AWSPREVIOUS")
    secrets.get_secret_value("db/app", version_id="...")
    secrets.rotate("db/app", strategy)                              # see rotation.py

One file per secret, ``<data_dir>/secrets-manager/<name>.json`` (a name's ``/`` are directories),
mode 0600 in 0700 directories. Each version's value is a KMS blob (``Kms.encrypt`` under the key
``secrets-manager``, the context naming the secret, the version and the value's type), so the file
holds no plaintext and a value moved to another secret or version does not decrypt. A change is
made under the secret's lock (``flock`` on ``.<name>.json.lock``) and written to a temporary file,
fsynced and renamed over the old one: a reader, which takes no lock, always sees a whole file,
before or after the change.

Staging labels: a label is on at most one version; putting it on a version takes it off the version
that had it. When AWSCURRENT moves, AWSPREVIOUS goes to the version that had AWSCURRENT. A version
without labels is deprecated: it stays readable by id until the secret has more than
``MAX_VERSIONS`` versions, then the oldest deprecated ones are dropped.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from summit.security.kms import InvalidCiphertext, Kms, KmsError
from summit.security.secrets.errors import RotationInProgress, SecretNotFound, SecretsError, VersionNotFound

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
DIRECTORY = "secrets-manager"
KMS_KEY = "secrets-manager"
MAX_VERSIONS = 100
MAX_VALUE_BYTES = 64 * 1024  # AWS's limit
_SEGMENT = r"[A-Za-z0-9_+=@-][A-Za-z0-9_+=.@-]*"
SECRET_NAME = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})*$")
STAGE = re.compile(r"^[A-Za-z0-9_+=.@-]{1,256}$")
VERSION_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")

Value = str | bytes


@dataclass(frozen=True)
class SecretValue:
    name: str
    version_id: str
    stages: tuple[str, ...]
    created: float
    value: Value

    def json(self) -> Any:  # noqa: ANN401
        """The value parsed as JSON (a database secret's {"username", "password", ...})."""
        try:
            return json.loads(self.value)
        except ValueError:
            raise SecretsError(f"version {self.version_id} of secret {self.name!r} is not JSON") from None

    def __repr__(self) -> str:  # never print the value
        return f"SecretValue(name={self.name!r}, version_id={self.version_id!r}, stages={self.stages!r}, value=<{len(self.value)} {'chars' if isinstance(self.value, str) else 'bytes'}>)"


@dataclass(frozen=True)
class VersionInfo:
    version_id: str
    created: float
    stages: tuple[str, ...]


@dataclass(frozen=True)
class SecretInfo:
    name: str
    description: str
    created: float
    changed: float
    kms_key: str
    versions: tuple[VersionInfo, ...]  # oldest first
    rotation: dict = field(default_factory=dict)  # strategy, options, last_rotated, last_failure

    def holder(self, stage: str) -> str | None:
        return next((v.version_id for v in self.versions if stage in v.stages), None)

    def as_dict(self) -> dict:
        return {
            "name": self.name, "description": self.description, "created": self.created, "changed": self.changed,
            "kms_key": self.kms_key, "rotation": self.rotation,
            "versions": [{"version_id": v.version_id, "created": v.created, "stages": list(v.stages)} for v in self.versions],
        }  # fmt: skip


class SecretsManager:
    def __init__(self, directory: Path | str, kms: Kms, *, kms_key: str = KMS_KEY, clock: Callable[[], float] = time.time):
        self.directory = Path(directory)
        self.kms, self.kms_key, self._clock = kms, kms_key, clock
        _private_dir(self.directory)
        kms.ensure_key(kms_key, description="Secrets Manager: the values of every secret")

    @classmethod
    def for_data_dir(cls, data_dir: Path | str, *, kms: Kms | None = None, **options: Any) -> SecretsManager:  # noqa: ANN401
        """The data directory's secrets (``<data_dir>/secrets-manager/``) under its KMS."""
        return cls(Path(data_dir) / DIRECTORY, kms or Kms.for_data_dir(data_dir), **options)

    # -- reading ---------------------------------------------------------------------------------
    def get_secret_value(self, name: str, *, stage: str | None = None, version_id: str | None = None) -> SecretValue:
        """The value of one version: the one with ``version_id``, or the one labelled ``stage``
        (AWSCURRENT when neither is given; both must agree when both are)."""
        doc = self._read(name)
        if version_id is None:
            stage = stage or CURRENT
            version = next((v for v in doc["versions"] if stage in v["stages"]), None)
            if version is None:
                raise VersionNotFound(f"no version of secret {name!r} is labelled {stage}")
        else:
            version = next((v for v in doc["versions"] if v["id"] == version_id), None)
            if version is None:
                raise VersionNotFound(f"secret {name!r} has no version {version_id!r} (see `summit secrets describe {name}`)")
            if stage is not None and stage not in version["stages"]:
                raise VersionNotFound(f"version {version_id} of secret {name!r} is not labelled {stage}")
        return SecretValue(name, version["id"], tuple(version["stages"]), version["created"], self._decrypt(doc, version))

    def describe(self, name: str) -> SecretInfo:
        return _info(self._read(name))

    def list(self) -> list[SecretInfo]:
        found = []
        for path in sorted(self.directory.rglob("*.json")):
            name = path.relative_to(self.directory).with_suffix("").as_posix()
            if SECRET_NAME.match(name):
                with contextlib.suppress(SecretNotFound):
                    found.append(self.describe(name))
        return found

    # -- writing ---------------------------------------------------------------------------------
    def create_secret(self, name: str, value: Value, *, description: str = "", version_id: str | None = None) -> str:
        """A new secret whose first version is AWSCURRENT; returns the version id."""
        with self._locked(name) as path:
            if path.exists():
                raise SecretsError(f"a secret named {name!r} exists already: put a new version with put_secret_value")
            doc = self._new_doc(name, description)
            vid = self._add_version(doc, value, [CURRENT], version_id)
            self._write(path, doc)
        return vid

    def put_secret_value(self, name: str, value: Value, *, stages: Iterable[str] = (CURRENT,), version_id: str | None = None, description: str | None = None) -> str:
        """Add a version labelled ``stages`` (each taken off the version that had it); returns its
        id. The secret is made if it does not exist (its first version is AWSCURRENT whatever the
        stages). With ``version_id`` the call is idempotent: the same id and value again changes
        nothing; the same id with another value is refused."""
        stages = _stages(stages)
        with self._locked(name) as path:
            doc = self._load(path, name) if path.exists() else self._new_doc(name, description or "")
            if description is not None:
                doc["description"] = description
            if not doc["versions"] and CURRENT not in stages:
                stages = [CURRENT, *stages]
            if version_id is not None:
                existing = next((v for v in doc["versions"] if v["id"] == version_id), None)
                if existing is not None:
                    if self._decrypt(doc, existing) != value:
                        raise SecretsError(f"version {version_id} of secret {name!r} exists with another value: use a new version id")
                    for stage in stages:
                        _attach(doc, stage, version_id)
                    self._write(path, doc)
                    return version_id
            vid = self._add_version(doc, value, stages, version_id)
            self._write(path, doc)
        return vid

    def update_version_stage(self, name: str, stage: str, *, move_to: str | None = None, remove_from: str | None = None) -> None:
        """Put the label ``stage`` on version ``move_to`` (taking it off the version that had it),
        or take it off ``remove_from``. AWSCURRENT can only be moved, never just removed."""
        [stage] = _stages([stage])
        if move_to is None and remove_from is None:
            raise SecretsError("say where the label goes (move_to) or which version loses it (remove_from)")
        with self._locked(name) as path:
            doc = self._load(path, name)
            holder = _holder(doc, stage)
            if remove_from is not None and holder is None:
                raise VersionNotFound(f"no version of secret {name!r} is labelled {stage}")
            if remove_from is not None and holder != remove_from:
                raise SecretsError(f"{stage} of secret {name!r} is on version {holder}, not {remove_from}")
            if move_to is None:
                if stage == CURRENT:
                    raise SecretsError(f"{CURRENT} cannot be removed, only moved to another version (move_to)")
                _version(doc, remove_from).get("stages").remove(stage)  # type: ignore[union-attr]
            else:
                _version(doc, move_to)
                _attach(doc, stage, move_to)
            self._write(path, doc)

    # -- rotation (see rotation.py) --------------------------------------------------------------
    def rotate(self, name: str, strategy: Any = None, *, progress: Callable[[str], None] | None = None) -> Any:  # noqa: ANN401
        """Rotate ``name`` with ``strategy`` (a ``RotationStrategy``), or with the one configured
        for it (``configure_rotation``); see ``rotation.rotate``."""
        from summit.security.secrets.rotation import rotate, strategy_from_config

        if strategy is None:
            config = self.describe(name).rotation
            if not config.get("strategy"):
                raise SecretsError(f"secret {name!r} has no rotation strategy: give one (`summit secrets rotate {name} --strategy ...`)")
            strategy = strategy_from_config(config["strategy"], config.get("options", {}))
        return rotate(self, name, strategy, progress=progress)

    def deliver(self, name: str, path: Path | str | None) -> None:
        """Keep a plaintext copy of ``name``'s labelled versions in ``path`` (0600), rewritten
        whenever a label moves, for a consumer that cannot hold the KMS (a pooler's user list, an
        adapter reading its login: see ``docs/secrets.md``); None stops it (the file is removed)."""
        with self._locked(name) as secret:
            doc = self._load(secret, name)
            old = doc.get("delivery")
            if path is None:
                doc.pop("delivery", None)
            else:
                doc["delivery"] = str(Path(path).resolve())
            self._write(secret, doc)
        if old and old != doc.get("delivery"):
            Path(old).unlink(missing_ok=True)

    def configure_rotation(self, name: str, strategy: str, options: dict[str, str] | None = None) -> None:
        """Remember the strategy (``module:Class`` or a built-in name) that rotates ``name``."""
        from summit.security.secrets.rotation import strategy_from_config

        strategy_from_config(strategy, options or {})  # refuse what cannot be built now, not at rotation time
        self._update_rotation(name, strategy=strategy, options=dict(options or {}))

    # -- inside ----------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        if not isinstance(name, str) or len(name) > 256 or not SECRET_NAME.match(name):
            raise SecretsError(
                f"{name!r} is not a valid secret name: up to 256 letters, digits and _+=.@- in parts separated by '/', "
                "no part starting with '.'"
            )
        return self.directory / f"{name}.json"

    @contextlib.contextmanager
    def _locked(self, name: str, suffix: str = "lock", *, wait: bool = True) -> Iterator[Path]:
        path = self._path(name)
        _private_dir(path.parent, root=self.directory)
        fd = os.open(path.with_name(f".{path.name}.{suffix}"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise RotationInProgress(f"secret {name!r} is being rotated by another process or thread: wait for it to finish") from None
            yield path
        finally:
            os.close(fd)

    def _read(self, name: str) -> dict:
        return self._load(self._path(name), name)

    def _load(self, path: Path, name: str) -> dict:
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise SecretNotFound(f"no secret named {name!r} in {self.directory}: make it with `summit secrets put {name}`") from None
        except (OSError, ValueError) as error:
            raise SecretsError(f"cannot read secret {name!r} ({path}): {error}; restore it from your backup") from None
        if doc.get("format") != 1 or doc.get("name") != name:
            raise SecretsError(f"{path} is not secret {name!r} in format 1: it was moved or changed; restore it from your backup")
        return doc

    def _new_doc(self, name: str, description: str) -> dict:
        now = self._clock()
        return {"format": 1, "name": name, "description": description, "created": now, "changed": now,
                "kms_key": self.kms_key, "rotation": {}, "versions": []}  # fmt: skip

    def _write(self, path: Path, doc: dict) -> None:
        doc["changed"] = self._clock()
        _prune(doc)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(doc, indent=1).encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        if doc.get("delivery"):  # under the secret's lock: copies are written in the order of the changes
            self._deliver(doc, Path(doc["delivery"]))

    def _deliver(self, doc: dict, target: Path) -> None:
        """Write the delivered copy: each of AWSCURRENT, AWSPENDING, AWSPREVIOUS as {version_id,
        value}; only when it changed (a reader checks the file's mtime to notice a new login)."""
        labels = {}
        for stage in (CURRENT, PENDING, PREVIOUS):
            version = next((v for v in doc["versions"] if stage in v["stages"]), None)
            if version is not None:
                value = self._decrypt(doc, version)
                labels[stage] = {"version_id": version["id"], **({"value": value} if isinstance(value, str) else {"base64": base64.b64encode(value).decode()})}
        text = json.dumps({"secret": doc["name"], **labels}, indent=1) + "\n"
        try:
            if target.exists() and target.read_text() == text:
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            _fsync_dir(target.parent)
        except OSError as error:
            raise SecretsError(f"secret {doc['name']!r} was changed, but its delivered copy {target} could not be written "
                               f"({error.strerror}): fix that, then deliver the secret again (SecretsManager.deliver)") from None

    def _add_version(self, doc: dict, value: Value, stages: list[str], version_id: str | None) -> str:
        if isinstance(value, str):
            kind, raw = "string", value.encode()
        elif isinstance(value, (bytes, bytearray)):
            kind, raw = "binary", bytes(value)
        else:
            raise SecretsError(f"a secret's value is str or bytes, not {type(value).__name__}")
        if not raw:
            raise SecretsError("a secret's value cannot be empty")
        if len(raw) > MAX_VALUE_BYTES:
            raise SecretsError(f"a secret's value is at most {MAX_VALUE_BYTES} bytes; this one has {len(raw)}")
        vid = version_id or str(uuid.uuid4())
        if not VERSION_ID.match(vid):
            raise SecretsError(f"{vid!r} is not a valid version id: 8 to 64 letters, digits or '-'")
        if any(v["id"] == vid for v in doc["versions"]):
            raise SecretsError(f"secret {doc['name']!r} has a version {vid} already")
        try:
            blob = self.kms.encrypt(doc["kms_key"], raw, _context(doc["name"], vid, kind))
        except KmsError as error:
            raise SecretsError(f"cannot encrypt the value of secret {doc['name']!r}: {error}") from None
        doc["versions"].append({"id": vid, "created": self._clock(), "stages": [], "type": kind, "blob": base64.b64encode(blob).decode()})
        for stage in stages:
            _attach(doc, stage, vid)
        return vid

    def _decrypt(self, doc: dict, version: dict) -> Value:
        try:
            raw = self.kms.decrypt(base64.b64decode(version["blob"]), _context(doc["name"], version["id"], version["type"]), key_name=doc["kms_key"])
        except (InvalidCiphertext, ValueError) as error:
            raise SecretsError(
                f"version {version['id']} of secret {doc['name']!r} does not decrypt ({error}): the file was changed or moved; "
                "restore it from your backup"
            ) from None
        except KmsError as error:
            raise SecretsError(f"version {version['id']} of secret {doc['name']!r} does not decrypt: {error}") from None
        return raw.decode() if version["type"] == "string" else raw

    def _update_rotation(self, name: str, **changes: Any) -> None:  # noqa: ANN401
        with self._locked(name) as path:
            doc = self._load(path, name)
            doc["rotation"] = {**doc.get("rotation", {}), **changes}
            self._write(path, doc)

    def _promote(self, name: str, token: str) -> None:
        """Finish a rotation in one write: AWSCURRENT to ``token`` (AWSPREVIOUS to the version that
        had it), AWSPENDING off ``token``."""
        with self._locked(name) as path:
            doc = self._load(path, name)
            _attach(doc, CURRENT, token)
            version = _version(doc, token)
            if PENDING in version["stages"]:
                version["stages"].remove(PENDING)
            self._write(path, doc)

    def _restore(self, name: str, current: str, previous: str | None, pending: str) -> None:
        """Roll a rotation's labels back in one write: AWSCURRENT and AWSPREVIOUS where they were,
        AWSPENDING on the rotation's version (until ``_drop_pending``)."""
        with self._locked(name) as path:
            doc = self._load(path, name)
            for version in doc["versions"]:
                version["stages"] = [s for s in version["stages"] if s not in (CURRENT, PREVIOUS, PENDING)]
            _version(doc, current)["stages"].append(CURRENT)
            if previous is not None and any(v["id"] == previous for v in doc["versions"]):
                _version(doc, previous)["stages"].append(PREVIOUS)
            if pending != current and any(v["id"] == pending for v in doc["versions"]):
                _version(doc, pending)["stages"].append(PENDING)
            self._write(path, doc)

    def _drop_pending(self, name: str, version_id: str, *, keep: bool) -> None:
        """AWSPENDING off ``version_id``, and the version deleted unless ``keep``."""
        with self._locked(name) as path:
            doc = self._load(path, name)
            version = next((v for v in doc["versions"] if v["id"] == version_id), None)
            if version is None or CURRENT in version["stages"]:
                return
            if keep:
                version["stages"] = [s for s in version["stages"] if s != PENDING]
            else:
                doc["versions"].remove(version)
            self._write(path, doc)

def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _context(name: str, version_id: str, kind: str) -> dict[str, str]:
    return {"service": "secrets-manager", "secret": name, "version": version_id, "type": kind}


def _stages(stages: Iterable[str]) -> list[str]:
    if isinstance(stages, str):
        stages = [stages]
    out = []
    for stage in stages:
        if not isinstance(stage, str) or not STAGE.match(stage):
            raise SecretsError(f"{stage!r} is not a valid staging label: 1 to 256 letters, digits or _+=.@-")
        if stage not in out:
            out.append(stage)
    return out


def _holder(doc: dict, stage: str) -> str | None:
    return next((v["id"] for v in doc["versions"] if stage in v["stages"]), None)


def _version(doc: dict, version_id: str | None) -> dict:
    version = next((v for v in doc["versions"] if v["id"] == version_id), None)
    if version is None:
        raise VersionNotFound(f"secret {doc['name']!r} has no version {version_id!r}")
    return version


def _attach(doc: dict, stage: str, version_id: str) -> None:
    """Put ``stage`` on ``version_id``, off whichever version had it; AWSPREVIOUS follows the old
    AWSCURRENT."""
    holder = _holder(doc, stage)
    if holder == version_id:
        return
    if holder is not None:
        _version(doc, holder)["stages"].remove(stage)
    _version(doc, version_id)["stages"].append(stage)
    if stage == CURRENT and holder is not None:
        _attach(doc, PREVIOUS, holder)


def _prune(doc: dict) -> None:
    excess = len(doc["versions"]) - MAX_VERSIONS
    if excess > 0:
        deprecated = [v["id"] for v in doc["versions"] if not v["stages"]][:excess]
        doc["versions"] = [v for v in doc["versions"] if v["id"] not in deprecated]


def _info(doc: dict) -> SecretInfo:
    versions = tuple(VersionInfo(v["id"], v["created"], tuple(v["stages"])) for v in doc["versions"])
    return SecretInfo(doc["name"], doc["description"], doc["created"], doc["changed"], doc["kms_key"], versions, dict(doc.get("rotation", {})))


def _private_dir(path: Path, root: Path | None = None) -> None:
    """Make ``path`` (and the directories between ``root`` and it) with mode 0700."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        between = [p for p in path.parents if p == root or root in p.parents] if root else []
        for directory in [path, *between]:
            os.chmod(directory, 0o700)
    except OSError as error:
        raise SecretsError(f"cannot make the secrets directory {path} private (0700): {error.strerror}") from None

