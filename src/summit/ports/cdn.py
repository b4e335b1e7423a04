"""The cdn port: the caches between the public address and the app (the seed's CloudFront).

The app tells the CDN what it must stop serving: ``purge(paths)`` removes the cached copies of
those URL paths from every tier, before it returns. Photo URLs are immutable (a new photo gets a
new key), so a purge is needed only when something is deleted. Where no CDN runs (stages 1 to 1k),
the adapter ``none://`` has nothing to purge.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

from summit import telemetry

MAX_PATH_BYTES = 2048


class CdnError(Exception):
    """A purge could not reach every tier; the message names which. The caller may retry."""


def check_path(path: str) -> str:
    """A URL path to purge: absolute, printable ASCII, no scheme or host, no query."""
    if not isinstance(path, str) or not path.startswith("/") or len(path.encode()) > MAX_PATH_BYTES:
        raise ValueError(f"a path to purge starts with '/' and has at most {MAX_PATH_BYTES} bytes, not {path!r}")
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in path) or "?" in path or "#" in path:
        raise ValueError(f"a path to purge is printable ASCII without spaces, query or fragment, not {path!r}")
    return path


class Cdn(abc.ABC):
    # Does a purge reach caches that really exist (False: there is no CDN at this stage)?
    caches: bool = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        telemetry.instrument(cls, "cdn", {"purge": "purge"})

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Cdn: ...

    @abc.abstractmethod
    async def purge(self, paths: Iterable[str]) -> None:
        """Stop serving these paths from every tier (each checked by ``check_path``)."""

    async def close(self) -> None:
        """Release connections; the adapter is not used after this."""
