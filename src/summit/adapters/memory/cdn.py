"""``none://``: the cdn port where no CDN runs (stages 1 to 1k): there is nothing to purge, so a
purge only checks its paths, as every adapter does."""

from __future__ import annotations

from collections.abc import Iterable

from summit.ports.cdn import Cdn, check_path


class NoCdn(Cdn):
    caches = False

    @classmethod
    def from_url(cls, url: str) -> NoCdn:
        if url not in ("none://", "none:"):
            raise ValueError(f"{url!r}: the cdn port without a CDN is none:// (no host, no options)")
        return cls()

    async def purge(self, paths: Iterable[str]) -> None:
        for path in paths:
            check_path(path)
