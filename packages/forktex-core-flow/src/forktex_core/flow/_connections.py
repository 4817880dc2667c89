# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The connections of one :class:`~forktex_core.flow._store.Store` (nobody else holds any).

* a small asyncpg pool per event loop for client calls (start, result, introspection,
  control), created with the schema on first use;
* the worker's pool, opened by the worker and sized to its concurrency, for claims and the
  writes of executions;
* dedicated connections for what needs a session of its own: LISTEN, the leader's advisory
  lock, the heartbeat thread, the batched lease checks;
* a SQLAlchemy engine per event loop for transactional steps;
* the LISTEN connection that tells ``result()`` a run has finished.

All of them are opened by one :class:`~._unavailable.Reporter`: with ``connect_timeout`` and
``command_timeout``, and with their faults reported as :class:`FlowUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from ._db import keep_session, mask_url, sqlalchemy_url
from ._errors import FlowClosed, FlowUnavailable
from ._listener import Listener
from ._schema import ensure_schema
from ._sql import DONE_CHANNEL
from ._unavailable import DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, Reporter, Target
from ._watchdog import StatementWatchdog

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class Connections:
    """Pools, engine and listeners of one database, each bound to the event loop using it.

    Example::

        conns = Connections("postgresql+asyncpg://user:pass@host/db")
        pool = await conns.client()
        await conns.close()
    """

    def __init__(
        self,
        database_url: str,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        self._url = database_url
        self._reporter = Reporter(database_url, connect_timeout, command_timeout)
        self.dsn = self._reporter.dsn
        self._pool: asyncpg.Pool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._pool_lock: asyncio.Lock | None = None
        self._schema_ready = False
        self._engine: AsyncEngine | None = None
        self._engine_loop: asyncio.AbstractEventLoop | None = None
        self._workers: asyncpg.Pool | None = None
        self._watchdog: StatementWatchdog | None = None
        self._done: Listener | None = None
        self._done_lock: asyncio.Lock | None = None
        self._done_loop: asyncio.AbstractEventLoop | None = None
        self._done_ready = False
        self._waiters: dict[uuid.UUID, list[asyncio.Future[None]]] = {}
        self._closed = False

    @property
    def masked_url(self) -> str:
        """The database URL with its password masked (for reprs and messages)."""
        return mask_url(self._url)

    @property
    def target(self) -> Target:
        """The server, as error messages name it."""
        return self._reporter.target

    def check_open(self) -> None:
        """Raise :class:`FlowClosed` once :meth:`close` was called."""
        if self._closed:
            raise FlowClosed("this Flow was closed; create a new Flow")

    async def ensure_schema(self) -> None:
        """Create or migrate the schema (once per process and database)."""
        if self._schema_ready:
            return
        from sqlalchemy.pool import NullPool

        from forktex_core.db import DatabaseUnavailable

        try:
            engine = self._reporter.engine(sqlalchemy_url(self._url), poolclass=NullPool)
            await ensure_schema(engine)
        except DatabaseUnavailable as exc:  # a migration statement lost its connection
            raise FlowUnavailable(f"while migrating the schema of {self.target}: {exc}") from exc
        self._schema_ready = True

    async def client(self) -> asyncpg.Pool:
        """The client pool of the running event loop (schema ensured first)."""
        self.check_open()
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._pool_loop is loop:
            return self._pool
        if self._pool_lock is None or self._pool_loop is not loop:
            self._pool_lock = asyncio.Lock()
        async with self._pool_lock:
            if self._pool is not None and self._pool_loop is loop:
                return self._pool
            if self._pool is not None:  # created on another (finished) event loop
                self._pool.terminate()
                self._pool = None
            self._pool_loop = loop
            await self.ensure_schema()
            self._pool = await self._create_pool(10)
            return self._pool

    async def open_workers(self, max_size: int) -> None:
        """Open the worker's pool (kept until :meth:`close_workers`)."""
        if self._workers is None:
            # A busy pool: no idle timer re-armed at every release (asyncpg's default closes
            # connections idle for 300 s; the worker's are never idle that long, and a dead
            # one is replaced on its next use anyway).
            # Its statements (a checkpoint per step) share one watchdog for command_timeout
            # instead of a loop timer each.
            timeout = self._reporter.target.command_timeout
            watchdog = None if timeout is None else StatementWatchdog(timeout)
            self._workers = await self._create_pool(max_size, idle_lifetime=0.0, watchdog=watchdog)
            self._watchdog = watchdog
            if watchdog is not None:
                watchdog.start()

    async def _create_pool(
        self,
        max_size: int,
        idle_lifetime: float = 300.0,
        watchdog: StatementWatchdog | None = None,
    ) -> asyncpg.Pool:
        reporter = self._reporter
        connect = reporter.connect
        if watchdog is not None:
            connect = functools.partial(reporter.connect, watchdog=watchdog)
        pool: asyncpg.Pool = await asyncpg.create_pool(
            reporter.dsn,
            min_size=1,
            max_size=max_size,
            reset=keep_session,
            connect=connect,
            connection_class=reporter.connection_class,
            max_inactive_connection_lifetime=idle_lifetime,
            **reporter.timeouts,
        )
        return pool

    @property
    def workers_open(self) -> bool:
        """True between :meth:`open_workers` and :meth:`close_workers`."""
        return self._workers is not None

    @property
    def workers(self) -> asyncpg.Pool:
        """The worker's pool (opened by :meth:`open_workers`)."""
        if self._workers is None:
            raise RuntimeError("the worker's pool is not open")
        return self._workers

    async def close_workers(self) -> None:
        """Close the worker's pool."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            await watchdog.stop()
        pool, self._workers = self._workers, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 5.0)
            pool.terminate()

    async def dedicated(self, **server_settings: str) -> asyncpg.Connection:
        """A connection of its own (the caller closes it), with these session settings."""
        return await self._reporter.connect(server_settings=server_settings or None)

    def listener(
        self,
        channels: dict[str, Callable[[str], None]],
        on_reconnect: Callable[[], None] | None = None,
    ) -> Listener:
        """A self-healing LISTEN connection on ``channels`` (not started yet)."""
        return Listener(self.dedicated, channels, on_reconnect)

    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine of the running event loop."""
        loop = asyncio.get_running_loop()
        if self._engine is None or self._engine_loop is not loop:
            self._engine = self._reporter.engine(
                sqlalchemy_url(self._url), pool_size=5, max_overflow=5, pool_pre_ping=True
            )
            self._engine_loop = loop
        return self._engine

    # -- completions ------------------------------------------------------------------------

    async def watch_finished(self) -> None:
        """LISTEN for finished runs on this event loop (once; concurrent callers share it)."""
        loop = asyncio.get_running_loop()
        if self._done_ready and self._done_loop is loop:
            return
        if self._done_lock is None or self._done_loop is not loop:
            self._done_lock = asyncio.Lock()
            self._done_loop = loop
            self._done_ready = False
        async with self._done_lock:
            if self._done_ready:
                return
            listener = self.listener({DONE_CHANNEL: self._on_done}, self._wake_all)
            await listener.start()
            old, self._done = self._done, listener
            self._done_ready = True
            if old is not None:
                await old.close()

    def expect_finished(self, run_id: uuid.UUID) -> asyncio.Future[None]:
        """A future set when ``run_id`` finishes (or the listener reconnected: look again)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(fut)
        return fut

    def forget_finished(self, run_id: uuid.UUID, fut: asyncio.Future[Any]) -> None:
        """Drop a future of :meth:`expect_finished`."""
        futs = self._waiters.get(run_id)
        if futs is not None and fut in futs:
            futs.remove(fut)
            if not futs:
                del self._waiters[run_id]

    def _on_done(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            for fut in self._waiters.pop(uuid.UUID(payload), []):
                if not fut.done():
                    fut.set_result(None)

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, {}
        for futs in waiters.values():
            for fut in futs:
                if not fut.done():
                    fut.set_result(None)

    async def close(self) -> None:
        """Close the client pool, the engine and the listener. Idempotent."""
        self._closed = True
        self._done_ready = False
        if self._done is not None:
            await self._done.close()
            self._done = None
        if self._pool is not None:
            if self._pool_loop is asyncio.get_running_loop():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._pool.close(), 5.0)
            self._pool.terminate()
            self._pool = None
        if self._engine is not None:
            if self._engine_loop is asyncio.get_running_loop():
                await self._engine.dispose()
            self._engine = None
