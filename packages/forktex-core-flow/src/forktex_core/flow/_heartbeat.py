# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Heartbeats that do not share fate with workflow code.

A :class:`LeaseKeeper` renews, from a thread of its own with a connection of its own, the
leases of exactly the executions its worker is driving (by run id and execution id) and the
worker's row in ``workers`` (with the versions it serves). A step that blocks the event loop
(CPU-bound work, a synchronous client) therefore never lets its run's lease lapse, so the
run is never executed twice meanwhile; the keeper notices the stall and logs a warning naming
the steps that were running. Runs it finds no longer held (cancelled, reaped) are reported
back to the worker, which stops their executions.

If the whole process stops (SIGSTOP, a frozen VM) the thread stops too: the leases expire
and the runs are recovered elsewhere, while the frozen executions are fenced out of their
runs at their next write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from ._clock import DbClock
from ._db import TRANSIENT, log

if TYPE_CHECKING:
    from ._store import Store


@dataclass(frozen=True, slots=True)
class KeeperSettings:
    """Who the keeper beats for, and how often."""

    worker_id: str
    hostname: str
    pid: int
    lease: float
    interval: float


class LeaseKeeper:
    """Renews live executions' leases from its own thread; warns when the loop stalls.

    ``on_lost`` is called in the worker's event loop with the ``(run id, execution id)``
    pairs whose runs were taken from them; ``describe`` (called from the keeper's thread)
    names what is running, for the stall warning.

    Example::

        keeper = LeaseKeeper(store, settings, clock, loop, on_lost=worker.stop_runs,
                             describe=worker.describe_steps)
        keeper.start()
        keeper.hold(run_id, execution_id)     # when an execution starts
        keeper.release(run_id, execution_id)  # when it has ended
        keeper.stop()
    """

    def __init__(
        self,
        store: Store,
        settings: KeeperSettings,
        clock: DbClock,
        loop: asyncio.AbstractEventLoop,
        *,
        on_lost: Callable[[list[tuple[uuid.UUID, uuid.UUID]]], None],
        describe: Callable[[], str],
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._loop = loop
        self._on_lost = on_lost
        self._describe = describe
        self._held: dict[uuid.UUID, uuid.UUID] = {}
        self._lock = threading.Lock()
        self._versions = "[]"
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._tick = time.monotonic()
        self._ticker: asyncio.TimerHandle | None = None
        self._stalled_since: float | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        # monotonic time of the first failed beat since the last good one (None: beating)
        self.down_since: float | None = None

    # -- called from the worker's event loop -------------------------------------------------

    def start(self) -> None:
        """Start the thread (and the loop-liveness tick it watches)."""
        self._loop_tick()
        self._thread = threading.Thread(
            target=self._main, name=f"forktex-flow-leases-{self._settings.worker_id}", daemon=True
        )
        self._thread.start()

    def hold(self, run_id: uuid.UUID, execution: uuid.UUID) -> None:
        """Renew the lease of ``execution`` of ``run_id`` from now on."""
        with self._lock:
            self._held[run_id] = execution

    def release(self, run_id: uuid.UUID, execution: uuid.UUID) -> None:
        """Stop renewing it (the execution has ended)."""
        with self._lock:
            if self._held.get(run_id) == execution:
                del self._held[run_id]

    def set_versions(self, keys: list[str]) -> None:
        """The ``name:version`` pairs published in ``workers.versions`` from the next beat."""
        self._versions = json.dumps(sorted(keys))

    def stop(self) -> None:
        """Stop beating (the worker's row is deleted by the worker itself)."""
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.cancel()
        loop, wakeup = self._thread_loop, self._wakeup
        if loop is not None and wakeup is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already finished
                loop.call_soon_threadsafe(wakeup.set)
        if self._thread is not None:
            self._thread.join(self._settings.interval + 10.0)

    def _loop_tick(self) -> None:
        self._tick = time.monotonic()
        self._ticker = self._loop.call_later(self._settings.interval / 2, self._loop_tick)

    # -- the keeper's thread -----------------------------------------------------------------

    def _main(self) -> None:
        asyncio.run(self._beat_forever())

    async def _beat_forever(self) -> None:
        self._wakeup = asyncio.Event()
        self._thread_loop = asyncio.get_running_loop()
        s = self._settings
        conn: asyncpg.Connection | None = None
        delay = s.interval
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncio.wait_for(
                            # losing a heartbeat in a Postgres crash is the same as
                            # losing the worker: no need to wait for the WAL flush
                            self._store.dedicated(synchronous_commit="off"),
                            s.lease,
                        )
                    await self._beat(conn)
                    delay = s.interval
                    self.down_since = None
                except (*TRANSIENT, asyncpg.PostgresError, TimeoutError) as exc:
                    if self.down_since is None:
                        self.down_since = started
                    log.warning("flow: heartbeat failed (%s); retrying", type(exc).__name__)
                    if conn is not None:
                        conn.terminate()
                    conn = None
                    delay = min(s.interval, 0.1)
                self._watch_loop()
                await self._pause(max(0.0, delay - (time.monotonic() - started)))
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2.0)
                if not conn.is_closed():
                    conn.terminate()

    async def _pause(self, seconds: float) -> None:
        assert self._wakeup is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    async def _beat(self, conn: asyncpg.Connection) -> None:
        s = self._settings
        with self._lock:
            held = list(self._held.items())
        sent = time.monotonic()
        db_now, renewed = await self._store.heartbeat(
            conn,
            s.worker_id,
            s.lease,
            held,
            s.hostname,
            s.pid,
            self._versions,
            within=max(s.interval, s.lease / 2),
        )
        self._clock.observe(db_now, sent, time.monotonic())
        lost = [(r, e) for r, e in held if r not in renewed]
        if lost:
            with contextlib.suppress(RuntimeError):  # the worker's loop has closed
                self._loop.call_soon_threadsafe(self._on_lost, lost)

    def _watch_loop(self) -> None:
        """Warn (once per stall) when the worker's event loop stopped running callbacks."""
        blocked = time.monotonic() - self._tick
        limit = max(self._settings.lease / 2, self._settings.interval * 2)
        if blocked <= limit:
            if self._stalled_since is not None:
                log.info(
                    "flow: the worker's event loop runs again after %.1f s",
                    time.monotonic() - self._stalled_since,
                )
            self._stalled_since = None
            return
        if self._stalled_since is None:
            self._stalled_since = self._tick
            try:
                running = self._describe()
            except Exception as exc:  # pragma: no cover - reading another thread's state
                running = f"(could not tell: {exc!r})"
            log.warning(
                "flow: the worker's event loop has been blocked for %.1f s by %s. Leases are "
                "kept alive, but nothing else in this worker runs: run blocking work with "
                "'await asyncio.to_thread(...)' (or in a process pool) instead.",
                blocked,
                running,
            )
