# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""FaultProxy on the wire (raw sockets: RST vs FIN, held bytes, refused port) and its API:
URL/service rewriting, targets, lifecycle and bad input."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
import redis

from forktex_core.testing import (
    FaultProxy,
    PostgresService,
    RedisClusterService,
    RedisService,
    S3Service,
)
from forktex_core.testing._procs import free_port

PING = b"*1\r\n$4\r\nPING\r\n"
SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
HANG = 10.0

MakeProxy = Callable[..., FaultProxy]


def _connect(proxy: FaultProxy, timeout: float = HANG) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=timeout)


def _ping(sock: socket.socket) -> bytes:
    sock.sendall(PING)
    return sock.recv(64)


def test_reset_is_a_tcp_rst_and_stop_a_fin(
    forktex_fault_proxy: MakeProxy, forktex_redis: RedisService
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    first = _connect(proxy)
    assert _ping(first) == b"+PONG\r\n"
    assert proxy.open_connections == 1
    assert proxy.reset_connections() == 1
    with pytest.raises(ConnectionResetError):
        first.recv(64)  # a FIN would read b"" here
    first.close()

    second = _connect(proxy)  # the mode is kept: new connections are served
    assert _ping(second) == b"+PONG\r\n"
    proxy.stop()
    assert second.recv(64) == b""  # stopping closes politely
    second.close()


def test_black_hole_holds_bytes_and_heal_delivers_them(
    forktex_fault_proxy: MakeProxy, forktex_redis: RedisService
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    sock = _connect(proxy)
    assert _ping(sock) == b"+PONG\r\n"
    proxy.black_hole()
    assert proxy.mode == "black_hole"
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        _ping(sock)
    proxy.heal()
    sock.settimeout(HANG)
    assert sock.recv(64) == b"+PONG\r\n"  # held, not lost
    sock.close()


def test_black_hole_accepts_new_connections_and_never_answers(
    forktex_fault_proxy: MakeProxy, forktex_postgres: PostgresService
) -> None:
    proxy = forktex_fault_proxy(forktex_postgres)
    proxy.black_hole()
    sock = _connect(proxy)  # the TCP connection is accepted ...
    sock.sendall(SSL_REQUEST)
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(1)  # ... and nothing ever comes back
    assert proxy.accepted == 1
    proxy.pass_through()
    sock.settimeout(HANG)
    assert sock.recv(1) == b"N"  # Postgres answers the held SSLRequest once healed
    sock.close()


def test_refuse_closes_the_port_but_keeps_it(
    forktex_fault_proxy: MakeProxy, forktex_redis: RedisService
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    port = proxy.port
    open_one = _connect(proxy)
    assert _ping(open_one) == b"+PONG\r\n"  # accepted and forwarding before the refusal
    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy)
    assert _ping(open_one) == b"+PONG\r\n"
    proxy.black_hole()  # leaving refuse listens again on the same port
    assert proxy.port == port
    silent = _connect(proxy)
    silent.close()
    proxy.heal()
    again = _connect(proxy)
    assert _ping(again) == b"+PONG\r\n"
    for sock in (open_one, again):
        sock.close()


def test_unreachable_target_resets_the_client(forktex_fault_proxy: MakeProxy) -> None:
    proxy = forktex_fault_proxy(("127.0.0.1", free_port()))
    start = time.monotonic()
    with pytest.raises(ConnectionResetError):  # at connect() already when the RST is quick
        with _connect(proxy) as sock:
            _ping(sock)
            sock.recv(64)
    assert time.monotonic() - start < HANG


def test_latency_keeps_the_order_of_replies(
    forktex_fault_proxy: MakeProxy, forktex_redis: RedisService
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    proxy.set_latency(0.2)
    sock = _connect(proxy)
    start = time.monotonic()
    sock.sendall(b"*2\r\n$4\r\nECHO\r\n$1\r\na\r\n")
    sock.sendall(b"*2\r\n$4\r\nECHO\r\n$1\r\nb\r\n")
    sock.sendall(b"*2\r\n$4\r\nECHO\r\n$1\r\nc\r\n")
    received = b""
    while received.count(b"\r\n") < 6:
        received += sock.recv(64)
    assert time.monotonic() - start >= 0.2
    assert received == b"$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    sock.close()


async def test_url_keeps_credentials_database_and_query(
    forktex_fault_proxy: MakeProxy, forktex_postgres: PostgresService
) -> None:
    proxy = forktex_fault_proxy(forktex_postgres)
    here = f"{proxy.host}:{proxy.port}"
    target = f"{forktex_postgres.host}:{forktex_postgres.port}"
    assert (
        proxy.url(f"postgresql+asyncpg://app:p%40ss@{target}/main?ssl=disable#x")
        == f"postgresql+asyncpg://app:p%40ss@{here}/main?ssl=disable#x"
    )
    assert proxy.url(f"postgresql://{target}") == f"postgresql://{here}"
    # localhost and 127.0.0.1 are the same target
    assert proxy.url(f"postgresql://u@localhost:{forktex_postgres.port}/d").endswith(f"@{here}/d")
    conn = await asyncpg.connect(proxy.url(forktex_postgres.dsn))
    try:
        assert await conn.fetchval("select current_database()") == forktex_postgres.database
    finally:
        await conn.close()


def test_url_refuses_another_target_and_hides_the_password(
    forktex_fault_proxy: MakeProxy, forktex_redis: RedisService
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    with pytest.raises(
        ValueError, match=r"points at 127\.0\.0\.1:1, but this proxy forwards to"
    ) as info:
        proxy.url("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in str(info.value)
    for bad in ("not a url", "redis://:pw@/0", "redis://h:port/0", "foo://h/0"):
        with pytest.raises(ValueError) as info:
            proxy.url(bad)
        assert "pw@" not in str(info.value)


def test_service_rewrites_any_plugin_service(
    forktex_fault_proxy: MakeProxy,
    forktex_redis: RedisService,
    forktex_postgres: PostgresService,
    forktex_s3: S3Service,
) -> None:
    for service in (forktex_redis, forktex_postgres, forktex_s3):
        proxy = forktex_fault_proxy(service)
        through: Any = proxy.service(service)
        assert type(through) is type(service)
        assert (through.host, through.port) == (proxy.host, proxy.port)
        assert through.source == service.source
    through_redis = forktex_fault_proxy(forktex_redis).service(forktex_redis)
    assert through_redis.prefix == forktex_redis.prefix
    client = redis.Redis.from_url(through_redis.url)
    assert client.ping()
    client.close()

    proxy = forktex_fault_proxy(forktex_redis)
    with pytest.raises(ValueError, match="forwards to"):
        proxy.service(forktex_postgres)
    with pytest.raises(TypeError, match=r"proxy\.url"):
        proxy.service("redis://127.0.0.1:6379/0")  # type: ignore[type-var]
    with pytest.raises(TypeError):
        proxy.service(RedisClusterService((("127.0.0.1", 1),), "p:"))  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("postgresql+asyncpg://u:p@db.local:6543/x", ("db.local", 6543, "postgres")),
        ("postgres://db.local/x", ("db.local", 5432, "postgres")),
        ("redis://:pw@cache:6380/2", ("cache", 6380, "redis")),
        ("rediss://cache/0", ("cache", 6379, "redis")),
        ("http://AK:SK@s3.local:9000?region=x", ("s3.local", 9000, "http")),
        ("https://s3.local", ("s3.local", 443, "http")),
        ("tcp://h:1234", ("h", 1234, "raw")),
        ("127.0.0.1:7000", ("127.0.0.1", 7000, "raw")),
        ("[::1]:7000", ("::1", 7000, "raw")),
        (("10.1.2.3", 99), ("10.1.2.3", 99, "raw")),
        (PostgresService("h", 1, "u", None, "d", "env"), ("h", 1, "postgres")),
        (RedisService("h", 2, 0, None, "p:", "env"), ("h", 2, "redis")),
        (S3Service("h", 3, "a", "s", "r", False, "b", "env"), ("h", 3, "http")),
    ],
)
def test_in_front_of_reads_every_target_form(target: Any, expected: tuple[str, int, str]) -> None:
    proxy = FaultProxy.in_front_of(target)
    assert (proxy.target_host, proxy.target_port, proxy.protocol) == expected
    assert FaultProxy.in_front_of(target, protocol="raw").protocol == "raw"


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("nohost", ValueError),
        ("h:port", ValueError),
        (":5432", ValueError),
        ("foo://h/x", ValueError),  # no port and no known default
        ("redis://h:99999/0", ValueError),
        (42, TypeError),
        (("h", "5432"), ValueError),
        (("", 5432), ValueError),
    ],
)
def test_in_front_of_bad_targets(target: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        FaultProxy.in_front_of(target)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("", 5432), {}, "host"),
        (("h", 0), {}, "1..65535"),
        (("h", 70000), {}, "port"),
        (("h", True), {}, "port"),
        (("h", 1), {"listen_port": -1}, "listen_port"),
        (("h", 1), {"connect_timeout": 0}, "connect_timeout"),
        (("h", 1), {"connect_timeout": float("nan")}, "connect_timeout"),
        (("h", 1), {"protocol": "mysql"}, "protocol"),
    ],
)
def test_constructor_bad_input(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FaultProxy(*args, **kwargs)


def test_fault_calls_bad_input(forktex_fault_proxy: MakeProxy, forktex_redis: RedisService) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    for seconds in (-1, "1", True, float("nan")):
        with pytest.raises(ValueError, match="latency"):
            proxy.set_latency(seconds)  # type: ignore[arg-type]
    for count in (0, -1, True, 1.5, "1"):
        with pytest.raises(ValueError, match="count"):
            proxy.drop_replies(count)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="then"):
        proxy.drop_replies(then="close")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"b'INCR'"):
        proxy.drop_replies(match="INCR")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="match"):
        proxy.drop_replies(match=42)  # type: ignore[arg-type]
    assert proxy.drops_pending == 0  # nothing armed by a refused call
    with pytest.raises(TimeoutError, match="saw 0 requests, not 1"):
        proxy.wait_for_requests(1, timeout=0.1)


