# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The fake RESP server the fault tests rely on: it relays to a real Redis byte for byte and
answers exactly the chosen commands with the chosen error reply."""

from __future__ import annotations

import pytest
import redis.asyncio
import redis.exceptions
from fake_resp_server import FakeRedis, command_args, reply_end

from forktex_core.testing import RedisService


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"+OK\r\n", 5),
        (b"-ERR x\r\n+OK\r\n", 8),
        (b":12\r\n", 5),
        (b"$3\r\nabc\r\n", 9),
        (b"$-1\r\n", 5),
        (b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", 19),
        (b"%1\r\n+k\r\n+v\r\n", 12),
        (b"PING\r\n", 6),
        (b"$3\r\nab", None),
        (b"*2\r\n$1\r\na\r\n", None),
        (b"+OK", None),
    ],
)
def test_reply_end(data: bytes, end: int | None) -> None:
    assert reply_end(data) == end


def test_command_args() -> None:
    assert command_args(b"*2\r\n$3\r\nGET\r\n$4\r\nk\r\nx\r\n") == [b"GET", b"k\r\nx"]
    assert command_args(b"PING hello\r\n") == [b"PING", b"hello"]


async def test_relays_and_fails_chosen_commands(
    fake_redis: FakeRedis, forktex_redis: RedisService
) -> None:
    client = redis.asyncio.Redis.from_url(fake_redis.url(forktex_redis.url))
    key = forktex_redis.prefix + "fake:k"
    try:
        assert await client.set(key, b"v" * 100_000)  # a value larger than one read
        assert await client.get(key) == b"v" * 100_000
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(key, b"w").get(key)
            assert await pipe.execute() == [True, b"w"]

        fake_redis.fail("READONLY You can't write against a read only replica.", "set")
        with pytest.raises(redis.exceptions.ReadOnlyError):
            await client.set(key, b"x")
        assert await client.get(key) == b"w"  # not executed; reads still pass

        fake_redis.fail("OOM command not allowed when used memory > 'maxmemory'.", times=1)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            await client.get(key)
        assert await client.get(key) == b"w"  # only once
        assert fake_redis.errors_sent == 2

        fake_redis.heal()
        assert await client.set(key, b"x")
        assert [b"SET", key.encode(), b"x"] in fake_redis.commands
    finally:
        await client.delete(key)
        await client.aclose()


async def test_without_upstream() -> None:
    async with FakeRedis() as fake:
        client = redis.asyncio.Redis.from_url(fake.url("redis://127.0.0.1/3"))
        try:
            assert await client.ping() is True  # SELECT 3 answered locally
            with pytest.raises(redis.exceptions.ResponseError, match="no upstream"):
                await client.get("k")
            fake.fail("LOADING Redis is loading the dataset in memory", "PING")
            with pytest.raises(redis.exceptions.BusyLoadingError):
                await client.ping()
        finally:
            await client.aclose()
    with pytest.raises(ValueError, match="one non-empty line"):
        FakeRedis().fail("ERR a\r\nb")
