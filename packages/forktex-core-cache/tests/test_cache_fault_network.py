# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Network faults through the fault proxy: a server that accepts and never answers, reset
connections, lost replies - standalone and cluster. Nothing hangs; every failure is
reported as CacheUnavailable naming host:port and db, or degrades per policy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio
from fault_helpers import (
    FAST,
    HANG,
    RAISING_CALLS,
    RAISING_IDS,
    cache_warnings,
    eventually,
    within,
)

from forktex_core import cache
from forktex_core.cache import (
    CacheNotInitialised,
    CacheUnavailable,
    RateLimitUnavailable,
    cached,
    rate_limit,
)
from forktex_core.testing import FaultProxy, RedisService

Proxy = Callable[..., FaultProxy]


@pytest.fixture
def proxy(forktex_fault_proxy: Proxy, forktex_redis: RedisService) -> FaultProxy:
    return forktex_fault_proxy(forktex_redis)


@pytest.fixture
async def proxied(
    proxy: FaultProxy, forktex_redis: RedisService, prefix: str
) -> AsyncIterator[FaultProxy]:
    """cache initialised through the proxy (1 s timeouts); the test then injects faults."""
    await cache.init(proxy.url(forktex_redis.url), prefix=prefix, **FAST)
    try:
        yield proxy
    finally:
        await within(cache.close())


def _endpoint(proxy: FaultProxy, db: int = 0) -> str:
    return f"127.0.0.1:{proxy.port} db {db}"


# -- a server that accepts connections and never answers ---------------------------------------


async def test_init_reports_a_silent_server_within_10s_with_the_defaults(
    proxy: FaultProxy, forktex_redis: RedisService
) -> None:
    proxy.black_hole()
    with pytest.raises(CacheUnavailable) as info:
        await within(cache.init(proxy.url(forktex_redis.url)), bound=10)
    message = str(info.value)
    assert _endpoint(proxy) in message
    assert "command_timeout=5 s" in message and "verify=False" in message
    assert not isinstance(info.value, TimeoutError)
    with pytest.raises(CacheNotInitialised):
        cache.get_client()


@pytest.mark.parametrize(
    ("path", "db"),
    [("/0", 0), ("/1", 1), ("/2?password=hunter2-secret", 2)],
    ids=["db0", "db1-select", "auth"],
)
async def test_init_reports_a_silent_server_whatever_the_handshake(
    proxy: FaultProxy, path: str, db: int
) -> None:
    """Connection set-up (SELECT, AUTH) waits on the server too: it is bounded as well."""
    proxy.black_hole()
    with pytest.raises(CacheUnavailable) as info:
        await within(cache.init(f"redis://{proxy.address}{path}", **FAST))
    assert _endpoint(proxy, db) in str(info.value)
    assert "command_timeout=1 s" in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(("name", "call"), RAISING_CALLS, ids=RAISING_IDS)
async def test_every_raising_call_reports_a_silent_server(
    proxied: FaultProxy, name: str, call: Callable[[], Awaitable[Any]]
) -> None:
    assert await cache.get_json("warm") is None  # a pooled connection exists
    proxied.black_hole()
    with pytest.raises(CacheUnavailable) as info:
        await within(call())
    message = str(info.value)
    assert _endpoint(proxied) in message
    assert "did not answer" in message and "command_timeout=1 s" in message
    proxied.heal()
    assert await within(cache.get_json("warm")) is None  # a new connection works


async def test_cached_fails_open_on_a_silent_server_and_recovers(
    proxy: FaultProxy, forktex_redis: RedisService, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="forktex_core.cache")
    calls = 0

    @cached(ttl=60, namespace="silent")
    async def f(x: int) -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"x": x, "call": calls}

    await cache.init(proxy.url(forktex_redis.url), prefix=prefix, outage_retry_seconds=0.2, **FAST)
    try:
        assert await f(1) == {"x": 1, "call": 1}
        assert await f(1) == {"x": 1, "call": 1}  # a hit
        proxy.black_hole()
        assert await within(f(1)) == {"x": 1, "call": 2}  # the function's own value
        assert (await within(f(1)))["x"] == 1  # during the outage: still served
        warnings = cache_warnings(caplog)
        assert len(warnings) == 1 and _endpoint(proxy) in warnings[0], warnings

        proxy.heal()

        async def cached_again() -> bool:
            return await f(7) == await f(7)  # the second call is a hit

        await eventually(cached_again)
        assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        await within(cache.close())


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("fail_open", (True, 0.0)), ("fail_closed", (False, 0.5)), ("raise", None)],
)
async def test_rate_limit_follows_on_error_on_a_silent_server(
    proxy: FaultProxy,
    forktex_redis: RedisService,
    prefix: str,
    policy: Any,
    expected: tuple[bool, float] | None,
) -> None:
    await cache.init(proxy.url(forktex_redis.url), prefix=prefix, outage_retry_seconds=0.5, **FAST)
    try:
        assert await rate_limit("login", "ip", limit=5, window_seconds=60) == (True, 0.0)
        proxy.black_hole()
        for _ in range(2):  # the call that meets the timeout, then one during the outage
            call = rate_limit("login", "ip", limit=5, window_seconds=60, on_error=policy)
            if expected is None:
                with pytest.raises(RateLimitUnavailable, match=_endpoint(proxy)):
                    await within(call)
            else:
                assert await within(call) == expected
    finally:
        await within(cache.close())


