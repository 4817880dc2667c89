# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The service descriptions the plugin hands to tests: URLs plus what is needed to use them."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``.

    Example::

        >>> mask_url("postgresql://app:s3cret@db:5432/app")
        'postgresql://app:***@db:5432/app'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class PostgresService:
    """A reachable PostgreSQL server and one database on it.

    ``url`` is the SQLAlchemy async URL (``postgresql+asyncpg://``); ``dsn`` is the plain
    libpq form (``postgresql://``) for asyncpg or psql. ``source`` says how it was resolved:
    ``"env"``, ``"testcontainers"`` or ``"embedded"``.

    Example::

        def test_something(forktex_postgres):
            engine = create_async_engine(forktex_postgres.url)
    """

    host: str
    port: int
    user: str
    password: str | None = field(repr=False)
    database: str
    source: str

    def _dsn(self, scheme: str, database: str) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{database}"

    @property
    def dsn(self) -> str:
        """libpq URL of this database (``postgresql://user@host:port/db``)."""
        return self._dsn("postgresql", self.database)

    @property
    def url(self) -> str:
        """SQLAlchemy async URL of this database (``postgresql+asyncpg://...``)."""
        return self._dsn("postgresql+asyncpg", self.database)

    def with_database(self, database: str) -> PostgresService:
        """The same server, another database on it."""
        return PostgresService(
            self.host, self.port, self.user, self.password, database, self.source
        )

    def __str__(self) -> str:
        return mask_url(self.dsn)


@dataclass(frozen=True)
class RedisService:
    """A reachable Redis server, a database number on it and a key prefix owned by this session.

    Tests must only write keys that start with ``prefix``; the plugin deletes them afterwards.

    Example::

        async def test_it(forktex_redis):
            client = redis.asyncio.from_url(forktex_redis.url)
            await client.set(forktex_redis.prefix + "k", "v")
    """

    host: str
    port: int
    db: int
    password: str | None = field(repr=False)
    prefix: str
    source: str

    @property
    def url(self) -> str:
        """``redis://`` URL including the database number."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{self.db}"

    def __str__(self) -> str:
        return mask_url(self.url)


@dataclass(frozen=True)
class RedisClusterService:
    """A local Redis Cluster: its start-up nodes as ``(host, port)`` pairs.

    Example::

        async def test_cluster(forktex_redis_cluster):
            client = RedisCluster.from_url(forktex_redis_cluster.url)
    """

    nodes: tuple[tuple[str, int], ...]
    prefix: str

    @property
    def url(self) -> str:
        """``redis://`` URL of the first node (a cluster client discovers the rest)."""
        host, port = self.nodes[0]
        return f"redis://{host}:{port}/0"


@dataclass(frozen=True)
class S3Service:
    """An S3-compatible endpoint, credentials, and a bucket owned by this session.

    ``endpoint`` is ``host:port`` (what MinIO-style clients take); ``endpoint_url`` adds the
    scheme (what boto3 takes). The secret key never appears in the repr.

    Example::

        def test_upload(forktex_s3):
            client = Minio(forktex_s3.endpoint, forktex_s3.access_key,
                           forktex_s3.secret_key, secure=forktex_s3.secure)
    """

    host: str
    port: int
    access_key: str
    secret_key: str = field(repr=False)
    region: str
    secure: bool
    bucket: str
    source: str

    @property
    def endpoint(self) -> str:
        """``host:port`` of the S3 server."""
        return f"{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """``http(s)://host:port`` of the S3 server."""
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"
