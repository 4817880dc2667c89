# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Each session gets its own database, key prefix and bucket, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest
import redis

from forktex_core.testing import PostgresService, RedisService, S3Service
from forktex_core.testing._isolate import s3_client

INNER_TEST = """
import json, os, redis
from forktex_core.testing._isolate import s3_client

def test_inner(forktex_postgres, forktex_redis, forktex_s3, forktex_new_database):
    extra = forktex_new_database()
    client = redis.Redis(host=forktex_redis.host, port=forktex_redis.port, db=forktex_redis.db)
    for i in range(1200):  # more than one UNLINK batch
        client.set(forktex_redis.prefix + str(i), i)
    s3_client(forktex_s3).put_object(Bucket=forktex_s3.bucket, Key="a/b.txt", Body=b"x")
    with open(os.environ["RECORD"], "w") as f:
        json.dump({"db": forktex_postgres.database, "extra": extra.database,
                   "prefix": forktex_redis.prefix, "bucket": forktex_s3.bucket}, f)
"""


async def _databases(server: PostgresService) -> set[str]:
    conn = await asyncpg.connect(server.dsn)
    try:
        return {r[0] for r in await conn.fetch("select datname from pg_database")}
    finally:
        await conn.close()


def test_session_resources_are_removed(
    pytester: pytest.Pytester,
    forktex_postgres_server: PostgresService,
    forktex_redis: RedisService,
    forktex_s3: S3Service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = tmp_path / "record.json"
    # A key outside any session prefix must survive the inner session's cleanup.
    bystander = redis.Redis(host=forktex_redis.host, port=forktex_redis.port, db=forktex_redis.db)
    bystander.set(forktex_redis.prefix + "bystander", 1)
    monkeypatch.setenv("RECORD", str(record))
    monkeypatch.setenv("FORKTEX_TEST_POSTGRES_URL", forktex_postgres_server.dsn)
    monkeypatch.setenv("FORKTEX_TEST_REDIS_URL", forktex_redis.url)
    monkeypatch.setenv(
        "FORKTEX_TEST_S3_URL",
        f"http://{forktex_s3.access_key}:{forktex_s3.secret_key}@{forktex_s3.endpoint}",
    )
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*forktex-core-testing services: postgres: env*"])
    assert not (pytester.path / ".forktex-test").exists(), "the work directory must go too"

    seen = json.loads(record.read_text())
    databases = asyncio.run(_databases(forktex_postgres_server))
    assert seen["db"] not in databases
    assert seen["extra"] not in databases
    assert seen["prefix"] != forktex_redis.prefix
    assert list(bystander.scan_iter(match=seen["prefix"] + "*")) == []
    assert bystander.get(forktex_redis.prefix + "bystander") == b"1"
    buckets = {b["Name"] for b in s3_client(forktex_s3).list_buckets()["Buckets"]}
    assert seen["bucket"] not in buckets
    assert forktex_s3.bucket in buckets
    bystander.close()


def test_fixture_services_are_usable(
    forktex_postgres: PostgresService,
    forktex_postgres_url: str,
    forktex_redis_url: str,
    forktex_redis: RedisService,
) -> None:
    assert forktex_postgres.database.startswith("forktex_test_")
    assert forktex_postgres_url == forktex_postgres.url
    assert forktex_redis_url == forktex_redis.url
    assert forktex_redis.prefix.startswith("forktex-test:")


async def test_async_engine_fixture(forktex_async_engine: object) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(forktex_async_engine, AsyncEngine)
    async with forktex_async_engine.connect() as conn:
        assert (
            (await conn.execute(text("select current_database()")))
            .scalar()
            .startswith("forktex_test_")
        )


def test_redis_cluster_fixture(forktex_redis_cluster: object) -> None:
    from redis.cluster import RedisCluster

    from forktex_core.testing import RedisClusterService

    assert isinstance(forktex_redis_cluster, RedisClusterService)
    assert len(forktex_redis_cluster.nodes) == 3
    host, port = forktex_redis_cluster.nodes[0]
    client = RedisCluster(host=host, port=port)
    try:
        keys = [forktex_redis_cluster.prefix + str(i) for i in range(30)]
        for key in keys:
            client.set(key, 1)
        # Keys spread over more than one primary: it really is a cluster.
        nodes = {client.get_node_from_key(key).name for key in keys}
        assert len(nodes) > 1
        assert client.delete(*keys) == 30
    finally:
        client.close()
