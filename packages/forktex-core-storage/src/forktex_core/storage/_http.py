# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The HTTP session the S3 backend talks through: timeouts that cover every way a server can
fall silent, and no hidden retries (the backend decides what is retried).

aiohttp's ``sock_read`` only starts once the request body has been handed to the kernel, so a
server that stops reading in the middle of an upload would stall the request forever. The
connector here watches every connection it hands out: when bytes are waiting to be sent and
none has left for ``read_timeout`` seconds, the request fails with :class:`WriteStalled`.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import weakref
from dataclasses import dataclass

import aiohttp
import certifi
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

from ._errors import InvalidArgument, show

DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to open a TCP (and TLS) connection to the S3 server."""
DEFAULT_READ_TIMEOUT = 8.0
"""Seconds the S3 server may stay silent: waiting for a reply, between two chunks of a
download, or not taking any bytes of an upload."""
DEFAULT_MAX_ATTEMPTS = 3
"""Attempts of a retry-safe request that failed fast (refused, reset, HTTP 5xx)."""
_MAX_TIMEOUT = 3600.0
_POOL_SIZE = 100


@dataclass(frozen=True)
class Timeouts:
    """Validated network settings of an S3 client (see :class:`StorageClient`)."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    @classmethod
    def of(
        cls,
        connect_timeout: object = None,
        read_timeout: object = None,
        max_attempts: object = None,
    ) -> Timeouts:
        """Check the keyword arguments of the same names; ``None`` means the default.

        Example::

            >>> Timeouts.of(read_timeout=30)
            Timeouts(connect=5.0, read=30.0, max_attempts=3)
        """
        connect = _seconds("connect_timeout", connect_timeout, DEFAULT_CONNECT_TIMEOUT)
        read = _seconds("read_timeout", read_timeout, DEFAULT_READ_TIMEOUT)
        if max_attempts is None:
            attempts = DEFAULT_MAX_ATTEMPTS
        elif (
            isinstance(max_attempts, bool)
            or not isinstance(max_attempts, int)
            or not 1 <= max_attempts <= 10
        ):
            raise InvalidArgument(
                f"max_attempts={show(max_attempts)} must be an int from 1 (no retry) to 10"
            )
        else:
            attempts = max_attempts
        return cls(connect, read, attempts)


def _seconds(name: str, value: object, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{name}={show(value)} must be a number of seconds")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= _MAX_TIMEOUT:
        raise InvalidArgument(
            f"{name}={show(value)} must be more than 0 and at most {_MAX_TIMEOUT:.0f} seconds; "
            "a timeout cannot be switched off"
        )
    return seconds


class WriteStalled(aiohttp.ServerTimeoutError):
    """The server took none of the request's bytes for ``read_timeout`` seconds."""


class _Progress:
    __slots__ = ("buffered", "since")

    def __init__(self, now: float) -> None:
        self.buffered = 0
        self.since = now


class _WatchedConnector(aiohttp.TCPConnector):
    """A pool whose connections fail with :class:`WriteStalled` when sending stalls."""

    def __init__(self, *, stall_timeout: float, ssl_context: ssl.SSLContext) -> None:
        super().__init__(limit=_POOL_SIZE, ssl=ssl_context)
        self._stall_timeout = stall_timeout
        self._tick = min(0.5, stall_timeout / 4)
        self._watched: weakref.WeakKeyDictionary[ResponseHandler, _Progress] = (
            weakref.WeakKeyDictionary()
        )
        self._timer: asyncio.TimerHandle | None = None

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's signature
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        protocol = conn.protocol
        if protocol is not None and protocol not in self._watched:
            loop = asyncio.get_running_loop()
            self._watched[protocol] = _Progress(loop.time())
            if self._timer is None:
                self._timer = loop.call_later(self._tick, self._check)
        return conn

    def _check(self) -> None:
        self._timer = None
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for protocol, progress in list(self._watched.items()):
            transport = protocol.transport
            if transport is None or transport.is_closing():
                del self._watched[protocol]
                continue
            buffered = transport.get_write_buffer_size()
            # Fewer bytes waiting than last time means the kernel took some: progress. More
            # waiting means the request wrote more, which is no sign that the server reads.
            if buffered == 0 or buffered < progress.buffered:
                progress.since = now
            progress.buffered = buffered
            if buffered and now - progress.since >= self._stall_timeout:
                del self._watched[protocol]
                protocol.set_exception(
                    WriteStalled(f"the server took no request bytes for {self._stall_timeout:g} s")
                )
                transport.abort()
        if self._watched:
            self._timer = loop.call_later(self._tick, self._check)


def open_session(timeouts: Timeouts) -> aiohttp.ClientSession:
    """A session for one S3 endpoint, bound to the running event loop.

    Example::

        session = open_session(Timeouts.of(read_timeout=30))
        minio_client.set_session(session)
    """
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    session = aiohttp.ClientSession(
        connector=_WatchedConnector(stall_timeout=timeouts.read, ssl_context=context),
        timeout=aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=timeouts.connect, sock_read=timeouts.read
        ),
    )
    # aiohttp silently sends an idempotent request a second time when a pooled connection
    # turns out dead; the backend's own bounded retries do that (and count it) instead.
    # aiohttp's test client switches it off the same way.
    session._retry_connection = False  # third-party private: aiohttp (no public switch)
    return session
