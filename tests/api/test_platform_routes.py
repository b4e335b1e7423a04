"""Platform routes: /healthz, /metrics, /media/{key}, the OpenAPI document and docs, and what every
response carries (security headers, request id, JSON errors for unknown routes)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

API = "/api/v1"

PUBLIC_API = {
    "/api/v1/accounts": {"post"},
    "/api/v1/sessions": {"post", "delete"},
    "/api/v1/me": {"get", "patch", "delete"},
    "/api/v1/me/avatar": {"put"},
    "/api/v1/posts": {"post"},
    "/api/v1/posts/{post_id}": {"get", "patch", "delete"},
    "/api/v1/feed": {"get"},
    "/api/v1/users/{username}": {"get"},
    "/api/v1/users/{username}/posts": {"get"},
    "/api/v1/tags/{tag}": {"get"},
    "/api/v1/users/{username}/follow": {"put", "delete"},
    "/api/v1/posts/{post_id}/like": {"put", "delete"},
    "/api/v1/posts/{post_id}/comments": {"get", "post"},
    "/api/v1/comments/{comment_id}": {"delete"},
    "/healthz": {"get"},
    # the user pool's endpoints (summit.security.identity.api): names clients rely on
    "/api/v1/accounts/confirm": {"post"},
    "/api/v1/accounts/confirm/resend": {"post"},
    "/api/v1/sessions/mfa": {"post"},
    "/api/v1/sessions/refresh": {"post"},
    "/api/v1/sessions/all": {"delete"},
    "/api/v1/me/password": {"post"},
    "/api/v1/accounts/password-reset": {"post"},
    "/api/v1/accounts/password-reset/confirm": {"post"},
    "/api/v1/me/mfa/totp": {"post"},
    "/api/v1/me/mfa/totp/verify": {"post"},
    "/.well-known/openid-configuration": {"get"},
    "/.well-known/jwks.json": {"get"},
    "/api/v1/admin/groups": {"get"},
    "/api/v1/admin/groups/{group}": {"put"},
    "/api/v1/admin/groups/{group}/members/{username}": {"put", "delete"},
    "/api/v1/admin/policies/{name}": {"put"},
    "/api/v1/admin/groups/{group}/policies/{name}": {"put", "delete"},
}


# ---- health and metrics -----------------------------------------------------------------------
async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["stage"] == "1"


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_requests_and_latencies(client, make_user):
    user = await make_user()
    before = await client.get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    b = _samples(before.text)

    for _ in range(3):
        assert (await client.get("/healthz")).status_code == 200
    assert (await client.get(f"{API}/posts/12345")).status_code == 404
    assert (await client.get(f"{API}/me", headers=user.auth)).status_code == 200
    assert (await client.get(f"{API}/me")).status_code == 401

    after = await client.get("/metrics")
    a = _samples(after.text)
    requests = "summit_http_requests_total"
    assert _value(a, requests, method="GET", route="/healthz", status="200") - _value(b, requests, method="GET", route="/healthz", status="200") == 3
    assert _value(a, requests, method="GET", route="/api/v1/posts/{post_id}", status="404") - _value(b, requests, method="GET", route="/api/v1/posts/{post_id}", status="404") == 1
    assert _value(a, requests, method="GET", route="/api/v1/me", status="401") == 1
    assert _value(a, requests, method="GET", route="/api/v1/me", status="200") == 1
    latency = "summit_http_request_duration_seconds"
    count = _value(a, latency + "_count", method="GET", route="/healthz") - _value(b, latency + "_count", method="GET", route="/healthz")
    assert count == 3
    assert _value(a, latency + "_sum", method="GET", route="/healthz") > _value(b, latency + "_sum", method="GET", route="/healthz")
    assert _value(a, latency + "_bucket", method="GET", route="/healthz", le="+Inf") == _value(a, latency + "_count", method="GET", route="/healthz")
    buckets = [key for key in a if key[0] == latency + "_bucket" and ("route", "/healthz") in key[1]]
    assert len(buckets) >= 5
    # labels are route templates, not raw paths: an ID never becomes a label
    assert "12345" not in after.text
    assert "# TYPE summit_http_request_duration_seconds histogram" in after.text


# ---- media ------------------------------------------------------------------------------------
async def test_media_is_immutable_with_etag_and_304(client, make_user, make_post):
    user = await make_user()
    post = await make_post(user)
    url = post["photo_url"]
    r = await client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:3] == b"\xff\xd8\xff"
    cache = r.headers["cache-control"]
    assert "immutable" in cache and "public" in cache and "max-age=31536000" in cache
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
    assert r.headers["x-content-type-options"] == "nosniff"

    r304 = await client.get(url, headers={"If-None-Match": etag})
    assert r304.status_code == 304 and r304.content == b""
    assert "immutable" in r304.headers["cache-control"]
    assert (await client.get(url, headers={"If-None-Match": '"something-else"'})).status_code == 200
    assert (await client.head(url)).status_code in (200, 405)


async def test_unknown_media_is_404(client, make_user, make_post):
    user = await make_user()
    post = await make_post(user)
    real = post["photo_url"]
    for url in ("/media/p/0000000000000000000000000000000000000000.jpg", real + "x", real[:-4], "/media/p", "/media/t"):
        r = await client.get(url)
        assert r.status_code == 404, (url, r.status_code, r.text[:100])
        assert "immutable" not in r.headers.get("cache-control", "")


async def test_empty_media_key_is_404_not_304(client):
    # no If-None-Match was sent, so nothing can be "not modified"
    for url in ("/media/", "/media/p/"):
        r = await client.get(url)
        assert r.status_code == 404, (url, r.status_code, dict(r.headers))
        assert "immutable" not in r.headers.get("cache-control", "")


async def test_if_none_match_for_a_deleted_photo_is_not_304(client, make_user, make_post):
    user = await make_user()
    post = await make_post(user)
    url = post["photo_url"]
    etag = (await client.get(url)).headers["etag"]
    assert (await client.delete(f"{API}/posts/{post['id']}", headers=user.auth)).status_code == 204
    r = await client.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 404, (r.status_code, dict(r.headers))


TRAVERSALS = [
    "/media/..%2F..%2Fetc%2Fpasswd",
    "/media/%2e%2e/%2e%2e/etc/passwd",
    "/media/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/media/p/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/media/%2Fetc%2Fpasswd",
    "/media//etc/passwd",
    "/media/..%5C..%5Cetc%5Cpasswd",
    "/media/p%00.jpg",
    "/media/..%2F..%2Fkeys%2Ftoken-signing.jwk",
    "/media/..%2F..%2Fkeys%2Faudit-signing.key",
    "/media/..%2F..%2Fkeys%2Fidentity%2Factive",
    "/media/..%2F..%2Foutbox",
    "/media/..%2F..%2Fapp.db",
    "/media/..%2Ftmp",
    "/media/%2e",
    "/media/p/%2e%2e",
]


async def test_traversal_keys_are_404(client, make_user, make_post):
    user = await make_user()
    await make_post(user)
    for path in TRAVERSALS:
        r = await client.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert b"root:" not in r.content and b"\"d\"" not in r.content and b"SQLite" not in r.content
        assert r.headers["content-type"].startswith("application/json")


def _raw_get(url: str, target: str) -> tuple[int, bytes]:
    """Send a request line exactly as written, with no client-side normalisation of '..'."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_traversal_over_real_http_is_refused(live_server):
    raw = ["/media/../../etc/passwd", "/media/../../../../../../etc/passwd", "/media/p/../../../keys/token-signing.jwk", "/media/p/../../../keys/audit-signing.key", "/media/.", "/media/p/.."]
    for target in [*raw, *TRAVERSALS]:
        status, data = _raw_get(live_server.url, target)
        assert 400 <= status < 500, (target, status, data[:300])
        assert b"root:" not in data and b"private" not in data.lower() and b"SQLite format" not in data, target


