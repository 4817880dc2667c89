# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What drop_replies counts as a request, per protocol: real clients for the cases that
matter (prepared statements, handshakes, transactions, 100-continue), raw bytes for the
edges (messages split across chunks, TLS, cancel requests, malformed input)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import asyncpg
import boto3
import pytest
import redis
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from forktex_core.testing import FaultProxy, PostgresService, RedisService, S3Service
from forktex_core.testing._requests import (
    HttpRequests,
    PostgresRequests,
    RawRequests,
    RedisRequests,
    recogniser,
)

MakeProxy = Callable[..., FaultProxy]
PG_CONNECTION_ERRORS = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, ConnectionError)


async def _table(service: PostgresService) -> str:
    name = f"drops_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(service.dsn)
    try:
        await conn.execute(f"create table {name} (x int)")
    finally:
        await conn.close()
    return name


async def _rows(service: PostgresService, table: str) -> list[int]:
    conn = await asyncpg.connect(service.dsn)
    try:
        return [r[0] for r in await conn.fetch(f"select x from {table} order by x")]
    finally:
        await conn.close()


async def test_postgres_reexecuted_prepared_statement_is_matched_by_its_sql(
    forktex_fault_proxy: MakeProxy, forktex_postgres: PostgresService
) -> None:
    table = await _table(forktex_postgres)
    proxy = forktex_fault_proxy(forktex_postgres)
    conn = await asyncpg.connect(proxy.url(forktex_postgres.dsn))
    insert = f"insert into {table} values ($1)"
    await conn.execute(insert, 1)  # prepared and cached: later runs send only its name
    proxy.drop_replies(match=f"INSERT INTO {table}".encode())  # case-insensitive
    with pytest.raises(PG_CONNECTION_ERRORS):
        await conn.execute(insert, 2)
    assert proxy.replies_dropped == 1
    assert await _rows(forktex_postgres, table) == [1, 2]


async def test_postgres_handshake_and_prepare_are_not_requests(
    forktex_fault_proxy: MakeProxy, forktex_postgres: PostgresService
) -> None:
    proxy = forktex_fault_proxy(forktex_postgres)
    proxy.drop_replies()  # no match: the first request of any kind
    conn = await asyncpg.connect(proxy.url(forktex_postgres.dsn))  # start-up passes
    statement = await conn.prepare("select 42")  # a prepare-only round trip passes
    assert proxy.drops_pending == 1
    with pytest.raises(PG_CONNECTION_ERRORS):
        await statement.fetchval()
    assert (proxy.replies_dropped, proxy.drops_pending) == (1, 0)


async def test_postgres_count_spans_connections(
    forktex_fault_proxy: MakeProxy, forktex_postgres: PostgresService
) -> None:
    table = await _table(forktex_postgres)
    proxy = forktex_fault_proxy(forktex_postgres)
    proxy.drop_replies(2, match=b"insert")
    for value in (1, 2):
        conn = await asyncpg.connect(proxy.url(forktex_postgres.dsn))
        with pytest.raises(PG_CONNECTION_ERRORS):
            await conn.execute(f"insert into {table} values ({value})")  # simple Query
    conn = await asyncpg.connect(proxy.url(forktex_postgres.dsn))
    await conn.execute(f"insert into {table} values (3)")  # the third passes
    await conn.close()
    assert proxy.replies_dropped == 2
    assert await _rows(forktex_postgres, table) == [1, 2, 3]


async def test_postgres_committed_transaction_loses_its_reply(
    forktex_fault_proxy: MakeProxy, forktex_postgres: PostgresService
) -> None:
    table = await _table(forktex_postgres)
    proxy = forktex_fault_proxy(forktex_postgres)
    conn = await asyncpg.connect(proxy.url(forktex_postgres.dsn))
    proxy.drop_replies(match=b"COMMIT")
    with pytest.raises(PG_CONNECTION_ERRORS):
        async with conn.transaction():
            await conn.execute(f"insert into {table} values (7)")
    assert await _rows(forktex_postgres, table) == [7]


