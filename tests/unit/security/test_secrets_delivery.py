"""A secret's delivered copy (``SecretsManager.deliver``) and its readers: the sql adapter's
``Login`` (AWSCURRENT, read again only when the file changed) and the control plane's
``app_logins`` (every user's newest password, for PgBouncer's user list and the bootstrap)."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from summit.adapters.postgres import login as login_module
from summit.adapters.postgres.login import Login, LoginError, auth_failed
from summit.engines.layout import EngineError, Layout
from summit.engines.postgres import app_logins
from summit.security.secrets import RandomValue, RotationFailed, SecretsManager
from summit.security.secrets.rotation import AlternatingUsers, Rotation


def value(user: str, password: str) -> str:
    return json.dumps({"engine": "postgres", "host": "127.0.0.1", "port": 6432, "dbname": "summit", "username": user, "password": password})


@pytest.fixture
def sm(tmp_path: Path) -> SecretsManager:
    return SecretsManager.for_data_dir(tmp_path / "data")


def delivered(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_copy_follows_the_labels_owner_only(sm: SecretsManager, tmp_path: Path) -> None:
    target = tmp_path / "out" / "db-app.json"
    first = sm.create_secret("db/app", value("summit_a", "pw-a"))
    sm.deliver("db/app", target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    doc = delivered(target)
    assert doc["secret"] == "db/app" and doc["AWSCURRENT"]["version_id"] == first and "AWSPENDING" not in doc
    pending = sm.put_secret_value("db/app", value("summit_b", "pw-b"), stages=["AWSPENDING"])
    assert delivered(target)["AWSPENDING"]["version_id"] == pending
    sm.update_version_stage("db/app", "AWSCURRENT", move_to=pending)
    doc = delivered(target)
    assert doc["AWSCURRENT"]["version_id"] == pending and doc["AWSPREVIOUS"]["version_id"] == first
    assert json.loads(doc["AWSCURRENT"]["value"])["password"] == "pw-b"
    sm.deliver("db/app", None)
    assert not target.exists()


def test_unchanged_labels_leave_the_file_alone(sm: SecretsManager, tmp_path: Path) -> None:
    target = tmp_path / "db-app.json"
    sm.create_secret("db/app", value("summit_a", "pw-a"))
    sm.deliver("db/app", target)
    before = target.stat().st_mtime_ns
    time.sleep(0.01)
    sm.configure_rotation("db/app", "random")  # a write of the secret that moves no label
    assert target.stat().st_mtime_ns == before


def test_a_failed_rotation_leaves_the_copy_on_the_current_version(sm: SecretsManager, tmp_path: Path) -> None:
    target = tmp_path / "db-app.json"
    first = sm.create_secret("db/app", value("summit_a", "pw-a"))
    sm.deliver("db/app", target)

    class Broken(AlternatingUsers):
        def set_password(self, rotation: Rotation, username: str, password: str | None) -> None:
            pass

        def check_login(self, rotation: Rotation, username: str, password: str) -> None:
            raise RuntimeError("no login")

    with pytest.raises(RotationFailed):
        sm.rotate("db/app", Broken())
    doc = delivered(target)
    assert doc["AWSCURRENT"]["version_id"] == first and "AWSPENDING" not in doc
    sm.rotate("db/app", RandomValue(field="password"))
    assert delivered(target)["AWSCURRENT"]["version_id"] != first


def test_login_reads_again_only_when_the_file_changed(sm: SecretsManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "db-app.json"
    first = sm.create_secret("db/app", value("summit_a", "pw-a"))
    sm.deliver("db/app", target)
    login = Login(target)
    assert login.current() == ("summit_a", "pw-a") and login.version == first
    reads = []
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: reads.append(self) or original(self, *a, **k))
    for _ in range(5):
        login.current()
    assert reads == []  # a stat each time, no read
    monkeypatch.setattr(login_module, "RECHECK_SECONDS", 0.0)
    assert not login.stale(first)
    second = sm.put_secret_value("db/app", value("summit_b", "pw-b"))
    reads.clear()  # (the manager compares the copy with what it would write)
    assert login.stale(first) and not login.stale(second)
    assert login.current() == ("summit_b", "pw-b") and len(reads) == 1
    login.refresh()
    login.current()
    assert len(reads) == 2  # after a refused password: read again whatever the file says


def test_login_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(LoginError, match="cannot be read.*summit up"):
        Login(tmp_path / "missing.json").current()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"AWSCURRENT": {"version_id": "v", "value": "not json"}}))
    with pytest.raises(LoginError, match="not a delivered database secret"):
        Login(bad).current()
    os.chmod(bad, 0o600)
    assert not Login(bad).stale("v")  # a broken file does not retire working connections


def test_auth_failures_are_told_from_other_errors() -> None:
    class Refused(Exception):
        sqlstate = "28P01"

    assert auth_failed(Refused("x"))
    assert auth_failed(RuntimeError('FATAL:  SASL authentication failed'))  # PgBouncer's words, no SQLSTATE
    assert not auth_failed(RuntimeError("connection refused"))


def test_app_logins_give_each_user_its_newest_password(sm: SecretsManager, tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert app_logins(layout) == {}  # no rotated login: nothing to add
    sm.create_secret("db/app", value("summit_a", "pw-a"))
    sm.deliver("db/app", layout.app_login)
    assert app_logins(layout) == {"summit_a": "pw-a"}
    sm.put_secret_value("db/app", value("summit_b", "pw-b1"))  # b current, a previous
    sm.put_secret_value("db/app", value("summit_a", "pw-a2"), stages=["AWSPENDING"])  # mid-rotation
    assert app_logins(layout) == {"summit_a": "pw-a2", "summit_b": "pw-b1"}
    sm.put_secret_value("db/app", value("someone", "x"), stages=["AWSPENDING"])
    with pytest.raises(EngineError, match="someone"):
        app_logins(layout)


def test_rotating_the_stage_login_with_the_stage_down_changes_nothing(sm: SecretsManager, tmp_path: Path) -> None:
    from summit.engines.layout import free_port
    from summit.ops.dblogin import ADMIN_SECRET, SECRET, StageLogin

    port = free_port()  # nothing listens there
    sm.create_secret(ADMIN_SECRET, json.dumps({"host": "127.0.0.1", "port": port, "dbname": "postgres", "username": "postgres", "password": "x"}))
    first = sm.create_secret(SECRET, value("summit_a", "pw-a"))
    with pytest.raises(RotationFailed) as failed:
        sm.rotate(SECRET, StageLogin(str(tmp_path)))
    assert failed.value.step == "create_secret" and failed.value.undo_error is None
    assert f"127.0.0.1:{port} does not answer: start the stage" in str(failed.value)
    assert sm.get_secret_value(SECRET).version_id == first and len(sm.describe(SECRET).versions) == 1
