"""Rotation in four steps against a real local resource: a SQLite database whose two users log in
with PBKDF2-hashed passwords, rotated by ``AlternatingUsers``. A failure at each step rolls back
(AWSPENDING gone, AWSCURRENT unchanged, the resource working with the current and previous
values); an interrupted rotation resumes; readers during rotations always hold a working value."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from summit.security.secrets import (
    PENDING,
    PREVIOUS,
    AlternatingUsers,
    RandomValue,
    Rotation,
    RotationFailed,
    RotationInProgress,
    SecretsError,
    SecretsManager,
)


class SqliteAccounts:
    """A real resource with passwords: users in a SQLite database, each with a salted PBKDF2-SHA256
    hash; ``login`` refuses a wrong password, as a database server would."""

    def __init__(self, path: Path):
        self.path = path
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB)")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def set_password(self, user: str, password: str | None) -> None:
        salt = os.urandom(16)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 20_000) if password is not None else None
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO users (name, salt, hash) VALUES (?, ?, ?)", (user, salt, digest))

    def login(self, user: str, password: str) -> None:
        with self._db() as db:
            row = db.execute("SELECT salt, hash FROM users WHERE name = ?", (user,)).fetchone()
        if row is None or row[1] is None or not hmac.compare_digest(hashlib.pbkdf2_hmac("sha256", password.encode(), row[0], 20_000), row[1]):
            raise PermissionError(f"password authentication failed for user {user}")

    def works(self, value: str) -> bool:
        doc = json.loads(value)
        try:
            self.login(doc["username"], doc["password"])
        except PermissionError:
            return False
        return True


class SqliteUsers(AlternatingUsers):
    def __init__(self, accounts: SqliteAccounts):
        super().__init__(("summit_a", "summit_b"))
        self.accounts = accounts

    def set_password(self, rotation: Rotation, username: str, password: str | None) -> None:
        self.accounts.set_password(username, password)

    def check_login(self, rotation: Rotation, username: str, password: str) -> None:
        self.accounts.login(username, password)


class FailingAt(SqliteUsers):
    """Real failures at one step: a step that does its work then loses its connection, or (at
    test_secret) a set_secret that applied a mistyped password, which the test step then catches."""

    def __init__(self, accounts: SqliteAccounts, step: str, *, undo_fails: bool = False):
        super().__init__(accounts)
        self.step, self.undo_fails = step, undo_fails

    def create_secret(self, rotation: Rotation) -> None:
        super().create_secret(rotation)
        if self.step == "create_secret":
            raise ConnectionError("lost the connection after storing the pending value")

    def set_secret(self, rotation: Rotation) -> None:
        if self.step == "test_secret":  # a typo: the resource gets another password than the pending one
            pending = rotation.pending().json()
            self.accounts.set_password(pending["username"], pending["password"] + "typo")
            return
        super().set_secret(rotation)
        if self.step == "set_secret":
            raise ConnectionError("lost the connection after ALTER ROLE")

    def finish_secret(self, rotation: Rotation) -> None:
        super().finish_secret(rotation)
        if self.step == "finish_secret":
            raise RuntimeError("could not notify the app servers")

    def undo_set(self, rotation: Rotation) -> None:
        if self.undo_fails:
            raise ConnectionError("the resource is down")
        super().undo_set(rotation)


@pytest.fixture
def accounts(tmp_path: Path) -> SqliteAccounts:
    accounts = SqliteAccounts(tmp_path / "resource.db")
    accounts.set_password("summit_a", "initial-password")
    return accounts


@pytest.fixture
def sm(tmp_path: Path) -> SecretsManager:
    sm = SecretsManager.for_data_dir(tmp_path / "data")
    sm.put_secret_value("db/app", json.dumps({"username": "summit_a", "password": "initial-password", "database": "resource.db"}))
    return sm


def state(sm: SecretsManager, name: str = "db/app") -> dict[str, tuple[str, ...]]:
    return {v.version_id: v.stages for v in sm.describe(name).versions}


def test_a_rotation_alternates_users_and_keeps_both_working(sm: SecretsManager, accounts: SqliteAccounts) -> None:
    first = sm.get_secret_value("db/app")
    result = sm.rotate("db/app", SqliteUsers(accounts))
    current, previous = sm.get_secret_value("db/app"), sm.get_secret_value("db/app", stage=PREVIOUS)
    assert (result.version_id, result.previous_version_id, result.resumed) == (current.version_id, first.version_id, False)
    assert current.json()["username"] == "summit_b" and current.json()["database"] == "resource.db"
    assert previous.version_id == first.version_id
    assert accounts.works(current.value) and accounts.works(previous.value)  # the old value works until the next rotation
    assert PENDING not in str(state(sm))
    second = sm.rotate("db/app", SqliteUsers(accounts))
    assert sm.get_secret_value("db/app").json()["username"] == "summit_a"
    assert sm.get_secret_value("db/app", stage=PREVIOUS).version_id == result.version_id
    assert not accounts.works(first.value)  # summit_a has a new password now
    assert accounts.works(sm.get_secret_value("db/app").value) and accounts.works(sm.get_secret_value("db/app", stage=PREVIOUS).value)
    assert sm.get_secret_value("db/app", version_id=first.version_id).value == first.value  # still readable by id
    assert sm.describe("db/app").rotation["last_rotated"] > 0 and second.seconds > 0


@pytest.mark.parametrize("rotated_before", [False, True], ids=["first rotation", "with a previous version"])
@pytest.mark.parametrize("step", ["create_secret", "set_secret", "test_secret", "finish_secret"])
def test_a_failed_step_rolls_back(sm: SecretsManager, accounts: SqliteAccounts, step: str, rotated_before: bool) -> None:
    if rotated_before:
        sm.rotate("db/app", SqliteUsers(accounts))
    before = state(sm)
    current = sm.get_secret_value("db/app")
    previous = sm.get_secret_value("db/app", stage=PREVIOUS) if rotated_before else None
    with pytest.raises(RotationFailed) as failed:
        sm.rotate("db/app", FailingAt(accounts, step))
    error = failed.value
    assert (error.step, error.secret, error.undo_error) == (step, "db/app", None)
    assert f"failed at {step}" in str(error) and f"AWSCURRENT is still version {current.version_id}" in str(error)
    assert "AWSPENDING (version" in str(error) and "removed" in str(error)
    expected_cause = {"create_secret": "lost the connection after storing", "set_secret": "lost the connection after ALTER",
                      "test_secret": "password authentication failed", "finish_secret": "could not notify"}[step]  # fmt: skip
    assert expected_cause in str(error)
    assert state(sm) == before  # labels back, the pending version gone
    assert sm.get_secret_value("db/app").value == current.value and accounts.works(current.value)
    if previous is not None:
        assert accounts.works(previous.value)  # undo_set gave the other user its old password back
    elif step != "create_secret":
        assert accounts.works(json.dumps({"username": "summit_b", "password": ""})) is False
    failure = sm.describe("db/app").rotation["last_failure"]
    assert failure["step"] == step and failure["undo_failed"] is False
    sm.rotate("db/app", SqliteUsers(accounts))  # and the next rotation works
    assert accounts.works(sm.get_secret_value("db/app").value)
    assert sm.describe("db/app").rotation["last_failure"] is None


def test_a_failed_undo_is_reported(sm: SecretsManager, accounts: SqliteAccounts) -> None:
    current = sm.get_secret_value("db/app")
    with pytest.raises(RotationFailed, match="putting things back FAILED too.*the resource is down.*check the resource by hand.*kept as version") as failed:
        sm.rotate("db/app", FailingAt(accounts, "set_secret", undo_fails=True))
    assert isinstance(failed.value.undo_error, ConnectionError)
    assert sm.get_secret_value("db/app").version_id == current.version_id and PENDING not in str(state(sm))
    kept = [v for v in sm.describe("db/app").versions if v.version_id != current.version_id]
    assert len(kept) == 1 and kept[0].stages == ()  # what summit_b may now have, readable by id
    assert accounts.works(sm.get_secret_value("db/app", version_id=kept[0].version_id).value)
    assert accounts.works(current.value)  # alternating users: the current user was never touched


def test_an_interrupted_rotation_is_resumed(sm: SecretsManager, accounts: SqliteAccounts) -> None:
    strategy = SqliteUsers(accounts)
    rotation = Rotation(sm, "db/app", "crashed-0000-token")
    strategy.create_secret(rotation)
    strategy.set_secret(rotation)  # then the process died: AWSPENDING is left on the new version
    assert sm.get_secret_value("db/app", stage=PENDING).version_id == "crashed-0000-token"
    result = sm.rotate("db/app", strategy)
    assert (result.resumed, result.version_id) == (True, "crashed-0000-token")
    assert sm.get_secret_value("db/app").version_id == "crashed-0000-token" and accounts.works(sm.get_secret_value("db/app").value)


def test_a_strategy_that_skips_its_duties_is_rolled_back(sm: SecretsManager, accounts: SqliteAccounts) -> None:
    class Lazy(SqliteUsers):
        def create_secret(self, rotation: Rotation) -> None:
            pass

    class NoFinish(SqliteUsers):
        def finish_secret(self, rotation: Rotation) -> None:
            pass

    before = state(sm)
    with pytest.raises(RotationFailed, match="create_secret stored no AWSPENDING value"):
        sm.rotate("db/app", Lazy(accounts))
    with pytest.raises(RotationFailed, match="finish_secret did not move AWSCURRENT"):
        sm.rotate("db/app", NoFinish(accounts))
    assert state(sm) == before and accounts.works(sm.get_secret_value("db/app").value)
    sm.put_secret_value("db/plain", "not json")
    with pytest.raises(RotationFailed, match="is not JSON"):
        sm.rotate("db/plain", SqliteUsers(accounts))
    sm.put_secret_value("db/stranger", json.dumps({"username": "root", "password": "x"}))
    with pytest.raises(RotationFailed, match="'root' is not one of the alternating users"):
        sm.rotate("db/stranger", SqliteUsers(accounts))


def test_one_rotation_at_a_time(sm: SecretsManager, accounts: SqliteAccounts) -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow(SqliteUsers):
        def test_secret(self, rotation: Rotation) -> None:
            entered.set()
            release.wait(30)
            super().test_secret(rotation)

    worker = threading.Thread(target=sm.rotate, args=("db/app", Slow(accounts)))
    worker.start()
    try:
        assert entered.wait(30)
        with pytest.raises(RotationInProgress, match="being rotated"):
            sm.rotate("db/app", SqliteUsers(accounts))
        assert accounts.works(sm.get_secret_value("db/app").value)  # mid-rotation, the current value works
    finally:
        release.set()
        worker.join()
    assert sm.get_secret_value("db/app").json()["username"] == "summit_b"


def test_random_values_and_configured_strategies(sm: SecretsManager) -> None:
    sm.put_secret_value("app/signing", "first")
    sm.rotate("app/signing", RandomValue(nbytes=16))
    assert len(sm.get_secret_value("app/signing").value) == 22 and sm.get_secret_value("app/signing", stage=PREVIOUS).value == "first"
    with pytest.raises(SecretsError, match="has no rotation strategy"):
        sm.rotate("app/signing")
    sm.put_secret_value("app/json", json.dumps({"kid": "k1", "secret": "old"}))
    sm.configure_rotation("app/json", "random", {"field": "secret", "nbytes": "8"})
    sm.rotate("app/json")
    assert sm.get_secret_value("app/json").json()["kid"] == "k1" and sm.get_secret_value("app/json").json()["secret"] != "old"
    for strategy, options, message in [("nope", {}, "unknown rotation strategy"), ("os:nothing_here", {}, "cannot load"),
                                       ("random", {"colour": "red"}, "does not take these options"), ("json:JSONDecoder", {}, "not a RotationStrategy")]:  # fmt: skip
        with pytest.raises(SecretsError, match=message):
            sm.configure_rotation("app/json", strategy, options)


READER = """
import sys
from summit.security.secrets import SecretsManager
sm, seen = SecretsManager.for_data_dir(sys.argv[1]), set()
stop = __import__("pathlib").Path(sys.argv[2])
while not stop.exists():
    value = sm.get_secret_value("db/app")
    assert value.json()["password"]
    seen.add(value.version_id)
