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
    prefix = "b" + secrets.token_hex(3)
    out = Seeded(prefix)
    report = progress or (lambda *_: None)

    async def phase(name: str, items: list, fn: Callable) -> None:
        done = 0
        failed = 0

        async def run(item):  # noqa: ANN001, ANN202
            nonlocal done, failed
            try:
                ok = await fn(item)
            except Exception:  # noqa: BLE001
                ok = False
            done += 1
            failed += 0 if ok else 1
            report(name, done, len(items))

        report(name, 0, len(items))
        await _bounded(items, run, concurrency)
        out.errors += failed
        if items and failed / len(items) > max_error_ratio:
            raise SeedError(f"seeding {name}: {failed} of {len(items)} requests failed")

    json_headers = {"Content-Type": "application/json"}

    async def sign_up(i: int) -> bool:
        import orjson

        name = f"{prefix}_{i:05d}"
        body = orjson.dumps({"username": name, "email": f"{name}@example.com", "password": PASSWORD})
        r = await client.request("POST", "/api/v1/accounts", headers=json_headers, body=body)
        if r.status != 201:
            return False
        if mailed_code is not None:
            code = await mailed_code(f"{name}@example.com")
            confirm = orjson.dumps({"login": name, "code": code or ""})
            if (await client.request("POST", "/api/v1/accounts/confirm", headers=json_headers, body=confirm)).status != 200:
                return False
        r = await client.request("POST", "/api/v1/sessions", headers=json_headers, body=orjson.dumps({"login": name, "password": PASSWORD}))
        if r.status != 201:
            return False
        out.users.append(SeedUser(name, r.json()["token"]))
        return True

    await phase("users", list(range(users)), sign_up)
    if len(out.users) < 2:
        raise SeedError("seeding made fewer than two users")
    out.users.sort(key=lambda u: u.username)

    pairs = []
    for user in out.users:
        others = [u for u in out.users if u is not user]
        for target in rng.sample(others, min(follows_per_user, len(others))):
            pairs.append((user, target))

    async def follow(pair) -> bool:  # noqa: ANN001
        user, target = pair
        r = await client.request("PUT", f"/api/v1/users/{target.username}/follow", headers=user.auth)
        out.follows += r.status == 200
        return r.status == 200

    await phase("follows", pairs, follow)

    photos = [small_jpeg(i) for i in range(min(posts, 20))]
    authors = [rng.choice(out.users) for _ in range(posts)]

    async def post(i: int) -> bool:
        author = authors[i]
        body, content_type = multipart({"caption": f"seed photo {i} #summit #bench{i % 10}"}, {"photo": ("photo.jpg", photos[i % len(photos)], "image/jpeg")})
        r = await client.request("POST", "/api/v1/posts", headers={**author.auth, "Content-Type": content_type}, body=body)
        if r.status != 201:
            return False
        data = r.json()
        out.posts.append(SeedPost(data["id"], author.username, _path(data["photo_url"])))
        return True

    await phase("posts", list(range(posts)), post)
    if not out.posts:
        raise SeedError("seeding made no post")

    like_jobs = [(rng.choice(out.users), rng.choice(out.posts)) for _ in range(int(len(out.posts) * likes_per_post))]

    async def like(job) -> bool:  # noqa: ANN001
        user, p = job
        r = await client.request("PUT", f"/api/v1/posts/{p.id}/like", headers=user.auth)
        out.likes += r.status == 200
        return r.status == 200

    await phase("likes", like_jobs, like)

    comment_jobs = [(rng.choice(out.users), rng.choice(out.posts), i) for i in range(int(len(out.posts) * comments_per_post))]

    async def comment(job) -> bool:  # noqa: ANN001
        import orjson

        user, p, i = job
        r = await client.request("POST", f"/api/v1/posts/{p.id}/comments", headers={**user.auth, **json_headers}, body=orjson.dumps({"body": f"nice one ({i})"}))
        out.comments += r.status == 201
        return r.status == 201

    await phase("comments", comment_jobs, comment)
    return out
