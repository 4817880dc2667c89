# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The sliding-window rate limiter: exactness, retry_after, peek/reset, bad input."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from forktex_core import cache
from forktex_core.cache import InvalidArgument, InvalidKey, InvalidNamespace, rate_limit


async def test_admits_limit_then_denies(cache_client: str, raw: redis.asyncio.Redis) -> None:
    results = [
        await rate_limit("login", key="1.2.3.4", limit=5, window_seconds=60) for _ in range(7)
    ]
    assert [ok for ok, _ in results] == [True] * 5 + [False] * 2
    assert all(retry == 0.0 for _, retry in results[:5])
    assert all(59.0 < retry <= 60.0 for _, retry in results[5:])
    ok, retry_after = results[0]  # unpacks as a pair
    assert results[0].allowed is ok and results[0].retry_after == retry_after
    # Other keys and other names are independent.
    assert (await rate_limit("login", key="5.6.7.8", limit=5, window_seconds=60)).allowed
    assert (await rate_limit("signup", key="1.2.3.4", limit=5, window_seconds=60)).allowed
    # Keys are prefixed and hash-tagged on the client key.
    key = cache_client + "ratelimit:login:{1.2.3.4}"
    assert await raw.zcard(key) == 5
    assert 59_000 < await raw.pttl(key) <= 60_000
    # "api.search" and "api:search" are the same limiter.
    await rate_limit("api.search", key=7, limit=1, window_seconds=60)
    assert not (await rate_limit("api:search", key="7", limit=1, window_seconds=60)).allowed


async def test_retry_after_is_exact(cache_client: str) -> None:
    t0 = time.monotonic()
    for _ in range(3):  # admitted at ~0, ~0.1, ~0.2
        assert (await rate_limit("r", key="k", limit=3, window_seconds=1.0)).allowed
        await asyncio.sleep(0.1)
    ok, retry = await rate_limit("r", key="k", limit=3, window_seconds=1.0)
    elapsed = time.monotonic() - t0
    assert not ok
    assert 1.0 - elapsed - 0.02 <= retry <= 1.0 - elapsed + 0.02
    await asyncio.sleep(max(0.0, retry - 0.1))
    ok, retry2 = await rate_limit("r", key="k", limit=3, window_seconds=1.0)
    assert not ok and 0.07 < retry2 <= 0.11
    await asyncio.sleep(retry2 + 0.002)
    assert (await rate_limit("r", key="k", limit=3, window_seconds=1.0)).allowed
    # Only one slot freed: the next one frees when the second call leaves, ~0.1 s later.
    ok, retry3 = await rate_limit("r", key="k", limit=3, window_seconds=1.0)
    assert not ok and 0.08 < retry3 < 0.11


async def test_sliding_not_fixed_window(cache_client: str) -> None:
    # 2 calls at t=0, 2 at t=0.3; window 0.5 / limit 4: at t=0.55 the first two have left.
    for _ in range(2):
        assert (await rate_limit("s", key="k", limit=4, window_seconds=0.5)).allowed
    await asyncio.sleep(0.3)
    for _ in range(2):
        assert (await rate_limit("s", key="k", limit=4, window_seconds=0.5)).allowed
    assert not (await rate_limit("s", key="k", limit=4, window_seconds=0.5)).allowed
    await asyncio.sleep(0.25)
    s = await cache.peek("s", "k", limit=4, window_seconds=0.5)
    assert s.used == 2 and s.remaining == 2 and s.allowed
    assert (await rate_limit("s", key="k", limit=4, window_seconds=0.5)).allowed
    assert (await rate_limit("s", key="k", limit=4, window_seconds=0.5)).allowed
    assert not (await rate_limit("s", key="k", limit=4, window_seconds=0.5)).allowed


async def test_lowering_the_limit_waits_for_enough_entries(cache_client: str) -> None:
    for _ in range(5):
        await rate_limit("l", key="k", limit=5, window_seconds=2)
        await asyncio.sleep(0.02)
    ok, retry = await rate_limit("l", key="k", limit=2, window_seconds=2)
    assert not ok
    # 5 in the window, limit 2: wait for the 4th oldest (index 3) to leave, ~2 - 0.06.
    assert 1.85 < retry < 1.97


async def test_concurrent_burst_in_one_process_is_exact(cache_client: str) -> None:
    results = await asyncio.gather(
        *[rate_limit("burst", key="k", limit=17, window_seconds=30) for _ in range(200)]
    )
    assert sum(ok for ok, _ in results) == 17


async def test_peek_and_reset(cache_client: str) -> None:
    fresh = await cache.peek("p", "k", limit=3, window_seconds=10)
    assert fresh == cache.RateLimitState(True, 0, 3, 0.0, 0.0)
    for _ in range(3):
        await rate_limit("p", key="k", limit=3, window_seconds=10)
    s = await cache.peek("p", "k", limit=3, window_seconds=10)
    assert not s.allowed and s.used == 3 and s.remaining == 0
    assert 9.5 < s.retry_after <= 10 and 9.5 < s.reset_after <= 10
    assert await cache.peek("p", "k", limit=3, window_seconds=10) == s._replace(
        retry_after=pytest.approx(s.retry_after, abs=0.1),
        reset_after=pytest.approx(s.reset_after, abs=0.1),
    )  # peeking consumes nothing
    assert await cache.reset("p", "k") is True
    assert await cache.reset("p", "k") is False
    assert (await cache.peek("p", "k", limit=3, window_seconds=10)).used == 0
    assert (await rate_limit("p", key="k", limit=3, window_seconds=10)).allowed


