"""The search box, the search results page and the explore page, in-process: plain HTML that works
without script (the header's box is a GET form), escaped, with errors said on the page."""

from __future__ import annotations

import html
import re

from webui import assert_redirect, logged_in, post_form

SEARCH_FORM_RE = re.compile(r'<form class="site-search" role="search" action="/search" method="get"[^>]*>(.*?)</form>', re.S)
HOSTILE = "<script>alert(1)</script>"


def search_form(page) -> str:  # noqa: ANN001
    match = SEARCH_FORM_RE.search(page.text)
    assert match, f"no search form in the header of {page.request.url}"
    return match.group(1)


def section(page, name: str) -> str:  # noqa: ANN001
    """The HTML of the results section headed ``name`` (People, Tags, Posts), '' if there is none."""
    match = re.search(rf'<section class="search-section" aria-labelledby="results-\w+">\s*<h2 id="results-\w+">{name}</h2>(.*?)</section>',
                      page.text, re.S)
    return match.group(1) if match else ""


async def test_every_page_has_a_labelled_search_box_that_is_a_plain_form(browser, make_user, make_post) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    post = await make_post(alice, "hello #summit")
    anon, c = await browser(), await logged_in(browser, alice)
    for client, paths in ((anon, ["/", "/login", "/signup", "/u/alice", "/tags/summit", "/explore", "/search"]),
                          (c, ["/", "/new", "/settings", f"/p/{post['id']}", "/explore", "/search?q=ali"])):
        for path in paths:
            r = await client.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            form = search_form(r)
            assert '<label for="site-search" class="visually-hidden">Search people, posts and tags</label>' in form
            assert re.search(r'<input id="site-search" type="search" name="q" value="[^"]*"', form)
            assert '<button type="submit"' in form
            assert "<script>" not in r.text.replace('<script src="/static/app.js" defer></script>', "")


async def test_results_page_lists_people_tags_and_posts(browser, make_user, make_post, drain) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    await make_user("alina")
    sunny = await make_post(alice, "Sunny alpine meadow #alpine")
    await make_post(alice, "Rain again")
    await drain()
    c = await browser()
    r = await c.get("/search", params={"q": "ali"})
    assert r.status_code == 200
    assert "Results for “ali”" in r.text and 'value="ali"' in search_form(r)
    people = section(r, "People")
    assert 'href="/u/alice"' in people and 'href="/u/alina"' in people
    r = await c.get("/search", params={"q": "alpine"})
    assert '<a class="tag" href="/tags/alpine">#alpine</a> <span class="muted">1 post</span>' in section(r, "Tags")
    posts = section(r, "Posts")
    assert f'href="/p/{sunny["id"]}"' in posts and "Rain again" not in r.text
    assert section(r, "People") == ""
    # the kinds, one at a time
    tabs = re.search(r'<nav class="tabs search-kinds"[^>]*>(.*?)</nav>', r.text, re.S).group(1)
    assert 'href="/search?q=alpine&amp;kind=post"' in tabs and 'aria-current="page">All</a>' in tabs
    only_posts = await c.get("/search", params={"q": "alpine", "kind": "post"})
    assert f'href="/p/{sunny["id"]}"' in section(only_posts, "Posts") and section(only_posts, "Tags") == ""
    nothing = await c.get("/search", params={"q": "zebra"})
    assert nothing.status_code == 200 and "Nothing matches “zebra”" in nothing.text


async def test_the_query_is_escaped_everywhere_it_is_shown(browser, make_user, drain) -> None:  # noqa: ANN001
    c = await browser()
    r = await c.get("/search", params={"q": f'{HOSTILE} "quoted"'})
    assert r.status_code == 200
    assert HOSTILE not in r.text
    assert html.escape(HOSTILE, quote=True) in search_form(r)  # the box keeps what was typed
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &#34;quoted&#34;" in r.text or "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot;" in r.text


async def test_an_empty_search_invites_one(browser) -> None:  # noqa: ANN001
    c = await browser()
    for params in ({}, {"q": ""}, {"q": "   "}):
        r = await c.get("/search", params=params)
        assert r.status_code == 200 and "<h1>Search</h1>" in r.text and "ali</em> finds alice" in r.text


