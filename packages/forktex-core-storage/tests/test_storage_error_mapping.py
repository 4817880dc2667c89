# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every S3 error reply, HTTP failure and unreadable response becomes a storage error naming
what failed — never an aiohttp or miniopy exception. Error replies no real server sends on
demand come from a small S3-speaking HTTP server (``fake_s3``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from storage_fault_support import FAST, FakeS3, Reply, collect, s3_error, within

from forktex_core.storage import (
    AccessDenied,
    BucketNotFound,
    Credentials,
    ObjectNotFound,
    StorageClient,
    StorageError,
    StorageServiceError,
    StorageUnavailable,
)

KEY = "invoices/2026-04/INV-1.pdf"
Op = Callable[[StorageClient], Awaitable[object]]

#: Operations whose requests carry an S3 error body (HEAD replies have none; see below).
OPERATIONS: dict[str, Op] = {
    "get": lambda c: c.get(KEY),
    "stream": lambda c: collect(c.stream(KEY)),
    "put": lambda c: c.put(KEY, b"body"),
    "list": lambda c: _all(c.list("invoices/")),
    "delete": lambda c: c.delete(KEY),
    "delete_many": lambda c: c.delete_many([KEY]),
}

ERRORS: list[tuple[str, int, type[StorageError]]] = [
    ("AccessDenied", 403, AccessDenied),
    ("SignatureDoesNotMatch", 403, AccessDenied),
    ("InvalidAccessKeyId", 403, AccessDenied),
    ("NoSuchBucket", 404, BucketNotFound),
    ("SlowDown", 503, StorageUnavailable),
    ("InternalError", 500, StorageUnavailable),
    ("ServiceUnavailable", 503, StorageUnavailable),
    ("EntityTooLarge", 400, StorageServiceError),
    ("InvalidRequest", 400, StorageServiceError),
    ("PreconditionFailed", 412, StorageServiceError),
    ("XNoSuchThingAnyServerKnows", 422, StorageServiceError),
]


async def _all(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


@pytest.mark.parametrize("op", list(OPERATIONS))
@pytest.mark.parametrize(("code", "status", "expected"), ERRORS, ids=[e[0] for e in ERRORS])
async def test_every_s3_error_reply_maps_to_a_storage_error(
    fake_s3: FakeS3, op: str, code: str, status: int, expected: type[StorageError]
) -> None:
    fake_s3.replies = [s3_error(code, status)]
    client = fake_s3.client(**FAST)
    try:
        outcome, _ = await within(10, OPERATIONS[op](client))
    finally:
        await client.aclose()
    assert type(outcome) is expected, repr(outcome)
    assert "fake-secret-key" not in str(outcome)
    if expected is StorageServiceError:
        assert isinstance(outcome, StorageServiceError)
        assert outcome.code == code and outcome.status == status
        assert code in str(outcome) and "fake-bucket" in str(outcome)
        if op not in ("list", "delete_many"):
            assert outcome.key == KEY and KEY in str(outcome)
    if expected is StorageUnavailable:
        assert f"127.0.0.1:{fake_s3.port}" in str(outcome)
        assert len(fake_s3.requests) == 3  # retried: busy or failing servers recover
    elif expected is not AccessDenied or op != "delete_many":
        assert len(fake_s3.requests) == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, AccessDenied),
        (404, ObjectNotFound),
        (400, StorageServiceError),
        (422, StorageServiceError),
        (503, StorageUnavailable),
    ],
)
@pytest.mark.parametrize("op", ["stat", "copy"])
async def test_head_replies_without_a_body_map_by_status(
    fake_s3: FakeS3, op: str, status: int, expected: type[StorageError]
) -> None:
    """HEAD replies carry no error body; copy starts with a HEAD of its source."""
    fake_s3.replies = [Reply(status)]
    client = fake_s3.client(**FAST)
    call = client.stat(KEY) if op == "stat" else client.copy(KEY, KEY + ".copy")
    try:
        outcome, _ = await within(10, call)
        assert type(outcome) is expected, repr(outcome)
        if expected is StorageServiceError:
            assert isinstance(outcome, StorageServiceError) and outcome.status == status
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("reply", "op", "expected", "says"),
    [
        (Reply(502, b"<html>Bad Gateway</html>", "text/html"), "get", StorageUnavailable, "502"),
        (Reply(404, b"<html>Not Found</html>", "text/html"), "get", StorageServiceError, "404"),
        (Reply(200, b"<ListBucketResult><Contents>", "application/xml"), "list", None, "read"),
        (Reply(200, b"not xml at all", "application/xml"), "list", None, "read"),
        (Reply(200, b"", "application/xml"), "delete_many", None, "read"),
    ],
    ids=["html-502", "html-404", "truncated-xml", "not-xml", "empty-reply"],
)
async def test_replies_that_are_not_s3_replies(
    fake_s3: FakeS3, reply: Reply, op: str, expected: type[StorageError] | None, says: str
) -> None:
    fake_s3.replies = [reply]
    client = fake_s3.client(**FAST)
    try:
        outcome, _ = await within(10, OPERATIONS[op](client))
    finally:
        await client.aclose()
    assert isinstance(outcome, expected or StorageServiceError), repr(outcome)
    assert says in str(outcome) and f"127.0.0.1:{fake_s3.port}" in str(outcome)


async def test_busy_server_is_retried_until_it_answers(fake_s3: FakeS3) -> None:
    fake_s3.replies = [
        s3_error("SlowDown", 503),
        Reply(500, b"", "text/plain"),
        Reply(200, b"hello", "application/octet-stream"),
    ]
    client = fake_s3.client(**FAST)
    try:
        assert await client.get(KEY) == b"hello"
        assert len(fake_s3.requests) == 3
    finally:
        await client.aclose()


async def test_a_server_that_does_not_speak_http() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"-ERR unknown command 'GET'\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = StorageClient(
        endpoint=f"http://127.0.0.1:{port}",
        credentials=Credentials("a", "secret-key"),
        bucket="b-1",
        **FAST,
    )
    try:
        outcome, _ = await within(10, client.get(KEY))
        assert isinstance(outcome, StorageUnavailable), repr(outcome)
        assert f"127.0.0.1:{port}" in str(outcome)
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


async def test_unknown_host_names_the_host() -> None:
    client = StorageClient(
        endpoint="http://storage.nosuchhost.invalid:9000",
        credentials=Credentials("a", "secret-key"),
        bucket="b-1",
        **FAST,
    )
    try:
        outcome, _ = await within(20, client.put("a.txt", b"x"))
    finally:
        await client.aclose()
    assert isinstance(outcome, StorageUnavailable), repr(outcome)
    assert "storage.nosuchhost.invalid:9000" in str(outcome) and "resolve" in str(outcome)
    assert outcome.endpoint == "storage.nosuchhost.invalid:9000"


async def test_default_ports_are_named(fake_s3: FakeS3) -> None:
    client = StorageClient(
        endpoint="s3://storage.nosuchhost.invalid",
        credentials=Credentials("a", "secret-key"),
        bucket="b-1",
        **FAST,
    )
    try:
        outcome, _ = await within(20, client.stat("a.txt"))
    finally:
        await client.aclose()
    assert isinstance(outcome, StorageUnavailable)
    assert "storage.nosuchhost.invalid:443" in str(outcome)
