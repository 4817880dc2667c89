# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The filesystem backend's upload forms are pinned like S3's POST policy: the signed URL
fixes key, content type and maximum size, and ``receive_signed_post`` enforces all three —
nothing is stored when a condition fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from forktex_core.storage import (
    AccessDenied,
    FilesystemBackend,
    InvalidArgument,
    ObjectNotFound,
    SignatureExpired,
    SignatureInvalid,
    StorageClient,
)

SECRET = b"p" * 32
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
KEY = "avatars/u1.png"


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fs(tmp_path: Path, clock: Clock) -> StorageClient:
    backend = FilesystemBackend(
        tmp_path / "store",
        "files",
        secret=SECRET,
        base_url="https://app.example.com/files",
        clock=clock,
    )
    client = StorageClient(backend=backend)
    await client.ensure_bucket()
    return client


async def _chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "store" / "files").rglob("*") if p.is_file())


async def test_pinned_form_round_trip(fs: StorageClient, tmp_path: Path) -> None:
    form = await fs.signed_post(KEY, content_type="image/png", max_bytes=len(PNG))
    assert form.fields == {"key": KEY, "Content-Type": "image/png"}
    info = await fs.receive_signed_post(form.url, form.fields, PNG)
    assert info.key == KEY and info.size == len(PNG) and info.content_type == "image/png"
    assert await fs.get(KEY) == PNG
    again = await fs.receive_signed_post(
        form.url, {"KEY": KEY, "content-type": "image/png"}, _chunks(PNG)
    )
    assert again.size == len(PNG)  # field names are case-insensitive, streams work


@pytest.mark.parametrize(
    "body_kind", ["bytes", "stream", "path", "stream-one-chunk"], ids=lambda k: str(k)
)
async def test_body_over_the_signed_size_is_refused_and_nothing_stored(
    fs: StorageClient, tmp_path: Path, body_kind: str
) -> None:
    form = await fs.signed_post(KEY, content_type="image/png", max_bytes=len(PNG) - 1)
    before = _leftovers(tmp_path)
    body: Any = PNG
    if body_kind == "stream":
        body = _chunks(PNG)
    elif body_kind == "stream-one-chunk":
        body = _chunks(PNG, size=len(PNG))
    elif body_kind == "path":
        (tmp_path / "up.png").write_bytes(PNG)
        body = tmp_path / "up.png"
    with pytest.raises(AccessDenied, match=f"allowed {len(PNG) - 1} bytes"):
        await fs.receive_signed_post(form.url, form.fields, body)
    with pytest.raises(ObjectNotFound):
        await fs.stat(KEY)
    assert _leftovers(tmp_path) == before  # no object, no metadata, no temporary file


async def test_an_existing_object_survives_a_refused_upload(fs: StorageClient) -> None:
    await fs.put(KEY, b"old", content_type="text/plain")
    form = await fs.signed_post(KEY, max_bytes=3)
    with pytest.raises(AccessDenied):
        await fs.receive_signed_post(form.url, form.fields, _chunks(b"0123456789"))
    assert await fs.get(KEY) == b"old"


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"Content-Type": "image/png"}, "'key' must be"),
        ({"key": "avatars/other.png", "Content-Type": "image/png"}, "'key' must be"),
        ({"key": KEY}, "'Content-Type' must be"),
        ({"key": KEY, "Content-Type": "image/gif"}, "'Content-Type' must be"),
        ({"key": KEY, "Content-Type": "text/html"}, "'Content-Type' must be"),
    ],
)
async def test_fields_must_match_the_signed_form(
    fs: StorageClient, fields: dict[str, str], match: str
) -> None:
    form = await fs.signed_post(KEY, content_type="image/png", max_bytes=1000)
    with pytest.raises(AccessDenied, match=match):
        await fs.receive_signed_post(form.url, fields, PNG)
    assert not await fs.exists(KEY)


async def test_tampered_or_expired_form_urls(fs: StorageClient, clock: Clock) -> None:
    form = await fs.signed_post(KEY, content_type="image/png", max_bytes=10, ttl_seconds=60)
    for tampered in (
        form.url.replace("max-bytes=10", "max-bytes=100000"),
        form.url.replace("content-type=image%2Fpng", "content-type=text%2Fhtml"),
        form.url.replace("max-bytes=10&", ""),
        form.url.replace("u1.png", "u2.png"),
    ):
        assert tampered != form.url
        with pytest.raises(SignatureInvalid):
            await fs.receive_signed_post(tampered, {"key": KEY}, b"x")
    clock.now += 60
    with pytest.raises(SignatureExpired):
        await fs.receive_signed_post(form.url, form.fields, PNG[:10])
    assert not await fs.exists(KEY)


async def test_unpinned_form_takes_the_declared_or_sniffed_type(fs: StorageClient) -> None:
    form = await fs.signed_post(KEY)
    assert form.fields == {"key": KEY}
    info = await fs.receive_signed_post(form.url, {"key": KEY}, PNG)
    assert info.content_type == "image/png"  # sniffed
    info = await fs.receive_signed_post(form.url, {"key": KEY, "Content-Type": "image/x-a"}, PNG)
    assert info.content_type == "image/x-a"
    with pytest.raises(InvalidArgument, match="content_type"):
        await fs.receive_signed_post(form.url, {"key": KEY, "Content-Type": "not a type"}, PNG)


async def test_receive_needs_a_signing_filesystem_backend(
    make_s3: Any, tmp_path: Path, fs: StorageClient
) -> None:
    form = await fs.signed_post(KEY)
    s3: StorageClient = make_s3()
    plain = StorageClient(endpoint=f"file://{tmp_path}", bucket="files")
    for client in (s3, plain):
        with pytest.raises(InvalidArgument, match="filesystem backend"):
            await client.receive_signed_post(form.url, form.fields, PNG)
    with pytest.raises(InvalidArgument, match="fields"):
        await fs.receive_signed_post(form.url, [("key", KEY)], PNG)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="body"):
        await fs.receive_signed_post(form.url, form.fields, "text")  # type: ignore[arg-type]
    await s3.aclose()
