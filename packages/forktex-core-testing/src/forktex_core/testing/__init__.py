# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-testing: real Postgres, Redis and S3 for any pytest suite.

Installing the package registers the pytest plugin; tests just ask for the fixtures::

    async def test_roundtrip(forktex_async_engine):
        async with forktex_async_engine.connect() as conn:
            assert (await conn.execute(text("select 1"))).scalar() == 1

Fixtures: ``forktex_postgres`` / ``forktex_postgres_url`` / ``forktex_new_database`` /
``forktex_async_engine``, ``forktex_redis`` / ``forktex_redis_url`` / ``forktex_redis_cluster``,
``forktex_s3``; ``forktex_otel`` (the OpenTelemetry SDK recording in memory, a
:class:`Telemetry`; extra ``[otel]``; :func:`hide_otel_sdk` for tests without the
SDK); for fault tests ``forktex_fault_proxy`` (a
:class:`FaultProxy` in front of any of them), ``forktex_restartable_postgres`` and
``forktex_restartable_redis`` (private servers a test may restart). The helpers below
start the same services outside pytest (demos, benchmarks, fault tests of your own).
"""

from ._docker import docker_available
from ._embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedS3, LocalRedisCluster
from ._fresh import run_python
from ._isolate import create_database, drop_database
from ._otel import Telemetry, hide_otel_sdk
from ._proxy import FaultProxy
from ._requests import WireProtocol
from ._resolve import (
    ServiceURLError,
    parse_postgres_url,
    parse_redis_url,
    parse_s3_url,
    resolve_postgres,
    resolve_redis,
    resolve_s3,
)
from ._restartable import Restartable
from ._services import (
    PostgresService,
    RedisClusterService,
    RedisService,
    S3Service,
    mask_url,
)

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedS3",
    "FaultProxy",
    "LocalRedisCluster",
    "PostgresService",
    "RedisClusterService",
    "RedisService",
    "Restartable",
    "S3Service",
    "ServiceURLError",
    "Telemetry",
    "WireProtocol",
    "create_database",
    "docker_available",
    "drop_database",
    "hide_otel_sdk",
    "mask_url",
    "parse_postgres_url",
    "parse_redis_url",
    "parse_s3_url",
    "resolve_postgres",
    "resolve_redis",
    "resolve_s3",
    "run_python",
]
