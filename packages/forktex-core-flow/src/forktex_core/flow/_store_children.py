# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Child workflows in flow's tables: a parent's execution starts a child (fenced on it),
the children of a run, and cancelling a cancelled parent's tree."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from . import _sql as sql
from ._connections import Connections
from ._db import READ_RETRY, retry_transient
from ._errors import InvalidArgument
from ._queues import Placement


@dataclass(frozen=True, slots=True)
class ChildLink:
    """Who starts a child: the parent run, its execution (the fence), the child's id and
    whether the child is cancelled with its parent."""

    child_id: uuid.UUID
    parent_id: uuid.UUID
    execution: uuid.UUID
    cancel_with_parent: bool


class ChildStore:
    """Child runs on flow's tables (part of :class:`~._store.Store`).

    Example::

        child = await store.children.start(link, "billing.charge", 1, "{}", None, None, "{}")
        rows = await store.children.of(parent_id)
    """

    def __init__(self, connections: Connections, stale: float) -> None:
        self._connections = connections
        self._children_of = sql.children_of(stale)

    async def start(
        self,
        link: ChildLink,
        workflow: str,
        version: int,
        input: str,
        idempotency_key: str | None,
        timeout: float | None,  # noqa: ASYNC109 - the run's workflow timeout, stored
        metadata: str,
        place: Placement = Placement(),  # noqa: B008 - frozen, shared safely
    ) -> uuid.UUID | None:
        """Insert the child ``link.child_id`` (pending; workers woken) unless it exists.

        Returns the child's id — the existing run when the id or ``idempotency_key`` is
        taken — or None when the parent's execution no longer holds the parent (nothing was
        started). Raises :class:`InvalidArgument` when the key names a run that is not a
        child of this parent (its outcome would never reach the parent).
        """
        pool = self._connections.workers
        row = await pool.fetchrow(
            sql.START_CHILD,
            link.child_id,
            workflow,
            version,
            input,
            idempotency_key,
            timeout,
            metadata,
            place.queue,
            place.priority,
            place.partition_key,
            None,
            None,
            None,
            link.parent_id,
            link.cancel_with_parent,
            link.execution,
        )
        if row is not None:
            return link.child_id
        found = await pool.fetchrow(
            sql.CHILD_FOUND,
            link.child_id,
            workflow,
            idempotency_key,
            link.parent_id,
            link.execution,
        )
        if found["by_id"] is not None:
            return link.child_id
        if found["by_key"] is not None:
            other = uuid.UUID(str(found["by_key"]))
            raise InvalidArgument(
                f"idempotency_key {idempotency_key!r} already names run {other} of workflow "
                f"{workflow!r}, which is not a child of run {link.parent_id}"
            )
        return None

    async def of(self, run_id: uuid.UUID) -> list[asyncpg.Record]:
        """The rows of the children ``run_id`` started (JSON columns as text), oldest first."""
        pool = await self._connections.client()
        rows: list[asyncpg.Record] = await retry_transient(
            lambda: pool.fetch(self._children_of, run_id), within=READ_RETRY, what="children"
        )
        return rows

    async def wake(self, run_id: uuid.UUID) -> None:
        """Wake the waiting parent ``run_id`` (a worker told ``wake:<id>``)."""
        pool = await self._connections.client()
        await retry_transient(
            lambda: pool.fetchval(sql.WAKE_PARENT, run_id), within=READ_RETRY, what="wake"
        )

    async def cancel_tree(self, run_id: uuid.UUID) -> int:
        """Cancel the live descendants of the cancelled run ``run_id`` that follow their
        parent's cancellation, level by level; how many were cancelled."""
        pool = await self._connections.client()
        level = [run_id]
        cancelled = 0
        while level:
            rows = await pool.fetch(sql.CANCEL_CHILDREN, level)
            level = [uuid.UUID(str(r["id"])) for r in rows]
            cancelled += len(level)
        return cancelled
