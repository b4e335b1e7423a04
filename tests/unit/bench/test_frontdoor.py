"""The front-door baselines, on real processes: a second HAProxy of the stage's render (the engine
unit, under the control plane's supervisor) in front of bare hello servers and of nginx serving a
photo in the CDN's place; wrk through it; everything stopped afterwards."""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil
import pytest

from summit.bench import frontdoor, procs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.haproxy,
    pytest.mark.skipif(not all(shutil.which(b) or Path(f"/usr/sbin/{b}").exists() for b in ("haproxy", "nginx", "wrk")), reason="needs HAProxy, nginx and wrk"),
]


def test_hello_and_photo_through_a_second_haproxy(tmp_path: Path) -> None:
    photo = ("/media/ab/cd.jpg", b"\xff\xd8" + b"x" * 50_000)
    watched: dict[str, procs.Group] = {}
    cores = procs.cores()
    found = frontdoor.measure(
        tmp_path, servers=2, workers=1, check_interval_ms=500, photo=photo, seconds=1,
        server_core=cores[0], client_core=cores[-1], watch=watched.__setitem__,
    )
    assert found.note == ""
    assert found.servers == 2
    assert found.hello.rps and found.hello.rps > 100 and found.hello.cpu_ms_per_request > 0
    assert found.photo.rps and found.photo.rps > 10
    group = watched["front-door baseline"]
    assert len(group.pids) == 4  # two hello servers, nginx, HAProxy
    config = (tmp_path / "front-door" / "engines" / "haproxy" / "haproxy.cfg").read_text()
    assert "balance leastconn" in config and "use_backend cdn if { path_beg /media/ /static/ }" in config  # the stage's render
    assert (tmp_path / "front-door" / "nginx" / "www" / "media" / "ab" / "cd.jpg").read_bytes() == photo[1]
    assert not [p for p in group.pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]  # all stopped


def test_without_a_photo_only_the_hello_is_measured(tmp_path: Path) -> None:
    found = frontdoor.measure(tmp_path, servers=1, workers=1, check_interval_ms=500, photo=None, seconds=1, server_core=None, client_core=None)
    assert found.hello.rps and found.photo.rps is None
