# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A LISTEN connection that reconnects by itself (with backoff) when Postgres drops it."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from ._db import TRANSIENT, log

PING_EVERY = 2.0


class Listener:
    """Keeps one connection LISTENing on ``channels``; calls ``on_reconnect`` after a gap.

    ``connect`` opens a new connection of its own (the store's ``dedicated``).

    Example::

        listener = Listener(store.dedicated, {"forktex_flow_work": on_work}, on_reconnect)
        await listener.start()
        await listener.close()
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        channels: dict[str, Callable[[str], None]],
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self._connect_new = connect
        self._channels = channels
        self._on_reconnect = on_reconnect
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._closing = False

    async def start(self) -> None:
        """Connect and LISTEN (raises if the first connection fails)."""
        await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _connect(self) -> None:
        conn = await self._connect_new()
        for channel in self._channels:
            await conn.add_listener(channel, self._dispatch)
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        self._lost.clear()

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        callback = self._channels.get(channel)
        if callback is not None:
            callback(payload)

    def _terminated(self, _conn: Any) -> None:
        self._lost.set()

    async def _watch(self) -> None:
        delay = 0.05
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), PING_EVERY)
            if self._closing:
                return
            conn = self._conn
            if conn is not None and not conn.is_closed() and not self._lost.is_set():
                try:
                    await conn.execute("SELECT 1")
                    continue
                except TRANSIENT:
                    pass
            # Lost: reconnect with backoff.
            if conn is not None:
                conn.terminate()
            self._conn = None
            while not self._closing:
                try:
                    await self._connect()
                    delay = 0.05
                    log.info("flow: LISTEN connection re-established")
                    if self._on_reconnect is not None:
                        self._on_reconnect()
                    break
                except (*TRANSIENT, asyncpg.PostgresError) as exc:
                    log.warning("flow: LISTEN reconnect failed (%s)", type(exc).__name__)
                    await asyncio.sleep(delay * (0.5 + random.random() / 2))
                    delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        """Stop listening and close the connection."""
        self._closing = True
        self._lost.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), 2.0)
            if not self._conn.is_closed():
                self._conn.terminate()
            self._conn = None
