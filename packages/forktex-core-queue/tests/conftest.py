# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Fixtures for forktex-core-queue: a per-test queue on the session's real Redis, worker
subprocesses, and Redis-polling waits (no fixed sleeps)."""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio
from hypothesis.configuration import set_hypothesis_home_dir

from forktex_core.testing import RedisService

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import queue_app  # noqa: E402
from queue_helpers import Recorded, Workers  # noqa: E402

# Hypothesis' caches (its scan of source constants runs during collection, before any
# fixture) go to a temporary directory removed at the end of the run, not the work tree.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="forktex-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)


@pytest.fixture
def queue_name(forktex_redis: RedisService) -> str:
    """A queue name of this test's own, under the session's key prefix."""
    return f"{forktex_redis.prefix}q{secrets.token_hex(3)}"


@pytest.fixture
async def app(forktex_redis: RedisService, queue_name: str) -> AsyncIterator[queue_app.App]:
    """The test tasks on this test's queue."""
    built = queue_app.build_app(forktex_redis.url, queue_name)
    try:
        yield built
    finally:
        await built.queue.close()


@pytest.fixture
async def raw(forktex_redis: RedisService) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client on the same server, to look at what was really written."""
    client = redis.asyncio.Redis.from_url(forktex_redis.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def recorded(raw: redis.asyncio.Redis, queue_name: str) -> Recorded:
    return Recorded(raw, queue_name)


@pytest.fixture
def workers(forktex_redis: RedisService, queue_name: str, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(forktex_redis.url, queue_name, tmp_path)
    try:
        yield w
    finally:
        w.stop_all()