def test_redis_handshake_is_not_a_request(
    forktex_fault_proxy: MakeProxy, forktex_redis: RedisService
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    proxy.drop_replies()
    # db 1 makes redis-py send SELECT, besides its CLIENT SETINFO calls, while connecting.
    client = redis.Redis.from_url(proxy.url(forktex_redis.url).rsplit("/", 1)[0] + "/1")
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert proxy.replies_dropped == 1
    assert client.ping()  # the client reconnects; nothing is armed any more
    client.close()


def test_redis_transaction_is_one_request(
    forktex_fault_proxy: MakeProxy, forktex_redis: RedisService
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    client = redis.Redis.from_url(proxy.url(forktex_redis.url))
    a, b = forktex_redis.prefix + "tx-a", forktex_redis.prefix + "tx-b"
    proxy.drop_replies(match=b"INCR")
    pipe = client.pipeline(transaction=True)
    pipe.incr(a)
    pipe.incr(b)
    with pytest.raises(redis.ConnectionError):
        pipe.execute()
    assert (proxy.replies_dropped, proxy.drops_pending) == (1, 0)
    direct = redis.Redis.from_url(forktex_redis.url)
    assert direct.mget([a, b]) == [b"1", b"1"]
    direct.close()
    client.close()


def test_http_interim_continue_is_not_the_reply(
    forktex_fault_proxy: MakeProxy, forktex_s3: S3Service
) -> None:
    proxy = forktex_fault_proxy(forktex_s3)

    def client(service: S3Service) -> object:
        return boto3.client(
            "s3",
            endpoint_url=service.endpoint_url,
            aws_access_key_id=service.access_key,
            aws_secret_access_key=service.secret_key,
            region_name=service.region,
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )

    through, direct = client(proxy.service(forktex_s3)), client(forktex_s3)
    body = b"z" * (2 * 1024 * 1024)  # large enough for botocore's "Expect: 100-continue"
    proxy.drop_replies(match=b"PUT ")
    with pytest.raises(ConnectionClosedError):
        through.put_object(Bucket=forktex_s3.bucket, Key="big", Body=body)  # type: ignore[attr-defined]
    head = direct.head_object(Bucket=forktex_s3.bucket, Key="big")  # type: ignore[attr-defined]
    assert head["ContentLength"] == len(body)


async def test_requests_seen_counts_what_drop_replies_counts(
    forktex_fault_proxy: MakeProxy, forktex_postgres: PostgresService
) -> None:
    proxy = forktex_fault_proxy(forktex_postgres)
    conn = await asyncpg.connect(proxy.url(forktex_postgres.dsn))
    assert proxy.requests_seen == 0  # the start-up is no request
    await conn.execute("select 1")
    await conn.fetchval("select $1::int", 1)
    await asyncio.to_thread(proxy.wait_for_requests, 2)
    assert proxy.requests_seen == 2
    await conn.close()


# -- the recognisers on raw bytes -----------------------------------------------------------


def _pg(kind: bytes, body: bytes) -> bytes:
    return kind + (len(body) + 4).to_bytes(4, "big") + body


_PARAMS = b"user\0postgres\0database\0x\0\0"
STARTUP = (8 + len(_PARAMS)).to_bytes(4, "big") + (196608).to_bytes(4, "big") + _PARAMS


def test_postgres_messages_split_across_chunks() -> None:
    rec = PostgresRequests()
    query = _pg(b"Q", b"select 1\0")
    wire = STARTUP + query
    found = [rec.feed(wire[i : i + 3]) for i in range(0, len(wire), 3)]
    assert [f for f in found if f] == [[b"select 1"]]
    # Parse + Bind + Execute + Sync in one chunk: one request, the SQL from Parse.
    batch = (
        _pg(b"P", b"s1\0insert into t values ($1)\0\0\0")
        + _pg(b"B", b"\0s1\0\0\0\0\0\0")
        + _pg(b"E", b"\0\0\0\0\0")
        + _pg(b"S", b"")
    )
    assert rec.feed(batch) == [b"insert into t values ($1)"]
    assert rec.feed(_pg(b"B", b"\0s1\0\0\0\0\0\0") + _pg(b"E", b"\0\0\0\0\0")) == [
        b"insert into t values ($1)"
    ]
    assert rec.feed(_pg(b"P", b"s2\0select 2\0\0\0") + _pg(b"S", b"")) == []  # prepare only


def test_postgres_ssl_request_then_startup_or_tls() -> None:
    plain = PostgresRequests()
    ssl_request = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
    assert plain.feed(ssl_request) == []
    assert plain.feed(STARTUP) == []
    assert plain.feed(_pg(b"Q", b"select 1\0")) == [b"select 1"]

    tls = PostgresRequests()
    assert tls.feed(ssl_request) == []
    assert tls.feed(b"\x16\x03\x01\x02\x00" + b"\x01" * 100) == []  # a TLS ClientHello
    assert tls.feed(_pg(b"Q", b"select 1\0")) == []  # opaque from now on

    cancel = PostgresRequests()
    body = (80877102).to_bytes(4, "big") + b"\0\0\0\1\0\0\0\2"
    assert cancel.feed((16).to_bytes(4, "big") + body) == []
    assert cancel.feed(_pg(b"Q", b"select 1\0")) == []

    broken = PostgresRequests()
    broken.feed(STARTUP)
    assert broken.feed(b"Q\0\0\0\1") == []  # a length below 4 is not the protocol


def test_redis_commands_inline_split_and_malformed() -> None:
    rec = RedisRequests()
    wire = b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
    found = [rec.feed(wire[i : i + 5]) for i in range(0, len(wire), 5)]
    assert [f for f in found if f] == [[b"SET k v"]]
    assert rec.feed(b"PING\r\n") == [b"PING"]  # inline
    assert rec.feed(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n") == [b"PING", b"PING"]
    assert rec.feed(b"*1\r\n:oops\r\n") == []  # not RESP: dropped, no crash
    assert rec.feed(b"*1\r\n$4\r\nPING\r\n") == [b"PING"]
    assert rec.feed(b"*x\r\n") == [b"*x"]


def test_http_and_raw() -> None:
    http = HttpRequests()
    assert http.feed(b"PUT /b/k HTTP/1.1\r\nHost: x\r\n\r\nbody") == [b"PUT /b/k HTTP/1.1"]
    assert http.feed(b"more body") == []
    assert http.is_interim_reply(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert not http.is_interim_reply(b"HTTP/1.1 200 OK\r\n")
    assert RawRequests().feed(b"anything") == [b"anything"]
    assert not RawRequests().is_interim_reply(b"HTTP/1.1 100 Continue")
    assert isinstance(recogniser("postgres"), PostgresRequests)
    with pytest.raises(KeyError):
        recogniser("mysql")  # type: ignore[arg-type]
