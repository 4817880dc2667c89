# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Redis going away: @cached fails open with one warning per outage; limiter policies."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from forktex_core import cache
from forktex_core.cache import RateLimitUnavailable, cached, rate_limit
from forktex_core.testing import EmbeddedRedis


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "forktex_core.cache" and r.levelno == logging.WARNING
    ]


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
        assert len(_warnings(caplog)) == 1
        assert "unreachable" in _warnings(caplog)[0]

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
        assert len(_warnings(caplog)) == 2
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
        assert len(_warnings(caplog)) == 1
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
