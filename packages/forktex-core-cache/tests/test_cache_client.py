# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""init / close / get_client / full_key, and errors before init."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from forktex_core import cache
from forktex_core.cache import (
    CacheAlreadyInitialised,
    CacheError,
    CacheNotInitialised,
    CacheUnavailable,
    InvalidArgument,
    InvalidKey,
)
from forktex_core.testing import EmbeddedRedis, RedisService


async def test_init_get_client_close(forktex_redis: RedisService, prefix: str) -> None:
    await cache.init(forktex_redis.url, prefix=prefix, max_connections=7)
    try:
        client = cache.get_client()
        assert isinstance(client, redis.asyncio.Redis)
        assert client.connection_pool.max_connections == 7
        assert await client.ping() is True
        assert cache.full_key("a:b") == prefix + "a:b"
        with pytest.raises(CacheAlreadyInitialised, match="close"):
            await cache.init(forktex_redis.url)
    finally:
        await cache.close()
    await cache.close()  # idempotent
    with pytest.raises(CacheNotInitialised, match="init"):
        cache.get_client()


async def test_uses_hiredis_parser(cache_client: str) -> None:
    from redis._parsers import _AsyncHiredisParser

    pool = cache.get_client().connection_pool
    parser = (
        pool.connection_kwargs.get("parser_class")
        or pool.connection_class(**pool.connection_kwargs)._parser.__class__
    )
    assert parser is _AsyncHiredisParser


async def test_init_verifies_reachability(dead_url: str) -> None:
    with pytest.raises(CacheUnavailable, match="verify=False"):
        await cache.init(dead_url)
    with pytest.raises(CacheNotInitialised):
        cache.get_client()
    await cache.init(dead_url, verify=False)  # starts anyway
    try:
        with pytest.raises(CacheUnavailable):
            await cache.get_json("k")
    finally:
        await cache.close()