print(len(seen))
"""


def test_readers_during_rotations_always_hold_a_working_value(sm: SecretsManager, accounts: SqliteAccounts, tmp_path: Path) -> None:
    """Readers in threads read AWSCURRENT and log in with it, over and over, during ten rotations;
    a reader in another process reads along. A value must keep working until the rotation after
    next, so the next rotation starts once every reader has finished the check it was doing (the
    period between rotations is far longer than any reader holds a value)."""
    stop, stop_file = threading.Event(), tmp_path / "stop"
    done = [0] * 3
    failures: list[str] = []
    during = [0]
    rotating = threading.Event()

    def reader(i: int) -> None:
        while not stop.is_set():
            value = sm.get_secret_value("db/app")
            in_rotation = rotating.is_set()
            if not accounts.works(value.value):
                failures.append(f"reader {i}: version {value.version_id} {value.json()['username']} did not log in")
            during[0] += in_rotation
            done[i] += 1

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    other = subprocess.Popen([sys.executable, "-c", READER, str(tmp_path / "data"), str(stop_file)], stdout=subprocess.PIPE, text=True, env=env)
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(10):
            rotating.set()
            sm.rotate("db/app", SqliteUsers(accounts))
            rotating.clear()
            marks = list(done)
            deadline = time.monotonic() + 30
            while any(done[i] < marks[i] + 1 for i in range(3)) and time.monotonic() < deadline:
                time.sleep(0.005)
    finally:
        stop.set()
        stop_file.touch()
        for thread in threads:
            thread.join()
        out, _ = other.communicate(timeout=60)
    assert not failures, failures[:5]
    assert during[0] > 0  # the readers did read while a rotation was running
    assert other.returncode == 0 and int(out) >= 2  # the other process saw several versions, never a torn file
    assert len([v for v in sm.describe("db/app").versions]) == 11
