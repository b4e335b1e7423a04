"""The cdn port on Varnish: ``varnish://127.0.0.1:6081,127.0.0.1:6082`` lists the tiers, the one
nearest the origin first (the regional tier, then the edges).

A purge sends ``PURGE <path>`` to each tier in that order, so that an edge that misses right after
its purge cannot refill from a regional copy that is still there. Varnish answers 200 to a purge
whether or not it held the object; anything else, or no answer within ``timeout_ms``, is a
CdnError naming the tier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

import httpx

from summit.ports.cdn import Cdn, CdnError, check_path


class VarnishCdn(Cdn):
    def __init__(self, tiers: list[str], *, timeout: float = 2.0):
        if not tiers:
            raise ValueError("varnish:// needs at least one tier: varnish://host:port[,host:port...]")
        self.tiers = tiers
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_url(cls, url: str) -> VarnishCdn:
        parts = urlsplit(url)
        tiers = [t for t in parts.netloc.split(",") if t]
        for tier in tiers:
            host, sep, port = tier.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{url!r}: each tier is host:port, not {tier!r}")
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - {"timeout_ms"}
        if unknown:
            raise ValueError(f"{url!r}: unknown option(s) {', '.join(sorted(unknown))}; the varnish cdn takes timeout_ms")
        timeout = options.get("timeout_ms", "2000")
        if not timeout.isdigit() or int(timeout) < 1:
            raise ValueError(f"{url!r}: timeout_ms must be a whole number of milliseconds >= 1")
        return cls(tiers, timeout=int(timeout) / 1000)

    async def purge(self, paths: Iterable[str]) -> None:
        checked = [check_path(p) for p in paths]
        if not checked:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        for tier in self.tiers:  # nearest the origin first
            results = await asyncio.gather(*(self._purge_one(tier, path) for path in checked), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise CdnError(f"the CDN tier at {tier} did not take the purge: {failed[0]}")

    async def _purge_one(self, tier: str, path: str) -> None:
        assert self._client is not None
        try:
            response = await self._client.request("PURGE", f"http://{tier}{path}")
        except httpx.HTTPError as error:
            raise CdnError(f"{type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise CdnError(f"PURGE {path} answered {response.status_code}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
