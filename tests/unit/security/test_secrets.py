"""The Secrets Manager's versions and staging labels, on real files under a real KMS: labels move
as AWS moves them, old versions stay readable by id, values are encrypted at rest and bound to
their secret and version, writes are atomic, names and labels are checked."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest

from summit.security.kms import Kms
from summit.security.secrets import CURRENT, PENDING, PREVIOUS, SecretNotFound, SecretsError, SecretsManager, VersionNotFound


@pytest.fixture
def sm(tmp_path: Path) -> SecretsManager:
    return SecretsManager.for_data_dir(tmp_path)


def labels(sm: SecretsManager, name: str) -> dict[str, tuple[str, ...]]:
    return {v.version_id: v.stages for v in sm.describe(name).versions}


def test_the_first_version_is_current_and_each_put_moves_current_and_previous(sm: SecretsManager) -> None:
    v1 = sm.put_secret_value("db/app", "one", stages=[])  # a new secret's first version is current anyway
    assert labels(sm, "db/app") == {v1: (CURRENT,)}
    v2 = sm.put_secret_value("db/app", "two")
    assert labels(sm, "db/app") == {v1: (PREVIOUS,), v2: (CURRENT,)}
    v3 = sm.put_secret_value("db/app", "three")
    assert labels(sm, "db/app") == {v1: (), v2: (PREVIOUS,), v3: (CURRENT,)}
    assert sm.get_secret_value("db/app").value == "three"
    assert sm.get_secret_value("db/app", stage=PREVIOUS).value == "two"
    assert (sm.get_secret_value("db/app", version_id=v1).value, sm.get_secret_value("db/app", version_id=v1).stages) == ("one", ())
    value = sm.get_secret_value("db/app", version_id=v3, stage=CURRENT)
    assert (value.name, value.version_id, value.stages) == ("db/app", v3, (CURRENT,))
    assert "three" not in repr(value)
    with pytest.raises(VersionNotFound, match="not labelled AWSPREVIOUS"):
        sm.get_secret_value("db/app", version_id=v3, stage=PREVIOUS)


def test_a_label_is_on_one_version_at_most(sm: SecretsManager) -> None:
    v1 = sm.put_secret_value("s", "one")
    v2 = sm.put_secret_value("s", "two", stages=[PENDING])
    assert labels(sm, "s") == {v1: (CURRENT,), v2: (PENDING,)}
    v3 = sm.put_secret_value("s", "three", stages=[PENDING, "blue"])
    assert labels(sm, "s") == {v1: (CURRENT,), v2: (), v3: (PENDING, "blue")}
    sm.update_version_stage("s", "blue", move_to=v1)
    assert labels(sm, "s") == {v1: (CURRENT, "blue"), v2: (), v3: (PENDING,)}
    sm.update_version_stage("s", CURRENT, move_to=v3)  # current moves: previous follows the old current
    assert labels(sm, "s") == {v1: ("blue", PREVIOUS), v2: (), v3: (PENDING, CURRENT)}
    sm.update_version_stage("s", PENDING, remove_from=v3)
    sm.update_version_stage("s", CURRENT, move_to=v2, remove_from=v3)
    assert labels(sm, "s") == {v1: ("blue",), v2: (CURRENT,), v3: (PREVIOUS,)}
    sm.update_version_stage("s", CURRENT, move_to=v2)  # already there: nothing moves
    assert labels(sm, "s") == {v1: ("blue",), v2: (CURRENT,), v3: (PREVIOUS,)}
    assert all(sum(stage in s for s in labels(sm, "s").values()) == 1 for stage in (CURRENT, PREVIOUS, "blue"))


def test_label_moves_that_are_refused(sm: SecretsManager) -> None:
    v1 = sm.put_secret_value("s", "one")
    v2 = sm.put_secret_value("s", "two", stages=[PENDING])
    with pytest.raises(SecretsError, match="AWSCURRENT cannot be removed"):
        sm.update_version_stage("s", CURRENT, remove_from=v1)
    with pytest.raises(SecretsError, match=f"AWSCURRENT of secret 's' is on version {v1}, not {v2}"):
        sm.update_version_stage("s", CURRENT, move_to=v2, remove_from=v2)
    with pytest.raises(VersionNotFound, match="no version 'nope'"):
        sm.update_version_stage("s", CURRENT, move_to="nope")
    with pytest.raises(VersionNotFound, match="no version of secret 's' is labelled gold"):
        sm.update_version_stage("s", "gold", remove_from=v1)
    with pytest.raises(SecretsError, match="move_to"):
        sm.update_version_stage("s", PENDING)
    with pytest.raises(SecretsError, match="not a valid staging label"):
        sm.update_version_stage("s", "bad label", move_to=v1)
    assert labels(sm, "s") == {v1: (CURRENT,), v2: (PENDING,)}


def test_values_are_encrypted_at_rest_and_bound_to_their_place(sm: SecretsManager, tmp_path: Path) -> None:
    secret = "correct horse battery staple"
    vid = sm.put_secret_value("db/app", secret)
    sm.put_secret_value("db/other", "other value")
    path = tmp_path / "secrets-manager" / "db" / "app.json"
    raw = path.read_bytes()
    assert secret.encode() not in raw and b"correct horse" not in raw
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    doc = json.loads(raw)
    blob = base64.b64decode(doc["versions"][0]["blob"])
    assert secret.encode() not in blob and blob[0] == 1 and b"secrets-manager" in blob
    assert Kms.for_data_dir(tmp_path).decrypt(blob, {"service": "secrets-manager", "secret": "db/app", "version": vid, "type": "string"}) == secret.encode()
    other = json.loads((tmp_path / "secrets-manager" / "db" / "other.json").read_text())
    doc["versions"][0]["blob"] = other["versions"][0]["blob"]  # another secret's value, moved here
    path.write_text(json.dumps(doc))
    with pytest.raises(SecretsError, match="does not decrypt.*restore it from your backup"):
        sm.get_secret_value("db/app")
    doc["versions"][0]["type"] = "binary"
    path.write_text(json.dumps(doc))
    with pytest.raises(SecretsError, match="does not decrypt"):
        sm.get_secret_value("db/app")


def test_binary_values_and_limits(sm: SecretsManager) -> None:
    sm.put_secret_value("tls/key", b"\x00\x01binary")
    assert sm.get_secret_value("tls/key").value == b"\x00\x01binary"
    with pytest.raises(SecretsError, match="cannot be empty"):
        sm.put_secret_value("x", "")
    with pytest.raises(SecretsError, match="at most 65536 bytes"):
        sm.put_secret_value("x", "a" * 65537)
    with pytest.raises(SecretsError, match="str or bytes, not int"):
        sm.put_secret_value("x", 5)  # type: ignore[arg-type]


def test_version_ids_make_puts_idempotent(sm: SecretsManager) -> None:
    sm.put_secret_value("s", "one")
    assert sm.put_secret_value("s", "two", version_id="token-0001") == "token-0001"
    assert sm.put_secret_value("s", "two", version_id="token-0001") == "token-0001"
    assert len(sm.describe("s").versions) == 2
    with pytest.raises(SecretsError, match="exists with another value"):
        sm.put_secret_value("s", "three", version_id="token-0001")
    with pytest.raises(SecretsError, match="not a valid version id"):
        sm.put_secret_value("s", "four", version_id="../x")


def test_names_missing_secrets_and_listing(sm: SecretsManager) -> None:
    for bad in ("", "/lead", "trail/", "a//b", ".hidden", "a/.b", "sp ace", "x" * 257, "a/../b"):
        with pytest.raises(SecretsError, match="not a valid secret name"):
            sm.put_secret_value(bad, "v")
    with pytest.raises(SecretNotFound, match="summit secrets put nope"):
        sm.get_secret_value("nope")
    with pytest.raises(SecretNotFound):
        sm.describe("nope")
    assert sm.create_secret("b", "v", description="the b") and sm.describe("b").description == "the b"
    with pytest.raises(SecretsError, match="exists already"):
        sm.create_secret("b", "v")
    sm.put_secret_value("a/deep/name", "v")
    assert [s.name for s in sm.list()] == ["a/deep/name", "b"]
    assert not list((sm.directory).rglob("*.tmp"))


def test_old_versions_are_kept_until_there_are_too_many(sm: SecretsManager, monkeypatch: pytest.MonkeyPatch) -> None:
    import summit.security.secrets.manager as manager

    monkeypatch.setattr(manager, "MAX_VERSIONS", 5)
    ids = [sm.put_secret_value("s", f"value {i}") for i in range(8)]
    kept = [v.version_id for v in sm.describe("s").versions]
    assert kept == ids[3:]
    assert sm.get_secret_value("s", version_id=ids[3]).value == "value 3"
    with pytest.raises(VersionNotFound):
        sm.get_secret_value("s", version_id=ids[0])


def test_concurrent_writers_lose_nothing(sm: SecretsManager, tmp_path: Path) -> None:
    sm.put_secret_value("s", "start")
    errors: list[BaseException] = []

    def write(n: int) -> None:
        other = SecretsManager.for_data_dir(tmp_path)
        try:
            for i in range(10):
                other.put_secret_value("s", f"{n}-{i}", stages=[f"w{n}"])
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    info = sm.describe("s")
    assert len(info.versions) == 41
    assert {sm.get_secret_value("s", stage=f"w{n}").value for n in range(4)} == {f"{n}-9" for n in range(4)}
