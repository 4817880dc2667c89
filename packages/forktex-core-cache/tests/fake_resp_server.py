# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A small RESP server that answers chosen Redis commands with an error reply.

Real Redis cannot easily be made to answer ``READONLY`` (a replica after a failover), ``OOM``
(maxmemory with noeviction), ``LOADING`` or ``BUSY`` on demand in a test. :class:`FakeRedis`
listens on ``127.0.0.1``, parses each command a client sends (RESP arrays or inline), and
either answers it with the configured error reply or passes it, byte for byte, to a real
Redis (``upstream``) and relays that server's reply. Without an upstream it answers ``PING``
and connection set-up itself and every other command with an ``ERR``.

Generic: it knows nothing of forktex_core.cache and works for any Redis client::

    async with FakeRedis(upstream=("127.0.0.1", 6379)) as fake:
        fake.fail("READONLY You can't write against a read only replica.", "SET", "EVALSHA")
        client = redis.asyncio.Redis.from_url(fake.url("redis://127.0.0.1:6379/0"))
        await client.get("k")            # passed to the real Redis
        await client.set("k", "v")       # raises redis.exceptions.ReadOnlyError
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

#: Connection set-up commands: failed only when named explicitly, so that clients connect.
SETUP_COMMANDS = frozenset({"HELLO", "AUTH", "CLIENT", "SELECT"})


def reply_end(buffer: bytes, start: int = 0) -> int | None:
    """The index just past the one RESP value (RESP2 or RESP3) starting at ``start``, or
    ``None`` while it is incomplete. A line not starting with a RESP type byte is an inline
    command and ends at its CRLF."""
    line_end = buffer.find(b"\r\n", start)
    if line_end < 0:
        return None
    kind = buffer[start : start + 1]
    if kind in (b"$", b"!", b"="):  # bulk string, bulk error, verbatim string
        length = int(buffer[start + 1 : line_end])
        if length < 0:
            return line_end + 2
        end = line_end + 2 + length + 2
        return end if len(buffer) >= end else None
    if kind in (b"*", b"~", b">", b"%", b"|"):  # array, set, push, map, attributes
        count = int(buffer[start + 1 : line_end])
        if kind in (b"%", b"|"):
            count *= 2
        position: int | None = line_end + 2
        for _ in range(max(count, 0)):
            assert position is not None
            position = reply_end(buffer, position)
            if position is None:
                return None
        return position
    return line_end + 2  # a simple line: + - : _ , # ( or an inline command


def command_args(request: bytes) -> list[bytes]:
    """The arguments of one complete request (a RESP array of bulk strings, or inline)."""
    if not request.startswith(b"*"):
        return request.strip().split()
    args: list[bytes] = []
    position = request.index(b"\r\n") + 2
    while position < len(request):
        line_end = request.index(b"\r\n", position)
        length = int(request[position + 1 : line_end])
        args.append(request[line_end + 2 : line_end + 2 + length])
        position = line_end + 2 + length + 2
    return args


@dataclass
class _Rule:
    reply: bytes
    commands: frozenset[str] | None  # None: every command but the set-up ones
    times: int | None  # None: until heal()


class FakeRedis:
    """RESP server: the error reply for chosen commands, a real Redis for the others.

    ``upstream``: ``(host, port)`` of a real Redis, or ``None``. :attr:`commands` records
    every command received (name upper-cased, then the raw arguments), :attr:`errors_sent`
    how many error replies were sent, :attr:`connections` how many connections were accepted.
    """

    def __init__(self, upstream: tuple[str, int] | None = None) -> None:
        self.upstream = upstream
        self.commands: list[list[bytes]] = []
        self.errors_sent = 0
        self.connections = 0  # accepted so far
        self._rules: list[_Rule] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeRedis:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeRedis:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeRedis is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, like: str = "redis://127.0.0.1/0") -> str:
        """``like`` (a Redis URL) with host and port replaced by this server's; user,
        password, database and query are kept."""
        parts = urlsplit(like)
        userinfo, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{self.address}"))

    # -- faults ------------------------------------------------------------------------------

    def fail(self, reply: str, *commands: str, times: int | None = None) -> None:
        """Answer ``commands`` (e.g. ``"SET"``, ``"EVALSHA"``; every command except the
        connection set-up ones when none is named) with the error ``reply`` - its code first,
        as Redis sends it: ``"READONLY You can't write against a read only replica."``,
        ``"OOM command not allowed when used memory > 'maxmemory'."``. ``times``: only the
        next ``times`` matching commands. Rules added later take precedence."""
        if "\r" in reply or "\n" in reply or not reply:
            raise ValueError(f"an error reply is one non-empty line, got {reply!r}")
        names = frozenset(c.upper() for c in commands) if commands else None
        self._rules.insert(0, _Rule(reply.encode(), names, times))

    def heal(self) -> None:
        """Answer every command normally again."""
        self._rules.clear()

    def _error_for(self, name: str) -> bytes | None:
        for rule in self._rules:
            if rule.commands is None and name in SETUP_COMMANDS:
                continue
            if rule.commands is not None and name not in rule.commands:
                continue
            if rule.times is not None:
                if rule.times <= 0:
                    continue
                rule.times -= 1
            return rule.reply
        return None

    # -- serving -----------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            if self.upstream is not None:
                upstream = await asyncio.open_connection(*self.upstream)
            buffer = b""
            pending = b""  # replies from upstream not yet claimed by a request
            while data := await reader.read(65536):
                buffer += data
                while (end := reply_end(buffer)) is not None:
                    request, buffer = buffer[:end], buffer[end:]
                    args = command_args(request)
                    if not args:
                        continue
                    args[0] = args[0].upper()
                    self.commands.append(args)
                    error = self._error_for(args[0].decode(errors="replace"))
                    if error is not None:
                        self.errors_sent += 1
                        writer.write(b"-" + error + b"\r\n")
                    elif upstream is not None:
                        reply, pending = await _relay(upstream, request, pending)
                        writer.write(reply)
                    else:
                        writer.write(_local_reply(args))
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            if upstream is not None:
                upstream[1].close()


async def _relay(
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes, pending: bytes
) -> tuple[bytes, bytes]:
    """Send ``request`` to the real Redis; its one reply and what was read beyond it."""
    reader, writer = upstream
    writer.write(request)
    await writer.drain()
    while (end := reply_end(pending)) is None:
        data = await reader.read(65536)
        if not data:
            raise asyncio.IncompleteReadError(pending, None)
        pending += data
    return pending[:end], pending[end:]


def _local_reply(args: list[bytes]) -> bytes:
    name = args[0]
    if name == b"PING":
        return b"+PONG\r\n"
    if name.decode(errors="replace") in SETUP_COMMANDS:
        return b"+OK\r\n"
    return b"-ERR FakeRedis has no upstream to run " + name + b"\r\n"
