"""The WAF tier as the control plane runs it: nginx with ModSecurity v3 and the OWASP CRS (Debian's)
in front of small real HTTP servers. The classic attack classes are blocked with 403 at paranoia
level 1, in query strings, form bodies and JSON bodies, and logged as events with the rule ids;
the pages say the request id; the app's free text, tokens, methods and large uploads pass, and only
where the exclusions say; a drained app server gets no new request; and a stage's plan puts the
tier between HAProxy and the app servers, never in the CDN's path."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from summit.blueprint import BlueprintError, load_blueprint
from summit.engines import Command, Engine, Layout, Supervisor, plan
from summit.engines.app import AppServer
from summit.engines.haproxy import HAProxy
from summit.engines.layout import free_port, tcp_open
from summit.engines.waf import BLOCK_STATUS, EXCLUSIONS, HEALTH_PATH, Waf, WafSettings, set_down

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/nginx").exists() or not Path("/usr/share/modsecurity-crs/rules").is_dir(),
                                reason="nginx, libnginx-mod-http-modsecurity and modsecurity-crs are not installed "
                                       "(scripts/install.sh --test installs them)")

# answers every method with its name, the method, the path, the body's size and the headers it got
ORIGIN = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, port = sys.argv[1], int(sys.argv[2])
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        size = len(self.rfile.read(int(self.headers.get("content-length") or 0)))
        body = json.dumps({"server": name, "method": self.command, "path": self.path, "bytes": size,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = answer
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class Origin(Engine):
    kind = "app"

    def __init__(self, name: str):
        super().__init__(name, "web", free_port())

    def command(self, layout: Layout) -> Command:
        return Command([sys.executable, "-c", ORIGIN, self.name, str(self.port)])

    def ready(self, layout: Layout) -> bool:
        return tcp_open(self.host, self.port, timeout=0.2)


@dataclass
class Tier:
    waf: Waf
    origins: list[Origin]
    supervisor: Supervisor
    layout: Layout

    @property
    def url(self) -> str:
        return f"http://{self.waf.address}"

    def events(self) -> list[dict]:
        """The events logged so far (ModSecurity writes one when the transaction ends: wait a little for it)."""
        path = self.waf.events_log(self.layout)
        return [json.loads(line)["transaction"] for line in path.read_text().splitlines() if line.strip()]

    def event(self, request_id: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events() if e["unique_id"] == request_id]
            if found:
                return found[-1]
            assert time.monotonic() < deadline, f"no event for request {request_id}: {self.events()[-3:]}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def tier() -> Iterator[Tier]:
    root = Path(tempfile.mkdtemp(prefix="summit-waf-", dir="/tmp"))
    root.chmod(0o755)  # nginx's workers (www-data, under root) must reach their files
    origins = [Origin("web-1"), Origin("web-2")]
    waf = Waf("waf-1", free_port(), origins, WafSettings(max_body_bytes=22 * 1024 * 1024))
    layout = Layout(root)
    supervisor = Supervisor(layout, [*origins, waf], on_event=lambda text: None)
    asyncio.run(supervisor.start())
    try:
        yield Tier(waf, origins, supervisor, layout)
    finally:
        asyncio.run(supervisor.stop())
        shutil.rmtree(root, ignore_errors=True)


def rule_ids(event: dict) -> set[str]:
    return {m["details"]["ruleId"] for m in event["messages"]}


# ---- attacks -----------------------------------------------------------------------------------

ATTACKS = {  # class: (what a client sends, the CRS's rule family that must name it)
    "sql injection": ("' OR 1=1--", "942"),
    "cross-site scripting": ("<script>alert(1)</script>", "941"),
    "path traversal": ("../../etc/passwd", "930"),
    "command injection": ("; cat /etc/passwd", "932"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("where", ["query", "form", "json", "caption of another field"])
def test_the_classic_attacks_are_blocked_with_403_and_logged_with_their_rule_ids(tier: Tier, attack: str, where: str) -> None:
    payload, family = ATTACKS[attack]
    rid = f"t-{abs(hash((attack, where))) % 10**9}"
    headers = {"x-request-id": rid}
    with httpx.Client(base_url=tier.url, timeout=10, headers=headers) as client:
        if where == "query":
            r = client.get("/u/someone", params={"tab": payload})
        elif where == "form":
            r = client.post("/p/1/comments", data={"csrf_token": "x", "next": payload})  # not the comment's own field
        elif where == "json":
            r = client.post("/api/v1/accounts", json={"username": payload, "email": "a@example.com", "password": "x" * 12})
        else:  # free text frees only its own field: the same words in a neighbour are inspected
            r = client.patch("/api/v1/posts/1", json={"caption": "fine", "location": payload})
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert r.headers["x-request-id"] == rid and r.headers["cache-control"] == "no-store"
    if where in ("json", "caption of another field"):  # an API path: the API's error shape
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        assert body["error"]["code"] == "forbidden" and body["request_id"] == rid and "field" in body["error"]
    else:
        assert r.headers["content-type"].startswith("text/html") and rid in r.text and "Request blocked" in r.text
    event = tier.event(rid)
    assert event["response"]["http_code"] == BLOCK_STATUS  # answered by the inspecting server, turned into the 403 page
    ids = rule_ids(event)
    assert "949110" in ids and any(i.startswith(family) for i in ids), (attack, ids)


def test_a_request_id_a_client_chose_is_not_echoed_unless_it_is_plain(tier: Tier) -> None:
    evil = '"><script>x</script>'
    r = httpx.get(tier.url + "/", params={"q": "' OR 1=1--"}, headers={"x-request-id": evil}, timeout=10)
    assert r.status_code == 403 and evil not in r.text
    assert len(r.headers["x-request-id"]) == 32 and r.headers["x-request-id"] in r.text  # nginx's own id instead


def test_a_threshold_the_attack_does_not_reach_lets_it_pass() -> None:
    """The blueprint's threshold is the CRS's: at 1000, one SQL injection (5 points) is scored, logged and passed."""
    root = Path(tempfile.mkdtemp(prefix="summit-waf-", dir="/tmp"))
    root.chmod(0o755)
    origin = Origin("web-1")
    waf = Waf("waf-1", free_port(), [origin], WafSettings(paranoia_level=2, inbound_anomaly_threshold=1000))
    supervisor = Supervisor(Layout(root), [origin, waf], on_event=lambda text: None)
    asyncio.run(supervisor.start())
    try:
        r = httpx.get(f"http://{waf.address}/", params={"id": "' OR 1=1--"}, headers={"x-request-id": "lenient-1"}, timeout=10)
        assert r.status_code == 200 and r.json()["server"] == "web-1"
        tier = Tier(waf, [origin], supervisor, Layout(root))
        event = tier.event("lenient-1")
        assert event["response"]["http_code"] == 200 and "942100" in rule_ids(event)
        assert "setvar:tx.paranoia_level=2" in (root / "engines" / "waf-1" / "modsecurity" / "crs-setup.conf").read_text()
    finally:
        asyncio.run(supervisor.stop())
        shutil.rmtree(root, ignore_errors=True)


# ---- what the app sends passes -------------------------------------------------------------------

FREE_TEXT = [
    "select the best from union station; drop by & say hi",
    'She said "it\'s <3" -- and <b>meant</b> it',
    "' OR 1=1--",
    "<script>alert(1)</script> is how XSS starts",
    "cd ../../etc/passwd; cat /etc/passwd | grep root",
    "1' UNION SELECT username, password FROM users WHERE '1'='1",
]
JWT = ("eyJhbGciOiJFZERTQSIsImtpZCI6IjIwMjUtMDEtMDEiLCJ0eXAiOiJKV1QifQ."
       "eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjgwMDAiLCJzdWIiOiIxMjM0NSIsImV4cCI6MTc2NTAwMDAwMH0."
       "k--_f3aT-Qx9ZcWb--pVt4n0_yX2e1r--LhYw8c9Gq0m4Jz7bD2sN6uA5oK1iE3lR8vH0tF9pC7gB4nM2xQ")


@pytest.mark.parametrize("text", FREE_TEXT)
def test_free_text_passes_in_captions_comments_bios_names_passwords_and_searches(tier: Tier, text: str) -> None:
    with httpx.Client(base_url=tier.url, timeout=10) as client:
        sent = [
            client.post("/api/v1/posts", data={"caption": text}, files={"photo": ("p.jpg", b"\xff\xd8\xff\xe0" + b"x" * 5000, "image/jpeg")}),
            client.patch("/api/v1/posts/123", json={"caption": text}),
            client.post("/api/v1/posts/123/comments", json={"body": text}),
            client.patch("/api/v1/me", json={"display_name": text[:60], "bio": text}),
            client.post("/api/v1/accounts", json={"username": "ann", "email": "ann@example.com", "password": text}),
            client.post("/api/v1/sessions", json={"login": "ann", "password": text}),
            client.post("/api/v1/me/password", json={"current_password": text, "new_password": text + "!"}),
            client.post("/posts", data={"csrf_token": "abc", "caption": text}, files={"photo": ("p.jpg", b"\xff\xd8" + b"y" * 3000, "image/jpeg")}),
            client.post("/p/123/comments", data={"csrf_token": "abc", "body": text}),
            client.post("/p/123/edit", data={"csrf_token": "abc", "caption": text}),
            client.post("/settings", data={"csrf_token": "abc", "display_name": text[:60], "bio": text}),
            client.post("/signup", data={"csrf_token": "abc", "username": "ann", "email": "ann@example.com", "password": text}),
            client.post("/login", data={"csrf_token": "abc", "login": "ann", "password": text}),
        ]
        if "../" not in text:  # a query string is also inspected whole (REQUEST_URI): a path there is no search anyone makes
            sent += [client.get("/api/v1/search", params={"q": text}), client.get("/search", params={"q": text})]
    blocked = [(r.request.method, r.request.url.path, r.status_code) for r in sent if r.status_code != 200]
    assert blocked == []


def test_tokens_methods_json_and_a_large_photo_pass(tier: Tier) -> None:
    cookies = {"summit_session": JWT, "summit_refresh": "rt_" + JWT.replace(".", "-"), "summit_csrf": "Zk9--_aa-xY", "summit_rp": "0/16B3F28"}
    big = b"\xff\xd8\xff\xe0" + bytes(range(256)) * (21 * 1024 * 4)  # 21 MiB: above Debian's default 12.5 MiB body limit
    with httpx.Client(base_url=tier.url, timeout=60, headers={"authorization": f"Bearer {JWT}"}, cookies=cookies) as client:
        sent = [
            client.put("/api/v1/posts/123/like"), client.delete("/api/v1/posts/123/like"),
            client.put("/api/v1/users/bob/follow"), client.delete("/api/v1/users/bob/follow"),
            client.delete("/api/v1/comments/77"), client.delete("/api/v1/posts/123"), client.delete("/api/v1/me"),
            client.post("/api/v1/sessions/refresh", json={"refresh_token": "rt_" + JWT}),
            client.post("/api/v1/posts/123/comments", json={"body": "nested", "extra": {"a": [1, 2, {"b": "c"}]}}),
            client.post("/p/123/like", data={"csrf_token": "Zk9--_aa-xY", "next": "/p/123"}),
            client.post("/u/bob/follow", data={"csrf_token": "Zk9--_aa-xY", "next": "/u/bob"}),
            client.get("/api/v1/feed", params={"cursor": "eyJpZCI6IjEyMyJ9", "limit": "20"}),
        ]
        upload = client.post("/api/v1/posts", data={"caption": "big"}, files={"photo": ("big.jpg", big, "image/jpeg")})
    blocked = [(r.request.method, r.request.url.path, r.status_code) for r in sent if r.status_code != 200]
    assert blocked == []
    assert upload.status_code == 200 and upload.json()["bytes"] > 21 * 1024 * 1024
    seen = sent[0].json()["headers"]
    assert seen["authorization"] == f"Bearer {JWT}" and "x-request-id" in seen  # headers reach the app as sent
    assert seen["host"] == tier.waf.address


def test_the_api_methods_pass_only_on_the_api(tier: Tier) -> None:
    with httpx.Client(base_url=tier.url, timeout=10) as client:
        assert client.put("/api/v1/users/bob/follow").status_code == 200
        assert client.put("/users/bob/follow").status_code == 403  # the UI takes GET and POST only


def test_a_body_over_the_limit_is_refused_before_the_app(tier: Tier) -> None:
    too_big = b"x" * (23 * 1024 * 1024)
    r = httpx.post(tier.url + "/api/v1/posts", files={"photo": ("p.jpg", too_big, "image/jpeg")}, timeout=60)
    assert r.status_code == 413


def test_health_answers_for_haproxy_and_a_drained_app_server_gets_no_new_request(tier: Tier) -> None:
    assert httpx.get(tier.url + HEALTH_PATH, timeout=5).text == "ok\n"
    pid = tier.supervisor.unit("waf-1").process.pid
    assert set_down(tier.layout, "waf-1", "web-1", True, pid, timeout=10)
    try:
        with httpx.Client(base_url=tier.url, timeout=10) as client:
            assert {client.get(f"/x{n}").json()["server"] for n in range(20)} == {"web-2"}
    finally:
        assert set_down(tier.layout, "waf-1", "web-1", False, pid, timeout=10)
    with httpx.Client(base_url=tier.url, timeout=10) as client:
        assert {client.get(f"/y{n}").json()["server"] for n in range(20)} == {"web-1", "web-2"}
    with pytest.raises(Exception, match="does not proxy to web-9"):
        set_down(tier.layout, "waf-1", "web-9", True, pid)


def test_an_app_server_that_dies_costs_no_get(tier: Tier) -> None:
    import signal

    victim = tier.supervisor.unit("web-1")
    victim.process.kill(signal.SIGKILL)
    try:
        with httpx.Client(base_url=tier.url, timeout=10) as client:
            answers = [client.get(f"/z{n}") for n in range(30)]
        assert {r.status_code for r in answers} == {200} and {r.json()["server"] for r in answers} == {"web-2"}
    finally:
        asyncio.run(tier.supervisor._start(victim))


# ---- the stage ---------------------------------------------------------------------------------

def test_the_stage_puts_the_waf_between_haproxy_and_the_app_servers_and_the_cdn_around_it(tmp_path: Path) -> None:
    blueprint = load_blueprint(environ={}, overrides={"stage": "10k", "data_dir": str(tmp_path),
                                                      "engines": {"waf": {"enabled": True, "processes": 3, "paranoia_level": 2,
                                                                          "inbound_anomaly_threshold": 7}}})
    stage = plan(blueprint)
    front: HAProxy = stage.engine("haproxy")  # type: ignore[assignment]
    wafs = stage.of_kind("waf")
    webs = [e for e in stage.of_kind("app")]
    assert [w.name for w in wafs] == ["waf-1", "waf-2", "waf-3"] and len({w.port for w in wafs}) == 3
    assert front.servers == wafs and all(isinstance(w, Waf) and w.upstreams == webs for w in wafs)
    config = front.render(stage.layout)
    backend = config.split("\nbackend web\n", 1)[1].split("\nbackend ", 1)[0]
    assert f"option httpchk GET {HEALTH_PATH}" in backend and all(f"server {w.name} 127.0.0.1:{w.port}" in backend for w in wafs)
    regional = stage.engine("varnish-regional")
    assert regional.origins == webs  # /media/ and /static/ reach the app from the CDN, never through the WAF
    names = [e.name for e in stage.engines]
    assert max(names.index(w.name) for w in webs) < min(names.index(w.name) for w in wafs) < names.index("haproxy")
    waf = wafs[0]
    assert waf.settings.paranoia_level == 2 and waf.settings.inbound_anomaly_threshold == 7
    assert waf.settings.max_body_bytes > blueprint.uploads.max_photo_bytes
    setup = waf.render_crs_setup()
    assert "tx.paranoia_level=2" in setup and "tx.inbound_anomaly_score_threshold=7" in setup
    assert all(isinstance(e, AppServer) for e in webs)
    from summit.engines import install

    assert "nginx" in install.needed(blueprint)


def test_the_waf_is_on_from_1k_in_the_presets_and_needs_the_front_door(tmp_path: Path) -> None:
    for stage in ("1", "1+"):
        assert not load_blueprint(environ={}, overrides={"stage": stage}).engines.waf.enabled
    for stage in ("1k", "10k"):
        waf = load_blueprint(environ={}, overrides={"stage": stage}).engines.waf
        assert waf.enabled and waf.processes == 2 and (waf.paranoia_level, waf.inbound_anomaly_threshold) == (1, 5)
    stage = plan(load_blueprint(environ={}, overrides={"stage": "10k", "data_dir": str(tmp_path)}))
    assert [w.name for w in stage.of_kind("waf")] == ["waf-1", "waf-2"]
    assert stage.engine("haproxy").servers == stage.of_kind("waf")  # type: ignore[attr-defined]
    assert not load_blueprint(environ={}, overrides={"stage": "10k", "engines": {"waf": {"enabled": False}}}).engines.waf.enabled
    with pytest.raises(BlueprintError, match="engines.waf needs engines.haproxy"):
        load_blueprint(environ={}, overrides={"stage": "1+", "engines": {"waf": {"enabled": True}}})


def test_a_socket_left_by_a_killed_process_is_removed_before_it_starts_again(tmp_path: Path) -> None:
    """nginx cannot bind a unix socket whose file exists: after a SIGKILL the supervisor could
    never restart the process if prepare() left it there."""
    import socket

    root = Path(tempfile.mkdtemp(prefix="summit-waf-sock-", dir="/tmp"))
    root.chmod(0o755)  # nginx's workers (www-data, under root) must reach the stage
    try:
        layout, waf = Layout(root), Waf("waf-1", free_port(), [])
        path = waf.inspect_socket(layout)
        path.parent.mkdir(parents=True, exist_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left:  # bound, then gone: the file stays, as after a SIGKILL
            left.bind(str(path))
        assert path.exists()
        waf.prepare(layout)
        assert not path.exists() and (waf.home(layout) / "nginx.conf").is_file()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_every_exclusion_is_narrow() -> None:
    """Each exclusion names a path (anchored), methods and targets: none turns a rule off everywhere."""
    for exclusion in EXCLUSIONS:
        assert exclusion.path.startswith("^") and exclusion.path.endswith("$") and exclusion.methods, exclusion
        assert all(t.startswith(("ARGS:", "REQUEST_COOKIES:", "REQUEST_HEADERS:")) for t in exclusion.targets), exclusion
    rendered = Waf("waf-1", 1, []).render_exclusions()
    assert "ruleRemoveById" not in rendered.replace("ctl:ruleRemoveById=920350", "")  # the one id removed, for a loopback Host only
    assert "SecRuleEngine" not in rendered and "SecRuleRemoveById" not in rendered
