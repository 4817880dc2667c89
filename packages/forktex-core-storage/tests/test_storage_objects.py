# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""One behavioural suite, two backends (S3 on a real server, local filesystem)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from forktex_core.storage import (
    BucketNotFound,
    InvalidArgument,
    InvalidKey,
    ObjectNotFound,
    StorageClient,
    StorageError,
)


async def _agen(*chunks: bytes) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


async def test_put_bytes_get_stat_exists(storage: StorageClient, prefix: str) -> None:
    key = prefix + "docs/a.bin"
    info = await storage.put(key, b"\x00\x01payload", metadata={"owner": "u1"})
    assert info.key == key and info.size == 9 and info.content_type == "application/octet-stream"
    assert await storage.get(key) == b"\x00\x01payload"
    st = await storage.stat(key)
    assert (st.size, st.etag, st.content_type) == (9, info.etag, "application/octet-stream")
    assert st.metadata == {"owner": "u1"}
    assert st.last_modified is not None
    assert await storage.exists(key) is True
    assert await storage.exists(prefix + "docs/missing.bin") is False


async def test_put_replaces(storage: StorageClient, prefix: str) -> None:
    key = prefix + "r.txt"
    await storage.put(key, b"one")
    await storage.put(key, b"two!")
    assert await storage.get(key) == b"two!"
    assert (await storage.stat(key)).size == 4


async def test_put_async_stream_and_file_path(
    storage: StorageClient, prefix: str, tmp_path: Path
) -> None:
    await storage.put(prefix + "s.txt", _agen(b"hel", b"", b"lo ", b"world"))
    assert await storage.get(prefix + "s.txt") == b"hello world"
    assert (await storage.stat(prefix + "s.txt")).content_type == "text/plain; charset=utf-8"
    path = tmp_path / "upload.png"
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    path.write_bytes(png)
    info = await storage.put(prefix + "p.png", path)
    assert info.size == len(png) and info.content_type == "image/png"
    assert await storage.get(prefix + "p.png") == png


async def test_put_empty_body(storage: StorageClient, prefix: str) -> None:
    await storage.put(prefix + "empty.json", b"")
    assert await storage.get(prefix + "empty.json") == b""
    assert (await storage.stat(prefix + "empty.json")).content_type == "application/json"


async def test_stream_in_chunks(storage: StorageClient, prefix: str) -> None:
    body = bytes(range(256)) * 1000
    await storage.put(prefix + "big.bin", body)
    chunks = [c async for c in storage.stream(prefix + "big.bin", chunk_size=4096)]
    assert b"".join(chunks) == body
    assert len(chunks) > 1 and max(len(c) for c in chunks) <= 4096


async def test_missing_object_errors(storage: StorageClient, prefix: str) -> None:
    key = prefix + "nope.txt"
    with pytest.raises(ObjectNotFound, match=r"nope\.txt") as exc:
        await storage.get(key)
    assert exc.value.key == key and exc.value.bucket == storage.bucket
    with pytest.raises(ObjectNotFound):
        await storage.stat(key)
    with pytest.raises(ObjectNotFound):
        async for _ in storage.stream(key):
            pass
    with pytest.raises(ObjectNotFound):
        await storage.copy(key, prefix + "dst.txt")


async def test_delete_and_bulk_delete(storage: StorageClient, prefix: str) -> None:
    await storage.put(prefix + "d1", b"1")
    await storage.delete(prefix + "d1")
    assert not await storage.exists(prefix + "d1")
    await storage.delete(prefix + "d1")  # idempotent
    keys = [f"{prefix}bulk/{i:03d}" for i in range(25)]
    for k in keys:
        await storage.put(k, b"x")
    await storage.put(prefix + "keep", b"k")
    await storage.delete_many([*keys, prefix + "never-existed"])
    assert [o.key async for o in storage.list(prefix)] == [prefix + "keep"]
    await storage.delete_many([])


async def test_bulk_delete_validates_every_key_first(storage: StorageClient, prefix: str) -> None:
    await storage.put(prefix + "v", b"1")
    with pytest.raises(InvalidKey):
        await storage.delete_many([prefix + "v", "../x"])
    assert await storage.exists(prefix + "v")  # nothing was deleted
    with pytest.raises(InvalidArgument):
        await storage.delete_many(prefix + "v")  # type: ignore[arg-type]


async def test_list_paginates_in_key_order(storage: StorageClient, prefix: str) -> None:
    keys = [f"{prefix}l/{i:02d}.txt" for i in range(23)]
    for k in reversed(keys):
        await storage.put(k, k.encode())
    await storage.put(prefix + "other/x.txt", b"x")
    listed = [o async for o in storage.list(prefix + "l/", page_size=5)]
    assert [o.key for o in listed] == keys
    assert all(o.size == len(o.key) for o in listed)
    assert len([o async for o in storage.list(prefix)]) == 24
    assert [o async for o in storage.list(prefix + "zzz/")] == []


