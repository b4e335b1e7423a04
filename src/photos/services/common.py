"""What every service shares: the context, text validation, cursors and view records."""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from summit.platform import Platform
from summit.ports import Cache, Database, Mailer, ObjectStore, Queue
from summit.security import Access, UserPool

from photos.errors import Invalid

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
TAG_RE = re.compile(r"#(\w{1,100})")
MAX_TAGS = 30


@dataclass
class Context:
    """What a service works with: the platform's ports and the security services."""

    platform: Platform
    identity: UserPool  # accounts, sessions, tokens (like Cognito)
    access: Access  # who may do what (IAM-style policies)
    media_base: str = "/media"
    # the cache the read side (services.reads) keeps posts and feeds in: the platform's cache,
    # unless several web processes would each keep a copy of their own that goes stale
    read_cache: Cache | None = field(init=False)

    def __post_init__(self) -> None:
        cache, processes = self.platform.cache, self.platform.blueprint.server.serving_processes
        self.read_cache = cache if cache.shared or processes == 1 else None

    @property
    def db(self) -> Database:
        return self.platform.db

    @property
    def objects(self) -> ObjectStore:
        return self.platform.objects

    @property
    def queue(self) -> Queue:
        return self.platform.queue

    @property
    def cache(self) -> Cache:
        return self.platform.cache

    @property
    def mail(self) -> Mailer:
        return self.platform.mail

    def media_url(self, key: str | None) -> str | None:
        return f"{self.media_base}/{key}" if key else None


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None = None


def now() -> float:
    return time.time()


def clean_text(value: Any, name: str, *, max_length: int, multiline: bool = False, required: bool = False) -> str:
    """Normalise user text, or raise Invalid saying what is wrong with it.

    Rejects what a database or a browser would choke on: NUL and other control characters, lone
    surrogates (invalid UTF-8), and text over ``max_length`` characters. HTML is not stripped:
    every page escapes what it prints.
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{name} contains invalid Unicode (a lone surrogate)", field=name) from None
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").strip()
    allowed = "\n\t" if multiline else ""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
        kind = "control characters" if multiline else "control characters or line breaks"
        raise Invalid(f"{name} must not contain {kind}", field=name)
    if len(value) > max_length:
        raise Invalid(f"{name} is {len(value)} characters long; the limit is {max_length}", field=name)
    if required and not value:
        raise Invalid(f"{name} must not be empty", field=name)
    return value


def extract_tags(caption: str) -> list[str]:
    """Hashtags of a caption or a comment, lower-cased, in order of first appearance, at most MAX_TAGS."""
    seen: dict[str, None] = {}
    for match in TAG_RE.finditer(caption):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)[:MAX_TAGS]


def parse_cursor(cursor: str | None) -> int | None:
    if cursor in (None, ""):
        return None
    if not isinstance(cursor, str) or not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 19 or int(cursor) >= 1 << 63:
        raise Invalid("cursor must be the next_cursor value of a previous page", field="cursor")
    return int(cursor)


def page_size(limit: int | None) -> int:
    if limit is None:
        return PAGE_SIZE
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    return limit


def parse_id(value: str | int, name: str = "id") -> int:
    """IDs travel as decimal strings; anything else is a 404 (no such thing), not a 500."""
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) >= 1 << 63:
        from photos.errors import NotFound

        raise NotFound(f"no {name} {text[:40]!r}")
    return int(text)


@dataclass(slots=True)  # not frozen: a frozen dataclass is six times slower to build, and a feed builds 60
class UserBrief:
    id: int
    username: str
    display_name: str
    avatar_url: str | None


@dataclass(slots=True)
class Thumbnails:
    ready: bool
    small: str | None = None
    medium: str | None = None
    large: str | None = None


@dataclass(slots=True)
class Post:
    id: int
    author: UserBrief
    caption: str
    tags: list[str]
    photo_url: str
    content_type: str
    width: int
    height: int
    thumbnails: Thumbnails
    like_count: int
    comment_count: int
    liked_by_me: bool
    created_at: float
    edited_at: float | None = None


@dataclass(slots=True)
class Comment:
    id: int
    post_id: int
    author: UserBrief
    body: str
    created_at: float
    tags: list[str] = field(default_factory=list)  # its hashtags: the post is on these tags' pages too


@dataclass(frozen=True)
class Profile:
    id: int
    username: str
    display_name: str
    bio: str
    avatar_url: str | None
    created_at: float
    followers: int = 0
    following: int = 0
    posts: int = 0
    followed_by_me: bool = False
    email: str | None = None  # only on your own profile
    extra: dict[str, Any] = field(default_factory=dict)
