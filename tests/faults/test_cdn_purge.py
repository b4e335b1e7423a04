"""The CDN at stage 10k, through the front door of a real `summit up --stage 10k` (HTTPS, the WAF
tier on the dynamic path; photos go HAProxy -> Varnish and never pass it): a photo is served
by Varnish's tiers once cached, and once its post is deleted no tier serves it any more (the purge
reaches both tiers before the delete answers; checked for 5 s at the most)."""

from __future__ import annotations

import io
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from summit.testing.mail import code_in

pytestmark = [pytest.mark.postgres, pytest.mark.varnish, pytest.mark.slow]


def _sign_up(client: httpx.Client, data_dir: str, name: str) -> dict[str, str]:
    import json
    import subprocess
    import sys

    password = "correct horse 1"
    assert client.post("/api/v1/accounts", json={"username": name, "email": f"{name}@example.com", "password": password}).status_code == 201
    summit = str(Path(sys.executable).with_name("summit"))
    deadline = time.monotonic() + 30
    while True:
        mails = json.loads(subprocess.run([summit, "mail", "--json", "--data-dir", data_dir, "--to", f"{name}@example.com", "--limit", "1"],
                                          capture_output=True, text=True, check=True, timeout=30).stdout)
        if mails:
            break
        assert time.monotonic() < deadline, "no confirmation mail"
        time.sleep(0.2)
    assert client.post("/api/v1/accounts/confirm", json={"login": name, "code": code_in(mails[0]["subject"])}).status_code == 200
    r = client.post("/api/v1/sessions", json={"login": name, "password": password})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_a_deleted_post_s_photo_stops_being_served_by_every_tier(stage_10k) -> None:  # noqa: ANN001
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(out, "JPEG")
    with stage_10k.client(timeout=30) as client:
        auth = _sign_up(client, stage_10k.data_dir, f"cdn{int(time.time() * 1000) % 10**9}")
        post = client.post("/api/v1/posts", headers=auth, files={"photo": ("p.jpg", out.getvalue(), "image/jpeg")})
        assert post.status_code == 201, post.text
        photo = post.json()["photo_url"]
        first, second = client.get(photo), client.get(photo)
        assert first.status_code == second.status_code == 200
        assert second.headers["x-cache"] == "HIT" and second.headers["x-cache-tier"] == "edge"  # served by the CDN
        assert second.headers["cache-control"].startswith("public, max-age=31536000")
        path = urlsplit(photo).path  # HAProxy sent it to the CDN's backend, never through the WAF tier (its backend web)
        routed = [line for line in (Path(stage_10k.data_dir) / "logs" / "haproxy.log").read_text().splitlines() if f"GET {path} " in line]
        assert len(routed) >= 2 and all(" cdn/" in line and " web/" not in line for line in routed), routed
        assert client.delete(f"/api/v1/posts/{post.json()['id']}", headers=auth).status_code == 204
        deadline = time.monotonic() + 5
        while (gone := client.get(photo)).status_code != 404:
            assert time.monotonic() < deadline, f"{photo} still served after 5 s: {gone.status_code} {dict(gone.headers)}"
            time.sleep(0.1)
        assert gone.headers["x-cache"] == "MISS"  # not from a cache: the origin said it is gone


def test_cached_photos_are_served_while_the_object_store_is_down(stage_10k) -> None:  # noqa: ANN001
    """The CDN keeps serving what it holds when SeaweedFS stops answering; a new upload gets a clear
    503 meanwhile (and writes no post), and works again once the store is back."""
    import json
    import signal

    import psutil

    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "JPEG")
    store = next(p for p in json.loads((Path(stage_10k.data_dir) / "summit.json").read_text())["processes"] if p["name"] == "seaweedfs")
    tree = [psutil.Process(store["pid"]), *psutil.Process(store["pid"]).children(recursive=True)]
    with stage_10k.client(timeout=60) as client:
        auth = _sign_up(client, stage_10k.data_dir, f"cdn{int(time.time() * 1000) % 10**9}")
        post = client.post("/api/v1/posts", headers=auth, files={"photo": ("p.jpg", out.getvalue(), "image/jpeg")})
        assert post.status_code == 201, post.text
        photo = post.json()["photo_url"]
        client.get(photo)
        assert client.get(photo).headers["x-cache"] == "HIT"
        posts_before = len(client.get("/api/v1/feed", headers=auth).json()["items"])
        for process in tree:
            process.send_signal(signal.SIGSTOP)
        try:
            cached = client.get(photo)
            assert cached.status_code == 200 and cached.headers["x-cache"] == "HIT" and cached.content
            refused = client.post("/api/v1/posts", headers=auth, files={"photo": ("q.jpg", out.getvalue(), "image/jpeg")})
            assert refused.status_code == 503, refused.text
            assert refused.headers.get("retry-after")
        finally:
            for process in tree:
                process.send_signal(signal.SIGCONT)
        assert len(client.get("/api/v1/feed", headers=auth).json()["items"]) == posts_before  # no half-written post
        deadline = time.monotonic() + 30
        while (again := client.post("/api/v1/posts", headers=auth, files={"photo": ("r.jpg", out.getvalue(), "image/jpeg")})).status_code != 201:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.5)
