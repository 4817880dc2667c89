# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Redis answering with error replies (a fake server in front of the real one): @cached
fails open, rate_limit follows on_error, the other calls raise this module's errors naming
the server and the reply - for every kind of error reply."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio
import redis.exceptions
from fake_resp_server import FakeRedis
from fault_helpers import RAISING_CALLS, RAISING_IDS, cache_warnings, within

from forktex_core import cache
from forktex_core.cache import (
    CacheCommandError,
    CacheError,
    CacheUnavailable,
    RateLimitUnavailable,
    cached,
    rate_limit,
)
from forktex_core.testing import RedisService

#: Replies meaning "not now": CacheUnavailable.
REFUSING = [
    "READONLY You can't write against a read only replica.",
    "OOM command not allowed when used memory > 'maxmemory'.",
    "LOADING Redis is loading the dataset in memory",
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist",
    "NOREPLICAS Not enough good replicas to write.",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "CLUSTERDOWN The cluster is down",
    "TRYAGAIN Multiple keys request during rehashing of slot",
]
#: Replies meaning "not this command": CacheCommandError.
REJECTING = [
    "ERR something unexpected happened",
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "NOPERM this user has no permissions to run the 'get' command",
    "EXECABORT Transaction discarded because of previous errors.",
]
REPLIES = REFUSING + REJECTING
REPLY_IDS = [reply.split(" ", 1)[0] for reply in REPLIES]
WRITES = ("SET", "EVALSHA", "EVAL", "UNLINK")


def _reply_detail(reply: str) -> str:
    """The part of a reply every message must show (redis-py drops some codes)."""
    return reply.split(" ", 1)[1]


@pytest.fixture
async def via_fake(
    fake_redis: FakeRedis, forktex_redis: RedisService, prefix: str
) -> AsyncIterator[FakeRedis]:
    """cache initialised (healthy) through the fake server; the test then chooses replies."""
    await cache.init(fake_redis.url(forktex_redis.url), prefix=prefix)
    try:
        yield fake_redis
    finally:
        await within(cache.close())


def _endpoint(fake: FakeRedis) -> str:
    return f"127.0.0.1:{fake.port} db 0"


@pytest.mark.parametrize("scope", ["every command", "writes"])
@pytest.mark.parametrize("reply", REPLIES, ids=REPLY_IDS)
async def test_cached_returns_the_functions_value_on_error_replies(
    via_fake: FakeRedis, reply: str, scope: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    @cached(ttl=60, namespace="replies")
    async def f(x: int) -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"x": x}

    via_fake.fail(reply, *(WRITES if scope == "writes" else ()))
    for _ in range(3):
        assert await within(f(1)) == {"x": 1}
    assert calls == 3  # computed every time: nothing could be stored
    assert via_fake.errors_sent >= 1
    warnings = cache_warnings(caplog)
    assert 1 <= len(warnings) <= 2, warnings  # once per failing operation, not per call
    assert all(_endpoint(via_fake) in w and _reply_detail(reply) in w for w in warnings)


async def test_cached_hits_are_still_served_by_a_read_only_replica(via_fake: FakeRedis) -> None:
    """After a failover the old primary answers reads and refuses writes: entries written
    before are still hits; misses compute and return the value."""
    calls = 0

    @cached(ttl=60, namespace="replica")
    async def f(x: int) -> int:
        nonlocal calls
        calls += 1
        return x * 10

    assert await f(1) == 10
    via_fake.fail("READONLY You can't write against a read only replica.", *WRITES)
    assert await f(1) == 10 and calls == 1  # a hit
    assert await f(2) == 20 and await f(2) == 20 and calls == 3  # computed, not stored
    with pytest.raises(CacheUnavailable, match="READONLY You can't write"):
        await cache.set_json("k", 1)
    assert await cache.get_json("k") is None


