"""The contract every adapter of the cdn port passes.

    class TestCdn(CdnContract):
        backend = backend_fixture("cdn")      # one run per line of the cdn table

A line whose engine runs real caches offers ``engine.get(path)``: a GET through the CDN's front
tier, returning the response (with its ``X-Cache`` header). Then the suite checks that a purge
really removes a cached photo from every tier; an adapter without caches (``none://``) must say so
(``caches`` is False) and only checks its paths.
"""

from __future__ import annotations

import itertools

import pytest

from summit.ports.cdn import Cdn, check_path

_names = itertools.count(1)
BAD_PATHS = ["media/no-slash", "/with space", "/query?x=1", "/frag#x", "/" + "x" * 3000, "/tab\t", "/ünï", "", None, 7]


class CdnContract:
    @pytest.fixture
    def backend(self):  # noqa: ANN201
        raise NotImplementedError("a subclass sets `backend = backend_fixture('cdn')` (summit.testing.backends)")

    @pytest.fixture
    async def cdn(self, backend):  # noqa: ANN001, ANN201
        adapter = backend.open("cdn")
        yield adapter
        await adapter.close()

    async def test_a_purge_of_valid_paths_is_idempotent(self, cdn: Cdn) -> None:
        paths = [f"/media/p/contract-{next(_names)}.jpg", "/static/app.css"]
        await cdn.purge(paths)
        await cdn.purge(paths)  # nothing cached: still fine
        await cdn.purge([])

    @pytest.mark.parametrize("bad", BAD_PATHS)
    async def test_a_bad_path_is_refused_before_anything_is_sent(self, cdn: Cdn, bad: object) -> None:
        with pytest.raises(ValueError, match="path to purge"):
            await cdn.purge(["/media/ok.jpg", bad])  # type: ignore[list-item]
        with pytest.raises(ValueError):
            check_path(bad)  # type: ignore[arg-type]

    async def test_a_purged_photo_is_fetched_from_the_origin_again(self, cdn: Cdn, backend) -> None:  # noqa: ANN001
        if backend.engine is None or not hasattr(backend.engine, "get"):
            assert cdn.caches is False, "an adapter with caches names an engine that can GET through them"
            return
        assert cdn.caches is True
        path = f"/media/p/contract-{next(_names)}.jpg"
        assert (await backend.engine.get(path)).headers["x-cache"] == "MISS"
        assert (await backend.engine.get(path)).headers["x-cache"] == "HIT"
        await cdn.purge([path])
        assert (await backend.engine.get(path)).headers["x-cache"] == "MISS"
