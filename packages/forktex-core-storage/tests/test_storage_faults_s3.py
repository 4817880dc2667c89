# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The S3 backend under network faults, through the fault proxy in front of a real S3 server:
a silent (black-holed) server, connections reset mid-transfer, refused connections, replies
lost after the server acted, and a server restarted under the client.

Every call runs under :func:`within`, which fails the test on a hang instead of waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from storage_fault_support import (
    FAST,
    MiB,
    PrivateS3,
    collect,
    proxied,
    put_directly,
    unfinished_uploads,
    within,
)

from forktex_core.storage import (
    ObjectNotFound,
    StorageClient,
    StorageServiceError,
    StorageUnavailable,
)

Op = Callable[[StorageClient, str], Awaitable[object]]


async def _stream_first(client: StorageClient, key: str) -> object:
    async for chunk in client.stream(key):
        return chunk
    return None


async def _list(client: StorageClient, key: str, **kwargs: Any) -> object:
    return [o async for o in client.list(key.rpartition("/")[0] + "/", **kwargs)]


#: Every kind of S3 operation, each making at least one request.
OPERATIONS: dict[str, Op] = {
    "ensure_bucket": lambda c, k: c.ensure_bucket(),
    "put": lambda c, k: c.put(k, b"new small body"),
    "put-multipart": lambda c, k: c.put(k, b"m" * (6 * MiB)),
    "get": lambda c, k: c.get(k),
    "stream": _stream_first,
    "stat": lambda c, k: c.stat(k),
    "exists": lambda c, k: c.exists(k),
    "delete": lambda c, k: c.delete(k),
    "delete_many": lambda c, k: c.delete_many([k, k + ".2"]),
    "list": _list,
    "list-with-content-type": lambda c, k: _list(c, k, with_content_type=True),
    "copy": lambda c, k: c.copy(k, k + ".copy"),
}
BODY = b"old body of the object"


def _unavailable(outcome: object, proxy: Any) -> StorageUnavailable:
    assert isinstance(outcome, StorageUnavailable), repr(outcome)
    assert f"127.0.0.1:{proxy.port}" in str(outcome) and outcome.endpoint == (
        f"127.0.0.1:{proxy.port}"
    )
    return outcome


