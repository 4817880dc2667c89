# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Redis going away and coming back: @cached fails open with one warning per outage, limiter
policies, and a restarted server used again without a new init."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fault_helpers import FAST, cache_warnings, eventually, within

from forktex_core import cache
from forktex_core.cache import RateLimitUnavailable, cached, rate_limit
from forktex_core.testing import EmbeddedRedis, RedisService, Restartable


async def test_cached_survives_redis_stopping_mid_test(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="forktex_core.cache")
    server = EmbeddedRedis(tmp_path / "r")
    port = server.start()
    calls = 0

    @cached(ttl=60, namespace="outage")
    async def f(x: int) -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"x": x, "call": calls}

    try:
        await cache.init(f"redis://127.0.0.1:{port}/0", prefix="t:", outage_retry_seconds=0.2)
        assert await f(1) == {"x": 1, "call": 1}
        assert await f(1) == {"x": 1, "call": 1}  # hit

        server.stop()
        results = [await f(1) for _ in range(5)]
        results += await asyncio.gather(*[f(2) for _ in range(5)])
        assert [r["x"] for r in results] == [1] * 5 + [2] * 5
        assert calls >= 2  # computed directly, never raised
        assert len(cache_warnings(caplog)) == 1
        assert "unreachable" in cache_warnings(caplog)[0]

        # Recovery: a new server on the same port, the client reconnects.
        server = EmbeddedRedis(tmp_path / "r2")
        server.start(port)
        await asyncio.sleep(0.25)
        before = calls
        assert (await f(3))["x"] == 3
        assert (await f(3))["call"] == before + 1  # cached again
        assert any("reachable again" in r.getMessage() for r in caplog.records)

        # A second outage warns once more.
        server.stop()
        assert (await f(4))["x"] == 4
        assert (await f(4))["x"] == 4
        assert len(cache_warnings(caplog)) == 2
    finally:
        await cache.close()
        server.stop()


@pytest.mark.parametrize(("policy", "expected_ok"), [("fail_open", True), ("fail_closed", False)])
async def test_rate_limit_policies_when_redis_is_down(
    dead_url: str, policy: str, expected_ok: bool, caplog: pytest.LogCaptureFixture
) -> None:
    await cache.init(dead_url, verify=False, outage_retry_seconds=0.5)
    try:
        for _ in range(3):
            ok, retry = await rate_limit(
                "login",
                key="ip",
                limit=1,
                window_seconds=60,
                on_error=policy,  # type: ignore[arg-type]
            )
            assert ok is expected_ok
            assert retry == (0.0 if expected_ok else 0.5)
        assert len(cache_warnings(caplog)) == 1
    finally:
        await cache.close()


async def test_rate_limit_raise_policy_when_redis_is_down(dead_url: str) -> None:
    await cache.init(dead_url, verify=False)
    try:
        with pytest.raises(RateLimitUnavailable, match="fail_open"):
            await rate_limit("login", key="ip", limit=1, window_seconds=60, on_error="raise")
        with pytest.raises(RateLimitUnavailable, match="outage in progress"):
            await rate_limit("login", key="ip", limit=1, window_seconds=60, on_error="raise")
        with pytest.raises(cache.CacheUnavailable):
            await rate_limit("login", key="ip", limit=1, window_seconds=60, on_error="raise")
    finally:
        await cache.close()


async def test_cached_invalidate_raises_when_redis_is_down(dead_url: str) -> None:
    await cache.init(dead_url, verify=False)

    @cached(ttl=60, namespace="down")
    async def f() -> int:
        return 1

    try:
        assert await f() == 1  # fail-open
        with pytest.raises(cache.CacheUnavailable):
            await f.invalidate()
    finally:
        await cache.close()


# -- a restarted server (forktex_restartable_redis) --------------------------------------------


@pytest.mark.parametrize("crash", [False, True], ids=["restart", "crash-restart"])
async def test_calls_work_again_after_a_restart_without_init(
    forktex_restartable_redis: Restartable[RedisService], crash: bool
) -> None:
    rd = forktex_restartable_redis
    calls = 0

    @cached(ttl=60, namespace="restart")
    async def f(x: int) -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"x": x}

    await cache.init(rd.service.url, prefix=rd.service.prefix, **FAST)
    try:
        await cache.set_json("k", {"v": 1})
        assert await f(1) == {"x": 1}
        assert await rate_limit("login", "ip", limit=2, window_seconds=60) == (True, 0.0)
        # In a thread: the event loop keeps running, as a service's does, and sees the pooled
        # connections close; the very next calls reconnect.
        await asyncio.to_thread(rd.restart, crash=crash)
        assert await within(cache.get_json("k")) == {"v": 1}
        assert await within(f(1)) == {"x": 1} and calls == 1  # still a hit
        assert await within(rate_limit("login", "ip", limit=2, window_seconds=60)) == (True, 0.0)
        assert not (await within(rate_limit("login", "ip", limit=2, window_seconds=60))).allowed
        assert await within(cache.incr("n")) == 1
    finally:
        await within(cache.close())


async def test_during_an_outage_calls_degrade_then_recover(
    forktex_restartable_redis: Restartable[RedisService], caplog: pytest.LogCaptureFixture
) -> None:
    """While the server is down every call answers within the timeout - @cached with the
    function's value, rate_limit per on_error, the others with CacheUnavailable - and once it
    is back the same client works again."""
    caplog.set_level(logging.INFO, logger="forktex_core.cache")
    rd = forktex_restartable_redis
    endpoint = f"{rd.service.host}:{rd.service.port} db {rd.service.db}"
    await cache.init(rd.service.url, prefix=rd.service.prefix, outage_retry_seconds=0.2, **FAST)
    try:
        assert await _triple(1) == 3
        await asyncio.to_thread(rd.shutdown, crash=True)
        assert await within(_triple(2)) == 6
        assert await within(rate_limit("n", "k", limit=1, window_seconds=60)) == (True, 0.0)
        verdict = rate_limit("n", "k", limit=1, window_seconds=60, on_error="fail_closed")
        assert await within(verdict) == (False, 0.2)
        with pytest.raises(RateLimitUnavailable, match=endpoint):
            await within(rate_limit("n", "k", limit=1, window_seconds=60, on_error="raise"))
        with pytest.raises(cache.CacheUnavailable, match=endpoint):
            await within(cache.set_json("k", 1))
        assert len(cache_warnings(caplog)) == 1

        await asyncio.to_thread(rd.start)
        assert await within(cache.set_json("k", 1))  # the typed ops do not skip: at once
        assert await within(cache.get_json("k")) == 1

        async def rate_limited_again() -> bool:
            first = await rate_limit("m", "k", limit=1, window_seconds=60, on_error="raise")
            return first.allowed and not (await rate_limit("m", "k", limit=1, window_seconds=60))[0]

        await eventually(rate_limited_again)
        assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        await within(cache.close())


@cached(ttl=60, namespace="outage")
async def _triple(x: int) -> int:
    return 3 * x
