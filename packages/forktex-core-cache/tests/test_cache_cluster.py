# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Against a real local 3-primary Redis Cluster: delete_pattern, rate_limit, mget, @cached."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.cluster import RedisCluster

from forktex_core import cache
from forktex_core.cache import Namespace, cached, rate_limit

pytestmark = pytest.mark.cluster


@pytest.fixture
async def cluster_cache(forktex_redis_cluster: Any) -> AsyncIterator[str]:
    prefix = f"{forktex_redis_cluster.prefix}{secrets.token_hex(3)}:"
    await cache.init(nodes=list(forktex_redis_cluster.nodes), prefix=prefix)
    try:
        yield prefix
    finally:
        await cache.close()


async def _keys_per_node(nodes: Any, match: str) -> list[int]:
    counts = []
    for host, port in nodes:
        node = redis.asyncio.Redis(host=host, port=port)
        try:
            counts.append(len([k async for k in node.scan_iter(match=match, count=500)]))
        finally:
            await node.aclose()
    return counts


async def test_init_by_url_uses_the_cluster_client(forktex_redis_cluster: Any) -> None:
    await cache.init(forktex_redis_cluster.url, cluster=True, prefix=forktex_redis_cluster.prefix)
    try:
        client = cache.get_client()
        assert isinstance(client, RedisCluster)
        assert len(client.get_primaries()) == 3
    finally:
        await cache.close()


async def test_delete_pattern_walks_every_primary(
    cluster_cache: str, forktex_redis_cluster: Any
) -> None:
    ns = Namespace("user.profile")
    for i in range(600):
        await cache.set_json(ns.key(i), i)
    await cache.set_json("keep:1", 1)
    per_node = await _keys_per_node(forktex_redis_cluster.nodes, cluster_cache + "user:*")
    assert sum(per_node) == 600 and all(n > 0 for n in per_node), per_node
    assert await cache.mget([ns.key(i) for i in range(0, 600, 100)]) == list(range(0, 600, 100))
    assert await cache.delete_pattern(ns.pattern(), batch_size=64) == 600
    assert await _keys_per_node(forktex_redis_cluster.nodes, cluster_cache + "user:*") == [0, 0, 0]
    assert await cache.get_json("keep:1") == 1
    assert await cache.delete("keep:1", "nope") == 1


async def test_rate_limit_on_cluster(cluster_cache: str) -> None:
    results = await asyncio.gather(
        *[rate_limit("login", key=f"ip-{i % 5}", limit=3, window_seconds=30) for i in range(50)]
    )
    assert sum(ok for ok, _ in results) == 15
    assert all(29 < retry <= 30 for ok, retry in results if not ok)
    state = await cache.peek("login", "ip-0", limit=3, window_seconds=30)
    assert state.used == 3 and not state.allowed
    assert await cache.reset("login", "ip-0")
    assert (await rate_limit("login", key="ip-0", limit=3, window_seconds=30)).allowed


async def test_cached_and_incr_on_cluster(cluster_cache: str) -> None:
    calls = 0

    @cached(ttl=30, namespace="cl", lock_ttl=0.3)
    async def f(x: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return x

    assert await asyncio.gather(*[f(i % 4) for i in range(40)]) == [i % 4 for i in range(40)]
    assert calls == 4
    # The waiter path (MGET of value + lock) must stay in one slot: a dead holder's lock.
    await cache.get_client().set(f.key_for(9) + ":lock", b"dead", px=300)
    assert await f(9) == 9
    assert await f.invalidate_all() == 5
    assert await cache.incr("n", ttl=5) == 1
