"""Rebuild the search index from the app's own data (``summit search reindex``).

The platform does not know the app's tables; the blueprint's ``[app]`` section names a function of
the app that does (``search_documents = "photos.search:documents"``): an async generator function
that takes the platform and yields what to index, ``summit.ports.Document`` or
``(kind, id, fields, rank)`` tuples::

    async def documents(platform: Platform) -> AsyncIterator[Document]:
        async with platform.db.read() as conn: ...
            yield Document("user", str(row.id), {"name": row.username, "bio": row.bio}, rank=followers)

``reindex`` empties the index, then indexes what the generator yields in batches (one transaction
each, ``index_many``) and compacts the index at the end. Searches made meanwhile see a partial
index; documents the app indexes meanwhile are kept (or replaced by the generator's, the same).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from summit.ports.search import Document

if TYPE_CHECKING:
    from summit.platform import Platform

BATCH = 500  # documents per transaction
Progress = Callable[[Counter[str]], None]  # documents indexed so far, by kind


@dataclass
class ReindexReport:
    counts: Counter[str] = field(default_factory=Counter)  # kind -> documents indexed
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        """Documents indexed per second, reading the app's data included."""
        return self.total / self.seconds if self.seconds > 0 else 0.0


def as_document(item: Any) -> Document:  # noqa: ANN401
    """A document the app yielded: a ``Document``, or a ``(kind, id, fields, rank)`` tuple."""
    if isinstance(item, Document):
        return item
    if isinstance(item, tuple) and len(item) == 4:
        return Document(*item)
    raise TypeError(f"app.search_documents yields Document or (kind, id, fields, rank), not {item!r:.100}")


async def reindex(platform: Platform, documents: Callable[[Platform], AsyncIterator[Any]], *,
                  batch: int = BATCH, on_progress: Progress = lambda counts: None) -> ReindexReport:
    """Empty ``platform.search`` and fill it with what ``documents(platform)`` yields."""
    stream = documents(platform)
    if not hasattr(stream, "__aiter__"):
        raise TypeError(f"app.search_documents must be an async generator function (platform) -> documents, "
                        f"not a function returning {type(stream).__name__}")
    report = ReindexReport()
    started = time.perf_counter()
    await platform.search.clear()
    pending: list[Document] = []

    async def flush() -> None:
        await platform.search.index_many(pending)
        report.counts.update(document.kind for document in pending)
        pending.clear()
        on_progress(report.counts)

    async for item in stream:
        pending.append(as_document(item))
        if len(pending) >= batch:
            await flush()
    if pending:
        await flush()
    await platform.search.optimize()
    report.seconds = time.perf_counter() - started
    return report
