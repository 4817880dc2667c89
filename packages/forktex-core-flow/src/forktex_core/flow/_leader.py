# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Leader election and housekeeping.

One worker at a time holds a session-level ``pg_try_advisory_lock`` on a dedicated
connection. Postgres releases it when that session ends (crash, SIGKILL, dropped
connection), and another worker takes it at its next attempt. The leader reaps expired
leases (runs back to ``pending``, or ``dead`` past ``max_recovery_attempts``), wakes workers
for due timers, and prunes finished runs older than the retention in small batches.
Housekeeping runs on the lock's own connection, so only the real lock holder does it.
The leader also fires due schedule ticks (``store.schedules.fire_due``) and sleeps no longer
than until the next one, so a tick starts its run within milliseconds of its time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import asyncpg

from ._db import TRANSIENT, log

MIN_PAUSE = 0.005  # the shortest sleep before a tick (the database's and our clocks differ)

if TYPE_CHECKING:
    from ._settings import Settings
    from ._store import Store


class Leader:
    """Campaigns for leadership on its own connection; does housekeeping while leader.

    Example::

        leader = Leader(store, "host-a:4242:9f3c1e", settings)
        task = asyncio.create_task(leader.run(stopping))
    """

    def __init__(self, store: Store, worker_id: str, settings: Settings) -> None:
        self._store = store
        self._worker_id = worker_id
        self._settings = settings
        self._conn: asyncpg.Connection | None = None
        self.is_leader = False
        self._last_prune = 0.0
        self._last_housekeep = 0.0

    async def run(self, stopping: asyncio.Event) -> None:
        """Campaign / housekeep every ``interval`` seconds until ``stopping`` is set."""
        while not stopping.is_set():
            pause = self._settings.reaper_interval
            try:
                pause = await self._tick()
            except (*TRANSIENT, asyncpg.PostgresError) as exc:
                if self.is_leader:
                    log.warning("flow: leader lost its connection (%s)", type(exc).__name__)
                self.is_leader = False
                self._drop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), pause)

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
        self._conn = None

    async def _tick(self) -> float:
        """Campaign, housekeep when due, fire due schedule ticks; seconds to sleep."""
        interval = self._settings.reaper_interval
        if self._conn is None or self._conn.is_closed():
            self.is_leader = False
            self._conn = await self._store.dedicated()
        conn = self._conn
        if not self.is_leader:
            if not await self._store.leadership.try_lead(conn, self._worker_id):
                return interval
            self.is_leader = True
            self._last_housekeep = 0.0
            log.info("flow: worker %s is now the leader", self._worker_id)
        since = time.monotonic() - self._last_housekeep
        if since >= interval:
            await self.housekeep(conn)
            self._last_housekeep, since = time.monotonic(), 0.0
        next_tick = await self._store.schedules.fire_due(conn)
        pause = interval - since
        if next_tick is not None:
            pause = min(pause, max(next_tick, MIN_PAUSE))
        return pause

    async def housekeep(self, conn: asyncpg.Connection) -> None:
        """Reap expired leases, wake workers for due timers, prune old finished runs."""
        s, store = self._settings, self._store
        reaped = await store.leadership.reap(conn, s.max_recovery_attempts)
        if reaped:
            dead = reaped.count("dead")
            log.warning(
                "flow: recovered %d run(s) from expired leases (%d parked as dead)",
                len(reaped) - dead,
                dead,
            )
        await store.leadership.wake_if_due(conn)
        now = time.monotonic()
        if now - self._last_prune >= max(10 * s.reaper_interval, 1.0):
            self._last_prune = now
            if await store.leadership.prune(conn, s.retention, s.prune_batch) == s.prune_batch:
                self._last_prune = 0.0  # more to prune: continue next tick
            await store.leadership.forget_workers(conn, max(60.0, 20 * s.lease))

    async def close(self) -> None:
        """Give up leadership (closing the session releases the lock)."""
        conn, self._conn = self._conn, None
        self.is_leader = False
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)
            if not conn.is_closed():
                conn.terminate()
