# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Typed ops against real Redis: get_json, set_json, incr, mget, delete, delete_pattern."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio

from forktex_core import cache
from forktex_core.cache import (
    CacheCommandError,
    CacheUnavailable,
    InvalidArgument,
    InvalidKey,
    Namespace,
    SerializationError,
)


async def test_set_and_get_json(cache_client: str, raw: redis.asyncio.Redis) -> None:
    value = {"name": "Ada", "tags": ["x", "ü"], "n": 1.5, "ok": True, "none": None}
    assert await cache.set_json("user:1", value) is True
    assert await cache.get_json("user:1") == value
    assert (
        await raw.get(cache_client + "user:1")
        == b'{"name":"Ada","tags":["x","\xc3\xbc"],"n":1.5,"ok":true,"none":null}'
    )
    assert await raw.ttl(cache_client + "user:1") == -1
    assert await cache.get_json("missing") is None
    assert await cache.get_json("missing", default={}) == {}
    await cache.set_json("null", None)
    assert await cache.get_json("null", default="d") is None  # stored null != missing


async def test_set_json_ttl_and_nx(cache_client: str, raw: redis.asyncio.Redis) -> None:
    assert await cache.set_json("t", 1, ttl=0.3) is True
    assert 0 < await raw.pttl(cache_client + "t") <= 300
    assert await cache.set_json("t", 2, nx=True) is False
    assert await cache.get_json("t") == 1
    await asyncio.sleep(0.4)
    assert await cache.get_json("t") is None
    assert await cache.set_json("t", 3, nx=True) is True
    from datetime import timedelta

    await cache.set_json("td", "x", ttl=timedelta(minutes=1))
    assert 59_000 < await raw.pttl(cache_client + "td") <= 60_000


async def test_incr_sets_ttl_only_on_creation(cache_client: str, raw: redis.asyncio.Redis) -> None:
    assert await cache.incr("c", ttl=10) == 1
    await raw.pexpire(cache_client + "c", 5000)
    assert await cache.incr("c", 5, ttl=10) == 6  # existing key: TTL untouched
    assert 0 < await raw.pttl(cache_client + "c") <= 5000
    assert await cache.incr("c", -10) == -4
    assert await cache.get_json("c") == -4
    assert await cache.incr("plain") == 1
    assert await raw.ttl(cache_client + "plain") == -1


async def test_incr_is_atomic_under_concurrency(cache_client: str) -> None:
    await asyncio.gather(*[cache.incr("cc", ttl=30) for _ in range(200)])
    assert await cache.get_json("cc") == 200


async def test_mget(cache_client: str) -> None:
    await cache.set_json("a", {"v": 1})
    await cache.incr("b")
    assert await cache.mget(["a", "b", "zz"]) == [{"v": 1}, 1, None]
    assert await cache.mget(("a", "zz"), default=0) == [{"v": 1}, 0]
    assert await cache.mget(iter(["b"])) == [1]
    assert await cache.mget([]) == []


async def test_delete(cache_client: str) -> None:
    await cache.set_json("d1", 1)
    await cache.set_json("d2", 2)
    assert await cache.delete("d1", "d2", "d3") == 2
    assert await cache.mget(["d1", "d2"]) == [None, None]


async def test_delete_pattern_in_batches_stays_under_prefix(
    cache_client: str, raw: redis.asyncio.Redis, forktex_redis: Any
) -> None:
    ns = Namespace("user.profile")
    for i in range(1234):
        await raw.set(cache.full_key(ns.key(i)), b"1")
    await cache.set_json("user:other:1", 1)
    # A sibling prefix that starts like ours must survive.
    outsider = cache_client[:-1] + "x:user:profile:1"
    await raw.set(outsider, b"1")
    try:
        assert await cache.delete_pattern(ns.pattern(), batch_size=100) == 1234
        assert [k async for k in raw.scan_iter(match=cache_client + "user:profile:*")] == []
        assert await cache.get_json("user:other:1") == 1
        assert await raw.get(outsider) == b"1"
        assert await cache.delete_pattern("nothing:*") == 0
    finally:
        await raw.delete(outsider)


