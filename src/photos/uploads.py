"""Photo uploads: one size limit (``uploads.max_photo_bytes``), one message, checked twice: at the
edge of the request, before an oversized body is read (``summit.web.BodyLimitMiddleware`` on the
routes marked ``@accepts_photo``), and in the service, on the photo's own bytes (``check_size``).

One unit, too: sizes are told in MiB (1,048,576 bytes), written "MiB", with the exact number of
bytes in the refusal. The limit is 20 MiB (20,971,520 bytes) unless the blueprint says otherwise;
a photo of exactly the limit is taken, one byte more is not. The pages print ``size_text`` and
``too_large`` (``new.html``, ``settings.html``), and ``static/app.js`` checks the chosen file
against the same number of bytes and shows the same sentence, so the browser, the page and the
server never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from photos.errors import TooLarge

MiB = 1024 * 1024
ENVELOPE = 256 * 1024  # what a multipart body holds besides the photo: framing, the other fields
F = TypeVar("F", bound=Callable[..., Any])


def accepts_photo(endpoint: F) -> F:
    """Mark a route's endpoint as one that takes a photo upload (its body may be that large)."""
    endpoint.accepts_photo = True  # type: ignore[attr-defined]
    return endpoint


def size_text(limit: int) -> str:
    """``20971520`` -> ``"20 MiB"``."""
    return f"{limit / MiB:g} MiB"


def too_large(limit: int) -> str:
    return f"the photo is larger than {size_text(limit)} ({limit:,} bytes); send a smaller one"


def check_size(data: bytes, limit: int) -> None:
    if len(data) > limit:
        raise TooLarge(too_large(limit), field="photo")


def photo_routes(routes: Iterable[Any]) -> Callable[[str, str], bool]:
    """``matches(method, path)`` for the routes whose endpoint is marked ``@accepts_photo``."""
    marked: list[tuple[frozenset[str], re.Pattern[str]]] = [
        (frozenset(route.methods or ()), route.path_regex)
        for route in routes
        if getattr(getattr(route, "endpoint", None), "accepts_photo", False)
    ]

    def matches(method: str, path: str) -> bool:
        return any(method in methods and regex.match(path) for methods, regex in marked)

    return matches
