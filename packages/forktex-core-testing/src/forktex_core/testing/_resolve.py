# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Resolve each service in the documented order: explicit URL → testcontainers → embedded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from . import _docker, _embedded
from ._isolate import wait_for_postgres
from ._services import PostgresService, mask_url

Stopper = Callable[[], None]


def _nothing() -> None:
    return None


class ServiceURLError(ValueError):
    """A ``FORKTEX_TEST_*`` URL that cannot be used; the message says the expected form.

    Also a ``ValueError``.

    Example::

        parse_redis_url("http://127.0.0.1:6379")
        # raises ServiceURLError: FORKTEX_TEST_REDIS_URL='http://127.0.0.1:6379' is not a
        # Redis URL; expected redis://[:password@]host[:port][/db]
    """


def parse_postgres_url(url: str) -> PostgresService:
    """Parse ``postgresql[+driver]://user[:password]@host[:port][/database]``.

    Example::

        >>> parse_postgres_url("postgresql://postgres@127.0.0.1:5432/postgres").port
        5432
    """
    parts = urlsplit(url)
    if not parts.scheme.startswith(("postgresql", "postgres")) or not parts.hostname:
        raise ServiceURLError(
            f"FORKTEX_TEST_POSTGRES_URL={mask_url(url)!r} is not a PostgreSQL URL; "
            "expected postgresql://user[:password]@host[:port][/database]"
        )
    return PostgresService(
        host=parts.hostname,
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        database=parts.path.lstrip("/") or "postgres",
        source="env",
    )


def parse_redis_url(url: str) -> tuple[str, int, int, str | None]:
    """Parse ``redis://[:password@]host[:port][/db]`` into host, port, db and password.

    Example::

        >>> parse_redis_url("redis://127.0.0.1:6379/2")
        ('127.0.0.1', 6379, 2, None)
    """
    parts = urlsplit(url)
    db_text = parts.path.lstrip("/") or "0"
    if parts.scheme != "redis" or not parts.hostname or not db_text.isdigit():
        raise ServiceURLError(
            f"FORKTEX_TEST_REDIS_URL={mask_url(url)!r} is not a Redis URL; "
            "expected redis://[:password@]host[:port][/db]"
        )
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, parts.port or 6379, int(db_text), password


def parse_s3_url(url: str) -> tuple[str, int, bool, str, str, str]:
    """Parse ``http(s)://ACCESS_KEY:SECRET_KEY@host[:port][?region=...]``.

    Returns host, port, secure, access key, secret key and region.

    Example::

        >>> parse_s3_url("http://key:secret@127.0.0.1:9000?region=eu-central-1")
        ('127.0.0.1', 9000, False, 'key', 'secret', 'eu-central-1')
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.username:
        raise ServiceURLError(
            f"FORKTEX_TEST_S3_URL={mask_url(url)!r} is not an S3 URL; "
            "expected http(s)://ACCESS_KEY:SECRET_KEY@host[:port][?region=us-east-1]"
        )
    secure = parts.scheme == "https"
    region = parse_qs(parts.query).get("region", ["us-east-1"])[0]
    return (
        parts.hostname,
        parts.port or (443 if secure else 80),
        secure,
        unquote(parts.username),
        unquote(parts.password or ""),
        region,
    )


def resolve_postgres(
    env_url: str | None, workdir: Path, *, docker: bool | None = None
) -> tuple[PostgresService, Stopper]:
    """A PostgreSQL server (its admin database) and how to stop it.

    ``docker=None`` pings the daemon; pass ``False`` to skip testcontainers.

    Example::

        server, stop = resolve_postgres(None, Path(".forktex-test"), docker=False)  # embedded
        try:
            print(server.dsn)
        finally:
            stop()
    """
    if env_url:
        server = parse_postgres_url(env_url)
        wait_for_postgres(server, timeout=10)
        return server, _nothing
    if docker if docker is not None else _docker.docker_available():
        host, port, stop = _docker.start_postgres()
        server = PostgresService(host, port, "postgres", None, "postgres", "testcontainers")
        wait_for_postgres(server)
        return server, stop
    embedded = _embedded.EmbeddedPostgres(workdir / "postgres")
    try:
        server = embedded.start()
    except Exception:
        embedded.stop()
        raise
    return server, embedded.stop


def resolve_redis(
    env_url: str | None, workdir: Path, *, docker: bool | None = None
) -> tuple[tuple[str, int, int, str | None, str], Stopper]:
    """A Redis server as (host, port, db, password, source) and how to stop it.

    Example::

        (host, port, db, password, source), stop = resolve_redis(
            "redis://127.0.0.1:6379/0", Path(".forktex-test")
        )
        source  # 'env': the URL's server, and stop() does nothing
    """
    if env_url:
        host, port, db, password = parse_redis_url(env_url)
        return (host, port, db, password, "env"), _nothing
    if docker if docker is not None else _docker.docker_available():
        host, port, stop = _docker.start_redis()
        return (host, port, 0, None, "testcontainers"), stop
    embedded = _embedded.EmbeddedRedis(workdir / "redis")
    port = embedded.start()
    return ("127.0.0.1", port, 0, None, "embedded"), embedded.stop


def resolve_s3(
    env_url: str | None, *, docker: bool | None = None
) -> tuple[tuple[str, int, bool, str, str, str, str], Stopper]:
    """An S3 endpoint as (host, port, secure, access, secret, region, source) and a stopper.

    Example::

        (host, port, *_, source), stop = resolve_s3(None, docker=False)  # moto, embedded
        try:
            print(f"http://{host}:{port}")
        finally:
            stop()
    """
    if env_url:
        return (*parse_s3_url(env_url), "env"), _nothing
    access, secret = _embedded.EmbeddedS3.access_key, _embedded.EmbeddedS3.secret_key
    if docker if docker is not None else _docker.docker_available():
        host, port, stop = _docker.start_minio(access, secret)
        return (host, port, False, access, secret, "us-east-1", "testcontainers"), stop
    embedded = _embedded.EmbeddedS3()
    port = embedded.start()
    return ("127.0.0.1", port, False, access, secret, embedded.region, "embedded"), embedded.stop