async def test_a_server_silent_from_the_first_connection(
    proxy: FaultProxy, forktex_redis: RedisService, prefix: str
) -> None:
    """verify=False and nothing ever answers: the very first connection is bounded too."""
    proxy.black_hole()
    await cache.init(proxy.url(forktex_redis.url), prefix=prefix, verify=False, **FAST)
    try:
        assert await within(_identity(3)) == 3
        with pytest.raises(CacheUnavailable, match=_endpoint(proxy)):
            await within(cache.set_json("k", 1))
        assert await within(rate_limit("n", "k", limit=1, window_seconds=1)) == (True, 0.0)
    finally:
        await within(cache.close())


async def test_close_returns_on_a_silent_server(proxied: FaultProxy) -> None:
    assert await cache.get_json("k") is None
    proxied.black_hole()
    await within(cache.close())
    with pytest.raises(CacheNotInitialised):
        cache.get_client()


async def test_during_an_outage_one_caller_at_a_time_probes(
    proxy: FaultProxy, forktex_redis: RedisService, prefix: str
) -> None:
    """Concurrent callers do not each pay the timeout once an outage is known: after
    outage_retry_seconds one caller probes Redis, the others skip it (and are answered)
    while that probe waits for its answer."""
    await cache.init(proxy.url(forktex_redis.url), prefix=prefix, outage_retry_seconds=0.2, **FAST)
    try:
        assert await _identity(1) == 1
        proxy.black_hole()
        assert await within(_identity(1)) == 1  # times out: the outage starts
        await asyncio.sleep(0.3)  # the next probe is due
        probe = asyncio.ensure_future(_identity(100))
        await asyncio.sleep(0.05)  # it has claimed the probe and waits on the silent server
        assert not probe.done()
        assert await within(asyncio.gather(*[_identity(i) for i in range(20)])) == list(range(20))
        assert not probe.done()  # the others were answered without waiting for Redis
        assert await within(probe) == 100
    finally:
        await within(cache.close())


# -- connections reset mid-operation, replies lost ------------------------------------------


@pytest.mark.parametrize(("name", "call"), RAISING_CALLS, ids=RAISING_IDS)
async def test_a_reset_mid_command_is_reported(
    proxied: FaultProxy, name: str, call: Callable[[], Awaitable[Any]]
) -> None:
    assert await cache.get_json("warm") is None
    proxied.set_latency(30)  # replies held back: the command stays in flight
    seen = proxied.requests_seen
    task = asyncio.ensure_future(call())
    await asyncio.to_thread(proxied.wait_for_requests, seen + 1)
    proxied.reset_connections()
    with pytest.raises(CacheUnavailable) as info:
        await within(task)
    assert _endpoint(proxied) in str(info.value)
    assert "unreachable" in str(info.value)
    proxied.heal()
    assert await within(cache.get_json("warm")) is None  # reconnected


async def test_cached_and_rate_limit_degrade_on_a_reset_mid_command(proxied: FaultProxy) -> None:
    for call, expected in [
        (lambda: _identity(6), 6),
        (lambda: rate_limit("n", "k", limit=1, window_seconds=60), (True, 0.0)),
        (
            lambda: rate_limit("m", "k", limit=1, window_seconds=60, on_error="fail_closed"),
            (False, 1.0),
        ),
    ]:
        # A connection that works (and ends the outage the previous reset started).
        assert await within(cache.get_json("warm")) is None
        proxied.set_latency(30)
        seen = proxied.requests_seen
        task = asyncio.ensure_future(call())
        await asyncio.to_thread(proxied.wait_for_requests, seen + 1)
        proxied.reset_connections()
        assert await within(task) == expected
        proxied.heal()


async def test_a_write_whose_reply_is_lost(
    proxied: FaultProxy, raw: redis.asyncio.Redis, prefix: str
) -> None:
    """The increment happened but its reply never came: the caller is told Redis failed
    (it must not assume the write did not happen), and the next call sees the write."""
    assert await cache.incr("n") == 1
    proxied.drop_replies(match=b"EVALSHA")
    with pytest.raises(CacheUnavailable, match=_endpoint(proxied)):
        await within(cache.incr("n"))
    assert await raw.get(prefix + "n") == b"2"
    assert await within(cache.incr("n")) == 3


async def test_a_reply_that_never_comes(proxied: FaultProxy) -> None:
    await cache.set_json("k", {"a": 1})
    proxied.drop_replies(match=b"GET", then="hang")
    with pytest.raises(CacheUnavailable, match="command_timeout=1 s"):
        await within(cache.get_json("k"))
    assert await within(cache.get_json("k")) == {"a": 1}  # a new connection


