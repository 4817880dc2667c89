# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The filesystem backend under disk faults: every OS error becomes a storage error naming
the bucket and key (never the host path), and a write is all or nothing — bytes and record
together — even when the process is killed in the middle of it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from storage_fault_support import collect

from forktex_core.storage import (
    AccessDenied,
    BucketNotFound,
    StorageClient,
    StorageError,
    StorageUnavailable,
)

KEY = "invoices/2026-04/INV-1.pdf"
OLD = b"%PDF-1.7 old"
Op = Callable[[StorageClient], Awaitable[object]]


async def _all(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


OPERATIONS: dict[str, Op] = {
    "ensure_bucket": lambda c: c.ensure_bucket(),
    "put": lambda c: c.put(KEY, b"%PDF-1.7 new"),
    "get": lambda c: c.get(KEY),
    "stream": lambda c: collect(c.stream(KEY)),
    "stat": lambda c: c.stat(KEY),
    "delete": lambda c: c.delete(KEY),
    "list": lambda c: _all(c.list("invoices/")),
    "copy": lambda c: c.copy(KEY, KEY + ".copy"),
}


def _client(root: Path) -> StorageClient:
    return StorageClient(endpoint=f"file://{root}", bucket="files")


def _object_file(root: Path, key: str) -> Path:
    return root / "files" / "objects" / hashlib.sha256(key.encode()).hexdigest()


@contextlib.contextmanager
def _unprivileged(path: Path) -> Iterator[None]:
    """File access under ``path`` is denied for the duration: as root (who ignores file
    modes) by running as ``nobody``, otherwise by removing every permission."""
    if os.geteuid() == 0:
        os.seteuid(65534)
        try:
            yield
        finally:
            os.seteuid(0)
    else:
        mode = path.stat().st_mode
        path.chmod(0)
        try:
            yield
        finally:
            path.chmod(mode)


def _check(outcome: object, expected: type[StorageError], root: Path) -> None:
    assert type(outcome) is expected, repr(outcome)
    text = str(outcome)
    assert str(root) not in text, text  # no host path in the message
    assert "'files'" in text or expected is BucketNotFound
    assert isinstance(outcome.__cause__, OSError) or expected is BucketNotFound


async def _run(op: Op, client: StorageClient) -> object:
    try:
        return await op(client)
    except Exception as exc:
        return exc


@pytest.mark.parametrize("op", list(OPERATIONS))
async def test_root_that_is_a_file(op: str, tmp_path: Path) -> None:
    root = tmp_path / "not-a-dir"
    root.write_bytes(b"a file where the storage directory should be")
    outcome = await _run(OPERATIONS[op], _client(root))
    _check(outcome, StorageUnavailable if op == "ensure_bucket" else BucketNotFound, root)
    if op == "ensure_bucket":
        assert "ENOTDIR" in str(outcome) and "create the bucket" in str(outcome)


@pytest.mark.parametrize("op", [o for o in OPERATIONS if o != "ensure_bucket"])
async def test_object_path_that_is_a_directory(op: str, tmp_path: Path) -> None:
    client = _client(tmp_path)
    await client.ensure_bucket()
    _object_file(tmp_path, KEY).mkdir()
    outcome = await _run(OPERATIONS[op], client)
    _check(outcome, StorageUnavailable, tmp_path)
    assert "EISDIR" in str(outcome)
    if op != "list":
        assert KEY in str(outcome)


@pytest.mark.parametrize("op", list(OPERATIONS))
async def test_permission_denied(op: str, tmp_path: Path) -> None:
    client = _client(tmp_path)
    await client.ensure_bucket()
    await client.put(KEY, OLD)
    with _unprivileged(tmp_path):
        outcome = await _run(OPERATIONS[op], client)
    _check(outcome, AccessDenied, tmp_path)
    assert "permission denied" in str(outcome)
    if op not in ("list", "ensure_bucket"):
        assert KEY in str(outcome)
    assert await client.get(KEY) == OLD


@contextlib.contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """Writing past ``limit`` bytes fails with EFBIG, like a full disk fails a write."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.mark.parametrize("op", ["put", "copy"])
async def test_disk_error_mid_write_leaves_the_old_object(op: str, tmp_path: Path) -> None:
    client = _client(tmp_path)
    await client.ensure_bucket()
    big = b"%PDF-1.7 " + b"x" * (3 << 20)
    await client.put(KEY, OLD)
    await client.put(KEY + ".big", big)
    with _file_size_limit(1 << 20):
        if op == "put":
            outcome = await _run(lambda c: c.put(KEY, big), client)
        else:
            outcome = await _run(lambda c: c.copy(KEY + ".big", KEY), client)
    _check(outcome, StorageUnavailable, tmp_path)
    assert "EFBIG" in str(outcome) and KEY in str(outcome)
    assert await client.get(KEY) == OLD
    assert (await client.stat(KEY)).size == len(OLD)
    assert not [p for p in (tmp_path / "files" / "objects").iterdir() if p.name.startswith(".")]


async def test_bucket_removed_during_a_put(tmp_path: Path) -> None:
    client = _client(tmp_path)
    await client.ensure_bucket()

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * (1 << 20)  # one whole chunk: written before the stream goes on
        shutil.rmtree(tmp_path / "files")
        yield b"second chunk"

    # A given content type: nothing is read ahead to sniff one.
    outcome = await _run(
        lambda c: c.put(KEY, body(), content_type="application/octet-stream"), client
    )
    _check(outcome, BucketNotFound, tmp_path)


async def test_failing_body_stream_keeps_its_own_error_and_the_old_object(
    tmp_path: Path,
) -> None:
    client = _client(tmp_path)
    await client.ensure_bucket()
    await client.put(KEY, OLD)

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise RuntimeError("the caller's source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        await client.put(KEY, body())
    assert await client.get(KEY) == OLD
    assert not [p for p in (tmp_path / "files" / "objects").iterdir() if p.name.startswith(".")]


async def test_damaged_object_file_is_a_storage_error(tmp_path: Path) -> None:
    client = _client(tmp_path)
    await client.ensure_bucket()
    await client.put(KEY, OLD)
    _object_file(tmp_path, KEY).write_bytes(b"truncated")
    for op in ("get", "stat", "stream", "list"):
        outcome = await _run(OPERATIONS[op], client)
        assert type(outcome) is StorageError and "damaged" in str(outcome), repr(outcome)
        assert str(tmp_path) not in str(outcome)


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from forktex_core.storage import StorageClient

    async def main():
        storage = StorageClient(endpoint="file://" + sys.argv[1], bucket="files")
        await storage.ensure_bucket()
        n = 0
        while True:
            n += 1
            body = (b"%d:" % n) * (1 + n % 7) * 300
            await storage.put("k", body, metadata={"n": str(n), "size": str(len(body))})
            if n == 1:
                print("ready", flush=True)

    asyncio.run(main())
    """
)


def _kill_a_writer(root: Path, rng: random.Random) -> None:
    """Start a process putting versions of "k" in a loop; SIGKILL it at a random moment."""
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.05))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


async def test_process_killed_mid_put_leaves_a_whole_object(tmp_path: Path) -> None:
    """SIGKILL a writer at random moments: every time, the key holds one whole version —
    bytes, size, ETag and metadata of the same put."""
    client = _client(tmp_path)
    rng = random.Random(1)
    for _ in range(12):
        await asyncio.to_thread(_kill_a_writer, tmp_path, rng)
        data = await client.get("k")
        info = await client.stat("k")
        assert info.size == len(data) == int(info.metadata["size"])
        assert info.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert data.startswith(info.metadata["n"].encode() + b":")
        assert [o.key for o in [o async for o in client.list()]] == ["k"]