async def _big_stream(total: int, on_part: Callable[[int], None] | None = None) -> Any:
    """An async body of ``total`` bytes in 1 MiB chunks; ``on_part(n)`` runs when the n-th
    MiB is asked for (the uploader has sent everything before it)."""

    async def body() -> AsyncIterator[bytes]:
        for n in range(total // MiB):
            if on_part is not None:
                on_part(n)
            yield bytes([n % 251]) * MiB

    return body()


# -- a silent server -------------------------------------------------------------------------


@pytest.mark.parametrize("op", list(OPERATIONS))
async def test_black_holed_server_is_reported_within_the_read_timeout(
    op: str, forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, part_size=5 * MiB, **FAST)
    key = prefix + "silent.txt"
    try:
        await client.put(key, BODY)
        proxy.black_hole()
        outcome, _ = await within(6, OPERATIONS[op](client, key))
        error = _unavailable(outcome, proxy)
        assert "read_timeout=2s" in str(error)
        proxy.heal()
        await within(10, OPERATIONS[op](client, key))  # the same client works again
    finally:
        await client.aclose()


async def test_upload_whose_bytes_the_server_stops_taking_is_reported(
    forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    """40 MiB in one request: more than the socket buffers hold, so the upload itself
    stalls (aiohttp's own read timeout only starts once the body is sent)."""
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, part_size=64 * MiB, **FAST)
    key = prefix + "stalled.bin"
    try:
        await client.put(key, BODY)
        proxy.black_hole()
        outcome, _ = await within(6, client.put(key, b"s" * (40 * MiB)))
        assert "stopped taking" in str(_unavailable(outcome, proxy))
        proxy.heal()
        assert (await within(10, client.get(key)))[0] == BODY
    finally:
        await client.aclose()


async def test_multipart_upload_stalled_mid_part_is_reported_and_aborted(
    forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, part_size=5 * MiB, **FAST)
    key = prefix + "multi-stalled.bin"

    def on_part(n: int) -> None:
        if n == 6:  # part 1 is on the server, part 2 is being read from the body
            proxy.black_hole()

    try:
        await client.put(key, BODY)
        body = await _big_stream(15 * MiB, on_part)
        outcome, _ = await within(6, client.put(key, body))
        _unavailable(outcome, proxy)
        proxy.heal()
        await within(10, client.aclose())  # waits for the abort running in the background
        assert key not in _uploads(forktex_s3)
        assert (await within(10, client.get(key)))[0] == BODY
    finally:
        await client.aclose()


async def test_download_stream_stalled_mid_body_is_reported(
    forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, **FAST)
    key = prefix + "stream-stalled.bin"
    try:
        await put_directly(forktex_s3, key, b"d" * (24 * MiB))
        stream = client.stream(key)
        assert await anext(stream)
        proxy.black_hole()
        outcome, _ = await within(6, collect(stream))
        assert "did not answer" in str(_unavailable(outcome, proxy))
    finally:
        proxy.heal()
        await client.aclose()


@pytest.mark.parametrize("op", ["get", "stream-mid-body", "upload-stall", "multipart-stall"])
async def test_defaults_report_a_silent_server_within_10_seconds(
    op: str, forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    proxy = forktex_fault_proxy(forktex_s3)
    # Default timeouts; one request per upload for "upload-stall", 5 MiB parts otherwise.
    part_size = 64 * MiB if op == "upload-stall" else 5 * MiB
    client = proxied(proxy, forktex_s3, part_size=part_size)
    key = prefix + "defaults.bin"
    try:
        await put_directly(forktex_s3, key, b"x" * (24 * MiB))
        call: Awaitable[object]
        if op == "get":
            proxy.black_hole()
            call = client.get(key)
        elif op == "stream-mid-body":
            stream = client.stream(key)
            await anext(stream)
            proxy.black_hole()
            call = collect(stream)
        elif op == "upload-stall":
            proxy.black_hole()
            call = client.put(key, b"u" * (40 * MiB))
        else:
            proxy.black_hole()
            call = client.put(key, b"p" * (12 * MiB))
        outcome, _ = await within(10, call)
        _unavailable(outcome, proxy)
    finally:
        proxy.heal()
        await client.aclose()


# -- connections reset mid-transfer ----------------------------------------------------------


@pytest.mark.parametrize("attempts", [3, 1])
async def test_connection_reset_mid_download_stream(
    attempts: int, forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    """A broken stream resumes at the next byte (pinned to the object's ETag); without
    retries the caller gets StorageUnavailable."""
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, max_attempts=attempts, **FAST)
    key = prefix + "stream-reset.bin"
    data = bytes(range(256)) * (96 * 1024)  # 24 MiB
    try:
        await put_directly(forktex_s3, key, data)
        stream = client.stream(key, chunk_size=1 << 20)
        first = await anext(stream)
        proxy.reset_connections()
        outcome, _ = await within(10, collect(stream))
        if attempts == 1:
            assert "lost the connection" in str(_unavailable(outcome, proxy))
        else:
            assert isinstance(outcome, bytes)
            assert hashlib.sha256(first + outcome).digest() == hashlib.sha256(data).digest()
    finally:
        await client.aclose()


async def test_stream_resumed_after_the_object_changed_is_refused(
    forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    """Resuming must not splice two versions of an object together."""
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, **FAST)
    key = prefix + "stream-changed.bin"
    try:
        await put_directly(forktex_s3, key, b"a" * (24 * MiB))
        stream = client.stream(key, chunk_size=1 << 20)
        await anext(stream)
        await put_directly(forktex_s3, key, b"b" * (24 * MiB))
        proxy.reset_connections()
        outcome, _ = await within(10, collect(stream))
        assert isinstance(outcome, StorageServiceError), repr(outcome)
        assert outcome.code == "PreconditionFailed" and "replaced" in str(outcome)
    finally:
        await client.aclose()


@pytest.mark.parametrize("attempts", [3, 1])
async def test_connection_reset_mid_upload(
    attempts: int, forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    """A 40 MiB PUT is mid-body (the server holds back, so the client is blocked writing)
    when its connection is reset: it is sent again and stored whole, or — without
    retries — StorageUnavailable and the key keeps its old object."""
    key = prefix + "upload-reset.bin"
    setup = proxied(forktex_fault_proxy(forktex_s3), forktex_s3)
    await setup.put(key, BODY)
    await setup.aclose()
    proxy = forktex_fault_proxy(forktex_s3)
    # The server needs a moment to take in and store 40 MiB before it replies.
    client = proxied(proxy, forktex_s3, part_size=64 * MiB, max_attempts=attempts, read_timeout=10)
    data = b"n" * (40 * MiB)
    try:
        proxy.black_hole()
        upload = asyncio.ensure_future(client.put(key, data))
        await asyncio.to_thread(_wait_until, lambda: proxy.accepted >= 1)
        await asyncio.sleep(0.3)  # the client fills the socket buffers and blocks
        proxy.reset_connections()
        proxy.heal()
        outcome, _ = await within(30, upload)
        stored = (await within(30, client.get(key)))[0]
        if attempts == 1:
            assert "lost the connection" in str(_unavailable(outcome, proxy))
            assert stored == BODY
        else:
            assert not isinstance(outcome, BaseException), repr(outcome)
            assert stored == data and proxy.accepted >= 2
    finally:
        await client.aclose()


@pytest.mark.parametrize("attempts", [3, 1])
async def test_connection_reset_mid_multipart_upload(
    attempts: int, forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    """Part 2 reaches the server, its reply is lost and the connection reset: the part is
    sent again; without retries the upload is aborted and the key keeps its old object."""
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, part_size=5 * MiB, max_attempts=attempts, **FAST)
    key = prefix + "multipart-reset.bin"
    data = bytes(range(256)) * (48 * 1024)  # 12 MiB: 3 parts
    try:
        await client.put(key, BODY)
        proxy.drop_replies(1, match=lambda line: b"partNumber=2" in line)
        outcome, _ = await within(10, client.put(key, data))
        assert proxy.replies_dropped == 1
        if attempts == 1:
            assert "part 2" in str(_unavailable(outcome, proxy))
            assert key not in _uploads(forktex_s3)
            assert (await client.get(key)) == BODY
        else:
            assert not isinstance(outcome, BaseException), repr(outcome)
            assert (await client.get(key)) == data
            assert key not in _uploads(forktex_s3)
    finally:
        await client.aclose()


# -- replies lost after the server acted -----------------------------------------------------


def _is(method: bytes, *parts: bytes) -> Callable[[bytes], bool]:
    return lambda line: line.startswith(method) and all(p in line for p in parts)


@pytest.mark.parametrize(
    ("name", "match", "op"),
    [
        ("put", _is(b"PUT"), lambda c, k: c.put(k, b"replaced body")),
        ("get", _is(b"GET"), lambda c, k: c.get(k)),
        ("stat", _is(b"HEAD"), lambda c, k: c.stat(k)),
        ("delete", _is(b"DELETE"), lambda c, k: c.delete(k)),
        ("delete_many", _is(b"POST", b"?delete"), lambda c, k: c.delete_many([k])),
        ("list", _is(b"GET", b"list-type=2"), lambda c, k: _list(c, k)),
        ("copy", _is(b"PUT"), lambda c, k: c.copy(k, k + ".copy")),
        (
            "complete-multipart",
            _is(b"POST", b"uploadId="),
            lambda c, k: c.put(k, b"c" * (6 * MiB)),
        ),
    ],
)
async def test_lost_reply_of_a_retry_safe_request_is_recovered(
    name: str, match: Any, op: Op, forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    """The request reached the server and was executed, its reply was lost and the
    connection reset: the client sends it again (or, for a completed multipart upload,
    checks the object's ETag) and succeeds."""
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, part_size=5 * MiB, **FAST)
    key = prefix + f"lost-{name}.bin"
    try:
        await client.put(key, BODY)
        proxy.drop_replies(1, match=match)
        outcome, _ = await within(10, op(client, key))
        assert not isinstance(outcome, BaseException), repr(outcome)
        assert proxy.replies_dropped == 1
        if name == "complete-multipart":
            assert (await client.get(key)) == b"c" * (6 * MiB)
            assert key not in _uploads(forktex_s3)
    finally:
        await client.aclose()


async def test_lost_reply_of_a_multipart_start_is_not_retried(
    forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    """CreateMultipartUpload is not sent twice (a second upload would be orphaned)."""
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, part_size=5 * MiB, **FAST)
    key = prefix + "lost-create.bin"
    try:
        await client.put(key, BODY)
        proxy.drop_replies(1, match=_is(b"POST", b"?uploads"))
        seen = proxy.requests_seen
        outcome, _ = await within(10, client.put(key, b"c" * (6 * MiB)))
        _unavailable(outcome, proxy)
        assert proxy.requests_seen == seen + 1
        assert (await client.get(key)) == BODY
    finally:
        await client.aclose()


async def test_reply_that_never_comes_is_a_timeout_not_retried(
    forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, **FAST)
    key = prefix + "hang.txt"
    try:
        await client.put(key, BODY)
        proxy.drop_replies(1, match=_is(b"GET"), then="hang")
        seen = proxy.requests_seen
        outcome, _ = await within(6, client.get(key))
        assert "did not answer" in str(_unavailable(outcome, proxy))
        assert proxy.requests_seen == seen + 1  # not sent again: a timeout is reported
    finally:
        await client.aclose()


# -- refused connections ---------------------------------------------------------------------


async def test_refused_connections_are_reported_then_recovered(
    forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, **FAST)
    key = prefix + "refused.txt"
    try:
        await client.put(key, BODY)
        proxy.refuse()
        proxy.reset_connections()  # pooled connections die too: every attempt is refused
        for op in ("get", "put", "list", "stream"):
            outcome, _ = await within(6, OPERATIONS[op](client, key))
            assert "ECONNREFUSED" in str(_unavailable(outcome, proxy))
        proxy.heal()
        assert (await within(10, client.get(key)))[0] == BODY
    finally:
        await client.aclose()


# -- a server restarted under the client -----------------------------------------------------


async def test_server_restarted_during_an_upload(private_s3: PrivateS3) -> None:
    client = private_s3.client("restart-up", part_size=5 * MiB, **FAST)
    try:
        await client.ensure_bucket()
        await client.put("a.bin", BODY)

        def on_part(n: int) -> None:
            if n == 6:
                private_s3.stop()

        outcome, _ = await within(10, client.put("a.bin", await _big_stream(15 * MiB, on_part)))
        assert isinstance(outcome, StorageUnavailable), repr(outcome)
        private_s3.start()
        # The next calls work with the same client; nothing of the failed upload shows.
        assert (await within(10, client.get("a.bin")))[0] == BODY
        await within(10, client.put("b.bin", b"after restart"))
        assert (await client.get("b.bin")) == b"after restart"
    finally:
        await client.aclose()


async def test_server_restarted_during_a_download(private_s3: PrivateS3) -> None:
    client = private_s3.client("restart-down", **FAST)
    data = b"r" * (24 * MiB)
    try:
        await client.ensure_bucket()
        await client.put("big.bin", data)
        stream = client.stream("big.bin")
        first = await anext(stream)
        private_s3.stop()
        outcome, _ = await within(10, collect(stream))
        assert isinstance(outcome, StorageUnavailable), repr(outcome)
        private_s3.start()
        assert (await within(10, client.get("big.bin")))[0] == data
        assert first + (await collect(client.stream("big.bin")))[len(first) :] == data
    finally:
        await client.aclose()


async def test_missing_object_is_not_retried(
    forktex_fault_proxy: Any, forktex_s3: Any, prefix: str
) -> None:
    proxy = forktex_fault_proxy(forktex_s3)
    client = proxied(proxy, forktex_s3, **FAST)
    try:
        await client.ensure_bucket()
        seen = proxy.requests_seen
        with pytest.raises(ObjectNotFound):
            await client.get(prefix + "missing")
        assert proxy.requests_seen == seen + 1
    finally:
        await client.aclose()


# -- helpers ---------------------------------------------------------------------------------


def _uploads(s3: Any) -> list[str]:
    return unfinished_uploads(s3.endpoint_url, s3.access_key, s3.secret_key, s3.bucket)


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
