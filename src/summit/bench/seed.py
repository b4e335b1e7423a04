"""Seed a stage through its public API: users (signed up and logged in), a follow graph, posts
with small JPEGs, likes and comments. Deterministic for a given seed; bounded in count."""

from __future__ import annotations

import asyncio
import io
import math
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from PIL import Image

from summit.bench.http import HttpClient, multipart

PASSWORD = "bench-password-1"  # noqa: S105  (throwaway accounts on a temporary stage)


def make_jpeg(target_bytes: int, *, seed: int = 0) -> bytes:
    """A JPEG of about ``target_bytes`` that costs like a photo to decode: about 2.5 pixels per
    byte (a 2 MB photo is ~5 megapixels, as from a phone), noisy enough that JPEG cannot shrink it
    to nothing. The quality is searched (bounded: 6 encodes) to land near the size."""
    pixels = max(64 * 64, min(int(target_bytes * 2.5), 24_000_000))
    width = int(math.sqrt(pixels * 4 / 3))
    height = max(16, pixels // width)
    rng = random.Random(seed)
    noise_a = Image.effect_noise((width, height), 40)
    noise_b = Image.effect_noise((width, height), 40)
    gradient = Image.linear_gradient("L").resize((width, height)).rotate(rng.choice((0, 90, 180, 270)), expand=False)
    image = Image.merge("RGB", (noise_a, gradient, noise_b))
    low, high = 40, 95
    best = b""
    for _ in range(6):
        quality = (low + high) // 2
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality)
        data = out.getvalue()
        if not best or abs(len(data) - target_bytes) < abs(len(best) - target_bytes):
            best = data
        if len(data) < target_bytes:
            low = quality + 1
        else:
            high = quality - 1
        if low > high:
            break
    return best


def small_jpeg(seed: int, size: tuple[int, int] = (480, 360)) -> bytes:
    """A small JPEG with a few random coloured blocks (fast to make, different each seed)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(6):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        block = Image.new("RGB", (rng.randrange(20, 200), rng.randrange(20, 200)), tuple(rng.randrange(256) for _ in range(3)))
        image.paste(block, (x, y))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


@dataclass
class SeedUser:
    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class SeedPost:
    id: str
    author: str
    photo_path: str


@dataclass
class Seeded:
    prefix: str
    users: list[SeedUser] = field(default_factory=list)
    posts: list[SeedPost] = field(default_factory=list)
    follows: int = 0
    likes: int = 0
    comments: int = 0
    errors: int = 0

    def as_dict(self) -> dict:
        return {"users": len(self.users), "posts": len(self.posts), "follows": self.follows, "likes": self.likes, "comments": self.comments, "errors": self.errors}


class SeedError(RuntimeError):
    pass


async def _bounded(items: list, worker: Callable, concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one(item):  # noqa: ANN001, ANN202
        async with slots:
            await worker(item)

    await asyncio.gather(*(one(i) for i in items))


def _path(url: str) -> str:
    """'/media/p/x.jpg' or 'http://host/media/p/x.jpg' -> '/media/p/x.jpg'."""
    if url.startswith("http://") or url.startswith("https://"):
        return "/" + url.split("/", 3)[3]
    return url


JSON_HEADERS = {"Content-Type": "application/json"}


class _Seeder:
    """The seeding's steps, in order, each a phase of bounded concurrency; ``out`` collects."""

    def __init__(self, client: HttpClient, *, concurrency: int, progress: Callable[[str, int, int], None],
                 max_error_ratio: float, mailed_code: Callable[[str], Awaitable[str | None]] | None):
        self.client = client
        self.concurrency = concurrency
        self.progress = progress
        self.max_error_ratio = max_error_ratio
        self.mailed_code = mailed_code
        self.out = Seeded("b" + secrets.token_hex(3))

    async def phase(self, name: str, items: list, fn: Callable[[Any], Awaitable[bool]]) -> None:
        """``fn`` on every item; SeedError if more than ``max_error_ratio`` of them fail."""
        counts = {"done": 0, "failed": 0}

        async def run(item: Any) -> None:
            try:
                ok = await fn(item)
            except Exception:  # noqa: BLE001
                ok = False
            counts["done"] += 1
            counts["failed"] += 0 if ok else 1
            self.progress(name, counts["done"], len(items))

        self.progress(name, 0, len(items))
        await _bounded(items, run, self.concurrency)
        self.out.errors += counts["failed"]
        if items and counts["failed"] / len(items) > self.max_error_ratio:
            raise SeedError(f"seeding {name}: {counts['failed']} of {len(items)} requests failed")

    async def sign_up(self, i: int) -> bool:
        """Sign up, confirm with the mailed code (when the stage mails one), log in."""
        name = f"{self.out.prefix}_{i:05d}"
        body = orjson.dumps({"username": name, "email": f"{name}@example.com", "password": PASSWORD})
        if (await self.client.request("POST", "/api/v1/accounts", headers=JSON_HEADERS, body=body)).status != 201:
            return False
        if self.mailed_code is not None:
            code = await self.mailed_code(f"{name}@example.com")
            confirm = orjson.dumps({"login": name, "code": code or ""})
            if (await self.client.request("POST", "/api/v1/accounts/confirm", headers=JSON_HEADERS, body=confirm)).status != 200:
                return False
        r = await self.client.request("POST", "/api/v1/sessions", headers=JSON_HEADERS, body=orjson.dumps({"login": name, "password": PASSWORD}))
        if r.status != 201:
            return False
        self.out.users.append(SeedUser(name, r.json()["token"]))
        return True

    async def follow(self, pair: tuple[SeedUser, SeedUser]) -> bool:
        user, target = pair
        r = await self.client.request("PUT", f"/api/v1/users/{target.username}/follow", headers=user.auth)
        self.out.follows += r.status == 200
        return r.status == 200

    async def post(self, job: tuple[int, SeedUser, bytes]) -> bool:
        i, author, photo = job
        body, content_type = multipart({"caption": f"seed photo {i} #summit #bench{i % 10}"}, {"photo": ("photo.jpg", photo, "image/jpeg")})
        r = await self.client.request("POST", "/api/v1/posts", headers={**author.auth, "Content-Type": content_type}, body=body)
        if r.status != 201:
            return False
        data = r.json()
        self.out.posts.append(SeedPost(data["id"], author.username, _path(data["photo_url"])))
        return True

    async def like(self, job: tuple[SeedUser, SeedPost]) -> bool:
        user, p = job
        r = await self.client.request("PUT", f"/api/v1/posts/{p.id}/like", headers=user.auth)
        self.out.likes += r.status == 200
        return r.status == 200

    async def comment(self, job: tuple[SeedUser, SeedPost, int]) -> bool:
        user, p, i = job
        body = orjson.dumps({"body": f"nice one ({i})"})
        r = await self.client.request("POST", f"/api/v1/posts/{p.id}/comments", headers={**user.auth, **JSON_HEADERS}, body=body)
        self.out.comments += r.status == 201
        return r.status == 201


