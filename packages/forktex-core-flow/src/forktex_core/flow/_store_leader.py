# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The leader's operations, on the connection that holds the leader lock."""

from __future__ import annotations

import asyncpg

from . import _sql as sql
from ._schema import LOCK_CLASS, LOCK_LEADER


class LeaderStore:
    """What the leader does to flow's tables (part of :class:`~._store.Store`).

    Example::

        conn = await store.dedicated()
        if await store.leadership.try_lead(conn, worker_id):
            await store.leadership.reap(conn, max_attempts=3)
    """

    async def try_lead(self, conn: asyncpg.Connection, worker_id: str) -> bool:
        """Take the leader lock on ``conn`` if free, and name ``worker_id`` as its holder."""
        if not await conn.fetchval(sql.TRY_LEAD, LOCK_CLASS, LOCK_LEADER):
            return False
        await conn.execute(sql.MARK_LEADER, worker_id)
        return True

    async def reap(self, conn: asyncpg.Connection, max_attempts: int) -> list[str]:
        """Take runs from lapsed leases; the new status of each (``pending`` or ``dead``)."""
        return [str(r["status"]) for r in await conn.fetch(sql.REAP, max_attempts)]

    async def wake_if_due(self, conn: asyncpg.Connection) -> None:
        """Wake the workers when a timer is due or a run is pending."""
        if await conn.fetchval(sql.DUE):
            await conn.execute(sql.WAKE_WORKERS)

    async def prune(self, conn: asyncpg.Connection, retention: float, batch: int) -> int:
        """Delete up to ``batch`` runs finished more than ``retention`` s ago; how many."""
        await conn.execute(sql.PRUNE_STARTS)
        result = await conn.execute(sql.PRUNE, retention, batch)
        return int(result.split()[-1])

    async def forget_workers(self, conn: asyncpg.Connection, silent_for: float) -> None:
        """Delete the rows of workers silent for ``silent_for`` seconds."""
        await conn.execute(sql.FORGET_WORKERS, silent_for)
