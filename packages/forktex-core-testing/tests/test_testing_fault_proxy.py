# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""FaultProxy against the real services: every fault × Postgres (asyncpg), Redis (redis-py)
and the plugin's S3 (boto3), each seen the way that client sees it."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import boto3
import botocore.exceptions as boto_errors
import pytest
import redis
from botocore.config import Config

from forktex_core.testing import FaultProxy, PostgresService, RedisService, S3Service
from forktex_core.testing._isolate import run_sync

TIMEOUT = 1.0  # each client's connect/read timeout
HANG = 10.0  # a fault not reported within this is a hang


class Client:
    """One client library, used through a proxy: connect, a round trip, a write."""

    name: str
    timeout_errors: tuple[type[BaseException], ...]
    connection_errors: tuple[type[BaseException], ...]
    write_marker: bytes  # what drop_replies(match=...) matches for write()
    keeps_connections = True  # False: the server closes each connection after one reply

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy

    async def connect(self) -> None:
        raise NotImplementedError

    async def roundtrip(self) -> None:
        raise NotImplementedError

    async def write(self, key: str) -> None:
        raise NotImplementedError

    async def written(self, key: str) -> bool:
        """Whether ``key`` reached the server (asked directly, not through the proxy)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class PostgresClient(Client):
    name = "postgres"
    timeout_errors = (TimeoutError,)
    connection_errors = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, ConnectionError)
    write_marker = b"insert into fault_writes"

    def __init__(self, proxy: FaultProxy, service: PostgresService) -> None:
        super().__init__(proxy)
        self.service = service
        self.conn: Any = None

    async def connect(self) -> None:
        self.conn = await asyncpg.connect(self.proxy.url(self.service.dsn), timeout=TIMEOUT)

    async def roundtrip(self) -> None:
        assert await self.conn.fetchval("select 1", timeout=TIMEOUT) == 1

    async def write(self, key: str) -> None:
        await self.conn.execute("insert into fault_writes values ($1)", key, timeout=TIMEOUT)

    async def written(self, key: str) -> bool:
        conn = await asyncpg.connect(self.service.dsn)
        try:
            return bool(await conn.fetchval("select count(*) from fault_writes where k=$1", key))
        finally:
            await conn.close()

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.terminate()


class RedisClient(Client):
    name = "redis"
    timeout_errors = (redis.TimeoutError,)
    connection_errors = (redis.ConnectionError,)
    write_marker = b"SET "

    def __init__(self, proxy: FaultProxy, service: RedisService) -> None:
        super().__init__(proxy)
        self.service = service
        self.client: redis.Redis | None = None

    async def connect(self) -> None:
        def go() -> None:
            self.client = redis.Redis.from_url(
                self.proxy.url(self.service.url),
                socket_timeout=TIMEOUT,
                socket_connect_timeout=TIMEOUT,
            )
            self.client.ping()

        await asyncio.to_thread(go)

    async def roundtrip(self) -> None:
        assert self.client is not None
        assert await asyncio.to_thread(self.client.ping)

    async def write(self, key: str) -> None:
        assert self.client is not None
        await asyncio.to_thread(self.client.set, self.service.prefix + key, 1)

    async def written(self, key: str) -> bool:
        direct = redis.Redis.from_url(self.service.url)
        try:
            return bool(direct.exists(self.service.prefix + key))
        finally:
            direct.close()

    async def close(self) -> None:
        if self.client is not None:
            self.client.close()


class S3Client(Client):
    name = "s3"
    timeout_errors = (boto_errors.ReadTimeoutError, boto_errors.ConnectTimeoutError)
    connection_errors = (boto_errors.ConnectionClosedError, boto_errors.EndpointConnectionError)
    write_marker = b"PUT "
    keeps_connections = False  # moto's server closes the connection after each response

    def __init__(self, proxy: FaultProxy, service: S3Service) -> None:
        super().__init__(proxy)
        self.service = service
        self.client: Any = None

    def _client(self, service: S3Service) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=service.endpoint_url,
            aws_access_key_id=service.access_key,
            aws_secret_access_key=service.secret_key,
            region_name=service.region,
            config=Config(
                connect_timeout=TIMEOUT,
                read_timeout=TIMEOUT,
                retries={"mode": "standard", "total_max_attempts": 1},
                s3={"addressing_style": "path"},
            ),
        )

    async def connect(self) -> None:
        self.client = self._client(self.proxy.service(self.service))
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.service.bucket)

    async def roundtrip(self) -> None:
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.service.bucket)

    async def write(self, key: str) -> None:
        await asyncio.to_thread(
            self.client.put_object, Bucket=self.service.bucket, Key=key, Body=b"x"
        )

    async def written(self, key: str) -> bool:
        direct = self._client(self.service)
        try:
            await asyncio.to_thread(direct.head_object, Bucket=self.service.bucket, Key=key)
        except boto_errors.ClientError:
            return False
        return True

    async def close(self) -> None:
        if self.client is not None:
            self.client.close()


Factory = Callable[[], Client]


@pytest.fixture(scope="session")
def _fault_writes(forktex_postgres: PostgresService) -> PostgresService:
    async def create() -> None:
        conn = await asyncpg.connect(forktex_postgres.dsn)
        try:
            await conn.execute("create table if not exists fault_writes (k text)")
        finally:
            await conn.close()

    run_sync(create())
    return forktex_postgres


@pytest.fixture(params=["postgres", "redis", "s3"])
async def make_client(
    request: pytest.FixtureRequest, forktex_fault_proxy: Callable[..., FaultProxy]
) -> AsyncIterator[Factory]:
    """Factory of clients of one kind, all through one proxy (``make_client.proxy``)."""
    service: Any = request.getfixturevalue(
        {"postgres": "_fault_writes", "redis": "forktex_redis", "s3": "forktex_s3"}[request.param]
    )
    proxy = forktex_fault_proxy(service)
    kind = {"postgres": PostgresClient, "redis": RedisClient, "s3": S3Client}[request.param]
    made: list[Client] = []

    def make() -> Client:
        client = kind(proxy, service)
        made.append(client)
        return client

    make.proxy = proxy  # type: ignore[attr-defined]
    yield make
    for client in made:
        await client.close()


def _proxy(make: Factory) -> FaultProxy:
    proxy: FaultProxy = make.proxy  # type: ignore[attr-defined]
    return proxy


async def _fails_with(
    errors: tuple[type[BaseException], ...], call: Callable[[], Any]
) -> BaseException:
    """Run ``call``; it must raise one of ``errors`` within HANG seconds."""
    start = time.monotonic()
    with pytest.raises(errors) as info:
        await asyncio.wait_for(call(), HANG)
    assert time.monotonic() - start < HANG
    return info.value


async def test_passes_traffic_through(make_client: Factory) -> None:
    client = make_client()
    await client.connect()
    await client.roundtrip()
    key = secrets.token_hex(4)
    await client.write(key)
    assert await client.written(key)
    assert _proxy(make_client).accepted >= 1
    assert _proxy(make_client).mode == "pass_through"


async def test_black_hole_is_reported_by_the_clients_timeout(make_client: Factory) -> None:
    proxy = _proxy(make_client)
    client = make_client()
    await client.connect()
    proxy.black_hole()
    # An open connection goes silent ...
    error = await _fails_with(client.timeout_errors, client.roundtrip)
    assert not isinstance(error, client.connection_errors)
    # ... and a new one is accepted but never answered.
    await _fails_with(client.timeout_errors, make_client().connect)
    proxy.heal()
    fresh = make_client()
    await fresh.connect()
    await fresh.roundtrip()


async def test_reset_is_a_connection_error(make_client: Factory) -> None:
    proxy = _proxy(make_client)
    client = make_client()
    await client.connect()
    await client.roundtrip()  # asyncpg: the statement is prepared, the next call executes
    proxy.set_latency(60)  # the reply is held back: the request stays in flight
    seen = proxy.requests_seen
    in_flight = asyncio.ensure_future(client.roundtrip())
    await asyncio.to_thread(proxy.wait_for_requests, seen + 1)
    assert proxy.reset_connections() >= 1
    await _fails_with(client.connection_errors, lambda: in_flight)
    proxy.set_latency(0)
    fresh = make_client()
    await fresh.connect()
    await fresh.roundtrip()


async def test_refuse_new_connections_keeps_open_ones(make_client: Factory) -> None:
    proxy = _proxy(make_client)
    client = make_client()
    await client.connect()
    proxy.refuse()
    assert proxy.mode == "refuse"
    await _fails_with(client.connection_errors, make_client().connect)
    if client.keeps_connections:
        await client.roundtrip()
    proxy.pass_through()
    again = make_client()
    await again.connect()  # the same address listens again
    await again.roundtrip()


async def test_latency_delays_every_reply(make_client: Factory) -> None:
    proxy = _proxy(make_client)
    client = make_client()
    await client.connect()
    proxy.set_latency(0.3)
    assert proxy.latency == 0.3
    start = time.monotonic()
    await client.roundtrip()
    assert time.monotonic() - start >= 0.3  # a lower bound: never flaky
    proxy.set_latency(TIMEOUT * 3)  # longer than the client waits
    await _fails_with(client.timeout_errors, client.roundtrip)
    proxy.set_latency(0)
    fresh = make_client()
    await fresh.connect()
    await fresh.roundtrip()


@pytest.mark.parametrize("then", ["reset", "hang"])
async def test_dropped_reply_after_the_write_happened(make_client: Factory, then: str) -> None:
    proxy = _proxy(make_client)
    client = make_client()
    await client.connect()
    await client.roundtrip()
    proxy.drop_replies(match=client.write_marker, then=then)  # type: ignore[arg-type]
    assert proxy.drops_pending == 1
    key = secrets.token_hex(4)
    errors = client.connection_errors if then == "reset" else client.timeout_errors
    await _fails_with(errors, lambda: client.write(key))
    assert await client.written(key), "the server must have executed the request"
    assert (proxy.replies_dropped, proxy.drops_pending) == (1, 0)
    fresh = make_client()
    await fresh.connect()
    await fresh.roundtrip()


async def test_modes_switch_at_runtime(make_client: Factory) -> None:
    proxy = _proxy(make_client)
    client = make_client()
    await client.connect()
    for _ in range(2):
        proxy.black_hole()
        await _fails_with(client.timeout_errors, make_client().connect)
        proxy.refuse()
        await _fails_with(client.connection_errors, make_client().connect)
        proxy.pass_through()
        ok = make_client()
        await ok.connect()
        await ok.roundtrip()
    assert proxy.mode == "pass_through"