# ---- the OpenAPI document and docs ------------------------------------------------------------
async def test_openapi_document_lists_the_public_api(client):
    r = await client.get(f"{API}/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "Summit Photos"
    for path, methods in PUBLIC_API.items():
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), (path, set(doc["paths"][path]))
    assert not any(path.startswith(("/static", "/metrics")) for path in doc["paths"])
    schemas = doc["components"]["schemas"]
    assert schemas["PostOut"]["properties"]["id"]["type"] == "string"
    assert schemas["ProfileOut"]["properties"]["id"]["type"] == "string"
    assert "ErrorOut" in schemas
    create = doc["paths"]["/api/v1/posts"]["post"]
    assert "multipart/form-data" in create["requestBody"]["content"]
    for code in ("401", "413", "422"):
        assert code in create["responses"], code


async def test_docs_page_and_its_assets(client):
    r = await client.get(f"{API}/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="swagger-ui"' in r.text
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/swagger/swagger-ui.css", "/static/apidocs.js"):
        assert asset in r.text
        a = await client.get(asset)
        assert a.status_code == 200 and len(a.content) > 20, asset
    assert "/api/v1/openapi.json" in (await client.get("/static/apidocs.js")).text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp  # the page loads no script from elsewhere
    assert "https://" not in r.text


# ---- what every response carries --------------------------------------------------------------
async def test_security_headers_and_request_id(client):
    for url in ("/healthz", f"{API}/me", f"{API}/openapi.json", "/media/nope"):
        r = await client.get(url)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-request-id"]
    r = await client.get(f"{API}/me", headers={"X-Request-Id": "trace-abc.123"})
    assert r.headers["x-request-id"] == "trace-abc.123" and r.json()["request_id"] == "trace-abc.123"
    r = await client.get(f"{API}/me", headers={"X-Request-Id": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces" and r.json()["request_id"] == r.headers["x-request-id"]


async def test_unknown_routes_and_methods_are_json_errors(client):
    r = await client.get(f"{API}/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert "/api/v1/nothing-here" in r.json()["error"]["message"]
    r = await client.put(f"{API}/feed")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in r.headers.get("allow", "")
    r = await client.post("/healthz")
    assert r.status_code == 405


async def test_healthz_is_503_when_the_database_does_not_answer(app, client, monkeypatch):  # noqa: ANN001
    async def broken() -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(app.state.ctx.db, "ping", broken)
    r = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable" and "database" in r.json()["reason"]
    assert r.headers["x-request-id"] and r.headers["x-content-type-options"] == "nosniff"
