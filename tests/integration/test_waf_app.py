"""The real app behind the WAF tier: `summit up --stage 1k` as the preset runs it (HAProxy with TLS ->
two nginx + ModSecurity + CRS processes -> two app servers, PostgreSQL behind PgBouncer), over HTTPS.

Two people use the whole app through the front door, one by its pages (forms with CSRF tokens,
session cookies carrying JWTs), one by its API (Bearer JWTs, JSON, PUT/PATCH/DELETE): sign-up,
confirmation, sign-in, a real JPEG posted, captions, comments, names and bios with quotes, angle
brackets and SQL- or shell-looking words, likes, follows, profile edits, searches, deletions. No
request is blocked and the WAF logs no block; the text comes back escaped. Attacks through the same
front door are refused with the 403 page naming HAProxy's request id, and logged."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from summit.testing.mail import code_in
from summit.testing.stage import RunningStage, detached_stage

pytestmark = [pytest.mark.postgres, pytest.mark.haproxy, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/share/modsecurity-crs/rules").is_dir(), reason="modsecurity-crs is not installed")]
SUMMIT = str(Path(sys.executable).with_name("summit"))
PASSWORD = "Tr0ub4dor&3 'or' \"1\"=\"1\" <b>--"  # any characters: the WAF frees passwords, the app hashes them
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

CAPTION = "Sunset at union station — select the best from union station; drop by & say hi <3 #travel"
CAPTION_2 = 'She said "it\'s <b>fine</b>" -- and meant it; 1=1 OR \'x\'=\'x\''
COMMENT = "<script>alert(1)</script> is how XSS starts; ' OR 1=1-- is how SQLi does"
COMMENT_2 = "cat /etc/passwd | grep root; cd ../../tmp && ls"
BIO = "I <3 photos & SQL: SELECT * FROM life WHERE fun = 'max'; DROP TABLE boredom;--"
NAME = "Ann \"the lens\" O'Hara <3"


@pytest.fixture(scope="module")
def stage() -> Iterator[RunningStage]:
    with detached_stage("1k", prefix="summit-waf-1k-") as running:  # the preset: TLS at the front door, two WAF processes
        yield running


def jpeg() -> bytes:
    """A real photo-like JPEG (noise and a gradient, 1600x1200, about a megabyte)."""
    noise = Image.effect_noise((1600, 1200), 40).convert("RGB")
    gradient = Image.linear_gradient("L").resize((1600, 1200)).convert("RGB")
    out = io.BytesIO()
    Image.blend(noise, gradient, 0.5).save(out, "JPEG", quality=92)
    return out.getvalue()


def mailed_code(data_dir: Path, email: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        mails = json.loads(subprocess.run([SUMMIT, "mail", "--json", "--data-dir", str(data_dir), "--to", email, "--limit", "1"],
                                          capture_output=True, text=True, check=True, timeout=30).stdout)
        if mails:
            return code_in(mails[0]["subject"])
        assert time.monotonic() < deadline, f"no mail to {email}"
        time.sleep(0.2)


def blocks(data_dir: Path) -> list[dict]:
    """The transactions the WAF processes blocked so far (from their event logs)."""
    found = []
    for path in sorted((data_dir / "logs").glob("waf-*-events.log")):
        found += [e for line in path.read_text().splitlines() if (e := json.loads(line)["transaction"])["response"]["http_code"] == 418]
    return found


class Checked:
    """Every request of a client, and what it answered, to assert that none was blocked."""

    def __init__(self, client: httpx.Client):
        self.client = client
        self.sent: list[tuple[str, str, int]] = []

    def __call__(self, method: str, path: str, expect: int, **kwargs) -> httpx.Response:  # noqa: ANN003
        r = self.client.request(method, path, **kwargs)
        self.sent.append((method, path, r.status_code))
        assert r.status_code == expect, (method, path, r.status_code, r.headers.get("content-type"), r.text[:400])
        return r

    def form(self, page: str, path: str, expect: int = 303, files: dict | None = None, **fields: str) -> httpx.Response:
        token = CSRF.search(self("GET", page, 200).text)
        assert token, f"no CSRF field on {page}"
        return self("POST", path, expect, data={"csrf_token": token.group(1), **fields}, files=files)


def test_the_whole_app_passes_the_waf_without_a_false_block(stage) -> None:  # noqa: ANN001
    data_dir = Path(stage.data_dir)
    suffix = int(time.time() * 1000) % 10**8
    ann, bob = f"ann{suffix}", f"bob{suffix}"
    before = len(blocks(data_dir))
    photo = jpeg()
    with stage.client(timeout=60, headers={"accept": "text/html"}) as page_client, stage.client(timeout=60) as api_client:
        ui, api = Checked(page_client), Checked(api_client)

        # ann, by the pages: sign up, confirm, sign in, post a photo
        ui.form("/signup", "/signup", username=ann, email=f"{ann}@example.com", password=PASSWORD)
        ui.form(f"/confirm?login={ann}", "/confirm", login=ann, code=mailed_code(data_dir, f"{ann}@example.com"))
        ui.form("/login", "/login", login=ann, password=PASSWORD)
        assert page_client.cookies.get("summit_session", "").count(".") == 2  # a JWT in a cookie, on every request from here
        created = ui.form("/new", "/posts", files={"photo": ("sunset.jpg", photo, "image/jpeg")}, caption=CAPTION)
        post_path = created.headers["location"]
        post_id = post_path.rsplit("/", 1)[1]

        # bob, by the API: sign up, confirm, sign in with a JWT, post, edit, comment, like, follow
        api("POST", "/api/v1/accounts", 201, json={"username": bob, "email": f"{bob}@example.com", "password": PASSWORD})
        api("POST", "/api/v1/accounts/confirm", 200, json={"login": bob, "code": mailed_code(data_dir, f"{bob}@example.com")})
        session = api("POST", "/api/v1/sessions", 201, json={"login": bob, "password": PASSWORD}).json()
        auth = {"authorization": f"Bearer {session['token']}"}
        mine = api("POST", "/api/v1/posts", 201, headers=auth, data={"caption": CAPTION_2},
                   files={"photo": ("p.jpg", photo, "image/jpeg")}).json()
        api("PATCH", f"/api/v1/posts/{mine['id']}", 200, headers=auth, json={"caption": CAPTION_2 + " (edited)"})
        comment = api("POST", f"/api/v1/posts/{post_id}/comments", 201, headers=auth, json={"body": COMMENT}).json()
        own_comment = api("POST", f"/api/v1/posts/{mine['id']}/comments", 201, headers=auth, json={"body": COMMENT_2}).json()
        api("PUT", f"/api/v1/posts/{post_id}/like", 200, headers=auth)
        api("DELETE", f"/api/v1/posts/{post_id}/like", 200, headers=auth)
        api("PUT", f"/api/v1/posts/{post_id}/like", 200, headers=auth)
        api("PUT", f"/api/v1/users/{ann}/follow", 200, headers=auth)
        api("DELETE", f"/api/v1/users/{ann}/follow", 200, headers=auth)
        api("PUT", f"/api/v1/users/{ann}/follow", 200, headers=auth)
        api("PATCH", "/api/v1/me", 200, headers=auth, json={"display_name": NAME, "bio": BIO})
        api("GET", "/api/v1/search", 200, headers=auth, params={"q": "select the best from union station"})
        api("GET", "/api/v1/feed", 200, headers=auth)
        refreshed = api("POST", "/api/v1/sessions/refresh", 201, json={"refresh_token": session["refresh_token"]}).json()
        auth = {"authorization": f"Bearer {refreshed['token']}"}

        # ann again: comment, like, edit the caption, her profile, follow back, search, read it all
        ann_comment = ui.form(post_path, f"{post_path}/comments", body=COMMENT_2).headers["location"].rsplit("#c", 1)[1]
        ui.form(post_path, f"{post_path}/like", next=post_path)
        ui.form(f"{post_path}/edit", f"{post_path}/edit", caption=CAPTION + " — 'edited' <i>twice</i>")
        ui.form("/settings", "/settings", display_name=NAME, bio=BIO)
        ui.form(f"/u/{bob}", f"/u/{bob}/follow", next=f"/u/{bob}")
        ui("GET", "/search", 200, params={"q": "select the best from union station"})
        shown = ui("GET", post_path, 200).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>alert(1)</script>" not in shown  # escaped by the app
        assert "&#39;edited&#39; &lt;i&gt;twice&lt;/i&gt;" in shown or "&#x27;edited&#x27; &lt;i&gt;twice&lt;/i&gt;" in shown
        ui("GET", f"/u/{ann}", 200)
        ui("GET", "/static/app.js", 200)

        # deletions: a comment and a post on each side, then bob's account by the API, ann's by her settings
        ui.form(post_path, f"/comments/{ann_comment}/delete", next=post_path)
        api("DELETE", f"/api/v1/comments/{own_comment['id']}", 204, headers=auth)
        api("DELETE", f"/api/v1/comments/{comment['id']}", 204, headers=auth)
        api("DELETE", f"/api/v1/posts/{mine['id']}", 204, headers=auth)
        ui.form(f"{post_path}/delete", f"{post_path}/delete")
        api("DELETE", "/api/v1/me", 204, headers=auth)
        ui.form("/settings", "/settings/delete", confirm=ann)

    assert len(ui.sent) + len(api.sent) > 45
    assert blocks(data_dir)[before:] == []


def test_attacks_through_the_front_door_get_the_403_page_with_haproxy_s_request_id(stage) -> None:  # noqa: ANN001
    data_dir = Path(stage.data_dir)
    with stage.client(timeout=30) as client:
        page = client.get("/search", params={"q": "x", "sort": "' OR 1=1--"})
        api = client.post("/api/v1/accounts", json={"username": "<script>alert(1)</script>", "email": "e@example.com", "password": "x" * 12})
        traversal = client.get("/u/someone", params={"file": "../../etc/passwd"})
        rce = client.post("/api/v1/accounts/password-reset", json={"login": "; cat /etc/passwd"})
    for r in (page, api, traversal, rce):
        assert r.status_code == 403, (r.request.url, r.status_code, r.text[:200])
        rid = r.headers["x-request-id"]
        assert re.fullmatch(r"[0-9A-F_]+", rid), rid  # HAProxy's id (its unique-id format), not nginx's
        assert rid in r.text
    assert page.headers["content-type"].startswith("text/html") and api.json()["error"]["code"] == "forbidden"
    deadline = time.monotonic() + 5
    while True:  # each block is an event with its rule ids, under the same id as HAProxy's log line
        logged = {e["unique_id"]: {m["details"]["ruleId"] for m in e["messages"]} for e in blocks(data_dir)}
        if all(r.headers["x-request-id"] in logged for r in (page, api, traversal, rce)):
            break
        assert time.monotonic() < deadline, logged
        time.sleep(0.1)
    assert any(i.startswith("942") for i in logged[page.headers["x-request-id"]])
    assert any(i.startswith("941") for i in logged[api.headers["x-request-id"]])
    assert any(i.startswith("930") for i in logged[traversal.headers["x-request-id"]])
    assert any(i.startswith("932") for i in logged[rce.headers["x-request-id"]])
    haproxy_log = (data_dir / "logs" / "haproxy.log").read_text()  # the front door's line: served by a WAF process, 403
    assert re.search(r" web/waf-[12] \S+ 403 .*\"GET /u/someone\?file=\.\.%2F\.\.%2Fetc%2Fpasswd HTTP/1\.1\"", haproxy_log)


def test_status_shows_the_waf_processes_healthy_and_in_haproxy_s_backend(stage) -> None:  # noqa: ANN001
    data_dir = Path(stage.data_dir)
    done = subprocess.run([SUMMIT, "status", "--json", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
    report = json.loads(done.stdout)
    wafs = {p["name"]: p for p in report["processes"] if p["kind"] == "waf"}
    assert set(wafs) == {"waf-1", "waf-2"} and all(p["healthy"] for p in wafs.values()), wafs
    assert all("events" in p.get("details", {}) for p in wafs.values())
    haproxy = next(p for p in report["processes"] if p["kind"] == "haproxy")
    deadline = time.monotonic() + 20
    while set(haproxy["details"]["servers"]) != {"web/waf-1", "web/waf-2"} or set(haproxy["details"]["servers"].values()) != {"UP"}:
        assert time.monotonic() < deadline, haproxy["details"]
        time.sleep(0.5)
        report = json.loads(subprocess.run([SUMMIT, "status", "--json", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60).stdout)
        haproxy = next(p for p in report["processes"] if p["kind"] == "haproxy")
