# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Helpers of the fault tests: a hang detector, a restartable private S3 server, a small
S3-speaking HTTP server that answers with chosen error replies, and a look at the server's
unfinished multipart uploads."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from forktex_core.storage import Credentials, StorageClient, StorageError
from forktex_core.testing import FaultProxy

T = TypeVar("T")
MiB = 1024 * 1024
HANG = 60.0
"""Bound that turns a hang into a test failure; far above every timeout the tests set."""
FAST = {"connect_timeout": 1.0, "read_timeout": 2.0}
"""Short timeouts for fault tests (the default-timeout tests use none)."""


async def within(
    bound: float, call: Awaitable[T] | Callable[[], Awaitable[T]]
) -> tuple[T | BaseException, float]:
    """Run ``call``; return its result or exception and the seconds it took. A call still
    running after ``HANG`` seconds is a hang: ``AssertionError``."""
    start = time.monotonic()
    awaitable = call() if callable(call) else call
    try:
        outcome: T | BaseException = await asyncio.wait_for(awaitable, HANG)
    except TimeoutError:
        raise AssertionError(f"hung: no outcome after {HANG} s") from None
    except Exception as exc:
        outcome = exc
    elapsed = time.monotonic() - start
    assert elapsed < bound, f"took {elapsed:.1f} s, expected under {bound} s: {outcome!r}"
    return outcome, elapsed


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    """All chunks of a download stream."""
    return b"".join([chunk async for chunk in stream])


def proxied(proxy: FaultProxy, s3: Any, **kwargs: Any) -> StorageClient:
    """A client on the session bucket of ``s3``, talking through ``proxy``."""
    kwargs.setdefault("bucket", s3.bucket)
    return StorageClient(
        endpoint=f"http://127.0.0.1:{proxy.port}",
        credentials=Credentials(s3.access_key, s3.secret_key),
        region=s3.region,
        **kwargs,
    )


async def put_directly(s3: Any, key: str, body: bytes) -> None:
    """Store an object without the proxy and with default timeouts: setup, not under test."""
    async with StorageClient(
        endpoint=s3.endpoint_url,
        credentials=Credentials(s3.access_key, s3.secret_key),
        bucket=s3.bucket,
        region=s3.region,
    ) as client:
        await client.put(key, body)


def unfinished_uploads(endpoint_url: str, access: str, secret: str, bucket: str) -> list[str]:
    """Keys with a multipart upload in progress, asked directly of the server (boto3)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [u["Key"] for u in uploads]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateS3:
    """moto's S3 server on a port of its own, restartable on the same port.

    moto keeps its data in this process, so a restart keeps the objects, like a real server
    restarted on its disk. The werkzeug server does not drop open connections when stopped;
    a :class:`FaultProxy` in front resets them, as the kernel of a stopped server would.
    """

    access_key = "forktex-private"
    secret_key = "forktex-private-secret"  # a throw-away local credential

    def __init__(self) -> None:
        self.port = free_port()
        self._server: Any = None
        self.proxy = FaultProxy.in_front_of(("127.0.0.1", self.port))

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        """The server process is gone: its connections are reset, new ones fail."""
        self.proxy.reset_connections()
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.proxy.reset_connections()

    def client(self, bucket: str, **kwargs: Any) -> StorageClient:
        return StorageClient(
            endpoint=f"http://127.0.0.1:{self.proxy.port}",
            credentials=Credentials(self.access_key, self.secret_key),
            bucket=bucket,
            **kwargs,
        )


@dataclass
class Reply:
    """What :class:`FakeS3` answers: an HTTP status, a body and its content type."""

    status: int
    body: bytes = b""
    content_type: str = "application/xml"


def s3_error(code: str, status: int, message: str = "refused") -> Reply:
    """An S3 error reply with ``code``."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<Resource>/r</Resource><RequestId>1</RequestId></Error>"
    )
    return Reply(status, xml.encode())


@dataclass
class FakeS3:
    """An HTTP server that answers every request with the next of ``replies`` (the last one
    repeats) — error replies no real S3 server can be made to send on demand."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def answer(request: web.Request) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path_qs}")
            await request.read()
            reply = self.replies[0] if len(self.replies) == 1 else self.replies.pop(0)
            return web.Response(
                status=reply.status,
                body=reply.body if request.method != "HEAD" else None,
                headers={"Content-Type": reply.content_type},
            )

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def client(self, **kwargs: Any) -> StorageClient:
        return StorageClient(
            endpoint=f"http://127.0.0.1:{self.port}",
            credentials=Credentials("fake-access", "fake-secret-key"),
            bucket="fake-bucket",
            **kwargs,
        )


def is_storage_error(outcome: object) -> bool:
    return isinstance(outcome, StorageError)