async def test_delete_pattern_escapes_glob_characters_in_prefix(
    forktex_redis: Any, prefix: str, raw: redis.asyncio.Redis
) -> None:
    tricky = prefix + "[ab]*?:"
    await cache.init(forktex_redis.url, prefix=tricky)
    try:
        await cache.set_json("k1", 1)
        victim = prefix + "a-not-mine:k1"  # would match an unescaped '[ab]*' pattern
        await raw.set(victim, b"1")
        assert await cache.delete_pattern("k*") == 1
        assert await raw.get(victim) == b"1"
        await raw.delete(victim)
    finally:
        await cache.close()


async def test_delete_pattern_refuses_whole_database(forktex_redis: Any) -> None:
    await cache.init(forktex_redis.url)
    try:
        with pytest.raises(InvalidArgument, match="every key in the database"):
            await cache.delete_pattern("*")
        with pytest.raises(InvalidArgument, match="every key in the database"):
            await cache.delete_pattern("**")
    finally:
        await cache.close()


async def test_wrong_type_is_a_command_error(cache_client: str, raw: redis.asyncio.Redis) -> None:
    await raw.lpush(cache_client + "list", b"x")
    with pytest.raises(CacheCommandError, match="WRONGTYPE"):
        await cache.incr("list")
    with pytest.raises(CacheCommandError, match="WRONGTYPE"):
        await cache.get_json("list")
    await raw.set(cache_client + "notjson", b"\xff{")
    with pytest.raises(SerializationError, match="notjson"):
        await cache.get_json("notjson")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: cache.get_json(""), InvalidKey, "non-empty"),
        (lambda: cache.get_json(1), InvalidKey, "non-empty str"),
        (lambda: cache.set_json("", 1), InvalidKey, "non-empty"),
        (lambda: cache.set_json("k", {1, 2}), SerializationError, "set"),
        (lambda: cache.set_json("k", float("nan")), SerializationError, "JSON"),
        (lambda: cache.set_json("k", 1, ttl=0), InvalidArgument, "ttl"),
        (lambda: cache.set_json("k", 1, ttl=-1), InvalidArgument, "ttl"),
        (lambda: cache.set_json("k", 1, ttl="5"), InvalidArgument, "ttl"),
        (lambda: cache.set_json("k", 1, nx="yes"), InvalidArgument, "nx"),
        (lambda: cache.incr(""), InvalidKey, "non-empty"),
        (lambda: cache.incr("k", 1.5), InvalidArgument, "amount"),
        (lambda: cache.incr("k", True), InvalidArgument, "amount"),
        (lambda: cache.incr("k", ttl=0), InvalidArgument, "ttl"),
        (lambda: cache.mget("k"), InvalidArgument, "list of keys"),
        (lambda: cache.mget(None), InvalidArgument, "list of keys"),
        (lambda: cache.mget(["ok", ""]), InvalidKey, "non-empty"),
        (lambda: cache.delete(), InvalidArgument, "at least one key"),
        (lambda: cache.delete("ok", ""), InvalidKey, "non-empty"),
        (lambda: cache.delete_pattern(""), InvalidKey, "non-empty"),
        (lambda: cache.delete_pattern(None), InvalidKey, "non-empty"),
        (lambda: cache.delete_pattern("x*", batch_size=0), InvalidArgument, "batch_size"),
    ],
)
async def test_ops_reject_bad_input(cache_client: str, call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        await call()


async def test_ops_raise_cache_unavailable_when_redis_is_down(dead_url: str) -> None:
    await cache.init(dead_url, verify=False)
    try:
        for call in [
            lambda: cache.get_json("k"),
            lambda: cache.set_json("k", 1),
            lambda: cache.incr("k"),
            lambda: cache.mget(["k"]),
            lambda: cache.delete("k"),
            lambda: cache.delete_pattern("k*"),
            lambda: cache.peek("n", "k", limit=1, window_seconds=1),
            lambda: cache.reset("n", "k"),
        ]:
            with pytest.raises(CacheUnavailable, match="unreachable"):
                await call()
    finally:
        await cache.close()