BAD_LIMITS: list[tuple[dict[str, Any], type, str]] = [
    ({"limit": 0}, InvalidArgument, "limit must be an int >= 1"),
    ({"limit": -1}, InvalidArgument, "limit must be an int >= 1"),
    ({"limit": 1.5}, InvalidArgument, "limit must be an int >= 1"),
    ({"limit": True}, InvalidArgument, "limit must be an int >= 1"),
    ({"limit": "5"}, InvalidArgument, "limit must be an int >= 1"),
    ({"window_seconds": 0}, InvalidArgument, "window_seconds"),
    ({"window_seconds": -60}, InvalidArgument, "window_seconds"),
    ({"window_seconds": float("nan")}, InvalidArgument, "window_seconds"),
    ({"window_seconds": "60"}, InvalidArgument, "window_seconds"),
    ({"key": ""}, InvalidKey, "non-empty"),
    ({"key": None}, InvalidKey, "non-empty"),
    ({"key": True}, InvalidKey, "non-empty"),
    ({"name": ""}, InvalidNamespace, "rate-limit name"),
    ({"name": "log in"}, InvalidNamespace, "rate-limit name"),
]


@pytest.mark.parametrize(("override", "error", "match"), BAD_LIMITS)
async def test_rate_limit_and_peek_reject_bad_input(
    cache_client: str, override: dict[str, Any], error: type, match: str
) -> None:
    args: dict[str, Any] = {"name": "login", "key": "ip", "limit": 5, "window_seconds": 60}
    args.update(override)
    with pytest.raises(error, match=match):
        await rate_limit(args.pop("name"), **args)
    args = {"name": "login", "key": "ip", "limit": 5, "window_seconds": 60, **override}
    with pytest.raises(error, match=match):
        await cache.peek(args.pop("name"), **args)
    if "key" in override or "name" in override:
        with pytest.raises(error, match=match):
            await cache.reset(override.get("name", "login"), override.get("key", "ip"))


async def test_rate_limit_rejects_unknown_policy(cache_client: str) -> None:
    with pytest.raises(InvalidArgument, match="on_error must be one of"):
        await rate_limit("login", "ip", limit=1, window_seconds=1, on_error="ignore")  # type: ignore[arg-type]


WORKER = """
import asyncio, json, sys, time
from forktex_core import cache

async def main(url, prefix, duration, limit, window):
    await cache.init(url, prefix=prefix)
    await cache.rate_limit("warm", key="up", limit=1, window_seconds=1)  # connected, scripts loaded
    print("ready", flush=True)
    # the start time comes once every worker is ready, so a slow start-up skips no window
    start_at = float(await asyncio.to_thread(sys.stdin.readline))
    admitted = []
    await asyncio.sleep(max(0, start_at - time.time()))
    end = start_at + duration

    async def hammer():
        while time.time() < end:
            sent = time.time()
            ok, _ = await cache.rate_limit("exact", key="shared", limit=limit,
                                           window_seconds=window)
            if ok:
                admitted.append((sent, time.time()))

    await asyncio.gather(*[hammer() for _ in range(4)])
    print(json.dumps(admitted))
    await cache.close()

a = sys.argv
asyncio.run(main(a[1], a[2], float(a[3]), int(a[4]), float(a[5])))
"""


async def test_exact_under_concurrency_from_several_processes(
    cache_client: str, forktex_redis: Any, tmp_path: Path
) -> None:
    limit, window, duration = 10, 0.25, 1.5
    script = tmp_path / "ratelimit_worker.py"
    script.write_text(WORKER)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            forktex_redis.url,
            cache_client,
            str(duration),
            str(limit),
            str(window),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for proc in procs:  # bounded: a worker that never gets ready fails the test, not hangs it
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"ready\n"
    start_at = time.time() + 0.3
    outs = await asyncio.gather(*[p.communicate(f"{start_at}\n".encode()) for p in procs])
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    events = sorted((s, r) for out, _ in outs for s, r in json.loads(out))
    # Every process got some, and the limiter did admit calls window after window.
    assert all(json.loads(out) for out, _ in outs), [len(json.loads(out)) for out, _ in outs]
    windows = duration / window
    assert limit * (windows - 1) <= len(events) <= limit * (windows + 1)
    # Each admission happened at some server instant in [sent, received] (one machine clock).
    # A violation is certain when limit+1 admissions fit in a window whatever those instants
    # were; the check is conservative, so a pass proves no detectable over-admission.
    violations = [
        i
        for i in range(len(events) - limit)
        if max(r for _, r in events[i : i + limit + 1]) - events[i][0] < window
    ]
    assert violations == []
    # The check has teeth: a fixed-window limiter would admit 2*limit across a boundary.
    fixed = sorted(
        (t, t) for k in range(2) for t in [k * window - 0.001 + j * 1e-5 for j in range(limit)]
    )
    assert any(
        max(r for _, r in fixed[i : i + limit + 1]) - fixed[i][0] < window
        for i in range(len(fixed) - limit)
    )
