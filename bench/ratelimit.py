"""What the app's rate limits cost per request: counted in the process (stages 1 to 1k) and on the
stage's Redis (10k), against a plain cache read on the same Redis measured in the same run.

    .venv/bin/python bench/ratelimit.py                  # 20,000 checks per case, 32 concurrent, 1,000 users
    .venv/bin/python bench/ratelimit.py --checks 5000 --concurrency 1 --json

Redis is started here (the control plane's ``RedisServer``, on loopback) and stopped at the end.
Each case counts ``--checks`` requests of ``--users`` different users against one of photos'
limits, through ``RateLimiter.hit`` as the middleware calls it: ``api_read`` (3000/minute: a
sliding window counter, one script call per request) and ``comment`` (20/minute: a moving window,
exact; the users are many enough that nobody is refused). The baseline is a GET of one key on the
same Redis with the same client library (redis-py with hiredis), the cheapest round trip the app
makes. Reported per check: this process's CPU (``time.process_time``), Redis's CPU (INFO cpu), and
the wall-clock latency p50/p99 seen by one check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from photos.limits import LIMITS
from summit.blueprint import load_blueprint
from summit.testing.engines import running_redis
from summit.web.ratelimit import RateLimiter, RateLimits, _MemoryCounts, _RedisCounts


def redis_cpu(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url.split("?")[0], socket_timeout=5)
    try:
        info = client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    finally:
        client.close()


async def run_case(name: str, check: Any, *, checks: int, concurrency: int, users: int, url: str | None) -> dict:  # noqa: ANN401
    latencies: list[float] = []
    done = 0

    async def worker(first: int) -> None:
        nonlocal done
        i = first
        while done < checks:
            done += 1
            started = time.perf_counter()
            await check(i % users)
            latencies.append(time.perf_counter() - started)
            i += concurrency

    for warm in range(min(200, checks)):  # connections made, scripts loaded
        await check(warm % users)
    redis_before = redis_cpu(url) if url else 0.0
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
    redis_used = redis_cpu(url) - redis_before if url else 0.0
    latencies.sort()
    count = len(latencies)
    return {
        "case": name, "checks": count, "per_second": round(count / wall),
        "cpu_us": round(cpu / count * 1e6, 1), "redis_cpu_us": round(redis_used / count * 1e6, 1),
        "p50_us": round(statistics.median(latencies) * 1e6), "p99_us": round(latencies[int(count * 0.99) - 1] * 1e6),
    }  # fmt: skip


async def measure(args: argparse.Namespace, url: str) -> list[dict]:
    limits = RateLimits(LIMITS, load_blueprint(environ={}, overrides={}))
    rules = {rule.limit.name: rule for rule in limits.rules}
    options = {"checks": args.checks, "concurrency": args.concurrency, "users": args.users}
    results = []

    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url.split("?")[0], max_connections=32)
    await client.set("bench:ratelimit:key", b"x" * 200)

    async def get(_: int) -> None:
        await client.get("bench:ratelimit:key")

    results.append(await run_case("baseline: Redis GET", get, url=url, **options))
    await client.aclose()

    for where, counts, on in (("in process", _MemoryCounts(), None), ("Redis", _RedisCounts(url, 0.25), url)):
        limiter = RateLimiter(limits, counts)
        for rule_name in ("api_read", "comment"):
            rule = rules[rule_name]
            refused = 0

            async def hit(user: int, rule: Any = rule) -> None:  # noqa: ANN401
                nonlocal refused
                if await limiter.hit(rule, f"user:{user}") is not None:
                    refused += 1

            result = await run_case(f"{rule_name} ({rule.item}), {where}", hit, url=on, **options)
            result["refused"] = refused
            results.append(result)
        await limiter.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=20_000, help="checks per case (default 20000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent checkers (default 32)")
    parser.add_argument("--users", type=int, default=1000, help="distinct users counted (default 1000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    with running_redis() as redis_stage:
        results = asyncio.run(measure(args, redis_stage.url()))
    if args.json:
        print(json.dumps(results, indent=1))
        return
    base = results[0]
    print(f"{'case':<44} {'checks/s':>9} {'CPU us':>7} {'Redis us':>8} {'p50 us':>7} {'p99 us':>7} {'CPU/GET':>8}")
    for r in results:
        print(f"{r['case']:<44} {r['per_second']:>9} {r['cpu_us']:>7} {r['redis_cpu_us']:>8} {r['p50_us']:>7} {r['p99_us']:>7}"
              f" {r['cpu_us'] / base['cpu_us']:>7.2f}x")


if __name__ == "__main__":
    main()
