"""The private signing keys under the KMS: the user pool's JWKs (``<kid>.jwk.kms``) and the audit
log's key (``audit-signing.key.kms``) are stored only encrypted; a data directory from before
(plaintext ``<kid>.jwk``, ``audit-signing.key``) is converted on first load, by one process or by
several at once, and what its keys signed before still verifies."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from summit.security.audit import AuditError, AuditLog, verify
from summit.security.audit.keys import KMS_KEY as AUDIT_KMS_KEY
from summit.security.audit.keys import SEALING_CONTEXT, key_id, load_public_key
from summit.security.identity.keys import KMS_KEY, KeySet, sealing_context
from summit.security.identity.tokens import TokenIssuer
from summit.security.kms import InvalidCiphertext, Kms

ISSUER, AUDIENCE = "http://testserver", "summit-photos"


def _issuer(keys: KeySet) -> TokenIssuer:
    return TokenIssuer(keys, issuer=ISSUER, audience=AUDIENCE)


def _as_before_the_kms(data: Path) -> None:
    """Rewrite ``data/keys`` the way summit stored keys before they were sealed: plaintext JWKs
    (``key.as_dict(private=True)``), a PKCS#8 audit key, no KMS key store."""
    kms = Kms.for_data_dir(data)
    identity = data / "keys" / "identity"
    for path in identity.glob("*.jwk.kms"):
        kid = path.name.removesuffix(".jwk.kms")
        plain = kms.decrypt(path.read_bytes(), sealing_context(kid), key_name=KMS_KEY)
        fd = os.open(identity / f"{kid}.jwk", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(plain)
        path.unlink()
    sealed = data / "keys" / "audit-signing.key.kms"
    if sealed.exists():
        raw = kms.decrypt(sealed.read_bytes(), SEALING_CONTEXT, key_name=AUDIT_KMS_KEY)
        pem = Ed25519PrivateKey.from_private_bytes(raw).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        fd = os.open(data / "keys" / "audit-signing.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        sealed.unlink()
    shutil.rmtree(data / "keys" / "kms")


def _no_private_key_in_clear(data: Path) -> None:
    keys = data / "keys"
    assert not list(keys.rglob("*.jwk")) and not (keys / "audit-signing.key").exists()
    for path in keys.rglob("*"):
        if path.is_file() and path.name != "master.key":
            body = path.read_bytes()
            assert b"PRIVATE KEY" not in body and b'"d"' not in body, path


# ---- the user pool's token-signing keys ----------------------------------------------------------


def test_a_sealed_key_file_renamed_to_another_kid_does_not_load(tmp_path: Path) -> None:
    keys = KeySet(tmp_path / "keys" / "identity")
    first = keys.active_kid
    second = keys.rotate()
    directory = keys.directory
    (directory / f"{first}.jwk.kms").replace(directory / "stolen.jwk.kms")
    (directory / f"{second}.jwk.kms").rename(directory / f"{first}.jwk.kms")
    with pytest.raises(InvalidCiphertext):
        KeySet(directory)


def test_an_old_key_directory_is_converted_and_its_tokens_stay_valid(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keys = KeySet(data / "keys" / "identity")
    old_kid = keys.active_kid
    keys.rotate()
    token = _issuer(keys).access_token("42", username="alice")
    _as_before_the_kms(data)
    assert len(list((data / "keys" / "identity").glob("*.jwk"))) == 2  # the old format, in clear

    again = KeySet(data / "keys" / "identity")  # first load: sealed, plaintext removed
    _no_private_key_in_clear(data)
    assert sorted(again.kids()) == sorted(keys.kids()) and again.active_kid == keys.active_kid
    assert _issuer(again).verify(token).subject == "42"
    new_kid = again.rotate()  # what `summit identity rotate-keys` does
    assert KeySet(data / "keys" / "identity").active_kid == new_kid
    again.retire(old_kid)
    assert old_kid not in KeySet(data / "keys" / "identity").kids()
    with pytest.raises(ValueError, match="not a key id"):
        again.retire("../audit-signing")


def _open_key_set(directory: str) -> tuple[str, list[str]]:
    keys = KeySet(Path(directory))
    return keys.active_kid, sorted(keys.kids())


def _start_audit(data: str) -> str:
    log = AuditLog(Path(data)).start()
    log.submit("posts:Create", user_id=1, status=201).result(timeout=10)
    log.close()
    return key_id(load_public_key(Path(data) / "keys" / "audit-signing.pub"))


def test_processes_converting_an_old_directory_at_once_agree(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keys = KeySet(data / "keys" / "identity")
    keys.rotate()
    token = _issuer(keys).access_token("7", username="bob")
    _start_audit(str(data))
    before = key_id(load_public_key(data / "keys" / "audit-signing.pub"))
    _as_before_the_kms(data)

    with multiprocessing.get_context("spawn").Pool(6) as pool:
        key_sets = pool.map(_open_key_set, [str(data / "keys" / "identity")] * 6)
        audit_keys = pool.map(_start_audit, [str(data)] * 6)
    assert len(set(map(json.dumps, key_sets))) == 1 and key_sets[0][1] == sorted(keys.kids())
    assert set(audit_keys) == {before}
    _no_private_key_in_clear(data)
    assert len(list((data / "keys" / "identity").glob("*.jwk.kms"))) == 2
    assert _issuer(KeySet(data / "keys" / "identity")).verify(token).subject == "7"
    report = verify(data)
    assert report.ok and report.summary()["chains"] == 7, report.findings


# ---- the audit log's signing key -----------------------------------------------------------------


def test_an_old_audit_key_is_sealed_and_old_chains_still_verify(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _start_audit(str(data))
    public = (data / "keys" / "audit-signing.pub").read_bytes()
    _as_before_the_kms(data)
    report = verify(data)  # before conversion: verifies, and says the key is in clear
    assert report.ok and [f.code for f in report.findings if f.level == "warning"] == ["plaintext_key"]

    _start_audit(str(data))
    _no_private_key_in_clear(data)
    assert (data / "keys" / "audit-signing.pub").read_bytes() == public  # the same key, sealed
    report = verify(data)
    assert report.ok and report.summary()["chains"] == 2 and not report.warnings


def test_a_plaintext_key_that_is_not_the_sealed_one_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _start_audit(str(data))
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (data / "keys" / "audit-signing.key").write_bytes(other)
    with pytest.raises(AuditError, match="holds another key than"):
        AuditLog(data).start()


def test_a_sealed_audit_key_under_another_kms_is_refused_with_the_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _start_audit(str(data))
    shutil.rmtree(data / "keys" / "kms")  # the key store lost: the sealed key cannot be opened
    with pytest.raises(AuditError, match="cannot open the audit signing key"):
        AuditLog(data).start()
