# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Whatever a caller passes to a public function — arbitrary keys, TTLs, sizes, content types,
metadata, bodies, URLs, parameters — the result is success or a ``StorageError``, never a raw
Python, aiohttp or S3 error. Hypothesis draws the inputs; both backends are exercised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forktex_core.storage import (
    Credentials,
    PublicAccess,
    StorageClient,
    StorageError,
    build_key,
    sniff_content_type,
    validate_key,
)

SECRET = b"b" * 32

_keyish = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=3).map("/".join)
_key = st.one_of(_keyish, st.text(max_size=20), st.sampled_from(["a.txt", "x/y.pdf", "é/ü.png"]))
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**5000, -(10**5000), 2**63, 10**30]),
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.just(object()),
)
_anything = st.one_of(
    _scalar,
    st.lists(_scalar, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), _scalar, max_size=3),
)
_ttl = st.one_of(st.integers(-5, 10**6), st.sampled_from([0, 1, 604800, 604801, 10**30]), _scalar)
_content_type = st.one_of(
    st.sampled_from(
        [
            "image/png",
            "text/plain; charset=utf-8",
            "ā/ā",
            "a/b;c",
            "a/b\r\nx: y",
            "x/" + "y" * 300,
            "²/³",
        ]
    ),
    st.text(max_size=20),
    st.none(),
    _scalar,
)
_metadata = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b-c"]), st.sampled_from(["x" * 3000, "ok"])),
    _anything,
)
_params = st.one_of(
    st.none(), st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3), _anything
)


async def _stream(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


_body = st.one_of(
    st.binary(max_size=64),
    st.lists(st.one_of(st.binary(max_size=8), _scalar), max_size=3).map(_stream),
    _scalar,
)

OPS = [
    "put",
    "get",
    "stat",
    "exists",
    "delete",
    "stream",
    "list",
    "copy",
    "delete_many",
    "signed_url",
    "signed_post",
    "public_url",
    "is_public",
    "callback_url",
    "verify_callback",
    "verify_signed_url",
    "receive_signed_post",
]


async def _call(client: StorageClient, op: str, draw: Any) -> Any:
    d = draw
    if op == "put":
        return await client.put(
            d(_key), d(_body), content_type=d(_content_type), metadata=d(_metadata)
        )
    if op in ("get", "stat", "exists", "delete", "public_url", "is_public"):
        result = getattr(client, op)(d(_key))
        return await result if asyncio.iscoroutine(result) else result
    if op == "stream":
        return [c async for c in client.stream(d(_key), chunk_size=d(st.one_of(_ttl, _scalar)))]
    if op == "list":
        prefix, size = d(st.one_of(_key, _scalar)), d(st.one_of(_ttl, _scalar))
        return [o async for o in client.list(prefix, page_size=size)][:5]
    if op == "copy":
        return await client.copy(d(_key), d(_key))
    if op == "delete_many":
        return await client.delete_many(d(st.one_of(st.lists(_key, max_size=3), _anything)))
    if op == "signed_url":
        access = d(st.one_of(st.sampled_from(list(PublicAccess)), _scalar))
        return await client.signed_url(d(_key), access=access, ttl_seconds=d(_ttl))
    if op == "signed_post":
        return await client.signed_post(
            d(_key),
            ttl_seconds=d(_ttl),
            content_type=d(_content_type),
            max_bytes=d(st.one_of(_ttl, st.integers())),
        )
    if op == "callback_url":
        return client.callback_url(
            d(st.one_of(_key.map(lambda k: "/" + k), _scalar)), d(_params), d(_ttl)
        )
    if op == "verify_callback":
        return client.verify_callback(d(st.one_of(st.text(), _scalar)), path=d(_scalar))
    if op == "verify_signed_url":
        access = d(st.one_of(st.sampled_from(list(PublicAccess)), _scalar))
        return client.verify_signed_url(d(st.one_of(st.text(), _scalar)), access=access)
    if op == "receive_signed_post":
        form = await client.signed_post(
            d(st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True)),
            max_bytes=d(st.integers(1, 64)),
        )
        url = d(st.one_of(st.just(form.url), st.text(), _scalar))
        return await client.receive_signed_post(
            url, d(st.one_of(_params, st.just(form.fields))), d(_body)
        )
    raise AssertionError(op)


