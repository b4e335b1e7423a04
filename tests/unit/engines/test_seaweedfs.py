"""SeaweedFS as the control plane plans and renders it for stage 10k (no process here: the engine
runs in tests/contract/test_objects_s3.py): its own distinct ports on loopback, telemetry off, the
S3 keys generated and kept owner-only, ``{s3}`` naming a credentials file rather than a key, and the
app servers starting after it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from summit.blueprint import load_blueprint
from summit.engines import plan, publish
from summit.engines.seaweedfs import BUCKET, PORTS, SeaweedFS


@pytest.fixture
def stage(tmp_path: Path):  # noqa: ANN201
    blueprint = load_blueprint(environ={}, overrides={"stage": "10k", "data_dir": str(tmp_path / "data")})
    return plan(blueprint)


def test_stage_10k_runs_seaweedfs_and_its_objects_port_is_s3(stage) -> None:  # noqa: ANN001
    assert stage.blueprint.engines.seaweedfs.enabled and stage.blueprint.ports.objects == "{s3}"
    (store,) = stage.of_kind("seaweedfs")
    assert isinstance(store, SeaweedFS) and store.address.startswith("127.0.0.1:")
    assert all(store.name in app.needs for app in stage.of_kind("app"))  # the app servers start after it
    assert load_blueprint(environ={}, overrides={"stage": "1k"}).engines.seaweedfs.enabled is False


def test_every_port_is_its_own_and_kept(stage, tmp_path: Path) -> None:  # noqa: ANN001
    (store,) = stage.of_kind("seaweedfs")
    assert set(store.ports) == set(PORTS) and len(set(store.ports.values())) == len(PORTS)
    others = {e.port for e in stage.engines if e is not store}
    assert not others & set(store.ports.values())
    again = plan(stage.blueprint)
    assert again.engine("seaweedfs").ports == store.ports  # ports.json keeps them across starts
    with pytest.raises(Exception, match="distinct ports"):
        SeaweedFS("seaweedfs", dict.fromkeys(PORTS, 20000))


def test_the_command_stays_on_loopback_with_telemetry_off(stage) -> None:  # noqa: ANN001
    (store,) = stage.of_kind("seaweedfs")
    layout = stage.layout
    store.prepare(layout)
    command = store.command(layout)
    argv = command.argv
    assert Path(argv[0]).name == "weed" and argv[2] == "server"
    assert "-master.telemetry=false" in argv
    assert "-ip=127.0.0.1" in argv and "-ip.bind=127.0.0.1" in argv
    for part, port in store.ports.items():  # every port set: weed's defaults (8333, port + 10000...) would clash
        service, _, grpc = part.partition("-")
        assert f"-{service}.port{'.grpc' if grpc else ''}={port}" in argv, (part, argv)
    assert "-s3.port.iceberg=0" in argv and "-s3.port.lance=0" in argv
    home = layout.engine_dir("seaweedfs")
    assert f"-dir={home / 'data'}" in argv and argv[1] == f"-logdir={home / 'logs'}"
    assert command.grace <= 5  # SIGTERM takes weed ~26 s: SIGKILL after a short grace


def test_keys_are_generated_owner_only_and_never_in_the_url(stage) -> None:  # noqa: ANN001
    (store,) = stage.of_kind("seaweedfs")
    layout = stage.layout
    store.prepare(layout)
    publish(stage)
    config = json.loads((layout.engine_dir("seaweedfs") / "s3.json").read_text())
    (identity,) = config["identities"]
    access, secret = identity["credentials"][0]["accessKey"], identity["credentials"][0]["secretKey"]
    assert len(access) >= 20 and len(secret) >= 20 and access != secret
    url = stage.endpoints["s3"]
    assert url.startswith(f"s3://{BUCKET}?endpoint=http://{store.address}&credentials=")
    assert secret not in url and access not in url
    credentials = Path(url.split("credentials=", 1)[1])
    assert credentials.read_text() == f"[default]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n"
    for path in (credentials, layout.engine_dir("seaweedfs") / "s3.json", layout.data_dir / "run" / "endpoints.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert json.loads((layout.data_dir / "run" / "endpoints.json").read_text())["s3"] == url
    assert stage.blueprint.port_url("objects") == url


def test_sockets_it_left_are_removed_at_stop_and_before_a_start(stage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import tempfile

    (store,) = stage.of_kind("seaweedfs")
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    mine = [tmp_path / f"seaweedfs-master-grpc-{store.ports['master-grpc']}.sock", tmp_path / f"seaweedfs-s3-{store.ports['s3']}.sock"]
    other = tmp_path / "seaweedfs-master-grpc-1.sock"  # another server's
    for path in [*mine, other]:
        path.touch()
    store.stopped(stage.layout)
    assert not any(path.exists() for path in mine) and other.exists()
    mine[0].touch()
    store.prepare(stage.layout)
    assert not mine[0].exists()
