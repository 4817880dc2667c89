# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Leader election and housekeeping.

One worker at a time holds a session-level ``pg_try_advisory_lock`` on a dedicated
connection. Postgres releases it when that session ends (crash, SIGKILL, dropped
connection), and another worker takes it at its next attempt. The leader reaps expired
leases (runs back to ``pending``, or ``dead`` past ``max_recovery_attempts``), wakes workers
for due timers, and prunes finished runs older than the retention in small batches.
Housekeeping runs on the lock's own connection, so only the real lock holder does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import asyncpg

from ._claim import DONE_CHANNEL, WORK_CHANNEL, recover_set
from ._db import TRANSIENT, log
from ._schema import LOCK_CLASS, LOCK_LEADER, SCHEMA

# A lapsed lease: its execution is gone (worker killed, frozen, cut off). The loss counts
# as a recovery attempt; past max_recovery_attempts the run is parked as dead.
REAP = f"""
UPDATE {SCHEMA}.runs SET {recover_set("true", "$1")}
WHERE status = 'running' AND lease_until < now()
RETURNING status,
          CASE WHEN status = 'dead' THEN pg_notify('{DONE_CHANNEL}', id::text)
               ELSE pg_notify('{WORK_CHANNEL}', '') END AS notified
"""

DUE = f"""
SELECT EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE status = 'waiting' AND wake_at <= now())
    OR EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE status = 'pending' AND wake_at <= now())
"""

PRUNE = f"""
DELETE FROM {SCHEMA}.runs WHERE id IN (
    SELECT id FROM {SCHEMA}.runs
    WHERE status IN ('succeeded', 'failed', 'cancelled', 'dead')
      AND finished_at < now() - make_interval(secs => $1)
    ORDER BY finished_at LIMIT $2
)
"""

FORGET_WORKERS = f"""
DELETE FROM {SCHEMA}.workers WHERE heartbeat < now() - make_interval(secs => $1)
"""

LEADER_OF = f"""
SELECT w.id FROM pg_locks l JOIN {SCHEMA}.workers w ON w.leader_pid = l.pid
WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2
  AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class LeaderSettings:
    interval: float
    max_recovery_attempts: int
    retention: float
    prune_batch: int
    lease: float


class Leader:
    """Campaigns for leadership on its own connection; does housekeeping while leader."""

    def __init__(self, dsn: str, worker_id: str, settings: LeaderSettings) -> None:
        self._dsn = dsn
        self._worker_id = worker_id
        self._settings = settings
        self._conn: asyncpg.Connection | None = None
        self.is_leader = False
        self._last_prune = 0.0

    async def run(self, stopping: asyncio.Event) -> None:
        """Campaign / housekeep every ``interval`` seconds until ``stopping`` is set."""
        while not stopping.is_set():
            try:
                await self._tick()
            except (*TRANSIENT, asyncpg.PostgresError) as exc:
                if self.is_leader:
                    log.warning("flow: leader lost its connection (%s)", type(exc).__name__)
                self.is_leader = False
                self._drop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._settings.interval)

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
        self._conn = None

    async def _tick(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self.is_leader = False
            self._conn = await asyncpg.connect(self._dsn)
        conn = self._conn
        if not self.is_leader:
            if not await conn.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, LOCK_LEADER
            ):
                return
            self.is_leader = True
            await conn.execute(
                f"UPDATE {SCHEMA}.workers SET leader_pid = pg_backend_pid() WHERE id = $1",
                self._worker_id,
            )
            log.info("flow: worker %s is now the leader", self._worker_id)
        await self.housekeep(conn)

    async def housekeep(self, conn: asyncpg.Connection) -> None:
        """Reap expired leases, wake workers for due timers, prune old finished runs."""
        s = self._settings
        reaped = await conn.fetch(REAP, s.max_recovery_attempts)
        if reaped:
            dead = sum(1 for r in reaped if r["status"] == "dead")
            log.warning(
                "flow: recovered %d run(s) from expired leases (%d parked as dead)",
                len(reaped) - dead,
                dead,
            )
        if await conn.fetchval(DUE):
            await conn.execute(f"NOTIFY {WORK_CHANNEL}")
        now = time.monotonic()
        if now - self._last_prune >= max(10 * s.interval, 1.0):
            self._last_prune = now
            result = await conn.execute(PRUNE, s.retention, s.prune_batch)
            if result.split()[-1] == str(s.prune_batch):
                self._last_prune = 0.0  # more to prune: continue next tick
            await conn.execute(FORGET_WORKERS, max(60.0, 20 * s.lease))

    async def close(self) -> None:
        """Give up leadership (closing the session releases the lock)."""
        conn, self._conn = self._conn, None
        self.is_leader = False
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)
            if not conn.is_closed():
                conn.terminate()


async def leader_of(conn: asyncpg.Connection | asyncpg.Pool) -> str | None:
    """The id of the worker currently holding the leader lock, if any."""
    value = await conn.fetchval(LEADER_OF, LOCK_CLASS, LOCK_LEADER)
    return None if value is None else str(value)