FUZZ = settings(
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _run(client_factory: Any, data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(OPS))

    async def go() -> None:
        client = client_factory()
        try:
            await _call(client, op, data.draw)
        except StorageError:
            pass
        finally:
            await client.aclose()

    asyncio.run(go())


@settings(FUZZ, max_examples=600)
@given(data=st.data())
def test_filesystem_backend_inputs(tmp_path: Path, data: st.DataObject) -> None:
    root = tmp_path / "fuzz"
    (root / "files" / "objects").mkdir(parents=True, exist_ok=True)
    _run(
        lambda: StorageClient(
            endpoint=f"file://{root}",
            bucket="files",
            callback_secret=SECRET,
            callback_base_url="https://api.example.com",
            public_base_url="https://app.example.com/files",
            public_prefixes=("x/",),
        ),
        data,
    )


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_s3_backend_inputs(forktex_s3: Any, data: st.DataObject) -> None:
    _run(
        lambda: StorageClient(
            endpoint=forktex_s3.endpoint_url,
            credentials=Credentials(forktex_s3.access_key, forktex_s3.secret_key),
            region=forktex_s3.region,
            bucket=forktex_s3.bucket,
            callback_secret=SECRET,
            callback_base_url="https://api.example.com",
            public_prefixes=("x/",),
        ),
        data,
    )


@settings(FUZZ, max_examples=300)
@given(
    endpoint=st.one_of(
        st.text(max_size=30), _scalar, st.sampled_from(["http://h:9000", "file:///tmp/x", "s3://h"])
    ),
    bucket=st.one_of(st.text(max_size=10), _scalar),
    region=st.one_of(st.text(max_size=10), _scalar),
    part_size=st.one_of(st.integers(), _scalar),
    prefixes=_anything,
    secret=st.one_of(st.binary(max_size=40), st.text(max_size=40), _scalar),
    base=st.one_of(st.text(max_size=30), _scalar),
)
def test_constructor_inputs(
    endpoint: Any, bucket: Any, region: Any, part_size: Any, prefixes: Any, secret: Any, base: Any
) -> None:
    try:
        StorageClient(
            endpoint=endpoint,
            bucket=bucket,
            region=region,
            part_size=part_size,
            public_prefixes=prefixes if prefixes is not None else (),
            callback_secret=secret,
            callback_base_url=base,
            public_base_url=base,
        )
    except StorageError:
        pass


@settings(FUZZ, max_examples=300)
@given(parts=st.lists(_scalar, max_size=4), key=_scalar, head=st.one_of(st.binary(), _scalar))
def test_helper_inputs(parts: list[Any], key: Any, head: Any) -> None:
    for call in (
        lambda: build_key(*parts),
        lambda: validate_key(key),
        lambda: sniff_content_type(key, head),
    ):
        try:
            call()
        except StorageError:
            pass


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.delete_many(5),
        lambda c: c.put("a.txt", b"x", content_type="ā/ā"),
        lambda c: c.put("a.txt", b"x", metadata={"a": "x" * 3000}),
        lambda c: c.put("a.txt", Path("/nonexistent\x00")),
        # Reading /proc/self/mem at offset 0 fails with EIO: a body file that breaks mid-read.
        pytest.param(
            lambda c: c.put("a.bin", Path("/proc/self/mem")),
            marks=pytest.mark.skipif(
                not Path("/proc/self/mem").exists(), reason="needs Linux /proc"
            ),
        ),
    ],
    ids=[
        "delete_many-int",
        "content-type-non-latin",
        "metadata-over-2KB",
        "path-with-nul",
        "unreadable-body-file",
    ],
)
async def test_known_raw_errors_are_mapped(call: Any, tmp_path: Path) -> None:
    client = StorageClient(endpoint=f"file://{tmp_path}", bucket="files")
    await client.ensure_bucket()
    with pytest.raises(StorageError):
        await call(client)


def test_known_raw_constructor_errors_are_mapped(tmp_path: Path) -> None:
    for kwargs in (
        {"public_prefixes": 5},
        {"callback_secret": SECRET, "callback_base_url": "http://[::1"},
        {"public_base_url": "https://h:99999"},
    ):
        with pytest.raises(StorageError):
            StorageClient(endpoint=f"file://{tmp_path}", bucket="files", **kwargs)  # type: ignore[arg-type]
    client = StorageClient(
        endpoint=f"file://{tmp_path}",
        bucket="files",
        callback_secret=SECRET,
        callback_base_url="https://a.b",
    )
    for params in (5, {"k": "\ud800"}, [("a", "b")]):
        with pytest.raises(StorageError):
            client.callback_url("/x", params)  # type: ignore[arg-type]


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


@pytest.mark.parametrize("content_type", [None, "image/png"])
async def test_empty_and_short_streams_are_stored(
    storage: StorageClient, prefix: str, content_type: str | None
) -> None:
    info = await storage.put(prefix + "empty.bin", _empty(), content_type=content_type)
    assert info.size == 0 and await storage.get(prefix + "empty.bin") == b""
    info = await storage.put(
        prefix + "short.bin", _stream([b"ab", b"c"]), content_type=content_type
    )
    assert info.size == 3 and await storage.get(prefix + "short.bin") == b"abc"


@pytest.mark.parametrize("bucket", ["../etc", "a/b", "bucket\n", "ab", 5, "UPPER", "1.2.3.4"])
def test_filesystem_backend_validates_its_bucket(tmp_path: Path, bucket: Any) -> None:
    from forktex_core.storage import FilesystemBackend, InvalidArgument

    with pytest.raises(InvalidArgument, match="bucket"):
        FilesystemBackend(tmp_path, bucket)
    with pytest.raises(InvalidArgument, match="bucket"):
        StorageClient(endpoint=f"file://{tmp_path}", bucket=bucket)
    with pytest.raises(InvalidArgument, match="both a secret"):
        FilesystemBackend(tmp_path, "files", secret=SECRET)
