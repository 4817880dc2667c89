# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Typed ops against real Redis: get_json, set_json, incr, mget, delete, delete_pattern."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from forktex_core import cache
from forktex_core.cache import (
    CacheCommandError,
    CacheUnavailable,
    InvalidArgument,
    InvalidKey,
    Namespace,
    SerializationError,
)
from forktex_core.testing import EmbeddedRedis

T = TypeVar("T")


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


# -- delete_pattern never takes every key -------------------------------------------------------


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of this module's own: with an empty prefix delete_pattern addresses the
    whole database, which must not be the shared one."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("private-redis"))
    port = server.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.stop()


class _Loop:
    """One event loop for every example of a hypothesis test (hypothesis drives sync tests)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


# One key per byte value: a pattern leaving any of them alone cannot match every key.
_EVERY_BYTE = [bytes([b]) for b in range(256)]

_GLOB_TOKENS = st.one_of(
    st.sampled_from(list("ab:-^]!")),  # literal characters (']' '^' '-' '!' only outside a class)
    st.sampled_from(["\\*", "\\?", "\\[", "\\]", "\\\\", "\\a", "\\:"]),  # escapes
    st.sampled_from(["*", "?", "**", "*?"]),
    st.sampled_from(
        [
            "[ab]",
            "[a-z]",
            "[^a]",
            "[^]",
            "[]",
            "[\\]]",
            "[!a]",
            "[\x00-\x7f]",
            "[^\x00]",
            "[\x01-\U0010ffff]",
            "[a-\\]]",
            "[\\",
            "[",
        ]
    ),
    st.characters(codec="utf-8", exclude_characters="\r\n"),
)
_GLOBS = st.lists(_GLOB_TOKENS, min_size=1, max_size=5).map("".join)
# (pattern, whether Redis matches every one-byte key with it)
_WIDE = [
    ("*", True),
    ("**", True),
    ("?", True),
    ("?*", True),
    ("*?", True),
    ("*?*", True),
    ("[\x00-\xff]*", False),  # as UTF-8, '\xff' is two bytes: the class stops at 0xc3
    ("[^x]*", False),
    ("[a-z]*", False),
    ("[*", False),  # an unclosed class: one byte, '*' itself
]


@pytest.mark.parametrize(("pattern", "universal"), _WIDE)
async def test_delete_pattern_refuses_patterns_that_can_match_every_key(
    private_redis: str, pattern: str, universal: bool
) -> None:
    await cache.init(private_redis)
    client = redis.asyncio.Redis.from_url(private_redis)
    try:
        await client.flushdb()
        await client.mset({key: b"1" for key in _EVERY_BYTE})
        with pytest.raises(InvalidArgument, match="could match every key in the database"):
            await cache.delete_pattern(pattern)
        assert await client.dbsize() == 256
        # what Redis itself would have matched (every key here is one byte long)
        matched = [k async for k in client.scan_iter(match=pattern, count=1000)]
        assert (len(matched) == 256) is universal
        # literal text first is fine
        assert await cache.delete_pattern("\\*") == 1 and await client.dbsize() == 255
        assert await cache.delete_pattern("a*") == 1 and await client.dbsize() == 254
    finally:
        await client.aclose()
        await cache.close()


@pytest.mark.parametrize("prefix_text", ["", "svc:", "*", "[ab]*?\\:"])
async def test_delete_raw_pattern_refuses_any_prefix_and_pattern_without_a_literal_head(
    private_redis: str, prefix_text: str
) -> None:
    """The check applies to the full SCAN pattern (escaped prefix + pattern): with a prefix,
    even '*' is confined to the prefix; every path (invalidate_all too) goes through it."""
    await cache.init(private_redis, prefix=prefix_text)
    client = redis.asyncio.Redis.from_url(private_redis)
    try:
        await client.flushdb()
        await client.mset({key: b"1" for key in _EVERY_BYTE})
        await client.set(prefix_text + "mine", b"1")
        if prefix_text:
            under_prefix = [k for k in _EVERY_BYTE if k.startswith(prefix_text.encode())]
            # only the service's own keys: 'mine' (and the one-byte key equal to the prefix)
            assert await cache.delete_pattern("*") == 1 + len(under_prefix)
            assert await client.dbsize() == 256 - len(under_prefix)
        else:
            with pytest.raises(InvalidArgument):
                await cache.delete_pattern("*")
    finally:
        await client.aclose()
        await cache.close()


def test_no_accepted_pattern_can_match_every_key(private_redis: str) -> None:
    """Generated glob patterns (classes, ranges, negations, escapes, unclosed classes,
    wildcards, arbitrary characters) on an empty prefix, against the real server holding one
    key per byte value: a refused pattern touches nothing; an accepted one deletes only keys
    sharing one first byte, i.e. leaves at least 255 of them. And every pattern Redis matches
    all 256 keys with is refused."""
    loop = _Loop()
    client = redis.asyncio.Redis.from_url(private_redis)
    loop.run(cache.init(private_redis))
    seen = {"refused": 0, "accepted": 0}

    @settings(max_examples=300, deadline=None, database=None)
    @given(pattern=_GLOBS)
    def check(pattern: str) -> None:
        async def run() -> None:
            await client.flushdb()
            await client.mset({key: b"1" for key in _EVERY_BYTE})
            matched = len([k async for k in client.scan_iter(match=pattern, count=1000)])
            try:
                await cache.delete_pattern(pattern)
            except InvalidArgument:
                seen["refused"] += 1
                assert await client.dbsize() == 256, "a refused pattern deleted keys"
                return
            seen["accepted"] += 1
            assert matched < 256, f"{pattern!r} matches every key yet was accepted"
            left = set(await client.keys("*"))
            gone = set(_EVERY_BYTE) - left
            assert len(left) >= 255 and len({k[:1] for k in gone}) <= 1, pattern

        loop.run(run())

    try:
        check()
    finally:
        loop.run(client.aclose())
        loop.run(cache.close())
        loop.close()
    assert seen["refused"] > 20 and seen["accepted"] > 20  # both sides were exercised


def test_a_prefix_confines_every_pattern(forktex_redis: Any, prefix: str) -> None:
    """With a prefix (glob characters included), any pattern - '*' too - is accepted and
    deletes only keys under the literal prefix, never keys an unescaped prefix would match."""
    loop = _Loop()
    client = redis.asyncio.Redis.from_url(forktex_redis.url)

    @settings(max_examples=100, deadline=None, database=None)
    @given(tricky=st.text(alphabet="ab*?[]^-\\:!", min_size=1, max_size=6), pattern=_GLOBS)
    def check(tricky: str, pattern: str) -> None:
        service = prefix + tricky
        # keys the unescaped prefix glob would match (each special turned into a plain 'a')
        outsiders = {prefix + tricky.translate(str.maketrans("*?[]\\", "aaaaa")) + "k", prefix}
        outsiders.discard(service + "k")

        async def run() -> None:
            await cache.init(forktex_redis.url, prefix=service)
            try:
                await client.mset({key: b"1" for key in outsiders | {service + "k"}})
                await cache.delete_pattern(pattern)
                assert await cache.delete_pattern("*") <= 1
                for key in outsiders:
                    assert await client.get(key) == b"1", (service, pattern, key)
                assert await client.get(service + "k") is None
            finally:
                await client.delete(*outsiders, service + "k")
                await cache.close()

        loop.run(run())

    try:
        check()
    finally:
        loop.run(client.aclose())
        loop.close()


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


async def test_keys_that_are_not_unicode_text_are_refused(cache_client: str) -> None:
    """A lone surrogate cannot be sent to Redis: the module says so instead of letting
    redis-py's UnicodeEncodeError escape."""
    bad = "user:\ud800"
    for call in (
        lambda: cache.get_json(bad),
        lambda: cache.set_json(bad, 1),
        lambda: cache.incr(bad),
        lambda: cache.mget(["ok", bad]),
        lambda: cache.delete(bad),
        lambda: cache.delete_pattern(bad + "*"),
        lambda: cache.rate_limit("login", key=bad, limit=1, window_seconds=1),
        lambda: cache.peek("login", key=bad, limit=1, window_seconds=1),
        lambda: cache.reset("login", key=bad),
    ):
        with pytest.raises(InvalidKey, match="not valid Unicode text"):
            await call()
    with pytest.raises(InvalidKey, match="not valid Unicode text"):
        cache.full_key(bad)
    # through a Namespace the same text is a fine, encoded key
    key = Namespace("user").key("\ud800")
    assert key == "user::%ED%A0%80"
    await cache.set_json(key, 1)
    assert await cache.get_json(key) == 1