def like_pairs(rng: random.Random, users: list[SeedUser], posts: list[SeedPost], count: int) -> list[tuple[SeedUser, SeedPost]]:
    """``count`` distinct (user, post) pairs, drawn at random (at most one per pair there is): a
    user likes a post once; the same like sent twice at once would only race on the likes' key."""
    count = min(count, len(users) * len(posts))
    chosen: dict[tuple[str, str], tuple[SeedUser, SeedPost]] = {}
    while len(chosen) < count:
        user, post = rng.choice(users), rng.choice(posts)
        chosen.setdefault((user.username, post.id), (user, post))
    return list(chosen.values())


async def seed(
    client: HttpClient,
    *,
    users: int = 200,
    posts: int = 500,
    follows_per_user: int = 10,
    likes_per_post: float = 1.0,
    comments_per_post: float = 0.5,
    concurrency: int = 8,
    rng_seed: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    max_error_ratio: float = 0.05,
    mailed_code: Callable[[str], Awaitable[str | None]] | None = None,
) -> Seeded:
    """Create the data. ``progress(phase, done, total)`` is called as it goes. Raises SeedError if
    more than ``max_error_ratio`` of the requests of a phase fail. ``mailed_code(email)`` reads the
    confirmation code the stage mailed (new accounts must be confirmed before they sign in)."""
    rng = random.Random(rng_seed)
    s = _Seeder(client, concurrency=concurrency, progress=progress or (lambda *_: None), max_error_ratio=max_error_ratio, mailed_code=mailed_code)
    out = s.out
    await s.phase("users", list(range(users)), s.sign_up)
    if len(out.users) < 2:
        raise SeedError("seeding made fewer than two users")
    out.users.sort(key=lambda u: u.username)
    pairs = []
    for user in out.users:
        others = [u for u in out.users if u is not user]
        pairs += [(user, target) for target in rng.sample(others, min(follows_per_user, len(others)))]
    await s.phase("follows", pairs, s.follow)
    photos = [small_jpeg(i) for i in range(min(posts, 20))]
    authors = [rng.choice(out.users) for _ in range(posts)]
    await s.phase("posts", [(i, authors[i], photos[i % len(photos)]) for i in range(posts)], s.post)
    if not out.posts:
        raise SeedError("seeding made no post")
    await s.phase("likes", like_pairs(rng, out.users, out.posts, int(len(out.posts) * likes_per_post)), s.like)
    comment_jobs = [(rng.choice(out.users), rng.choice(out.posts), i) for i in range(int(len(out.posts) * comments_per_post))]
    await s.phase("comments", comment_jobs, s.comment)
    return out
