"""The user-journey scenarios of a photo service, one HTTP request each, against seeded data.

| scenario    | class  | request                                   |
|-------------|--------|-------------------------------------------|
| feed        | read   | GET  /api/v1/feed (as a seeded user)      |
| photo       | read   | GET  /media/<a seeded post's photo>       |
| profile     | read   | GET  /api/v1/users/<username>             |
| like        | write  | PUT  /api/v1/posts/<id>/like              |
| comment     | write  | POST /api/v1/posts/<id>/comments          |
| follow      | write  | PUT  /api/v1/users/<username>/follow      |
| signup      | write  | POST /api/v1/accounts (a new user)        |
| post_photo  | upload | POST /api/v1/posts (multipart, a JPEG)    |
"""

from __future__ import annotations

import itertools
import random

import orjson

from summit.bench.http import HttpClient, multipart
from summit.bench.loadgen import Job
from summit.bench.seed import PASSWORD, Seeded

OK = {"feed": (200,), "photo": (200,), "profile": (200,), "like": (200,), "comment": (201,), "follow": (200,), "signup": (201,), "post_photo": (201,)}


class Scenarios:
    """``make_job(name)`` returns a coroutine function that runs one request of that scenario
    and returns (status, ok)."""

    def __init__(self, client: HttpClient, data: Seeded, *, photo: bytes, rng_seed: int = 7, upload_timeout: float = 30.0):
        self.client = client
        self.data = data
        self.photo = photo
        self.rng = random.Random(rng_seed)
        self.upload_timeout = upload_timeout
        self._signups = itertools.count(1)
        self._comments = itertools.count(1)

    def _user(self):  # noqa: ANN202
        return self.rng.choice(self.data.users)

    def make_job(self, name: str) -> Job:
        build = getattr(self, f"_{name}")
        return build()

    async def _call(self, name: str, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"", timeout: float | None = None) -> tuple[int, bool]:
        response = await self.client.request(method, path, headers=headers, body=body, timeout=timeout)
        return response.status, response.status in OK[name]

    def _feed(self) -> Job:
        user = self._user()
        return lambda: self._call("feed", "GET", "/api/v1/feed", user.auth)

    def _photo(self) -> Job:
        post = self.rng.choice(self.data.posts)
        return lambda: self._call("photo", "GET", post.photo_path)

    def _profile(self) -> Job:
        viewer, target = self._user(), self._user()
        return lambda: self._call("profile", "GET", f"/api/v1/users/{target.username}", viewer.auth)

    def _like(self) -> Job:
        user, post = self._user(), self.rng.choice(self.data.posts)
        return lambda: self._call("like", "PUT", f"/api/v1/posts/{post.id}/like", user.auth)

    def _comment(self) -> Job:
        user, post = self._user(), self.rng.choice(self.data.posts)
        body = orjson.dumps({"body": f"bench comment {next(self._comments)}"})
        return lambda: self._call("comment", "POST", f"/api/v1/posts/{post.id}/comments", {**user.auth, "Content-Type": "application/json"}, body)

    def _follow(self) -> Job:
        user, target = self._user(), self._user()
        while target is user and len(self.data.users) > 1:  # bounded in practice: two distinct users exist
            target = self._user()
        return lambda: self._call("follow", "PUT", f"/api/v1/users/{target.username}/follow", user.auth)

    def _signup(self) -> Job:
        name = f"{self.data.prefix}_n{next(self._signups):06d}"
        body = orjson.dumps({"username": name, "email": f"{name}@example.com", "password": PASSWORD})
        return lambda: self._call("signup", "POST", "/api/v1/accounts", {"Content-Type": "application/json"}, body)

    def _post_photo(self) -> Job:
        user = self._user()
        body, content_type = multipart({"caption": "bench upload #bench"}, {"photo": ("photo.jpg", self.photo, "image/jpeg")})
        return lambda: self._call("post_photo", "POST", "/api/v1/posts", {**user.auth, "Content-Type": content_type}, body, self.upload_timeout)
