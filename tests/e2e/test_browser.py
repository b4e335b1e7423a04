"""End to end in a real headless browser: Debian's chromium driven by Playwright (sync API) against a
real ``summit up`` (the ``live_server`` fixture, stage 1; the first test also runs on a detached
``summit up --stage 10k``: HAProxy with TLS, Varnish, two WAF processes, two app processes, PostgreSQL
with two replicas, Redis, SeaweedFS; over HTTPS, the browser trusting that stage's certificate).

- Two people, each in their own browser context (own cookies): one signs up and posts a photo, the
  other signs up, follows, sees the post with its thumbnail in the feed, likes it and comments on it.
- Search: two people sign up, one posts; the other finds her by a prefix of her name typed in the
  header's box (picking the suggestion with the keyboard) and by plain form submission (with
  script, and in a browser without it), then finds the post by a word of its caption and by its tag.
- The identity journey: a new user signs up, confirms by the emailed code (read in the dev inbox),
  turns on TOTP in Settings -> Security, signs out and in again with a code, signs in on a second
  device, then signs out everywhere from the first: the second is signed out on its next page load.

Codes mailed at sign-up come from the embedded outbox (``summit mail --json``, or the dev inbox
page); TOTP codes from pyotp with the secret the page shows. Screenshots of the pages (phone and
laptop widths) are left in the test's tmp_path for a person.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest
from PIL import Image, ImageDraw

from summit.testing.mail import code_in

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 30_000
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 860}
PASSWORD = "correct horse 1"
TIMEOUT_S = TIMEOUT_MS / 1000
TOTP_STEP = 30


def mailed_code(data_dir: str, email: str) -> str:
    """The newest code mailed to ``email``, read from the stage's outbox with ``summit mail --json``."""
    summit = Path(sys.executable).with_name("summit")
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        out = subprocess.run(
            [str(summit), "mail", "--json", "--data-dir", data_dir, "--to", email, "--limit", "1"],
            capture_output=True, text=True, timeout=TIMEOUT_S, check=True,
        ).stdout
        mails = json.loads(out)
        if mails:
            return code_in(mails[0]["subject"])
        assert time.monotonic() < deadline, f"no mail to {email} in the outbox"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def playwright() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium); "
            "the README's test command does it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright) -> Iterator[object]:  # noqa: ANN001
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(params=["1", pytest.param("10k", marks=[pytest.mark.postgres, pytest.mark.slow])])
def stage(request) -> object:  # noqa: ANN001
    """The stage the browser talks to: stage 1 in one process, or 10k with its engines (over HTTPS)."""
    return request.getfixturevalue("live_server" if request.param == "1" else "stage_10k")


