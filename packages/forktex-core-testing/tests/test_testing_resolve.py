# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Resolution order: explicit URL → testcontainers (when Docker answers) → embedded."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import asyncpg
import pytest
import redis

from forktex_core.testing import (
    PostgresService,
    RedisService,
    S3Service,
    ServiceURLError,
    _docker,
    docker_available,
    mask_url,
    parse_postgres_url,
    parse_redis_url,
    parse_s3_url,
    resolve_postgres,
    resolve_redis,
    resolve_s3,
)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def test_env_url_wins_for_postgres(
    forktex_postgres_server: PostgresService, tmp_path: Path
) -> None:
    server, stop = resolve_postgres(forktex_postgres_server.dsn, tmp_path)
    assert server.source == "env"
    assert (server.host, server.port) == (
        forktex_postgres_server.host,
        forktex_postgres_server.port,
    )
    stop()  # nothing to stop: the server belongs to whoever gave the URL
    assert _port_open(server.host, server.port)
    assert not any(tmp_path.iterdir()), "an env URL must not start anything"


def test_env_url_wins_for_redis(forktex_redis: RedisService, tmp_path: Path) -> None:
    (host, port, db, _pw, source), stop = resolve_redis(forktex_redis.url, tmp_path)
    assert (host, port, db, source) == (
        forktex_redis.host,
        forktex_redis.port,
        forktex_redis.db,
        "env",
    )
    stop()
    assert _port_open(host, port)


def test_env_url_wins_for_s3() -> None:
    (host, port, secure, access, secret, region, source), _stop = resolve_s3(
        "https://AK:S%2Fcret@s3.internal:9443?region=eu-central-1"
    )
    assert (host, port, secure, access, secret, region, source) == (
        "s3.internal",
        9443,
        True,
        "AK",
        "S/cret",
        "eu-central-1",
        "env",
    )


def test_docker_ping_fails_fast_without_a_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    # A port nothing listens on: the ping must answer False quickly, not raise.
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    start = time.monotonic()
    assert docker_available(timeout=1) is False
    assert time.monotonic() - start < 10


def test_docker_is_consulted_before_embedded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # When the daemon answers, the container path is taken; we record the call instead of
    # starting Docker (no daemon on this machine) and check the embedded path was not used.
    calls: list[str] = []

    def fake_start_redis() -> tuple[str, int, object]:
        calls.append("container")
        raise RuntimeError("container path taken")

    monkeypatch.setattr(_docker, "docker_available", lambda timeout=2.0: True)
    monkeypatch.setattr(_docker, "start_redis", fake_start_redis)
    with pytest.raises(RuntimeError, match="container path taken"):
        resolve_redis(None, tmp_path)
    assert calls == ["container"]
    assert not (tmp_path / "redis").exists()


def test_embedded_postgres_starts_and_cleans_up(tmp_path: Path) -> None:
    server, stop = resolve_postgres(None, tmp_path, docker=False)
    assert server.source == "embedded"

    async def version() -> str:
        conn = await asyncpg.connect(server.dsn)
        try:
            return str(await conn.fetchval("show server_version"))
        finally:
            await conn.close()

    import asyncio

    assert asyncio.run(version())
    assert (tmp_path / "postgres").exists()
    stop()
    assert not (tmp_path / "postgres").exists()
    assert not _port_open(server.host, server.port)


def test_embedded_redis_starts_and_cleans_up(tmp_path: Path) -> None:
    (host, port, db, _pw, source), stop = resolve_redis(None, tmp_path, docker=False)
    assert source == "embedded"
    client = redis.Redis(host=host, port=port, db=db)
    assert client.ping()
    # Keeps nothing on disk.
    assert client.config_get("save")["save"] == ""
    client.close()
    stop()
    assert not _port_open(host, port)
    assert not (tmp_path / "redis").exists()


def test_embedded_s3_starts_and_stops() -> None:
    (host, port, *_rest, source), stop = resolve_s3(None, docker=False)
    assert source == "embedded"
    assert _port_open(host, port)
    stop()
    deadline = time.monotonic() + 5
    while _port_open(host, port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _port_open(host, port)


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/db", "postgresql:///nohost", "not a url"],
)
def test_bad_postgres_url(url: str) -> None:
    with pytest.raises(ServiceURLError, match="FORKTEX_TEST_POSTGRES_URL"):
        parse_postgres_url(url)


@pytest.mark.parametrize("url", ["http://localhost:6379", "redis://localhost:6379/x", "redis://"])
def test_bad_redis_url(url: str) -> None:
    with pytest.raises(ServiceURLError, match="FORKTEX_TEST_REDIS_URL"):
        parse_redis_url(url)


@pytest.mark.parametrize("url", ["s3://bucket", "http://localhost:9000", "ftp://a:b@h"])
def test_bad_s3_url(url: str) -> None:
    with pytest.raises(ServiceURLError, match="FORKTEX_TEST_S3_URL"):
        parse_s3_url(url)


def test_bad_url_error_hides_the_password() -> None:
    with pytest.raises(ServiceURLError) as info:
        parse_postgres_url("mysql://root:hunter2@localhost/db")
    assert "hunter2" not in str(info.value)


def test_secrets_never_in_repr_or_str() -> None:
    pg = PostgresService("h", 5432, "app", "hunter2", "db", "env")
    rd = RedisService("h", 6379, 0, "hunter2", "p:", "env")
    s3 = S3Service("h", 9000, "AK", "hunter2", "us-east-1", False, "b", "env")
    for value in (pg, rd, s3):
        assert "hunter2" not in repr(value)
        assert "hunter2" not in str(value)
    assert "hunter2" in pg.dsn  # the URL itself still carries it for drivers
    assert mask_url("redis://:hunter2@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"


def test_postgres_urls() -> None:
    pg = parse_postgres_url("postgresql+asyncpg://app:p%40ss@db.local:6543/main")
    assert (pg.user, pg.password, pg.host, pg.port, pg.database) == (
        "app",
        "p@ss",
        "db.local",
        6543,
        "main",
    )
    assert pg.url == "postgresql+asyncpg://app:p%40ss@db.local:6543/main"
    assert pg.dsn == "postgresql://app:p%40ss@db.local:6543/main"
    assert pg.with_database("other").dsn.endswith("/other")