# -- cluster -----------------------------------------------------------------------------------


@pytest.mark.cluster
async def test_cluster_init_reports_a_silent_node(
    forktex_fault_proxy: Proxy, forktex_redis_cluster: Any
) -> None:
    proxy = forktex_fault_proxy(forktex_redis_cluster.nodes[0])
    proxy.black_hole()
    with pytest.raises(CacheUnavailable) as info:
        await within(cache.init(nodes=[proxy.address], **FAST))
    assert f"cluster 127.0.0.1:{proxy.port}" in str(info.value)
    assert "command_timeout=1 s" in str(info.value)


@pytest.mark.cluster
async def test_cluster_nodes_going_silent(
    forktex_fault_proxy: Proxy, forktex_redis_cluster: Any
) -> None:
    """Every node behind its own proxy (the addresses the cluster announces are remapped):
    when they all go silent, @cached fails open, rate_limit follows its policy and the typed
    ops raise within the timeout; when they answer again, everything works."""
    proxies = {
        tuple(node): forktex_fault_proxy(tuple(node)) for node in forktex_redis_cluster.nodes
    }

    def remap(address: tuple[str, int]) -> tuple[str, int]:
        proxy = proxies.get(address) or proxies[("127.0.0.1", address[1])]
        return (proxy.host, proxy.port)

    await cache.init(
        nodes=[p.address for p in proxies.values()],
        prefix=forktex_redis_cluster.prefix,
        address_remap=remap,
        outage_retry_seconds=0.2,
        **FAST,
    )
    try:
        assert await _identity(1) == 1
        await cache.set_json("k", 1)
        for proxy in proxies.values():
            proxy.black_hole()
        assert await within(_identity(2)) == 2
        verdict = rate_limit("login", "ip", limit=1, window_seconds=60, on_error="fail_closed")
        assert (await within(verdict)).allowed is False
        with pytest.raises(CacheUnavailable):
            await within(cache.get_json("k"), bound=HANG * 2)
        for proxy in proxies.values():
            proxy.heal()

        async def answers() -> bool:
            try:
                return bool(await within(cache.get_json("k")) == 1)
            except CacheUnavailable:
                return False

        await eventually(answers, bound=HANG * 2)
    finally:
        await within(cache.close())


async def _identity(x: int) -> int:
    return await _cached_identity(x)


@cached(ttl=60, namespace="network")
async def _cached_identity(x: int) -> int:
    return x


# -- the deadline is ours alone: other cancellations and timeouts pass through ----------------


async def test_cancelling_a_waiting_call_cancels_it(proxied: FaultProxy) -> None:
    assert await cache.get_json("warm") is None
    proxied.black_hole()
    task = asyncio.ensure_future(cache.get_json("k"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(task)
    proxied.heal()
    assert await within(cache.get_json("warm")) is None


async def test_a_shorter_timeout_of_the_caller_wins(proxied: FaultProxy) -> None:
    proxied.black_hole()

    async def impatient() -> None:
        async with asyncio.timeout(0.2):
            await cache.get_json("k")

    with pytest.raises(TimeoutError) as info:
        await within(impatient())
    assert not isinstance(info.value, CacheUnavailable)  # the caller's own timeout


async def test_slow_but_answering_commands_are_not_cut_short(
    proxy: FaultProxy, forktex_redis: RedisService, prefix: str
) -> None:
    """Each command has its own deadline: commands in a row, each well under the timeout,
    never add up to one."""
    await cache.init(proxy.url(forktex_redis.url), prefix=prefix, command_timeout=2.0)
    try:
        proxy.set_latency(0.4)
        for i in range(6):  # 2.4 s in all, 0.4 s each: the deadline is 2 s per command
            assert await within(cache.set_json("k", i))
        assert await within(cache.get_json("k")) == 5
    finally:
        await within(cache.close())


async def test_an_exhausted_pool_is_named(
    proxy: FaultProxy, forktex_redis: RedisService, prefix: str
) -> None:
    await cache.init(proxy.url(forktex_redis.url), prefix=prefix, max_connections=1, **FAST)
    try:
        assert await cache.get_json("warm") is None
        proxy.set_latency(0.5)  # the one connection stays busy
        seen = proxy.requests_seen
        busy = asyncio.ensure_future(cache.get_json("k"))
        await asyncio.to_thread(proxy.wait_for_requests, seen + 1)
        with pytest.raises(CacheUnavailable, match="raise max_connections") as info:
            await within(cache.get_json("k"))
        assert _endpoint(proxy) in str(info.value)
        assert await within(_identity(8)) == 8  # @cached: the function's value
        verdict = rate_limit("n", "k", limit=1, window_seconds=60, on_error="fail_closed")
        assert await within(verdict) == (False, 1.0)
        assert await within(busy) is None
    finally:
        await within(cache.close())
