# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.cache vs what a user would write instead, on the same Redis in one run.

- ``@cached`` hit vs a raw redis-py ``GET`` + ``json.loads`` of the same value (target <= 1.3x).
- ``rate_limit`` vs the ``limits`` package's moving-window limiter (``limits.aio``, redis-py
  backend; ``hit()`` only, which unlike ours does not compute a retry-after), plus exactness:
  a concurrent burst of 200 calls at a limit of 17, how many each admits.

    uv run python tools/bench/cache_ops.py --quick
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from pathlib import Path

import redis.asyncio
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main, per_op_us, redis_url

from forktex_core import cache

PROFILE = {
    "id": "42",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "roles": ["admin", "editor"],
    "settings": {"theme": "dark", "locale": "en-GB", "notifications": True},
}


async def _burst_ours(key: str, limit: int, calls: int) -> int:
    results = await asyncio.gather(
        *[cache.rate_limit("bench.burst", key=key, limit=limit, window_seconds=60)
          for _ in range(calls)]
    )  # fmt: skip
    return sum(ok for ok, _ in results)


async def _burst_limits(limiter: MovingWindowRateLimiter, key: str, limit: int, calls: int) -> int:
    item = RateLimitItemPerSecond(limit, 60)
    results = await asyncio.gather(*[limiter.hit(item, "burst", key) for _ in range(calls)])
    return sum(results)


async def run(quick: bool) -> list[Row]:
    runs, n = (3, 400) if quick else (9, 3000)
    prefix = f"forktex-bench:{secrets.token_hex(4)}:"
    rows: list[Row] = []
    async with redis_url() as url:
        await cache.init(url, prefix=prefix)
        raw = redis.asyncio.Redis.from_url(url)
        storage = RedisStorage(
            "async+" + url, implementation="redispy", key_prefix=prefix + "limits"
        )
        limiter = MovingWindowRateLimiter(storage)
        try:
            # --- @cached hit vs GET + json.loads -----------------------------------------
            @cache.cached(ttl=600, namespace="bench.profile")
            async def get_profile(user_id: str) -> dict[str, object]:
                return PROFILE

            await get_profile("42")
            raw_key = prefix + "bench:raw:42"
            await raw.set(raw_key, json.dumps(PROFILE))

            async def baseline_get() -> object:
                return json.loads(await raw.get(raw_key))  # type: ignore[arg-type]

            assert await get_profile("42") == await baseline_get()
            for _ in range(200):  # warm both connection pools
                await get_profile("42")
                await baseline_get()
            ours, base = await interleave(
                lambda: per_op_us(lambda: get_profile("42"), n),
                lambda: per_op_us(baseline_get, n),
                runs,
            )
            rows.append(Row("cache", "@cached hit", ours, "µs/op", "redis-py GET+json", base, runs))

            # --- rate_limit vs limits moving window ----------------------------------------
            ips = [f"10.0.{i // 256}.{i % 256}" for i in range(500)]
            item = RateLimitItemPerSecond(20, 1)
            counter = iter(range(10**9))

            async def ours_rl() -> object:
                return await cache.rate_limit(
                    "bench.rl", key=ips[next(counter) % 500], limit=20, window_seconds=1
                )

            async def limits_rl() -> object:
                return await limiter.hit(item, "rl", ips[next(counter) % 500])

            for _ in range(200):
                await ours_rl()
                await limits_rl()
            ours, base = await interleave(
                lambda: per_op_us(ours_rl, n), lambda: per_op_us(limits_rl, n), runs
            )
            admitted_ours = [await _burst_ours(f"b{i}", 17, 200) for i in range(3)]
            admitted_limits = [await _burst_limits(limiter, f"b{i}", 17, 200) for i in range(3)]
            note = (
                f"500 keys, 20/s; burst of 200 at limit 17 admitted: ours {admitted_ours}, "
                f"limits {admitted_limits}"
            )
            rows.append(
                Row("cache", "rate_limit", ours, "µs/op", "limits moving-window", base, runs,
                    note)
            )  # fmt: skip
        finally:
            await cache.delete_pattern("*")
            async for key in raw.scan_iter(match=prefix + "*", count=500):
                await raw.unlink(key)
            await raw.aclose()
            await cache.close()
    return rows


if __name__ == "__main__":
    main(run)
