"""The search port under a stage's data: indexing rate and query latency, SQLite FTS5 (and PostgreSQL).

    .venv/bin/python bench/search.py                       # 100,000 posts + 5,000 users on SQLite
    .venv/bin/python bench/search.py --postgres            # the same on PostgreSQL too (started here, through PgBouncer)
    .venv/bin/python bench/search.py --posts 20000 --queries 100 --json

Synthetic data, the same on every run (seeded): a vocabulary of 20,000 made-up words used with
Zipf-like frequencies (a few very common, most rare), captions of 4 to 24 words with a hashtag or
two, users with a username, a display name and a short bio. Documents go in through ``index_many``
in batches of 500, as ``summit search reindex`` sends them; the rate counts documents per second
of indexing, cutting text into words included; ``optimize`` (segment merge or GIN clean-up) is
timed apart.

Then a bounded set of queries, one at a time, each run twice: short prefixes (2 and 3 letters:
the slowest, they match most), longer prefixes and whole words, common and rare, two- and
three-word queries taken from real captions, and the second page of a query (its cursor).
Latencies are measured around ``await search.query(...)`` (limit 20), as the app would see them;
p50 and p99 by group and for all, the first time a query is seen (cold) and the second (warm: the
engine's caches, and SQLite's memory of queries too long for the event loop, which go straight to
a thread). On SQLite the count of queries that passed the inline deadline is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from summit.ports import Document, SearchIndex
from summit.wiring import open_port

SEED = 7
BATCH = 500
VOCABULARY = 20_000
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "do", "fi", "gu", "he", "ja", "ba", "co", "di",
             "el", "ar", "is", "on", "us", "qu", "wy", "xi", "yo", "an", "en", "or", "st", "tr", "pl", "gr", "sh", "ch"]


def vocabulary(rng: random.Random) -> list[str]:
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        words["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


def corpus(posts: int, users: int) -> tuple[list[Document], list[str]]:
    """The documents, and the captions' texts (for multi-word queries)."""
    rng = random.Random(SEED)
    words = vocabulary(rng)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))  # Zipf: the n-th word 1/n as common
    docs, captions = [], []
    for i in range(users):
        name = rng.choice(words) + str(i)
        bio = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(0, 12)))
        docs.append(Document("user", str(i), {"name": f"{name} {rng.choice(words).title()} {rng.choice(words).title()}", "bio": bio},
                             rank=int(rng.paretovariate(1.2))))
    for i in range(posts):
        text = rng.choices(words, cum_weights=cumulative, k=rng.randint(4, 24))
        text += ["#" + rng.choices(words, cum_weights=cumulative)[0] for _ in range(rng.randint(0, 2))]
        caption = " ".join(text)
        captions.append(caption)
        docs.append(Document("post", str(10**6 + i), {"caption": caption}, rank=int(rng.paretovariate(1.5)),
                             filters={"author": str(rng.randrange(users or 1))}))
    return docs, captions


