# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Fixtures for forktex-core-cache: a client on the session's real Redis, per-test prefix,
a fake Redis answering chosen commands with error replies."""

from __future__ import annotations

import atexit
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio
from hypothesis.configuration import set_hypothesis_home_dir

from forktex_core import cache
from forktex_core.testing import RedisService

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fake_resp_server import FakeRedis  # noqa: E402

# Hypothesis caches go to a temporary directory removed at exit, not to the work tree (they are
# written while test modules are imported, before any fixture could redirect them).
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="forktex-cache-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)


@pytest.fixture
def prefix(forktex_redis: RedisService) -> str:
    """A key prefix of this test's own, under the session's prefix."""
    return f"{forktex_redis.prefix}{secrets.token_hex(3)}:"


@pytest.fixture
async def cache_client(forktex_redis: RedisService, prefix: str) -> AsyncIterator[str]:
    """forktex_core.cache initialised on the session Redis with this test's prefix."""
    await cache.init(forktex_redis.url, prefix=prefix)
    try:
        yield prefix
    finally:
        await cache.close()


@pytest.fixture
async def raw(forktex_redis: RedisService) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client on the same server, to check what was really written."""
    client = redis.asyncio.Redis.from_url(forktex_redis.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def dead_url() -> str:
    """URL of a port where nothing listens: "Redis is down"."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
async def fake_redis(forktex_redis: RedisService) -> AsyncIterator[FakeRedis]:
    """A :class:`FakeRedis` in front of the session's Redis: every command reaches the real
    server until the test calls ``fake_redis.fail(reply, *commands)``."""
    async with FakeRedis(upstream=(forktex_redis.host, forktex_redis.port)) as server:
        yield server