async def test_password_never_in_errors_or_logs(
    dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = dead_url.replace("redis://", "redis://user:hunter2secret@")
    with pytest.raises(CacheUnavailable) as info:
        await cache.init(url)
    assert "hunter2secret" not in str(info.value)
    with pytest.raises(InvalidArgument) as bad:
        await cache.init(url.replace("redis://", "http://"))
    assert "hunter2secret" not in str(bad.value)
    await cache.init(url, verify=False)
    try:
        with pytest.raises(CacheAlreadyInitialised) as again:
            await cache.init(url)
        assert "hunter2secret" not in str(again.value)
        assert "***" in str(again.value)
        await cache.rate_limit("login", "ip", limit=1, window_seconds=1)
    finally:
        await cache.close()
    assert "hunter2secret" not in caplog.text


SECRET = "hunter2-Secret_42"

# Every place a Redis URL can carry a credential; {port} is a port where nothing listens.
CREDENTIAL_URLS = [
    "redis://user:{s}@127.0.0.1:{port}/0",
    "redis://:{s}@127.0.0.1:{port}/0",
    "redis://{s}@127.0.0.1:{port}/0",  # a token as the user name
    "redis://user:p%40{s}@127.0.0.1:{port}/0",
    "redis://user:p@{s}@127.0.0.1:{port}/0",  # an unencoded '@' in the password
    "rediss://default:{s}@127.0.0.1:{port}/0",
    "redis://127.0.0.1:{port}/0?password={s}",
    "redis://127.0.0.1:{port}/0?db=0&password={s}&socket_timeout=1",
    "redis://127.0.0.1:{port}/0?Password={s}",
    "redis://127.0.0.1:{port}/0?pass%77ord={s}",
    "redis://127.0.0.1:{port}/0?username=u&password={s}",
    "redis://127.0.0.1:{port}/0?ssl_password={s}",
    "redis://127.0.0.1:{port}/0?db=0;password={s}",
    "redis://127.0.0.1:{port}/0?api_key={s}&token={s}&secret={s}&auth={s}",
    "redis://127.0.0.1:{port}/0#{s}",
    "unix:///nonexistent/redis.sock?password={s}",
]


def _all_text(exc: BaseException) -> str:
    parts = ["".join(traceback.format_exception(exc))]
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is e for e in seen):
        seen.append(current)
        parts += [str(current), repr(current), repr(current.args)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("template", CREDENTIAL_URLS)
@pytest.mark.parametrize("cluster", [False, True], ids=["standalone", "cluster"])
async def test_no_credential_in_any_error_repr_or_log(
    template: str, cluster: bool, dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Userinfo and credential-like query parameters never reach an error (with its chain and
    traceback), a repr or a log line - whatever the URL's shape."""
    caplog.set_level(logging.DEBUG)
    port = dead_url.rsplit(":", 1)[1].split("/")[0]
    url = template.format(s=SECRET, port=port)
    texts: list[str] = []
    with pytest.raises(CacheError) as unreachable:  # CacheUnavailable, or a URL it refuses
        await cache.init(url, cluster=cluster, connect_timeout=0.5)
    texts.append(_all_text(unreachable.value))
    with pytest.raises(InvalidArgument) as scheme:
        await cache.init("http" + url[url.index(":") :], cluster=cluster)
    texts.append(_all_text(scheme.value))
    try:
        await cache.init(url, cluster=cluster, verify=False)
    except InvalidArgument as exc:  # the cluster client refuses unix sockets
        texts.append(_all_text(exc))
    else:
        try:
            with pytest.raises(CacheAlreadyInitialised) as again:
                await cache.init(url, cluster=cluster)
            texts.append(_all_text(again.value))
            assert "***" in str(again.value)
            texts.append(repr(cache.get_client()))
            if not cluster:
                with pytest.raises(CacheUnavailable) as down:
                    await cache.get_json("k")
                texts.append(_all_text(down.value))
            await cache.rate_limit("login", "ip", limit=1, window_seconds=1)
        finally:
            await cache.close()
    texts.append(caplog.text)
    everything = "\n".join(texts)
    assert SECRET not in everything
    assert "hunter2" not in everything


@pytest.fixture
async def password_redis(tmp_path: Path) -> AsyncIterator[int]:
    """A private Redis server that requires the password SECRET (port returned)."""
    server = EmbeddedRedis(tmp_path / "auth-redis")
    port = server.start()
    admin = redis.asyncio.Redis(host="127.0.0.1", port=port)
    try:
        await admin.config_set("requirepass", SECRET)
        yield port
    finally:
        await admin.aclose()
        server.stop()


@pytest.mark.parametrize(
    "template",
    ["redis://:{s}@127.0.0.1:{port}/0", "redis://127.0.0.1:{port}/0?password={s}"],
    ids=["userinfo", "query"],
)
async def test_a_real_password_works_and_never_shows(
    template: str, password_redis: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    wrong = template.format(s="hunter2-wrong-guess", port=password_redis)
    with pytest.raises(CacheUnavailable, match="AuthenticationError") as refused:
        await cache.init(wrong)
    texts.append(_all_text(refused.value))
    right = template.format(s=SECRET, port=password_redis)
    await cache.init(right)
    try:
        await cache.set_json("k", 1)  # really authenticated
        assert await cache.get_json("k") == 1
        with pytest.raises(CacheAlreadyInitialised) as again:
            await cache.init(right)
        texts += [_all_text(again.value), repr(cache.get_client())]
    finally:
        await cache.close()
    texts.append(caplog.text)
    assert "hunter2" not in "\n".join(texts)


async def test_an_unparseable_url_is_refused_without_echoing_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for url, match in [
        (f"redis://u:{SECRET}@127.0.0.1:notaport/0", "cannot use Redis URL 'redis://\\*\\*\\*@"),
        (f"redis://127.0.0.1:1/0?socket_timeout=x&password={SECRET}", "password=\\*\\*\\*"),
        (f"redis://u:{SECRET}@[::1", "unparseable url"),
        (f"redis://u:{SECRET}@h:1/0".encode(), "got bytes"),
    ]:
        with pytest.raises(InvalidArgument, match=match) as info:
            await cache.init(url, verify=False)  # type: ignore[arg-type]
        assert SECRET not in _all_text(info.value)
        with pytest.raises(CacheNotInitialised):
            cache.get_client()
    with pytest.raises(InvalidArgument, match=r"an option was refused: .*no_such_option"):
        await cache.init("redis://127.0.0.1:1/0", verify=False, no_such_option=SECRET)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((), {}, "url must be"),
        (("localhost:6379",), {}, "url must be"),
        ((123,), {}, "url must be"),
        (("redis://x",), {"nodes": [("h", 1)]}, "either url or nodes"),
        ((), {"nodes": []}, "non-empty list"),
        ((), {"nodes": "h:1"}, "non-empty list"),
        ((), {"nodes": [("h", "1")]}, "cluster node"),
        ((), {"nodes": ["nohostport"]}, "cluster node"),
        (("redis://x",), {"prefix": "has space:"}, "prefix"),
        (("redis://x",), {"prefix": 5}, "prefix"),
        (("redis://x",), {"prefix": "p" * 201}, "at most 200"),
        (("redis://x",), {"cluster": "yes"}, "cluster must be"),
        (("redis://x",), {"decode_responses": True}, "decode_responses"),
        (("redis://x",), {"outage_retry_seconds": 0}, "outage_retry_seconds"),
        (("redis://x",), {"connect_timeout": 0}, "connect_timeout must be a positive number"),
        (("redis://x",), {"connect_timeout": "2"}, "connect_timeout must be a positive number"),
        (("redis://x",), {"command_timeout": -1}, "command_timeout must be a positive number"),
        (("redis://x",), {"command_timeout": None}, "command_timeout must be a positive number"),
        (("redis://x",), {"command_timeout": float("inf")}, "command_timeout must be a positive"),
        (("redis://x",), {"command_timeout": True}, "command_timeout must be a positive number"),
        (("redis://x",), {"socket_connect_timeout": 1}, "pass connect_timeout="),
        (("redis://x",), {"verify": "yes"}, "verify must be True or False"),
    ],
)
async def test_init_rejects_bad_input(
    args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidArgument, match=match):
        await cache.init(*args, **kwargs)
    with pytest.raises(CacheNotInitialised):
        cache.get_client()


async def test_full_key_rejects_bad_key(cache_client: str) -> None:
    with pytest.raises(InvalidKey):
        cache.full_key("")
    with pytest.raises(InvalidKey):
        cache.full_key(b"k")  # type: ignore[arg-type]


def _decorated() -> Any:
    @cache.cached(ttl=1, namespace="t")
    async def f(x: int) -> int:
        return x

    return f


BEFORE_INIT: list[tuple[str, Callable[[], Awaitable[Any] | Any]]] = [
    ("get_client", lambda: cache.get_client()),
    ("full_key", lambda: cache.full_key("k")),
    ("get_json", lambda: cache.get_json("k")),
    ("set_json", lambda: cache.set_json("k", 1)),
    ("incr", lambda: cache.incr("k")),
    ("mget", lambda: cache.mget(["k"])),
    ("delete", lambda: cache.delete("k")),
    ("delete_pattern", lambda: cache.delete_pattern("k*")),
    ("rate_limit", lambda: cache.rate_limit("n", "k", limit=1, window_seconds=1)),
    ("peek", lambda: cache.peek("n", "k", limit=1, window_seconds=1)),
    ("reset", lambda: cache.reset("n", "k")),
    ("cached call", lambda: _decorated()(1)),
    ("cached key_for", lambda: _decorated().key_for(1)),
    ("cached invalidate", lambda: _decorated().invalidate(1)),
    ("cached invalidate_all", lambda: _decorated().invalidate_all()),
]


@pytest.mark.parametrize(("name", "call"), BEFORE_INIT, ids=[n for n, _ in BEFORE_INIT])
async def test_every_function_before_init_raises_clearly(
    name: str, call: Callable[[], Awaitable[Any] | Any]
) -> None:
    with pytest.raises(CacheNotInitialised, match=r"await init\(url\)"):
        result = call()
        if isinstance(result, Awaitable):
            await result
