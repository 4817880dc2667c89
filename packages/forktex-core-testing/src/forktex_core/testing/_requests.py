# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Which client-to-server chunks are requests, per wire protocol (for the fault proxy).

Each recogniser is fed every chunk a client sends on one connection, in order, and returns
the text of each request that the chunk completes — the SQL of an executed statement, a
Redis command line, an HTTP request line, or the raw chunk. An empty list means the chunk
completes no request worth counting (a connection handshake, a prepare-only round trip,
part of a message, an HTTP body).
"""

from __future__ import annotations

from typing import Literal, Protocol

WireProtocol = Literal["postgres", "redis", "http", "raw"]

# Postgres start-up codes (they have no message-type byte).
_PG_CANCEL = 80877102
_PG_SSL = 80877103
_PG_GSSENC = 80877104
_PG_MAX_STARTUP = 10_000

# Commands a Redis client sends while setting a connection up, not on the caller's behalf.
_REDIS_SETUP = frozenset({b"HELLO", b"AUTH", b"SELECT", b"CLIENT", b"READONLY"})
_HTTP_METHODS = (b"GET ", b"PUT ", b"POST ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ")


class Requests(Protocol):
    """Turns a connection's client bytes into the requests they carry."""

    def feed(self, data: bytes) -> list[bytes]:
        """The text of each request ``data`` completes (may be empty)."""

    def is_interim_reply(self, data: bytes) -> bool:
        """True for a server chunk that is not yet the reply (HTTP ``100 Continue``)."""


class _Base:
    def is_interim_reply(self, data: bytes) -> bool:
        return False


class RawRequests(_Base):
    """Any protocol: every chunk is one request, its text the chunk itself."""

    def feed(self, data: bytes) -> list[bytes]:
        return [data]


class PostgresRequests(_Base):
    """Postgres frontend protocol v3: a request is a simple ``Query`` or an ``Execute``.

    The text is the SQL — for ``Execute``, the SQL the bound prepared statement was parsed
    from earlier on the connection. Start-up, authentication, prepare-only round trips
    (``Parse``/``Describe``/``Sync``) and cancel requests are not requests; a TLS
    connection is opaque (nothing counts).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._started = False
        self._opaque = False
        self._statements: dict[bytes, bytes] = {}
        self._bound = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self._opaque:
            return []
        buf = self._buf
        buf += data
        found: list[bytes] = []
        while True:
            if not self._started:
                if len(buf) < 8:
                    break
                length = int.from_bytes(buf[:4], "big")
                if not 8 <= length <= _PG_MAX_STARTUP:  # e.g. a TLS ClientHello
                    return self._give_up(found)
                if len(buf) < length:
                    break
                code = int.from_bytes(buf[4:8], "big")
                del buf[:length]
                if code == _PG_CANCEL:
                    return self._give_up(found)
                if code not in (_PG_SSL, _PG_GSSENC):
                    self._started = True  # the StartupMessage
                continue
            if len(buf) < 5:
                break
            kind = buf[0]
            length = int.from_bytes(buf[1:5], "big")
            if length < 4:
                return self._give_up(found)
            if len(buf) < 1 + length:
                break
            body = bytes(buf[5 : 1 + length])
            del buf[: 1 + length]
            self._message(kind, body, found)
        return found

    def _message(self, kind: int, body: bytes, found: list[bytes]) -> None:
        fields = body.split(b"\0")
        if kind == ord("Q"):
            found.append(fields[0])
        elif kind == ord("P") and len(fields) >= 2:
            self._statements[fields[0]] = fields[1]
        elif kind == ord("B") and len(fields) >= 2:
            self._bound = self._statements.get(fields[1], b"")
        elif kind == ord("E"):
            found.append(self._bound)

    def _give_up(self, found: list[bytes]) -> list[bytes]:
        self._opaque = True
        self._buf.clear()
        return found


class RedisRequests(_Base):
    """RESP (and inline) commands: a request is a command other than connection set-up
    (``HELLO``, ``AUTH``, ``SELECT``, ``CLIENT``, ``READONLY``); its text the command line,
    arguments joined by spaces (``b"SET key value"``)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        found: list[bytes] = []
        while self._buf:
            parsed = self._command(bytes(self._buf))
            if parsed is None:
                break
            args, used = parsed
            del self._buf[:used]
            if args and args[0].upper() not in _REDIS_SETUP:
                found.append(b" ".join(args))
        return found

    @staticmethod
    def _command(buf: bytes) -> tuple[list[bytes], int] | None:
        """One complete command at the start of ``buf`` and its length, or None."""
        end = buf.find(b"\r\n")
        if end < 0:
            return None
        if buf[:1] != b"*":  # an inline command
            return buf[:end].split(), end + 2
        try:
            count = int(buf[1:end])
        except ValueError:
            return buf[:end].split(), end + 2
        pos, args = end + 2, []
        for _ in range(max(count, 0)):
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            try:
                if buf[pos : pos + 1] != b"$":
                    raise ValueError
                size = int(buf[pos + 1 : line_end])
            except ValueError:  # not RESP after all: take the rest as one unknown command
                return [], len(buf)
            start = line_end + 2
            if len(buf) < start + size + 2:
                return None
            args.append(buf[start : start + size])
            pos = start + size + 2
        return args, pos


class HttpRequests(_Base):
    """HTTP/1.x: a request is a chunk that starts with a request line; its text that line
    (``b"PUT /bucket/key HTTP/1.1"``). Interim ``1xx`` replies (``100 Continue``) are not
    the reply."""

    def feed(self, data: bytes) -> list[bytes]:
        if data.startswith(_HTTP_METHODS):
            return [data.split(b"\r\n", 1)[0]]
        return []

    def is_interim_reply(self, data: bytes) -> bool:
        return data.startswith((b"HTTP/1.1 1", b"HTTP/1.0 1"))


def recogniser(protocol: WireProtocol) -> Requests:
    """A fresh recogniser for one connection speaking ``protocol``."""
    kinds: dict[str, type[Requests]] = {
        "postgres": PostgresRequests,
        "redis": RedisRequests,
        "http": HttpRequests,
        "raw": RawRequests,
    }
    return kinds[protocol]()
