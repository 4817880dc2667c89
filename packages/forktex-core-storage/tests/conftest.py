# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Fixtures: one behavioural suite runs against S3 (real server via forktex-core-testing) and
the local filesystem backend."""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from forktex_core.storage import Credentials, StorageClient

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from storage_fault_support import FakeS3, PrivateS3  # noqa: E402

CALLBACK_SECRET = b"s" * 32


# Hypothesis' caches (its scan of source constants runs during collection, before any
# fixture) go to a temporary directory removed at the end of the run, not the work tree.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="forktex-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)


def s3_client(forktex_s3: Any, **kwargs: Any) -> StorageClient:
    """A StorageClient on the session's S3 bucket."""
    kwargs.setdefault("bucket", forktex_s3.bucket)
    return StorageClient(
        endpoint=forktex_s3.endpoint_url,
        credentials=Credentials(forktex_s3.access_key, forktex_s3.secret_key),
        region=forktex_s3.region,
        **kwargs,
    )


@pytest.fixture(params=["s3", "fs"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageClient]:
    """A client whose keys live under a fresh prefix-free namespace (fresh bucket dir for fs)."""
    if request.param == "s3":
        client = s3_client(request.getfixturevalue("forktex_s3"))
    else:
        client = StorageClient(
            endpoint=f"file://{tmp_path}/store",
            bucket="files",
            callback_secret=CALLBACK_SECRET,
            public_base_url="https://files.example.com/storage",
        )
        await client.ensure_bucket()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def make_s3(forktex_s3: Any) -> Any:
    """Factory: ``make_s3(**kwargs)`` builds a StorageClient on the session's S3 server."""
    return lambda **kwargs: s3_client(forktex_s3, **kwargs)


@pytest.fixture
def prefix() -> str:
    """A unique key prefix so tests sharing the session bucket never see each other's objects."""
    return f"t-{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def private_s3() -> Iterator[PrivateS3]:
    """An S3 server of this test's own behind a fault proxy, which it may stop and restart."""
    server = PrivateS3()
    server.start()
    server.proxy.start()
    try:
        yield server
    finally:
        server.stop()
        server.proxy.stop()


@pytest.fixture
async def fake_s3() -> AsyncIterator[FakeS3]:
    """An HTTP server answering with the error replies a test puts in ``fake_s3.replies``."""
    server = FakeS3()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