async def test_the_functions_own_errors_still_propagate(via_fake: FakeRedis) -> None:
    @cached(ttl=60, namespace="replies")
    async def f() -> int:
        raise redis.exceptions.ResponseError("the function's own Redis use failed")

    via_fake.fail("READONLY You can't write against a read only replica.")
    with pytest.raises(redis.exceptions.ResponseError, match="function's own"):
        await f()


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("fail_open", (True, 0.0)), ("fail_closed", (False, 1.0)), ("raise", None)],
)
@pytest.mark.parametrize("reply", REPLIES, ids=REPLY_IDS)
async def test_rate_limit_follows_on_error_on_error_replies(
    via_fake: FakeRedis, reply: str, policy: Any, expected: tuple[bool, float] | None
) -> None:
    via_fake.fail(reply, "EVALSHA", "EVAL")
    call = rate_limit("login", "ip", limit=5, window_seconds=60, on_error=policy)
    if expected is None:
        with pytest.raises(RateLimitUnavailable) as info:
            await within(call)
        assert _endpoint(via_fake) in str(info.value)
        assert _reply_detail(reply) in str(info.value)
    else:
        assert await within(call) == expected


@pytest.mark.parametrize(("name", "call"), RAISING_CALLS, ids=RAISING_IDS)
@pytest.mark.parametrize("reply", REPLIES, ids=REPLY_IDS)
async def test_raising_calls_get_cache_errors_on_error_replies(
    via_fake: FakeRedis, reply: str, name: str, call: Callable[[], Awaitable[Any]]
) -> None:
    via_fake.fail(reply)
    expected = CacheUnavailable if reply in REFUSING else CacheCommandError
    with pytest.raises(CacheError) as info:
        await within(call())
    assert type(info.value) is expected
    assert _endpoint(via_fake) in str(info.value)
    assert _reply_detail(reply) in str(info.value)
    assert isinstance(info.value.__cause__, redis.exceptions.RedisError)  # kept for debugging


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("LOADING Redis is loading the dataset in memory", CacheUnavailable),
        ("NOPERM this user has no permissions to run the 'ping' command", CacheCommandError),
    ],
)
async def test_init_reports_an_error_reply_to_its_ping(
    fake_redis: FakeRedis, forktex_redis: RedisService, reply: str, error: type[CacheError]
) -> None:
    fake_redis.fail(reply, "PING")
    with pytest.raises(CacheError) as info:
        await within(cache.init(fake_redis.url(forktex_redis.url)))
    assert type(info.value) is error
    assert _endpoint(fake_redis) in str(info.value) and "verify=False" in str(info.value)
    assert _reply_detail(reply) in str(info.value)


async def test_error_replies_are_logged_once_per_operation(
    via_fake: FakeRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="forktex_core.cache")

    @cached(ttl=60, namespace="replies")
    async def f(x: int) -> int:
        return x

    via_fake.fail("OOM command not allowed when used memory > 'maxmemory'.")
    for i in range(10):
        assert await f(i) == i
        assert await rate_limit("n", "k", limit=1, window_seconds=1) == (True, 0.0)
    warnings = cache_warnings(caplog)
    assert len(warnings) == 2, warnings  # @cached GET, rate_limit
    via_fake.heal()
    assert await f(1) == 1


async def test_error_replies_do_not_break_the_connection(
    via_fake: FakeRedis, raw: redis.asyncio.Redis, prefix: str
) -> None:
    via_fake.fail("OOM command not allowed when used memory > 'maxmemory'.", "SET", times=1)
    with pytest.raises(CacheUnavailable, match="OOM"):
        await cache.set_json("k", 1)
    assert await cache.set_json("k", 2)
    assert await raw.get(prefix + "k") == b"2"


async def test_a_read_only_reply_makes_the_next_commands_reconnect(via_fake: FakeRedis) -> None:
    """A primary demoted by a failover keeps our connections open and answers READONLY; the
    client drops its idle connections so that the next command connects afresh (resolving
    the host name again: the new primary)."""

    @cached(ttl=60, namespace="failover")
    async def f(x: int) -> int:
        return x

    assert await cache.set_json("k", 1)
    assert via_fake.connections == 1
    via_fake.fail("READONLY You can't write against a read only replica.", "SET", times=1)
    with pytest.raises(CacheUnavailable, match="READONLY"):
        await cache.set_json("k", 2)
    assert await cache.set_json("k", 3)  # on a new connection
    assert via_fake.connections == 2
    via_fake.fail("READONLY You can't write against a read only replica.", "SET", times=1)
    assert await f(1) == 1  # @cached's lock meets READONLY: fails open, and reconnects
    assert await cache.get_json("k") == 3
    assert via_fake.connections == 3
