# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A TCP proxy to Postgres that loses the replies of committed statements (chaos tests).

It forwards the wire protocol both ways and reads the server's messages: when a
``ReadyForQuery`` says the session is idle again (``I``) after a ``CommandComplete`` and no
error — the statement or transaction has committed — the proxy may close both sides instead
of forwarding it (clients complete a request only on ``ReadyForQuery``). The server has
done the work; the client sees a dropped connection and must find out what happened.

Clients' ``SSLRequest`` / ``GSSENCRequest`` are answered "no" by the proxy itself, so the
traffic stays readable (asyncpg's default ``sslmode=prefer`` then continues in plain text).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct

_NO_ENCRYPTION = (80877103, 80877104)  # SSLRequest, GSSENCRequest


class LostReplies:
    """Proxy ``127.0.0.1:<port>`` to ``host:port``, losing committed replies at random.

    Example::

        proxy = LostReplies("127.0.0.1", 5432, random.Random(1), probability=0.01, limit=30)
        port = await proxy.start()      # connect clients to 127.0.0.1:port
        ...
        proxy.enabled = False           # stop losing replies
        await proxy.close()
    """

    def __init__(
        self, host: str, port: int, rng: random.Random, *, probability: float, limit: int
    ) -> None:
        self.host = host
        self.port = port
        self.rng = rng
        self.probability = probability
        self.limit = limit
        self.enabled = True
        self.lost = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on an ephemeral port of 127.0.0.1 and return it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stop listening and cut every proxied connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def _lose(self) -> bool:
        if not self.enabled or self.lost >= self.limit or self.rng.random() >= self.probability:
            return False
        self.lost += 1
        return True

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        swriter: asyncio.StreamWriter | None = None
        try:
            sreader, swriter = await asyncio.open_connection(self.host, self.port)
            up = asyncio.ensure_future(self._upstream(creader, cwriter, swriter))
            down = asyncio.ensure_future(self._downstream(sreader, cwriter))
            try:
                await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in (up, down):
                    pipe.cancel()
                await asyncio.gather(up, down, return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (cwriter, swriter):
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
            self._pipes.discard(task)

    async def _upstream(
        self,
        creader: asyncio.StreamReader,
        cwriter: asyncio.StreamWriter,
        swriter: asyncio.StreamWriter,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:  # the start-up packets have no type byte
                head = await creader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                if length == 8 and code in _NO_ENCRYPTION:
                    cwriter.write(b"N")
                    await cwriter.drain()
                    continue
                swriter.write(head + await creader.readexactly(length - 8))
                break
            while data := await creader.read(65536):
                swriter.write(data)
                await swriter.drain()

    async def _downstream(
        self, sreader: asyncio.StreamReader, cwriter: asyncio.StreamWriter
    ) -> None:
        completed = failed = False
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                head = await sreader.readexactly(5)
                kind = head[:1]
                body = await sreader.readexactly(struct.unpack("!i", head[1:])[0] - 4)
                if kind == b"C":
                    completed = True
                elif kind == b"E":
                    failed = True
                elif kind == b"Z":
                    # Clients finish a request only on ReadyForQuery: withholding it loses
                    # the whole reply, while the server has committed.
                    if body == b"I" and completed and not failed and self._lose():
                        return
                    completed = failed = False
                cwriter.write(head + body)
                await cwriter.drain()
