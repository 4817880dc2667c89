# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Queue definitions in flow's tables: declared from code, read (cached) at start and claim."""

from __future__ import annotations

from . import _sql as sql
from ._connections import Connections
from ._db import log, retry_read
from ._queues import Queue, QueueInfo, queue_info


class QueueStore:
    """The stored queue definitions and their live state (part of :class:`~._store.Store`).

    Example::

        await store.queues.declare([Queue("emails", concurrency=5)])
        emails = await store.queues.get("emails")
    """

    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self._defs: dict[str, Queue] = {}
        self._declared: set[Queue] = set()

    async def declare(self, queues: list[Queue]) -> None:
        """Store the definitions of ``queues`` (the latest declaration wins; a changed
        definition is logged as a warning). Each definition is stored once per store."""
        pending = [q for q in queues if q not in self._declared]
        if not pending:
            return
        pool = await self._connections.client()
        for queue in pending:
            row = await pool.fetchrow(sql.DECLARE_QUEUE, queue.name, *queue.args())
            if row["changed"] and row["priorities"] is not None:
                old = Queue.from_row({**dict(row), "name": queue.name})
                log.warning(
                    "flow: queue %r redefined: %r replaces %r (the latest declaration wins)",
                    queue.name,
                    queue,
                    old,
                )
            self._declared.add(queue)
            self._defs[queue.name] = queue

    async def get(self, name: str) -> Queue | None:
        """The stored definition of queue ``name`` (read once, then cached), or None."""
        known = self._defs.get(name)
        if known is not None:
            return known
        pool = await self._connections.client()
        row = await pool.fetchrow(sql.QUEUE, name)
        if row is None:
            return None
        self._defs[name] = Queue.from_row(row)
        return self._defs[name]

    async def info(self, name: str | None) -> list[QueueInfo]:
        """Every queue (or the one called ``name``) with its depth, slots and rate window."""
        pool = await self._connections.client()
        rows = await retry_read(lambda: pool.fetch(sql.QUEUES, name), what="queues")
        return [queue_info(r) for r in rows]

    async def exist(self) -> bool:
        """Whether any queue is declared (workers then claim through ``claim_queued``)."""
        return bool(await self._connections.workers.fetchval(sql.HAS_QUEUES))
