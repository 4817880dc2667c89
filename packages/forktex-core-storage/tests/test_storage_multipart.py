# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Large bodies go up as multipart with about one part in memory."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from forktex_core.storage import StorageClient

MiB = 1024 * 1024


def _parts_on_server(s3: Any, key: str) -> int:
    """How many parts of the in-progress multipart upload of ``key`` the server holds."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
        config=Config(s3={"addressing_style": "path"}),
    )
    uploads = client.list_multipart_uploads(Bucket=s3.bucket, Prefix=key).get("Uploads", [])
    if not uploads:
        return 0
    parts = client.list_parts(Bucket=s3.bucket, Key=key, UploadId=uploads[0]["UploadId"])
    return len(parts.get("Parts", []))


async def test_20mb_stream_multipart_bounded_memory(
    make_s3: Any, prefix: str, forktex_s3: Any
) -> None:
    """A 20 MiB async stream is uploaded part by part while it is being produced.

    moto runs in this process and keeps the object in memory, so process-wide memory cannot
    isolate the client; instead the producer checks, every time it has produced another part,
    that the server already holds all but the last two parts - the client reads at most about
    one part ahead of what it has uploaded, never the whole body.
    """
    part = 5 * MiB
    client: StorageClient = make_s3(part_size=part)
    total = 20 * MiB
    chunk = 64 * 1024
    produced = 0
    checks: list[tuple[int, int]] = []
    digest = hashlib.md5(usedforsecurity=False)
    key = prefix + "exports/big.bin"

    async def body() -> AsyncIterator[bytes]:
        nonlocal produced
        block = bytes(range(256)) * (chunk // 256)
        while produced < total:
            if produced and produced % part == 0:
                checks.append((produced // part, _parts_on_server(forktex_s3, key)))
            data = block[: min(chunk, total - produced)]
            produced += len(data)
            digest.update(data)
            yield data

    try:
        info = await client.put(key, body())
        assert produced == total
        assert [c[0] for c in checks] == [1, 2, 3]
        for parts_produced, parts_uploaded in checks:
            assert parts_uploaded >= parts_produced - 1, checks
        assert checks[-1][1] >= 2  # uploads really happened while producing
        assert info.etag is not None and info.etag.endswith("-4")  # 4 parts of 5 MiB
        assert info.content_type == "application/octet-stream"
        st = await client.stat(key)
        assert st.size == total
        got = hashlib.md5(usedforsecurity=False)
        async for piece in client.stream(key, chunk_size=MiB):
            got.update(piece)
        assert got.hexdigest() == digest.hexdigest()
    finally:
        await client.delete(key)
        await client.aclose()


async def test_large_bytes_and_file_use_multipart(make_s3: Any, prefix: str, tmp_path: Any) -> None:
    client: StorageClient = make_s3(part_size=5 * MiB)
    body = b"%PDF-1.7\n" + b"x" * (11 * MiB)
    path = tmp_path / "big.pdf"
    path.write_bytes(body)
    try:
        a = await client.put(prefix + "a.pdf", body)
        b = await client.put(prefix + "b.pdf", path)
        assert a.etag and a.etag.endswith("-3") and b.etag == a.etag
        assert (await client.stat(prefix + "b.pdf")).content_type == "application/pdf"
        assert await client.get(prefix + "b.pdf") == body
    finally:
        await client.delete_many([prefix + "a.pdf", prefix + "b.pdf"])
        await client.aclose()


async def test_small_stream_is_a_single_put(make_s3: Any, prefix: str) -> None:
    client: StorageClient = make_s3()

    async def body() -> AsyncIterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    try:
        info = await client.put(prefix + "s.json", body())
        assert info.etag and "-" not in info.etag
        assert info.content_type == "application/json"
    finally:
        await client.aclose()