@pytest.fixture
def browser(stage, playwright, chromium) -> Iterator[object]:  # noqa: ANN001
    """The module's chromium for a plain-HTTP stage; behind TLS (10k) a chromium of this test's own
    that trusts the stage's certificate: its CA's and its leaf's public keys pinned with
    ``--ignore-certificate-errors-spki-list`` (that browser only; the CA is in no trust store)."""
    ca = getattr(stage, "ca", None)
    if not ca:
        yield chromium
        return
    from summit.testing.stage import spki_sha256

    pins = [spki_sha256(ca), spki_sha256(Path(stage.data_dir) / "certs" / "front-door.pem")]
    own = playwright.chromium.launch(executable_path=CHROMIUM, timeout=TIMEOUT_MS,
                                   args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={','.join(pins)}"])
    try:
        yield own
    finally:
        own.close()


class Person:
    """One browser context (its own cookies) with a page that records console errors."""

    def __init__(self, browser, base_url: str, viewport: dict[str, int], **options):  # noqa: ANN001, ANN003
        self.base = base_url
        self.context = browser.new_context(viewport=viewport, base_url=base_url, **options)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.set_default_navigation_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def sign_up(self, username: str, data_dir: str) -> None:
        """Sign up, confirm with the code from the outbox, and log in."""
        from playwright.sync_api import expect

        page = self.page
        page.goto("/")
        page.get_by_role("link", name="Create an account").click()
        page.fill("#username", username)
        page.fill("#email", f"{username}@example.com")
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(re.compile(rf"/confirm\?login={username}$"))
        page.fill("#code", mailed_code(data_dir, f"{username}@example.com"))
        page.get_by_role("button", name="Confirm").click()
        expect(page).to_have_url(re.compile(rf"/login\?login={username}&confirmed=1$"))
        expect(page.locator("#login")).to_have_value(username)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(self.base + "/")
        expect(page.locator(".brand")).to_have_text("Summit Photos")
        expect(page.get_by_role("link", name="Profile")).to_have_attribute("href", f"/u/{username}")

    def log_in(self, username: str) -> None:
        """Fill the log-in form: the next page asks for the second factor."""
        from playwright.sync_api import expect

        page = self.page
        page.goto("/login")
        page.fill("#login", username)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()

    def answer_totp(self, code: str, username: str) -> None:
        from playwright.sync_api import expect

        self.page.fill("#code", code)
        self.page.get_by_role("button", name="Verify").click()
        expect(self.page).to_have_url(self.base + "/")
        expect(self.page.get_by_role("link", name="Profile")).to_have_attribute("href", f"/u/{username}")

    def cookie(self, name: str) -> str | None:
        return next((c["value"] for c in self.context.cookies() if c["name"] == name), None)

    def close(self) -> None:
        self.context.close()


def _photo(path: Path) -> Path:
    """A JPEG with some structure (a sky, a mountain, a sun), so the thumbnails look like a photo."""
    image = Image.new("RGB", (1200, 800))
    draw = ImageDraw.Draw(image)
    for y in range(800):
        draw.line([(0, y), (1200, y)], fill=(40 + y // 8, 90 + y // 10, 200 - y // 8))
    draw.polygon([(0, 800), (420, 300), (640, 520), (860, 240), (1200, 800)], fill=(60, 70, 80))
    draw.polygon([(360, 370), (420, 300), (480, 370)], fill=(245, 245, 250))
    draw.polygon([(800, 310), (860, 240), (920, 310)], fill=(245, 245, 250))
    draw.ellipse([(950, 90), (1070, 210)], fill=(255, 214, 90))
    image.save(path, "JPEG", quality=88)
    return path


def test_two_people_post_follow_see_like_and_comment(stage, browser, tmp_path: Path) -> None:  # noqa: ANN001
    live_server = stage
    from playwright.sync_api import expect

    ca = getattr(live_server, "ca", None)  # behind TLS (10k): the stage's CA
    suffix = secrets.token_hex(3)
    author, friend = f"ann_{suffix}", f"ben_{suffix}"
    ann = Person(browser, live_server.url, LAPTOP)
    ben = Person(browser, live_server.url, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        ann.sign_up(author, live_server.data_dir)
        ben.sign_up(friend, live_server.data_dir)
        if live_server.url.startswith("https://"):  # behind TLS (10k): the session cookies go over HTTPS only
            cookies = {c["name"]: c for c in ann.context.cookies()}
            assert cookies and all(c["secure"] for c in cookies.values()), cookies

        # ann posts a photo
        page = ann.page
        page.get_by_role("link", name="New post").click()
        page.set_input_files("#photo", str(_photo(tmp_path / "summit.jpg")))
        page.fill("#caption", "Sunrise over the ridge #e2e <b>not bold</b>")
        page.get_by_role("button", name="Share").click()
        expect(page).to_have_url(re.compile(r"/p/\d+$"))
        post_id = page.url.rsplit("/", 1)[1]
        expect(page.locator(".caption")).to_contain_text("<b>not bold</b>")  # shown as text, not markup
        expect(page.locator(".caption a.tag")).to_have_text("#e2e")
        # the original shows until the worker has made thumbnails; app.js then swaps in the large one
        expect(page.locator(".post-media img")).to_have_attribute("src", re.compile(r"^/media/t/"), timeout=TIMEOUT_MS)

        # app.js polls the API for a post whose thumbnails are pending and swaps them in: serve ben
        # ann's profile as it looks while the worker is still busy, and watch the tile change
        page = ben.page
        rewritten = []

        def as_if_pending(route) -> None:  # noqa: ANN001
            if ca is None:
                response = route.fetch()
                text, fulfil = response.text(), {"response": response}
            else:  # Playwright's own fetch (Node) does not know the stage's CA: fetch it with httpx, which is told
                got = httpx.get(route.request.url, headers=route.request.all_headers(), verify=live_server.verify, timeout=TIMEOUT_S)
                dropped = ("content-encoding", "content-length", "transfer-encoding", "connection")
                text = got.text
                fulfil = {"status": got.status_code, "headers": {k: v for k, v in got.headers.items() if k.lower() not in dropped}}
            body, swapped = re.subn(
                r'<img class="tile" src="/media/t/[^"]+"',
                f'<img class="tile pending" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-pending-post="{post_id}" data-size="small"',
                text,
            )
            rewritten.append(swapped)
            route.fulfill(body=body, **fulfil)

        page.route(f"**/u/{author}", as_if_pending)
        page.goto(f"/u/{author}")
        assert rewritten == [1], "the profile was served with the tile pending"
        tile = page.locator(f'a[href="/p/{post_id}"] img.tile')
        expect(tile).to_have_attribute("src", re.compile(r"^/media/t/[0-9a-f]+\.webp$"), timeout=TIMEOUT_MS)
        expect(tile).not_to_have_attribute("data-pending-post", re.compile(".*"))
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=tile.element_handle(), timeout=TIMEOUT_MS)
        page.unroute(f"**/u/{author}")

        # ben follows ann
        page.get_by_role("button", name="Follow", exact=True).click()
        expect(page.get_by_role("button", name="Unfollow")).to_be_visible()
        expect(page.locator(".stats")).to_contain_text("1 follower")

        # ... and sees her post in his feed, with its thumbnail loaded
        page.get_by_role("link", name="Home").click()
        card = page.locator(f"article#p{post_id}")
        expect(card).to_be_visible()
        expect(card.locator(".author")).to_contain_text(author)
        image = card.locator("img.photo")
        expect(image).to_have_attribute("src", re.compile(r"^/media/t/[0-9a-f]+\.webp$"), timeout=TIMEOUT_MS)
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=TIMEOUT_MS
        )
        assert image.evaluate("img => img.naturalWidth") > 0

        # likes it
        expect(card.locator(".like-count")).to_have_text("0 likes")
        card.get_by_role("button", name="Like", exact=True).click()
        expect(card.locator(".like-count")).to_have_text("1 like")
        expect(card.get_by_role("button", name="Unlike")).to_have_attribute("aria-pressed", "true")
        assert page.url == live_server.url + "/", "app.js liked it in place, without the form's page load"
        shot = tmp_path / "feed-phone.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.exists() and shot.stat().st_size > 5_000

        # comments on it
        card.get_by_role("link", name="View post").click()
        expect(page).to_have_url(re.compile(rf"/p/{post_id}$"))
        page.fill("#body", "What a view! <script>alert(1)</script>")
        page.get_by_role("button", name="Post", exact=True).click()
        expect(page.locator(".comment-body")).to_have_text("What a view! <script>alert(1)</script>")
        expect(page.locator(".actions")).to_contain_text("1 comment")
        page.screenshot(path=str(tmp_path / "post-phone.png"), full_page=True)

        # ann sees the like and the comment
        page = ann.page
        page.goto(f"/p/{post_id}")
        expect(page.locator(".like-count")).to_have_text("1 like")
        expect(page.locator(".comment")).to_contain_text(friend)
        page.get_by_role("link", name="Home").click()
        expect(page.locator(f"article#p{post_id} img.photo")).to_have_attribute("src", re.compile(r"^/media/t/"))
        page.screenshot(path=str(tmp_path / "feed-laptop.png"), full_page=True)
        page.goto(f"/p/{post_id}")
        page.screenshot(path=str(tmp_path / "post-laptop.png"), full_page=True)
        page.goto(f"/u/{author}")
        page.screenshot(path=str(tmp_path / "profile-laptop.png"), full_page=True)
        assert (tmp_path / "feed-laptop.png").exists()

        # no script errors and no Content-Security-Policy violations on any page
        assert ann.errors == [] and ben.errors == [], (ann.errors, ben.errors)
    finally:
        ann.close()
        ben.close()


def indexed(base_url: str, q: str, kind: str, wanted: str) -> None:
    """Wait until the search API finds ``wanted`` (an id or a tag) for ``q``: the index job of the
    write that made it runs on the server's worker, a moment after the write."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        items = httpx.get(base_url + "/api/v1/search", params={"q": q, "kind": kind}, timeout=TIMEOUT_S).json()["items"]
        if any(item[kind].get("id", item[kind].get("tag")) == wanted for item in items):
            return
        assert time.monotonic() < deadline, f"the search for {q!r} did not find {kind} {wanted}"
        time.sleep(0.2)


def test_search_finds_people_as_you_type_and_posts_by_caption_and_tag(live_server, chromium, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    suffix = secrets.token_hex(3)
    author, seeker = f"mira{suffix}", f"otto{suffix}"  # one word each: a prefix of the name is a prefix of a word
    word, tag = f"aurora{suffix}", f"peak{suffix}"
    mira = Person(chromium, live_server.url, LAPTOP)
    otto = Person(chromium, live_server.url, LAPTOP)
    plain = Person(chromium, live_server.url, PHONE, java_script_enabled=False)
    try:
        mira.sign_up(author, live_server.data_dir)
        otto.sign_up(seeker, live_server.data_dir)
        page = mira.page
        page.get_by_role("link", name="New post").click()
        page.set_input_files("#photo", str(_photo(tmp_path / "aurora.jpg")))
        page.fill("#caption", f"Green sky, an {word} night on the #{tag}")
        page.get_by_role("button", name="Share").click()
        expect(page).to_have_url(re.compile(r"/p/\d+$"))
        post_id = page.url.rsplit("/", 1)[1]
        author_id = httpx.get(f"{live_server.url}/api/v1/users/{author}", timeout=TIMEOUT_S).json()["id"]
        indexed(live_server.url, author, "user", author_id)
        indexed(live_server.url, word, "post", post_id)
        indexed(live_server.url, tag, "tag", tag)

        # otto types the start of her name in the header's box and picks the suggestion with the keyboard
        page = otto.page
        prefix = author[:7]
        box = page.get_by_role("combobox", name="Search people, posts and tags")
        box.click()
        box.press_sequentially(prefix, delay=60)
        listbox = page.get_by_role("listbox", name="Suggestions")
        expect(listbox).to_be_visible()
        expect(box).to_have_attribute("aria-expanded", "true")
        option = listbox.get_by_role("option").filter(has_text=f"@{author}")
        expect(option).to_have_count(1)
        options = listbox.get_by_role("option")
        for _ in range(options.count()):
            box.press("ArrowDown")
            if option.get_attribute("aria-selected") == "true":
                break
        expect(option).to_have_attribute("aria-selected", "true")
        expect(box).to_have_attribute("aria-activedescendant", option.get_attribute("id"))
        page.screenshot(path=str(tmp_path / "search-typeahead-laptop.png"))
        box.press("Enter")
        expect(page).to_have_url(f"{live_server.url}/u/{author}")
        expect(page.get_by_role("heading", name=author)).to_be_visible()

        # the same words sent with Enter and no suggestion chosen: the form's own results page
        box = page.get_by_role("combobox", name="Search people, posts and tags")
        box.fill(prefix)
        box.press("Enter")
        expect(page).to_have_url(re.compile(rf"/search\?q={prefix}$"))
        people = page.get_by_role("region", name="People")
        expect(people.locator(f'a[href="/u/{author}"]')).to_be_visible()

        # the post, by a word of its caption
        box = page.get_by_role("combobox", name="Search people, posts and tags")
        box.fill(word)
        box.press("Enter")
        expect(page).to_have_url(re.compile(rf"/search\?q={word}$"))
        page.get_by_role("region", name="Posts").locator(f'a[href="/p/{post_id}"]').click()
        expect(page).to_have_url(re.compile(rf"/p/{post_id}$"))
        expect(page.locator(".caption")).to_contain_text(word)

        # ... and by its tag: a suggestion picked with the mouse, then the results page's Tags section
        box = page.get_by_role("combobox", name="Search people, posts and tags")
        box.click()
        box.press_sequentially(tag[:8], delay=60)
        page.get_by_role("listbox", name="Suggestions").get_by_role("option", name=re.compile(rf"^Tag #{tag}\b")).click()
        expect(page).to_have_url(f"{live_server.url}/tags/{tag}")
        expect(page.locator(f'a[href="/p/{post_id}"]')).to_be_visible()
        box = page.get_by_role("combobox", name="Search people, posts and tags")
        box.fill(f"#{tag}")
        box.press("Enter")
        tags = page.get_by_role("region", name="Tags")
        expect(tags.get_by_role("link", name=f"#{tag}")).to_be_visible()
        expect(tags).to_contain_text("1 post")
        expect(page.get_by_role("region", name="Posts").locator(f'a[href="/p/{post_id}"]')).to_be_visible()
        page.screenshot(path=str(tmp_path / "search-results-laptop.png"), full_page=True)

        # explore, from the nav: her post among the recent ones
        page.get_by_role("link", name="Explore").click()
        expect(page).to_have_url(f"{live_server.url}/explore")
        expect(page.get_by_role("region", name="Recent posts").locator(f'a[href="/p/{post_id}"]')).to_be_visible()
        page.screenshot(path=str(tmp_path / "explore-laptop.png"), full_page=True)

        # no script at all: the header's box is a plain GET form
        page = plain.page
        page.goto("/")
        box = page.get_by_role("searchbox", name="Search people, posts and tags")
        box.fill(prefix)
        box.press("Enter")
        expect(page).to_have_url(re.compile(rf"/search\?q={prefix}$"))
        expect(page.get_by_role("region", name="People").locator(f'a[href="/u/{author}"]')).to_be_visible()
        page.get_by_role("button", name="Search").click()  # the button submits it too
        expect(page.get_by_role("region", name="People").locator(f'a[href="/u/{author}"]')).to_be_visible()
        page.screenshot(path=str(tmp_path / "search-results-phone-no-script.png"), full_page=True)

        assert mira.errors == [] and otto.errors == [], (mira.errors, otto.errors)  # no script error, no CSP violation
    finally:
        mira.close()
        otto.close()
        plain.close()


def test_api_docs_page_lists_the_operations_offline(live_server, chromium, tmp_path: Path) -> None:  # noqa: ANN001
    """/api/v1/docs renders the OpenAPI 3.1 document FastAPI writes (Swagger UI 5, served from this
    origin): the operations are listed, nothing is fetched from another host, and the CSP is kept."""
    from playwright.sync_api import expect

    reader = Person(chromium, live_server.url, LAPTOP)
    requested: list[str] = []
    failed: list[str] = []
    reader.page.on("request", lambda request: requested.append(request.url))
    reader.page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))
    try:
        page = reader.page
        page.goto("/api/v1/docs")
        expect(page.locator(".opblock-summary-path", has_text="/api/v1/feed").first).to_be_visible()
        expect(page.locator(".opblock-summary-path", has_text="/api/v1/posts/{post_id}/comments").first).to_be_visible()
        expect(page.locator(".info .title")).to_contain_text("Summit Photos")
        expect(page.locator(".info .title")).to_contain_text("OAS 3.1")
        assert page.get_by_text("Unable to render this definition").count() == 0
        # one operation opens, with its parameters and responses
        page.locator(".opblock-summary-path", has_text="/api/v1/feed").first.click()
        expect(page.locator(".opblock.is-open .responses-wrapper")).to_contain_text("200")
        page.screenshot(path=str(tmp_path / "api-docs-laptop.png"), full_page=True)
        foreign = [url for url in requested if not url.startswith((live_server.url + "/", "data:", "blob:"))]
        assert foreign == [], foreign
        assert failed == [], failed
        assert reader.errors == [], reader.errors  # no script error, no CSP violation
    finally:
        reader.close()


def test_an_oversized_photo_is_refused_in_one_unit_with_and_without_script(live_server, chromium, tmp_path: Path) -> None:  # noqa: ANN001
    """With app.js, choosing a photo over 20 MiB shows the server's own sentence before anything is
    sent; without script, the form posts it and the server answers an HTML page with that sentence
    (not the API's JSON)."""
    from playwright.sync_api import expect

    too_large = "the photo is larger than 20 MiB (20,971,520 bytes); send a smaller one"
    big = tmp_path / "big.jpg"
    with big.open("wb") as out:  # JPEG magic, then past the limit and the multipart envelope
        out.write(b"\xff\xd8\xff\xe0")
        out.truncate(22 * 1024 * 1024)
    suffix = secrets.token_hex(3)
    scripted = Person(chromium, live_server.url, LAPTOP)
    plain = Person(chromium, live_server.url, LAPTOP, java_script_enabled=False)
    try:
        scripted.sign_up(f"sam_{suffix}", live_server.data_dir)
        page = scripted.page
        page.goto("/new")
        expect(page.locator(".hint")).to_contain_text("up to 20 MiB")
        page.set_input_files("#photo", str(big))
        message = page.locator("#photo").evaluate("input => input.validationMessage")
        assert message == too_large[0].upper() + too_large[1:], message
        page.fill("#caption", "too big")
        page.get_by_role("button", name="Share").click()  # the browser refuses to submit an invalid form
        expect(page).to_have_url(live_server.url + "/new")

        plain.sign_up(f"nia_{suffix}", live_server.data_dir)
        page = plain.page
        page.goto("/new")
        page.set_input_files("#photo", str(big))
        page.fill("#caption", "too big")
        with page.expect_response(lambda r: r.url.endswith("/posts") and r.request.method == "POST") as answer:
            page.get_by_role("button", name="Share").click()
        assert answer.value.status == 413 and answer.value.headers["content-type"].startswith("text/html")
        expect(page.get_by_role("heading", name="Too large")).to_be_visible()
        expect(page.locator(".alert")).to_have_text(too_large)
        expect(page.get_by_role("link", name="Profile")).to_have_attribute("href", f"/u/nia_{suffix}")
        page.screenshot(path=str(tmp_path / "too-large-laptop.png"), full_page=True)
        assert scripted.errors == [], scripted.errors
    finally:
        scripted.close()
        plain.close()


def fresh_totp(secret: str, after_step: int) -> tuple[str, int]:
    """A code for a time step later than ``after_step`` (the pool takes each step once), that the
    server accepts now (it allows one step of clock skew): waits, at most one step, if need be."""
    step = after_step + 1
    deadline = time.monotonic() + TOTP_STEP + 5
    while int(time.time() // TOTP_STEP) < step - 1:
        assert time.monotonic() < deadline, "the clock did not reach the next TOTP step"
        time.sleep(0.25)
    return pyotp.TOTP(secret).at(step * TOTP_STEP), step


@pytest.mark.timeout(240)
def test_sign_up_confirm_totp_two_devices_and_sign_out_everywhere(live_server, chromium, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    username = f"tia_{secrets.token_hex(3)}"
    email = f"{username}@example.com"
    phone = Person(chromium, live_server.url, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    laptop = Person(chromium, live_server.url, LAPTOP)
    try:
        # sign up on the phone
        page = phone.page
        page.goto("/")
        page.get_by_role("link", name="Create an account").click()
        page.fill("#username", username)
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(re.compile(rf"/confirm\?login={username}$"))
        expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()
        page.screenshot(path=str(tmp_path / "confirm-phone.png"), full_page=True)

        # the emailed code, read in the dev inbox (the server and this browser share a machine)
        page.get_by_role("link", name="Open the dev inbox").click()
        expect(page).to_have_url(live_server.url + "/dev/inbox")
        mail = page.locator("li.mail").filter(has=page.locator(".mail-to", has_text=email)).first
        expect(mail.locator(".mail-subject")).to_contain_text("your confirmation code is")
        code = code_in(mail.locator(".mail-subject").inner_text())
        assert code == mailed_code(live_server.data_dir, email), "the dev inbox shows what summit mail reads"
        page.screenshot(path=str(tmp_path / "dev-inbox-phone.png"), full_page=True)
        page.go_back()
        expect(page).to_have_url(re.compile(r"/confirm\?"))
        page.fill("#code", code)
        page.get_by_role("button", name="Confirm").click()
        expect(page.locator(".notice")).to_have_text("Your email is confirmed: log in.")
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(live_server.url + "/")
        expect(page.get_by_role("link", name="Profile")).to_have_attribute("href", f"/u/{username}")

        # Settings -> Security: turn on TOTP with a code computed from the secret on the page
        page.get_by_role("link", name="Settings").click()
        page.get_by_role("link", name="Security").click()
        expect(page).to_have_url(live_server.url + "/settings/security")
        page.screenshot(path=str(tmp_path / "security-off-phone.png"), full_page=True)
        page.get_by_role("button", name="Set up an authenticator app").click()
        qr = page.locator("img.qr")
        expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml;base64,"))
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle(), timeout=TIMEOUT_MS)
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        page.locator(".uri summary").click()
        expect(page.locator("#totp-uri")).to_contain_text(f"secret={secret}")
        page.screenshot(path=str(tmp_path / "security-enrol-phone.png"), full_page=True)
        used_step = int(time.time() // TOTP_STEP)
        page.fill("#totp-code", pyotp.TOTP(secret).at(used_step * TOTP_STEP))
        page.get_by_role("button", name="Turn on two-step verification").click()
        expect(page.locator(".recovery-codes li")).to_have_count(10)
        page.screenshot(path=str(tmp_path / "security-recovery-phone.png"), full_page=True)
        page.get_by_role("link", name="I have saved them").click()
        expect(page.locator("#totp .badge")).to_have_text("On")
        page.screenshot(path=str(tmp_path / "security-on-phone.png"), full_page=True)

        # sign out, and in again: the password, then a TOTP code
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("link", name="Create an account")).to_be_visible()
        phone.log_in(username)
        code, used_step = fresh_totp(secret, used_step)
        phone.answer_totp(code, username)

        # a second device, with a fresh code (a later time step than the one just used)
        laptop.log_in(username)
        laptop.page.screenshot(path=str(tmp_path / "mfa-laptop.png"), full_page=True)
        code, used_step = fresh_totp(secret, used_step)
        laptop.answer_totp(code, username)
        laptop.page.goto("/settings/security")
        expect(laptop.page.locator("#totp .badge")).to_have_text("On")
        laptop.page.screenshot(path=str(tmp_path / "security-laptop.png"), full_page=True)
        laptop_refresh = laptop.cookie("summit_refresh")
        assert laptop_refresh and laptop.cookie("summit_session")

        # sign out everywhere, on the phone
        page.get_by_role("link", name="Settings").click()
        page.get_by_role("link", name="Security").click()
        page.get_by_role("button", name="Sign out everywhere").click()
        expect(page).to_have_url(re.compile(r"/login\?everywhere=1$"))
        expect(page.locator(".notice")).to_have_text("You are signed out on every device.")
        assert phone.cookie("summit_session") is None and phone.cookie("summit_refresh") is None

        # the laptop is signed out on its next page load: summit refuses its access token at once
        laptop.page.goto("/settings/security")
        expect(laptop.page).to_have_url(live_server.url + "/login?next=%2Fsettings%2Fsecurity")
        expect(laptop.page.get_by_role("link", name="Sign up")).to_be_visible()
        assert laptop.cookie("summit_session") is None and laptop.cookie("summit_refresh") is None
        # ... and its refresh token was revoked as well
        refused = httpx.post(live_server.url + "/api/v1/sessions/refresh", json={"refresh_token": laptop_refresh}, timeout=TIMEOUT_S)
        assert refused.status_code == 401, refused.text

        assert phone.errors == [] and laptop.errors == [], (phone.errors, laptop.errors)
    finally:
        phone.close()
        laptop.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_the_10k_stage_shows_its_processes_refuses_twins_and_keeps_logs(stage_10k) -> None:  # noqa: ANN001
    """What `summit status`, a second `summit up` and `summit logs` say about the running 10k stage."""
    summit = str(Path(sys.executable).with_name("summit"))
    data_dir = stage_10k.data_dir
    out = subprocess.run([summit, "status", "--json", "--data-dir", data_dir], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["running"] and report["healthy"] and report["stage"] == "10k"
    by_name = {p["name"]: p for p in report["processes"]}
    assert set(by_name) == {"postgres-primary", "postgres-replica-1", "postgres-replica-2", "pgbouncer-primary",
                            "pgbouncer-replica-1", "pgbouncer-replica-2", "redis", "seaweedfs", "web-1", "web-2",
                            "waf-1", "waf-2", "varnish-regional", "varnish-edge", "haproxy"}
    assert all(p["healthy"] and p["pid"] and p["address"].startswith("127.0.0.1:") for p in by_name.values())
    assert by_name["postgres-primary"]["role"] == "primary" and by_name["postgres-replica-2"]["role"] == "replica"
    servers = by_name["haproxy"]["details"]["servers"]  # HAProxy's own view of what it balances: the WAF tier, and the CDN
    assert set(servers) == {"web/waf-1", "web/waf-2", "cdn/varnish-edge"} and all(s.startswith("UP") for s in servers.values())
    assert all("events" in by_name[name]["details"] for name in ("waf-1", "waf-2"))
    assert report["url"] == stage_10k.url and report["url"].startswith("https://")  # checked through HTTPS, trusting the stage's CA
    assert {"hits", "misses", "hit_ratio"} <= set(by_name["varnish-edge"]["details"])
    assert "password" not in out.stdout.lower() or "***" in out.stdout  # no secret on screen
    twin = subprocess.run([summit, "up", "--stage", "10k", "--data-dir", data_dir, "--port", "1"], capture_output=True, text=True, timeout=60)
    assert twin.returncode == 1 and "already running" in twin.stderr
    logs = subprocess.run([summit, "logs", "postgres-primary", "--data-dir", data_dir, "-n", "200"], capture_output=True, text=True, timeout=60)
    assert logs.returncode == 0 and "database system is ready to accept connections" in logs.stdout
