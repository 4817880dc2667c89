# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Construction, endpoint forms, secrets never shown, error mapping, unreachable servers."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from forktex_core.storage import (
    Credentials,
    InvalidArgument,
    StorageClient,
    StorageError,
    StorageUnavailable,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRET"


def test_credentials_hide_the_secret() -> None:
    creds = Credentials("AKIAEXAMPLE", SECRET, session_token="TOKENVALUE123")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert SECRET not in text and "TOKENVALUE123" not in text
        assert "AKIAEXAMPLE" not in text and "<hidden>" in text  # short access key: hidden
    with pytest.raises(InvalidArgument, match="secret_key") as exc:
        Credentials("AKIA", "")
    with pytest.raises(InvalidArgument, match="access_key"):
        Credentials("", SECRET)
    with pytest.raises(InvalidArgument, match="value not shown") as exc:
        Credentials("AKIA", 12345)  # type: ignore[arg-type]
    assert "12345" not in str(exc.value)


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("s3://s3.eu-central-1.amazonaws.com", "https://s3.eu-central-1.amazonaws.com"),
        ("https://minio.internal:9000", "https://minio.internal:9000"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("HTTP://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_endpoint_forms(endpoint: str, url: str) -> None:
    client = StorageClient(endpoint=endpoint, credentials=Credentials("a", SECRET), bucket="b-1")
    assert url in repr(client) and SECRET not in repr(client)


@pytest.mark.parametrize(
    ("endpoint", "match"),
    [
        ("", "non-empty"),
        (None, "needs endpoint"),
        ("ftp://host", "unsupported scheme"),
        ("localhost:9000", "unsupported scheme"),
        ("http://", "no host"),
        ("http://host:9000/bucket/more", "a path other than the bucket"),
        ("http://host:9000?x=1", "must not have a query"),
        ("http://host:99999", "not a valid URL"),
        ("file://relative/dir", "absolute"),
        ("http://AKIA:" + SECRET + "@host:9000", "embeds credentials"),
    ],
)
def test_bad_endpoints(endpoint: Any, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match) as exc:
        StorageClient(endpoint=endpoint, credentials=Credentials("a", SECRET))
    assert SECRET[:8] not in str(exc.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bucket": "Upper"}, "bucket"),
        ({"bucket": "ab"}, "bucket"),
        ({"bucket": "a..b"}, "bucket"),
        ({"bucket": "192.168.1.1"}, "bucket"),
        ({"bucket": 5}, "bucket"),
        ({"region": "EU West"}, "region"),
        ({"part_size": 1024}, "part_size"),
        ({"part_size": True}, "part_size"),
        ({"credentials": ("a", SECRET)}, "Credentials"),
        ({"public_endpoint": "file:///tmp"}, "unsupported scheme"),
        ({"public_endpoint": "https://cdn.example.com/path"}, "path"),
        ({"public_base_url": "cdn.example.com"}, "absolute"),
        ({"public_base_url": "https://cdn.example.com?x=1"}, "query"),
        ({"public_prefixes": "avatars/"}, "not a str"),
        ({"public_prefixes": ["/abs"]}, "prefix"),
        ({"callback_secret": b"short", "callback_base_url": "https://a.example"}, "32"),
        ({"backend": object()}, "either endpoint"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], match: str) -> None:
    kwargs.setdefault("credentials", Credentials("a", SECRET))
    with pytest.raises(InvalidArgument, match=match) as exc:
        StorageClient(endpoint="http://localhost:9000", **kwargs)
    assert SECRET not in str(exc.value)


def test_a_bucket_is_required() -> None:
    for endpoint in ("http://localhost:9000", "file:///var/tmp/storage"):
        with pytest.raises(InvalidArgument, match="needs a bucket"):
            StorageClient(endpoint=endpoint, credentials=Credentials("a", SECRET))


async def test_the_bucket_may_be_the_endpoints_path(forktex_s3: Any) -> None:
    """S3 written path-style, as in the spec's ``StorageClient(endpoint="s3://...")``: the
    endpoint's one path segment is the bucket, and it reaches the real server."""
    credentials = Credentials(forktex_s3.access_key, forktex_s3.secret_key)
    endpoint = f"{forktex_s3.endpoint_url}/{forktex_s3.bucket}"
    async with StorageClient(
        endpoint=endpoint, credentials=credentials, region=forktex_s3.region
    ) as storage:
        assert storage.bucket == forktex_s3.bucket
        await storage.put("path-style/x.txt", b"hello")
        assert await storage.get("path-style/x.txt") == b"hello"
        await storage.delete("path-style/x.txt")
    same = StorageClient(endpoint=endpoint + "/", credentials=credentials, bucket=forktex_s3.bucket)
    assert same.bucket == forktex_s3.bucket
    assert StorageClient(endpoint="s3://s3.example.com/invoices").bucket == "invoices"


@pytest.mark.parametrize(
    ("endpoint", "bucket", "message"),
    [
        ("http://localhost:9000/a", "b", "differs from the bucket 'a'"),
        ("http://localhost:9000/a/b", None, "a path other than the bucket"),
        ("http://localhost:9000//a", None, "a path other than the bucket"),
        ("http://localhost:9000/a?x=1", None, "must not have a query"),
        ("http://localhost:9000/Bad_Bucket", None, "Bad_Bucket"),
    ],
)
def test_a_bucket_in_the_endpoint_is_checked(endpoint: str, bucket: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        StorageClient(endpoint=endpoint, bucket=bucket)


def test_backend_argument(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgument, match="StorageBackend"):
        StorageClient(backend=object())  # type: ignore[arg-type]
    fs = StorageClient(endpoint=f"file://{tmp_path}", bucket="b-1")
    wrapped = StorageClient(backend=fs.backend)
    assert wrapped.bucket == "b-1" and wrapped.backend is fs.backend
    with pytest.raises(InvalidArgument, match="S3 endpoints only"):
        StorageClient(
            endpoint=f"file://{tmp_path}", bucket="b-1", public_endpoint="https://x.example"
        )
    with pytest.raises(InvalidArgument, match="differs from the backend"):
        StorageClient(backend=fs.backend, bucket="other")
    assert StorageClient(backend=fs.backend, bucket="b-1").bucket == "b-1"
    with pytest.raises(InvalidArgument, match="set them on the backend"):
        StorageClient(backend=fs.backend, read_timeout=3)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_server_maps_to_storage_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    port = _dead_port()
    client = StorageClient(
        endpoint=f"http://127.0.0.1:{port}", credentials=Credentials("AKIA", SECRET), bucket="b-1"
    )
    try:
        with pytest.raises(StorageUnavailable, match=f"127.0.0.1:{port}") as exc:
            await client.put("a.txt", b"x")
        assert isinstance(exc.value, StorageError)
        with pytest.raises(StorageUnavailable):
            await client.stat("a.txt")
    finally:
        await client.aclose()
    assert SECRET not in str(exc.value) and SECRET not in repr(exc.value)
    assert SECRET not in caplog.text


async def test_signed_urls_and_logs_never_contain_the_secret(
    make_s3: Any, forktex_s3: Any, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client: StorageClient = make_s3()
    try:
        await client.put(prefix + "s.txt", b"x")
        url = await client.signed_url(prefix + "s.txt")
        form = await client.signed_post(prefix + "s.txt")
        with pytest.raises(StorageError) as exc:
            await client.get(prefix + "missing")
    finally:
        await client.aclose()
    for text in (url, repr(form), str(form.fields), repr(client), str(exc.value), caplog.text):
        assert forktex_s3.secret_key not in text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"connect_timeout": 0}, "connect_timeout=0 must be more than 0"),
        ({"read_timeout": -1}, "read_timeout=-1"),
        ({"read_timeout": float("inf")}, "cannot be switched off"),
        ({"read_timeout": float("nan")}, "read_timeout=nan"),
        ({"read_timeout": 3601}, "at most 3600"),
        ({"connect_timeout": "5"}, "number of seconds"),
        ({"connect_timeout": True}, "number of seconds"),
        ({"max_attempts": 0}, "from 1"),
        ({"max_attempts": 11}, "to 10"),
        ({"max_attempts": 2.0}, "an int"),
        ({"max_attempts": True}, "an int"),
    ],
)
@pytest.mark.parametrize("endpoint", ["http://localhost:9000", "file:///var/tmp/storage"])
def test_bad_timeouts(endpoint: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        StorageClient(endpoint=endpoint, bucket="b-1", **kwargs)


def test_timeouts_have_documented_defaults_and_can_be_set() -> None:
    from forktex_core.storage import S3Backend

    default = StorageClient(endpoint="http://localhost:9000", bucket="b-1").backend
    assert isinstance(default, S3Backend)
    assert (default.timeouts.connect, default.timeouts.read, default.timeouts.max_attempts) == (
        5.0,
        8.0,
        3,
    )
    tuned = StorageClient(
        endpoint="http://localhost:9000",
        bucket="b-1",
        connect_timeout=2,
        read_timeout=60,
        max_attempts=1,
    ).backend
    assert isinstance(tuned, S3Backend)
    assert (tuned.timeouts.connect, tuned.timeouts.read, tuned.timeouts.max_attempts) == (
        2.0,
        60.0,
        1,
    )
    # One configuration fits both backends: the filesystem backend has no network to time.
    StorageClient(endpoint="file:///var/tmp/storage", bucket="b-1", read_timeout=60)
