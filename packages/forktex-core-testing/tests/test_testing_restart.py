# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Restartable private servers: stopped (cleanly or by a crash) and started again on the same
port with the same data; clients reconnect. The shared servers are never touched."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import asyncpg
import pytest
import redis

from forktex_core.testing import (
    EmbeddedRedis,
    PostgresService,
    RedisService,
    Restartable,
    parse_postgres_url,
    parse_redis_url,
)

HANG = 10.0
PG_CONNECTION_ERRORS = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, ConnectionError)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("crash", [False, True], ids=["clean", "crash"])
async def test_postgres_restart_keeps_data_and_clients_reconnect(
    forktex_restartable_postgres: Restartable[PostgresService], crash: bool
) -> None:
    pg = forktex_restartable_postgres
    port = pg.service.port
    conn = await asyncpg.connect(pg.service.dsn)
    await conn.execute("create table kept (x int)")
    await conn.execute("insert into kept values (1)")  # committed before the restart
    pool = await asyncpg.create_pool(pg.service.dsn, min_size=1, max_size=1)
    assert await pool.fetchval("select 1") == 1

    await asyncio.to_thread(pg.restart, crash=crash)

    assert pg.running and pg.service.port == port
    with pytest.raises(PG_CONNECTION_ERRORS):  # the old connection is gone ...
        await asyncio.wait_for(conn.fetchval("select 1"), HANG)
    conn.terminate()
    # ... and the pool replaces it: at most one failed attempt, then the same data.
    for _attempt in range(2):
        try:
            rows = await asyncio.wait_for(pool.fetchval("select count(*) from kept"), HANG)
            break
        except PG_CONNECTION_ERRORS:
            continue
    assert rows == 1
    await pool.close()


@pytest.mark.parametrize("crash", [False, True], ids=["clean", "crash"])
def test_redis_restart_keeps_data_and_the_client_reconnects(
    forktex_restartable_redis: Restartable[RedisService], crash: bool
) -> None:
    rd = forktex_restartable_redis
    port = rd.service.port
    client = redis.Redis.from_url(rd.service.url, socket_timeout=HANG)
    key = rd.service.prefix + "kept"
    client.set(key, "v")  # acknowledged before the restart: kept even through SIGKILL

    rd.restart(crash=crash)

    assert rd.running and rd.service.port == port
    assert client.get(key) == b"v"  # the same client object, a new connection
    client.close()


async def test_shutdown_refuses_until_start(
    forktex_restartable_postgres: Restartable[PostgresService],
    forktex_restartable_redis: Restartable[RedisService],
) -> None:
    for service in (forktex_restartable_postgres, forktex_restartable_redis):
        service.shutdown()
        assert not service.running
        assert not _listening(service.service.port)
        service.shutdown()  # already down: nothing to do
        service.start()
        assert service.running
        assert _listening(service.service.port)
        service.start()  # already running: nothing to do
    conn = await asyncpg.connect(forktex_restartable_postgres.service.dsn)
    assert await conn.fetchval("select 1") == 1
    await conn.close()
    assert "running" in repr(forktex_restartable_redis)


def test_restartable_servers_are_private(
    forktex_restartable_postgres: Restartable[PostgresService],
    forktex_restartable_redis: Restartable[RedisService],
) -> None:
    shared_ports = set()
    if os.environ.get("FORKTEX_TEST_POSTGRES_URL"):
        shared_ports.add(parse_postgres_url(os.environ["FORKTEX_TEST_POSTGRES_URL"]).port)
    if os.environ.get("FORKTEX_TEST_REDIS_URL"):
        shared_ports.add(parse_redis_url(os.environ["FORKTEX_TEST_REDIS_URL"])[1])
    for service in (forktex_restartable_postgres.service, forktex_restartable_redis.service):
        assert (service.host, service.source) == ("127.0.0.1", "embedded")
        assert service.port not in shared_ports


def test_restart_bad_downtime(forktex_restartable_redis: Restartable[RedisService]) -> None:
    for downtime in (-1, "1", True, float("nan")):
        with pytest.raises(ValueError, match="downtime"):
            forktex_restartable_redis.restart(downtime=downtime)  # type: ignore[arg-type]
    assert forktex_restartable_redis.running  # a refused call stops nothing


def test_embedded_redis_restart_reports_a_taken_port(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path / "a")
    port = first.start()
    second = EmbeddedRedis(tmp_path / "b")
    try:
        with pytest.raises(RuntimeError, match=f"port {port} exited"):
            second.start(port)  # fails at once, not after the 15 s readiness wait
    finally:
        second.stop()
        first.stop()


RESTART_LEFT_DOWN = """
import asyncpg, redis

def test_leaves_both_down(forktex_restartable_postgres, forktex_restartable_redis):
    forktex_restartable_postgres.shutdown(crash=True)
    forktex_restartable_redis.shutdown(crash=True)

async def test_next_test_finds_them_running(forktex_restartable_postgres,
                                            forktex_restartable_redis):
    conn = await asyncpg.connect(forktex_restartable_postgres.service.dsn)
    assert await conn.fetchval("select count(*) from pg_tables where tablename='t'") == 0
    await conn.close()
    assert redis.Redis.from_url(forktex_restartable_redis.service.url).dbsize() == 0

def test_writes(forktex_restartable_postgres, forktex_restartable_redis):
    import asyncio
    async def go():
        conn = await asyncpg.connect(forktex_restartable_postgres.service.dsn)
        await conn.execute("create table t (x int)")
        await conn.close()
    asyncio.run(go())
    redis.Redis.from_url(forktex_restartable_redis.service.url).set("k", 1)

def test_starts_clean(forktex_restartable_postgres, forktex_restartable_redis):
    assert redis.Redis.from_url(forktex_restartable_redis.service.url).dbsize() == 0
"""


def test_fixtures_restore_the_server_and_isolate_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=RESTART_LEFT_DOWN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*postgres-restartable: embedded*redis-restartable: embedded*"])
    assert not (pytester.path / ".forktex-test").exists()