def queries(count: int, captions: list[str]) -> dict[str, list[str]]:
    """``count`` queries in groups, the same on every run."""
    rng = random.Random(SEED + 1)
    words = vocabulary(random.Random(SEED))
    common, rare = words[:200], words[2000:]
    per = max(1, count // 6)

    def from_caption(n: int) -> str:
        text = [w for w in rng.choice(captions).split() if not w.startswith("#")]
        start = rng.randrange(max(1, len(text) - n))
        return " ".join(text[start:start + n])

    return {
        "prefix 2-3 letters": [rng.choice(common)[: rng.choice([2, 3])] for _ in range(per)],
        "prefix 4+ letters": [rng.choice(common + rare)[:4] for _ in range(per)],
        "common word": [rng.choice(common) for _ in range(per)],
        "rare word": [rng.choice(rare) for _ in range(per)],
        "2-3 words": [from_caption(rng.choice([2, 3])) for _ in range(per)],
        "page 2": [from_caption(2) for _ in range(per)],
    }


async def measure(url: str, docs: list[Document], groups: dict[str, list[str]]) -> dict[str, Any]:
    search: SearchIndex = open_port("search", url)
    try:
        await search.clear()
        started = time.perf_counter()
        for start in range(0, len(docs), BATCH):
            await search.index_many(docs[start:start + BATCH])
        indexing = time.perf_counter() - started
        started = time.perf_counter()
        await search.optimize()
        optimizing = time.perf_counter() - started
        assert await search.count() == len(docs)
        moved_before = getattr(search, "moved_to_thread", 0)
        latencies: dict[str, dict[str, list[float]]] = {"cold": {}, "warm": {}}
        hits = 0
        for run in ("cold", "warm"):
            for name, texts in groups.items():
                for text in texts:
                    cursor = (await search.query(text)).next_cursor if name == "page 2" else None
                    started = time.perf_counter()
                    page = await search.query(text, cursor=cursor)
                    latencies[run].setdefault(name, []).append((time.perf_counter() - started) * 1000)
                    hits += len(page.hits)
        moved = getattr(search, "moved_to_thread", 0) - moved_before
    finally:
        await search.close()
    figures: dict[str, Any] = {}
    for run, groups_ms in latencies.items():
        every = [ms for values in groups_ms.values() for ms in values]
        figures[run] = {name: _percentiles(values) for name, values in [*groups_ms.items(), ("all", every)]}
    queried = sum(len(texts) for texts in groups.values())
    return {
        "documents": len(docs),
        "indexing_s": round(indexing, 2),
        "docs_per_s": round(len(docs) / indexing),
        "optimize_s": round(optimizing, 2),
        "queries": queried,
        "mean_hits": round(hits / (2 * queried), 1),
        "moved_to_thread": moved if hasattr(search, "moved_to_thread") else None,
        "latency_ms": figures,
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 2), "p99": round(p99, 2), "max": round(ordered[-1], 2)}


def report(engine: str, result: dict[str, Any]) -> str:
    lines = [f"{engine}: {result['documents']:,} documents indexed in {result['indexing_s']} s = {result['docs_per_s']:,} docs/s; "
             f"optimize {result['optimize_s']} s",
             f"  {result['queries']} queries, each run twice; {result['mean_hits']} hits per page on average"
             + (f"; {result['moved_to_thread']} passed the inline deadline" if result["moved_to_thread"] is not None else ""),
             f"  {'ms':<20} {'cold p50':>9} {'cold p99':>9} {'warm p50':>9} {'warm p99':>9}"]
    cold, warm = result["latency_ms"]["cold"], result["latency_ms"]["warm"]
    for name in cold:
        lines.append(f"  {name:<20} {cold[name]['p50']:>9} {cold[name]['p99']:>9} {warm[name]['p50']:>9} {warm[name]['p99']:>9}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--queries", type=int, default=600, help="queries measured, in six groups")
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL behind PgBouncer, started for the run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    docs, captions = corpus(args.posts, args.users)
    groups = queries(args.queries, captions)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="summit-search-bench-") as tmp:
        results["sqlite"] = asyncio.run(measure(f"sqlite:///{tmp}/search.db", docs, groups))
        results["sqlite"]["file_mb"] = round(sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6, 1)
    if args.postgres:
        try:
            from summit.testing.engines import running_postgres

            with running_postgres() as pg:
                results["postgres"] = asyncio.run(measure(pg.url(pg.create_database("bench")), docs, groups))
        except Exception as error:  # noqa: BLE001  (no PostgreSQL here: say so, keep the SQLite figures)
            print(f"PostgreSQL could not run: {error}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for engine, result in results.items():
        print(report(engine, result) + (f"\n  index file {result['file_mb']} MB" if "file_mb" in result else ""))


if __name__ == "__main__":
    main()
