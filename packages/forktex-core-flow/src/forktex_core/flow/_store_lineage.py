# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Runs made from runs: a fork from a step, and continue-as-new (one transaction each)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from . import _sql as sql
from ._connections import Connections
from ._errors import InvalidArgument, RunNotFound
from ._records import FINISHED_VALUES
from ._telemetry import TRACE_KEY


class LineageStore:
    """Forks and continue-as-new on flow's tables (part of :class:`~._store.Store`).

    Example::

        await store.lineage.fork(source_id, uuid.uuid4(), 3, None, {"forked_from": "..."})
    """

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    async def fork(
        self,
        source: uuid.UUID,
        new_id: uuid.UUID,
        from_step: int,
        version: tuple[int, float | None] | None,
        lineage: dict[str, Any],
    ) -> None:
        """Create run ``new_id`` from the finished run ``source``: its input and metadata
        (plus ``lineage``), its queue, priority and partition key, its final checkpoints
        before ``from_step``, on ``version`` (number, timeout) or the source's; one
        transaction.

        Raises :class:`RunNotFound`, and :class:`InvalidArgument` for a run not finished or a
        ``from_step`` past its log.
        """
        pool = await self._connections.client()
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(sql.FORK_SOURCE, source)
            if row is None:
                raise RunNotFound(source)
            if row["status"] not in FINISHED_VALUES:
                raise InvalidArgument(
                    f"run {source} is {row['status']}; only finished runs (succeeded, failed, "
                    "cancelled, dead) can be forked: cancel it first"
                )
            if from_step > row["positions"]:
                raise InvalidArgument(
                    f"from_step must be between 0 and {row['positions']} (the positions "
                    f"recorded by run {source}), got {from_step}"
                )
            number, timeout = version if version is not None else (row["version"], row["timeout"])
            # the original's trace context stays with it (lineage brings the forker's)
            original = json.loads(row["metadata"] or "{}")
            original.pop(TRACE_KEY, None)
            metadata = {**original, **lineage}
            await conn.fetchval(
                sql.FORK_RUN,
                new_id,
                row["workflow"],
                number,
                row["input"],
                timeout,
                json.dumps(metadata),
                row["queue"],
                row["priority"],
                row["partition_key"],
            )
            await conn.execute(sql.FORK_STEPS, new_id, source, from_step)
            live = await conn.fetch(sql.FORK_LIVE_CHILDREN, new_id, sql.CHILD_SIGNAL)
            if live:
                first = live[0]
                raise InvalidArgument(
                    f"run {source} started child {first['id']} at position {first['seq']}, "
                    f"which is still {first['status']} and whose result is not recorded "
                    f"before from_step {from_step}: a fork would wait for it forever (its "
                    f"outcome goes to run {source}); fork from position {first['seq']} or "
                    "earlier, or once the child has ended"
                )
            # the outcome of each finished child the fork will await (as its original heard)
            await conn.execute(sql.FORK_CHILD_OUTCOMES, new_id, sql.CHILD_SIGNAL)

    async def continue_as_new(
        self,
        run_id: uuid.UUID,
        execution: uuid.UUID,
        archive_id: uuid.UUID,
        input: str,
        lineage: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]],
    ) -> bool:
        """Start the run afresh with ``input``, moving its log and consumed signals to the
        finished run ``archive_id``; one transaction, fenced. False if not held.

        ``lineage(metadata)`` gives the (archive's, run's) metadata.
        """
        async with self._connections.workers.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(sql.CONTINUE_LOCK, run_id, execution)
            if row is None:
                return False
            archived, live = lineage(json.loads(row["metadata"] or "{}"))
            await conn.execute(
                sql.CONTINUE_ARCHIVE,
                archive_id,
                row["workflow"],
                row["version"],
                row["input"],
                input,
                json.dumps(archived),
                row["created_at"],
                row["started_at"],
            )
            await conn.execute(sql.CONTINUE_STEPS, archive_id, run_id)
            await conn.execute(sql.CONTINUE_SIGNALS, archive_id, run_id)
            await conn.fetchval(sql.CONTINUE_RUN, run_id, input, json.dumps(live))
        return True