async def test_copy(storage: StorageClient, prefix: str) -> None:
    await storage.put(prefix + "src.pdf", b"%PDF-1.7 x", metadata={"m": "v"})
    info = await storage.copy(prefix + "src.pdf", prefix + "dst.pdf")
    assert info.key == prefix + "dst.pdf" and info.size == 10
    assert await storage.get(prefix + "dst.pdf") == b"%PDF-1.7 x"
    assert (await storage.stat(prefix + "dst.pdf")).content_type == "application/pdf"
    assert await storage.exists(prefix + "src.pdf")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.put("../x", b""),
        lambda s: s.get("/abs"),
        lambda s: s.stat(""),
        lambda s: s.exists("a\nb"),
        lambda s: s.delete("a//b"),
        lambda s: s.copy("ok", "a/../b"),
        lambda s: s.copy("./a", "ok"),
        lambda s: s.signed_url("a\x00"),
        lambda s: s.signed_post("x" * 1025),
    ],
)
async def test_every_key_taking_function_validates(storage: StorageClient, call: Any) -> None:
    with pytest.raises(InvalidKey, match="allowed"):
        await call(storage)


async def test_bad_inputs(storage: StorageClient, prefix: str) -> None:
    with pytest.raises(InvalidArgument, match="str"):
        await storage.put(prefix + "a", "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="bytes"):
        await storage.put(prefix + "a", 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="not an existing"):
        await storage.put(prefix + "a", Path("/nonexistent/file.bin"))
    with pytest.raises(InvalidArgument, match="yielded int"):
        await storage.put(prefix + "a", _agen(b"a", 3))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="media type"):
        await storage.put(prefix + "a", b"", content_type="pdf")
    with pytest.raises(InvalidArgument, match="metadata name"):
        await storage.put(prefix + "a", b"", metadata={"Bad Name": "v"})
    with pytest.raises(InvalidArgument, match="printable ASCII"):
        await storage.put(prefix + "a", b"", metadata={"ok": "caf\u00e9"})
    with pytest.raises(InvalidArgument, match="mapping"):
        await storage.put(prefix + "a", b"", metadata=[("a", "b")])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="chunk_size"):
        async for _ in storage.stream(prefix + "a", chunk_size=0):
            pass
    with pytest.raises(InvalidArgument, match="page_size"):
        async for _ in storage.list(prefix, page_size=1001):
            pass
    with pytest.raises(InvalidKey, match="prefix"):
        async for _ in storage.list("/abs"):
            pass
    assert not await storage.exists(prefix + "a")  # nothing half-written


async def test_ensure_bucket_and_missing_bucket(
    storage: StorageClient, request: Any, tmp_path: Path
) -> None:
    name = f"ftx-extra-{uuid.uuid4().hex[:10]}"
    if storage.backend.__class__.__name__ == "S3Backend":
        other = request.getfixturevalue("make_s3")(bucket=name)
    else:
        other = StorageClient(endpoint=f"file://{tmp_path}/store", bucket=name)
    try:
        with pytest.raises(BucketNotFound, match=name):
            await other.put("a.txt", b"a")
        with pytest.raises(BucketNotFound):
            async for _ in other.list():
                pass
        assert await other.ensure_bucket() is True
        assert await other.ensure_bucket() is False
        await other.put("a.txt", b"a")
        assert await other.get("a.txt") == b"a"
        assert await storage.ensure_bucket() is False  # the existing one is left alone
    finally:
        await other.delete_many([o.key async for o in other.list()])
        if storage.backend.__class__.__name__ == "S3Backend":
            await other.backend._client.remove_bucket(name)  # type: ignore[attr-defined]
        await other.aclose()


async def test_errors_share_one_root(storage: StorageClient, prefix: str) -> None:
    for exc_type in (ObjectNotFound, BucketNotFound, InvalidKey, InvalidArgument):
        assert issubclass(exc_type, StorageError)
    with pytest.raises(StorageError):
        await storage.get(prefix + "missing")


async def test_list_gives_no_content_type_unless_asked(storage: StorageClient, prefix: str) -> None:
    """S3's ListObjects carries no content type or metadata; every backend lists alike, and
    with_content_type=True fills both as stat() does (one request per object on S3)."""
    await storage.put(prefix + "a.pdf", b"%PDF-1.7 a", metadata={"owner": "ada"})
    await storage.put(prefix + "b.txt", b"plain text")
    plain = [o async for o in storage.list(prefix)]
    assert [(o.key, o.content_type, dict(o.metadata)) for o in plain] == [
        (prefix + "a.pdf", None, {}),
        (prefix + "b.txt", None, {}),
    ]
    assert all(o.size and o.etag and o.last_modified for o in plain)
    detailed = [o async for o in storage.list(prefix, page_size=1, with_content_type=True)]
    assert [(o.key, o.content_type, dict(o.metadata)) for o in detailed] == [
        (prefix + "a.pdf", "application/pdf", {"owner": "ada"}),
        (prefix + "b.txt", "text/plain; charset=utf-8", {}),
    ]
    assert [(o.size, o.etag) for o in detailed] == [(o.size, o.etag) for o in plain]
    with pytest.raises(InvalidArgument, match="with_content_type"):
        [o async for o in storage.list(prefix, with_content_type="yes")]  # type: ignore[arg-type]


async def test_list_with_content_type_skips_objects_deleted_meanwhile(
    storage: StorageClient, prefix: str
) -> None:
    for n in range(20):
        await storage.put(prefix + f"{n:02}.txt", b"x")
    listing = storage.list(prefix, page_size=5, with_content_type=True)
    first = await anext(listing)  # the first batch of 16 is stat-ed now
    await storage.delete(prefix + "17.txt")
    rest = [o.key async for o in listing]
    assert first.key == prefix + "00.txt" and prefix + "17.txt" not in rest
    assert len(rest) == 18
