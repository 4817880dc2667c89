# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Per-session isolation: a fresh database, Redis key prefix and S3 bucket, removed afterwards."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._services import PostgresService, RedisService, S3Service

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a private event loop in another thread.

    Safe to call from sync fixtures even while a test's event loop is running.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="forktex-testing-sync")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def unique_name(kind: str) -> str:
    """A lower-case name that no other session uses, e.g. ``forktex_test_3f9a1c2b``."""
    return f"forktex_test_{kind}{secrets.token_hex(4)}"


async def _pg_connect(server: PostgresService) -> Any:
    import asyncpg

    return await asyncpg.connect(server.dsn, timeout=30)


def wait_for_postgres(server: PostgresService, timeout: float = 60) -> None:
    """Block until ``server`` accepts connections."""

    async def attempt() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                conn = await _pg_connect(server)
                await conn.close()
                return
            except (TimeoutError, OSError, ConnectionError) as exc:
                if loop.time() > deadline:
                    raise TimeoutError(f"PostgreSQL at {server} not reachable") from exc
                await asyncio.sleep(0.1)
            except Exception as exc:  # asyncpg's "starting up" errors
                if loop.time() > deadline:
                    raise TimeoutError(f"PostgreSQL at {server} not ready") from exc
                await asyncio.sleep(0.1)

    run_sync(attempt())


def create_database(server: PostgresService, name: str | None = None) -> PostgresService:
    """Create a fresh database on ``server`` and return the service pointing at it.

    Example::

        other = create_database(forktex_postgres_server)  # a unique name; or name="reports"
        try:
            engine = create_async_engine(other.url)
        finally:
            drop_database(forktex_postgres_server, other.database)
    """
    name = name or unique_name("")

    async def go() -> None:
        conn = await _pg_connect(server)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run_sync(go())
    return server.with_database(name)


def drop_database(server: PostgresService, name: str) -> None:
    """Drop database ``name`` on ``server``, disconnecting anyone still using it.

    Example::

        scratch = create_database(forktex_postgres_server)
        drop_database(forktex_postgres_server, scratch.database)  # a second drop is fine too
    """

    async def go() -> None:
        conn = await _pg_connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_sync(go())


def delete_redis_prefix(service: RedisService) -> int:
    """Delete every key that starts with the session's prefix; return how many."""
    import redis

    client = redis.Redis(
        host=service.host, port=service.port, db=service.db, password=service.password
    )
    deleted: int = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=service.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += client.unlink(*batch)  # type: ignore[operator]
                batch.clear()
        if batch:
            deleted += client.unlink(*batch)  # type: ignore[operator]
    finally:
        client.close()
    return deleted


def flush_redis(service: RedisService) -> None:
    """Delete every key in the service's database (only for a server of our own)."""
    import redis

    client = redis.Redis(
        host=service.host, port=service.port, db=service.db, password=service.password
    )
    try:
        client.flushdb()
    finally:
        client.close()


def s3_client(service: S3Service) -> Any:
    """A boto3 S3 client for ``service`` (boto3 comes with moto)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=service.endpoint_url,
        aws_access_key_id=service.access_key,
        aws_secret_access_key=service.secret_key,
        region_name=service.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def create_bucket(service: S3Service) -> None:
    """Create the session's bucket."""
    s3_client(service).create_bucket(Bucket=service.bucket)


def destroy_bucket(service: S3Service) -> None:
    """Delete every object in the session's bucket, then the bucket."""
    client = s3_client(service)
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=service.bucket):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=service.bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=service.bucket)
