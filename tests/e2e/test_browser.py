"""End to end in a real headless browser: Debian's chromium driven by Playwright (sync API) against a
real ``summit up`` (the ``live_server`` fixture).

Two people, each in their own browser context (own cookies): one signs up and posts a photo, the
other signs up, follows, sees the post with its thumbnail in the feed, likes it and comments on it.
Screenshots of the pages (phone and laptop widths) are left in the test's tmp_path for a person.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

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


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium); "
            "the README's test command does it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        try:
            yield browser
        finally:
            browser.close()


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

    def sign_up(self, username: str) -> None:
        from playwright.sync_api import expect

        page = self.page
        page.goto("/")
        page.get_by_role("link", name="Create an account").click()
        page.fill("#username", username)
        page.fill("#email", f"{username}@example.com")
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(self.base + "/")
        expect(page.locator(".brand")).to_have_text("Summit Photos")
        expect(page.get_by_role("link", name="Profile")).to_have_attribute("href", f"/u/{username}")

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


def test_two_people_post_follow_see_like_and_comment(live_server, chromium, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    suffix = secrets.token_hex(3)
    author, friend = f"ann_{suffix}", f"ben_{suffix}"
    ann = Person(chromium, live_server.url, LAPTOP)
    ben = Person(chromium, live_server.url, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        ann.sign_up(author)
        ben.sign_up(friend)

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
            response = route.fetch()
            body, swapped = re.subn(
                r'<img class="tile" src="/media/t/[^"]+"',
                f'<img class="tile pending" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-pending-post="{post_id}" data-size="small"',
                response.text(),
            )
            rewritten.append(swapped)
            route.fulfill(response=response, body=body)

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
