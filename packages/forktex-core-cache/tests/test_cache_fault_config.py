# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Misconfigured services: a host that does not resolve, a database number the server
lacks, a port that is an HTTP server, a port that is not a number. Each is reported in
this module's own error naming host:port and db - at init, and later (verify=False) as a
fail-open @cached, a policy-following rate_limit and a raising typed op."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio
from fault_helpers import FAST, within

from forktex_core import cache
from forktex_core.cache import (
    CacheNotInitialised,
    CacheUnavailable,
    InvalidArgument,
    RateLimitUnavailable,
    cached,
    rate_limit,
)
from forktex_core.testing import EmbeddedRedis, RedisService


@cached(ttl=60, namespace="config")
async def _double(x: int) -> int:
    return 2 * x


async def _check_misconfigured(url: str, endpoint: str, hint: str) -> None:
    """``url`` cannot be used: init says so; with verify=False every entry point copes."""
    with pytest.raises(CacheUnavailable) as info:
        await within(cache.init(url, **FAST))
    message = str(info.value)
    assert endpoint in message and hint in message and "verify=False" in message, message
    assert "hunter2" not in message
    with pytest.raises(CacheNotInitialised):
        cache.get_client()

    await cache.init(url, verify=False, **FAST)
    try:
        assert await within(_double(21)) == 42  # fail-open
        assert await within(rate_limit("n", "k", limit=1, window_seconds=1)) == (True, 0.0)
        with pytest.raises(RateLimitUnavailable, match=endpoint):
            await within(rate_limit("n", "k", limit=1, window_seconds=1, on_error="raise"))
        with pytest.raises(CacheUnavailable) as later:
            await within(cache.get_json("k"))
        assert endpoint in str(later.value) and hint in str(later.value), str(later.value)
    finally:
        await within(cache.close())


async def test_a_host_that_does_not_resolve_is_named() -> None:
    await _check_misconfigured(
        "redis://nosuchhost.invalid:6379/0",
        "nosuchhost.invalid:6379 db 0",
        "unreachable",
    )


async def test_a_database_number_the_server_lacks_is_named(forktex_redis: RedisService) -> None:
    url = f"redis://{forktex_redis.host}:{forktex_redis.port}/10000"
    if forktex_redis.password:
        pytest.skip("the session Redis needs a password; this test builds its own URL")
    await _check_misconfigured(
        url, f"{forktex_redis.host}:{forktex_redis.port} db 10000", "no such database"
    )


async def test_a_wrong_password_is_named(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "auth-redis")
    port = server.start()
    admin = redis.asyncio.Redis(host="127.0.0.1", port=port)
    try:
        await admin.config_set("requirepass", "the-right-one")
        await _check_misconfigured(
            f"redis://:hunter2-wrong@127.0.0.1:{port}/0",
            f"127.0.0.1:{port} db 0",
            "refused the credentials",
        )
    finally:
        await admin.aclose()
        server.stop()


@pytest.fixture
async def http_server() -> AsyncIterator[int]:
    """A port where an HTTP server answers (400 to anything it does not understand)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def test_an_http_server_is_recognised(http_server: int) -> None:
    await _check_misconfigured(
        f"redis://127.0.0.1:{http_server}/0",
        f"127.0.0.1:{http_server} db 0",
        "does not speak the Redis protocol",
    )


@pytest.mark.parametrize(
    ("url", "cluster", "match"),
    [
        ("redis://127.0.0.1:abc/0", False, "port must be a number from 1 to 65535"),
        ("redis://u:hunter2-pw@127.0.0.1:abc/0", False, "port must be a number"),
        ("redis://127.0.0.1:abc/0", True, "port must be a number"),
        ("redis://127.0.0.1:99999/0", False, "port must be a number"),
        ("redis://127.0.0.1:0/0", False, "port must be a number"),
        ("redis://127.0.0.1:6379/zero", False, "database number such as /0, got /zero"),
    ],
)
async def test_a_port_or_database_that_is_not_a_number_is_refused(
    url: str, cluster: bool, match: str
) -> None:
    with pytest.raises(InvalidArgument, match=match) as info:
        await cache.init(url, cluster=cluster, verify=False)
    assert "hunter2" not in str(info.value)
    assert url.split("@")[-1].split("/")[0] in str(info.value)  # the host:port as given


@pytest.mark.parametrize("node", ["127.0.0.1:abc", "127.0.0.1:0", ("127.0.0.1", 70000), ("", 1)])
async def test_a_cluster_node_with_a_bad_port_is_refused(node: object) -> None:
    with pytest.raises(InvalidArgument, match="port from 1 to 65535"):
        await cache.init(nodes=[node], verify=False)  # type: ignore[list-item]
