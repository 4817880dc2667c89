# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Operators' reads (the console's pages): keyset pages, counts, workers, signals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from . import _sql as sql
from ._connections import Connections
from ._db import retry_read
from ._schema import LOCK_CLASS, LOCK_LEADER


class ViewStore:
    """The console's reads of flow's tables (part of :class:`~._store.Store`).

    Example::

        rows = await store.views.page_runs(50, None, {"workflow": "cloud.deploy"}, None)
    """

    def __init__(self, connections: Connections, stale: float) -> None:
        self._connections = connections
        self._stale = stale
        self._pages: dict[tuple[tuple[str, ...], bool], str] = {}

    async def page_runs(
        self,
        limit: int,
        cursor: tuple[datetime, uuid.UUID] | None,
        filters: dict[str, Any],
        statuses: list[str] | None,
    ) -> list[asyncpg.Record]:
        """A keyset page of run rows, newest first, after ``cursor`` (created at, id).

        ``filters`` maps names of :data:`._sql.PAGE_FILTERS` to values (absent: no filter).
        """
        names = tuple(n for n in sql.PAGE_FILTERS if filters.get(n) is not None)
        key = (names, statuses is not None)
        statement = self._pages.get(key)
        if statement is None:
            statement = sql.page_runs(self._stale, names, statuses is not None)
            self._pages[key] = statement
        at, rid = cursor if cursor is not None else (None, None)
        args: tuple[Any, ...] = (limit, at, rid, *(filters[n] for n in names))
        if statuses is not None:
            args = (*args, statuses)
        pool = await self._connections.client()
        rows: list[asyncpg.Record] = await retry_read(
            lambda: pool.fetch(statement, *args), what="page_runs"
        )
        return rows

    async def count_runs(self, exact_below: int, live: list[str]) -> tuple[dict[str, int], bool]:
        """Runs by status and whether every number is exact.

        Tables the planner estimates below ``exact_below`` rows (or never analysed) are
        counted; larger ones count the ``live`` statuses exactly (index-only scans of
        ``runs_status_created``) and take the others from the planner's statistics.
        """
        pool = await self._connections.client()

        async def read() -> tuple[dict[str, int], bool]:
            async with pool.acquire() as conn:
                stats = await conn.fetchrow(sql.RUN_STATISTICS)
                rows = float(stats["reltuples"])
                if rows < 0 or rows < exact_below or stats["statuses"] is None:
                    counted = await conn.fetch(sql.COUNT_BY_STATUS)
                    return {r["status"]: int(r["n"]) for r in counted}, True
                counts = {
                    status: round(rows * freq)
                    for status, freq in zip(stats["statuses"], stats["freqs"], strict=True)
                }
                for r in await conn.fetch(sql.COUNT_STATUSES, live):
                    counts[r["status"]] = int(r["n"])
                return counts, False

        result: tuple[dict[str, int], bool] = await retry_read(read, what="count_runs")
        return result

    async def workers(self) -> tuple[list[asyncpg.Record], str | None]:
        """Rows of the registered workers (``alive``: heartbeat recent) and the leader's id."""
        pool = await self._connections.client()

        async def read() -> tuple[list[asyncpg.Record], str | None]:
            async with pool.acquire() as conn:
                rows = await conn.fetch(sql.WORKERS, self._stale)
                leader = await conn.fetchval(sql.LEADER_OF, LOCK_CLASS, LOCK_LEADER)
                return rows, None if leader is None else str(leader)

        result: tuple[list[asyncpg.Record], str | None] = await retry_read(read, what="workers")
        return result

    async def signals_of(self, run_id: uuid.UUID, limit: int) -> list[asyncpg.Record] | None:
        """The signals sent to a run, oldest first, or None when there is no such run."""
        pool = await self._connections.client()

        async def read() -> tuple[Any, list[asyncpg.Record]]:
            async with pool.acquire() as conn:
                exists = await conn.fetchval(sql.RUN_EXISTS, run_id)
                return exists, await conn.fetch(sql.SIGNALS_OF, run_id, limit)

        exists, rows = await retry_read(read, what="signals")
        return None if exists is None else rows