async def test_bad_searches_say_what_to_fix_on_the_page(browser) -> None:  # noqa: ANN001
    c = await browser()
    cases = [({"q": "x" * 201}, 422, "at most 200 characters"), ({"q": "a b c d e f g h i"}, 422, "remove some"),
             ({"q": "ali", "kind": "post", "cursor": "bogus"}, 422, "search again without it"),
             ({"q": "ali", "kind": "planet"}, 422, "kind is one of user, post, tag")]
    for params, status, words in cases:
        r = await c.get("/search", params=params)
        assert r.status_code == status, (params, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
        assert re.search(r'<p class="alert" role="alert">[^<]*' + re.escape(words), r.text), (params, r.text[:2000])
    for raw in ("%00", "ali%00bob", "%ED%A0%80", "%FF", "NEAR%28ali%29", "%22%22", "*"):
        r = await c.get(f"/search?q={raw}")
        assert r.status_code == 200, (raw, r.text[:300])


async def test_one_kind_pages_with_a_more_link(browser, make_user, make_post, drain) -> None:  # noqa: ANN001
    alice = await make_user("alice")
    made = {(await make_post(alice, f"river bend {i}"))["id"] for i in range(26)}
    await drain()
    c = await browser()
    first = await c.get("/search", params={"q": "river"})
    assert len(re.findall(r'<li><a href="/p/\d+"', section(first, "Posts"))) == 12
    assert 'href="/search?q=river&amp;kind=post">All posts for “river”</a>' in first.text
    seen: list[str] = []
    page = await c.get("/search", params={"q": "river", "kind": "post"})
    while True:
        seen += re.findall(r'<li><a href="/p/(\d+)"', section(page, "Posts"))
        more = re.search(r'<a class="button" rel="next" href="([^"]+)">More posts</a>', page.text)
        if not more:
            break
        page = await c.get(html.unescape(more.group(1)))
        assert page.status_code == 200
    assert sorted(seen) == sorted(made)


async def test_explore_shows_recent_liked_posts_and_people_to_follow(browser, make_user, make_post, client, drain) -> None:  # noqa: ANN001
    alice, bob, carol, dave, erin = [await make_user(name) for name in ("alice", "bob", "carol", "dave", "erin")]
    liked = await make_post(carol, "Crowd favourite")
    quiet = await make_post(dave, "Nobody liked this one")
    for fan in (alice, bob, erin):
        assert (await client.put(f"/api/v1/posts/{liked['id']}/like", headers=fan.auth)).status_code == 200
    for follower, followee in ((alice, "bob"), (bob, "carol"), (bob, "dave"), (erin, "carol"), (erin, "dave"), (dave, "carol")):
        assert (await client.put(f"/api/v1/users/{followee}/follow", headers=follower.auth)).status_code == 200

    # alice follows bob: bob follows carol and dave, whom she does not follow yet
    c = await logged_in(browser, alice)
    r = await c.get("/explore")
    assert r.status_code == 200
    people = re.search(r'<h2 id="people-heading">People to follow</h2>(.*?)</section>', r.text, re.S).group(1)
    suggested = re.findall(r'<a class="author" href="/u/(\w+)">', people)
    assert suggested == ["dave", "carol"] or suggested == ["carol", "dave"], suggested
    assert "followed by bob" in people and "/u/alice" not in people and "/u/bob" not in people
    liked_section = re.search(r'<h2 id="liked-heading">Most liked this week</h2>(.*?)</section>', r.text, re.S).group(1)
    assert f'href="/p/{liked["id"]}"' in liked_section and f'href="/p/{quiet["id"]}"' not in liked_section
    recent = re.search(r'<h2 id="recent-heading">Recent posts</h2>(.*?)</section>', r.text, re.S).group(1)
    assert recent.index(f'href="/p/{quiet["id"]}"') < recent.index(f'href="/p/{liked["id"]}"'), "newest first"

    # following from explore comes back to explore, and that person is no longer suggested
    follow = await post_form(c, "/u/dave/follow", "/explore", do="follow", next="/explore")
    assert_redirect(follow, "/explore")
    again = await c.get("/explore")
    people = re.search(r'<h2 id="people-heading">(.*?)</section>', again.text, re.S).group(1)
    assert re.findall(r'<a class="author" href="/u/(\w+)">', people) == ["carol"]

    # a new user with no follows: popular people, the most followed first, never themselves
    frank = await make_user("frank")
    f = await logged_in(browser, frank)
    r = await f.get("/explore")
    people = re.search(r'<h2 id="people-heading">Popular people</h2>(.*?)</section>', r.text, re.S).group(1)
    popular = re.findall(r'<a class="author" href="/u/(\w+)">', people)
    assert set(popular[:2]) == {"carol", "dave"} and "frank" not in popular, popular  # 3 followers each, then bob (1)
    assert popular[2] == "bob"
    assert "3 followers" in people

    # logged out: the same page, without follow buttons
    anon = await browser()
    r = await anon.get("/explore")
    assert r.status_code == 200 and "Popular people" in r.text and 'action="/u/carol/follow"' not in r.text