def test_lifecycle(forktex_redis: RedisService) -> None:
    proxy = FaultProxy.in_front_of(forktex_redis)
    assert "stopped" in repr(proxy)
    with pytest.raises(RuntimeError, match="not started"):
        proxy.black_hole()
    with pytest.raises(RuntimeError, match="not started"):
        _ = proxy.port
    with proxy:
        assert proxy.mode == "pass_through"
        assert f"{proxy.address}, pass_through -> " in repr(proxy)
        with pytest.raises(RuntimeError, match="already started"):
            proxy.start()
        port = proxy.port
        sock = _connect(proxy)
        assert _ping(sock) == b"+PONG\r\n"
        # The address is taken while the proxy runs.
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            FaultProxy("127.0.0.1", forktex_redis.port, listen_port=port).start()
    proxy.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=HANG)
    sock.close()


async def test_async_context_manager(forktex_redis: RedisService) -> None:
    import redis.asyncio as aredis

    async with FaultProxy.in_front_of(forktex_redis) as proxy:
        client = aredis.from_url(proxy.url(forktex_redis.url), socket_timeout=1)
        assert await client.ping()
        proxy.black_hole()
        with pytest.raises(aredis.TimeoutError):
            await client.ping()
        proxy.heal()
        assert await client.ping()
        await client.aclose()
    with pytest.raises(RuntimeError, match="not started"):
        proxy.heal()
