"""With no WAF in front (stage 1, or engines.waf off), the app itself keeps the classic attack
strings inert: sent straight to it as captions, comments, names, bios, searches, query strings and
paths, they are stored verbatim (bound as parameters, never SQL), shown escaped (never markup), run
nothing and reach no file outside the app's. The WAF (docs/waf.md) is a second wall, not the only one."""

from __future__ import annotations

import pytest
from markupsafe import escape

ATTACKS = [
    "' OR 1=1--",
    "1'; DROP TABLE posts;--",
    "1' UNION SELECT username, password_hash FROM users WHERE '1'='1",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "../../etc/passwd",
    "; cat /etc/passwd",
    "$(cat /etc/passwd) `id`",
]


def _escaped_in(text: str, page: str) -> None:
    """``text`` appears on the page only escaped: its markup never as markup."""
    if "<" in text or ">" in text or '"' in text:
        assert text not in page, f"{text!r} is on the page unescaped"
    assert str(escape(text)) in page, f"{text!r} is not on the page (escaped as the templates escape)"


@pytest.mark.parametrize("attack", ATTACKS)
async def test_attack_strings_are_stored_verbatim_and_shown_escaped(attack, client, make_user, make_post, browser) -> None:  # noqa: ANN001
    ann, bob = await make_user(), await make_user()
    post = await make_post(ann, caption=attack)
    assert post["caption"] == attack  # stored as given: a parameter, not SQL
    comment = await client.post(f"/api/v1/posts/{post['id']}/comments", headers=bob.auth, json={"body": attack})
    assert comment.status_code == 201 and comment.json()["body"] == attack
    me = await client.patch("/api/v1/me", headers=bob.auth, json={"display_name": attack[:60], "bio": attack})
    assert me.status_code == 200 and me.json()["bio"] == attack
    again = await client.get(f"/api/v1/posts/{post['id']}", headers=bob.auth)
    assert again.status_code == 200 and again.json()["caption"] == attack
    comments = await client.get(f"/api/v1/posts/{post['id']}/comments", headers=bob.auth)
    assert [c["body"] for c in comments.json()["items"]] == [attack]

    page = await browser()
    shown = await page.get(f"/p/{post['id']}")
    assert shown.status_code == 200
    _escaped_in(attack, shown.text)  # caption and comment
    profile = await page.get(f"/u/{bob.username}")
    assert profile.status_code == 200
    _escaped_in(attack, profile.text)  # the bio
    assert "root:x:0:0" not in shown.text + profile.text  # nothing ran, nothing was read

    for path in ("/search", "/api/v1/search"):  # a search of it is words, never syntax
        found = await page.get(path, params={"q": attack})
        assert found.status_code in (200, 422), (path, found.status_code, found.text[:200])
        if "<" in attack and found.headers["content-type"].startswith("text/html"):
            assert attack not in found.text
    # the database is intact: the tables an injection would have dropped or read still answer as before
    assert (await client.get(f"/api/v1/users/{ann.username}/posts", headers=bob.auth)).json()["items"][0]["id"] == post["id"]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_attack_strings_in_query_strings_and_ids_are_refused_or_ignored_never_an_error(attack, client, make_user, browser) -> None:  # noqa: ANN001
    ann = await make_user()
    page = await browser()
    answers = [
        await page.get(f"/u/{ann.username}", params={"tab": attack, "cursor": attack}),
        await page.get("/explore", params={"cursor": attack}),
        await client.get(f"/api/v1/users/{ann.username}/posts", headers=ann.auth, params={"cursor": attack}),
        await client.get("/api/v1/posts/" + attack.replace("/", "%2F"), headers=ann.auth),
    ]
    for r in answers:
        assert r.status_code < 500, (r.request.url, r.status_code, r.text[:200])
        assert "root:x:0:0" not in r.text
        if "<" in attack and attack in r.text:  # an error may quote it, as JSON a browser never renders as a page
            assert r.headers["content-type"] == "application/json" and r.headers["x-content-type-options"] == "nosniff", r.headers


@pytest.mark.parametrize("path", ["/static/../../../../etc/passwd", "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                                  "/media/../../../../etc/passwd", "/media/..%2F..%2F..%2Fetc%2Fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd"])
async def test_paths_that_climb_out_reach_no_file_outside_the_app(path, browser) -> None:  # noqa: ANN001
    page = await browser()
    r = await page.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert "root:x:0:0" not in r.text
