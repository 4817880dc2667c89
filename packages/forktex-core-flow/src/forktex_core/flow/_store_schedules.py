# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Schedules in flow's tables: definitions, pause/resume, and the leader's firing of due
ticks (one transaction per round: the runs of the ticks and the moved-on next tick commit
together, and each tick's run is keyed by the tick, so no tick runs twice)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from . import _sql as sql
from ._connections import Connections
from ._db import log, retry_read
from ._errors import FlowError, InvalidSchedule, ScheduleNotFound
from ._schedules import Schedule, plan, tick_key, tick_text

DUE_BATCH = 100  # schedules handled per statement of a round


class ScheduleStore:
    """The stored schedules (part of :class:`~._store.Store`).

    Example::

        await store.schedules.create(Schedule.check("nightly", "reports.build", "0 3 * * *"))
        rows = await store.schedules.all()
    """

    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self._declared: set[Schedule] = set()

    async def _now(self, pool: asyncpg.Pool) -> datetime:
        now: datetime = await pool.fetchval(sql.NOW)
        return now

    async def declare(self, schedules: list[Schedule]) -> None:
        """Store the schedules declared in code (the latest declaration wins; paused
        state and the next tick are kept unless the timing changed). Once per store."""
        pending = [s for s in schedules if s not in self._declared]
        if not pending:
            return
        pool = await self._connections.client()
        now = await self._now(pool)
        for schedule in pending:
            await pool.execute(
                sql.DECLARE_SCHEDULE, schedule.name, *schedule.args(), schedule.next_tick(now)
            )
            self._declared.add(schedule)

    async def create(self, schedule: Schedule) -> None:
        """Store a new schedule; one of the same name with another definition is an error,
        the same definition again is a no-op."""
        pool = await self._connections.client()
        now = await self._now(pool)
        created = await pool.fetchval(
            sql.CREATE_SCHEDULE, schedule.name, *schedule.args(), schedule.next_tick(now)
        )
        if created is not None:
            return
        row = await pool.fetchrow(sql.SCHEDULE, schedule.name)
        if row is not None and Schedule.from_row(row) != schedule:
            raise InvalidSchedule(
                f"a schedule named {schedule.name!r} already exists with another definition "
                f"({row['workflow']!r} at {row['cron']!r} in {row['tz']}); delete it first "
                "or choose another name"
            )

    async def get(self, name: str) -> asyncpg.Record:
        """The stored row of schedule ``name``; :class:`ScheduleNotFound` if none."""
        pool = await self._connections.client()
        row = await retry_read(lambda: pool.fetchrow(sql.SCHEDULE, name), what="schedule")
        if row is None:
            raise ScheduleNotFound(name)
        return row

    async def all(self) -> list[asyncpg.Record]:
        """Every stored schedule's row, by name."""
        pool = await self._connections.client()
        rows: list[asyncpg.Record] = await retry_read(
            lambda: pool.fetch(sql.SCHEDULES), what="schedules"
        )
        return rows

    async def pause(self, name: str) -> None:
        """Stop firing ``name``'s ticks until :meth:`resume`."""
        pool = await self._connections.client()
        if await pool.fetchval(sql.PAUSE_SCHEDULE, name) is None:
            raise ScheduleNotFound(name)

    async def resume(self, name: str) -> None:
        """Fire ``name``'s ticks again from the next one (ticks passed while paused never run)."""
        row = await self.get(name)
        pool = await self._connections.client()
        after = Schedule.from_row(row).next_tick(await self._now(pool))
        if await pool.fetchval(sql.RESUME_SCHEDULE, name, after) is None:
            raise ScheduleNotFound(name)

    async def delete(self, name: str) -> None:
        """Delete schedule ``name`` (its runs stay)."""
        pool = await self._connections.client()
        if await pool.fetchval(sql.DELETE_SCHEDULE, name) is None:
            raise ScheduleNotFound(name)
        self._declared = {s for s in self._declared if s.name != name}

    async def start(
        self, name: str, ticks: list[datetime], trigger: str | None = None
    ) -> list[uuid.UUID]:
        """Start the runs of ``ticks`` of schedule ``name`` (each keyed by its tick, or by
        ``trigger`` when given); the ids of the runs started now (ticks already run: none)."""
        pool = await self._connections.client()
        async with pool.acquire() as conn:
            return await _start(conn, name, ticks, trigger)

    async def now(self) -> datetime:
        """The database's clock."""
        return await self._now(await self._connections.client())

    # -- the leader ---------------------------------------------------------------------------

    async def fire_due(self, conn: asyncpg.Connection) -> float | None:
        """Fire every due tick (under each schedule's catch-up policy) on the leader's
        ``conn``; seconds until the next tick of any schedule (None: no schedule runs)."""
        failed = False
        while True:
            async with conn.transaction():
                rows = await conn.fetch(sql.DUE_SCHEDULES, DUE_BATCH)
                for row in rows:
                    try:
                        schedule = Schedule.from_row(row)
                        todo = plan(schedule, row["next_at"], row["now"])
                    except FlowError as exc:
                        # e.g. a zone this host's tz database lacks: the others still fire,
                        # this one waits (and is reported) until the host can read it
                        log.error("flow: schedule %r cannot fire: %s", row["name"], exc)
                        failed = True
                        continue
                    if todo.skipped:
                        log.info(
                            "flow: schedule %r: %d missed tick(s) left out (catch_up=%s)",
                            schedule.name,
                            todo.skipped,
                            schedule.catch_up,
                        )
                    if todo.fire:
                        await _start(conn, schedule.name, todo.fire, None)
                    await conn.execute(sql.ADVANCE_SCHEDULE, schedule.name, todo.next_at, todo.last)
            if len(rows) < DUE_BATCH or failed:
                break
        if failed:
            return None  # the stuck schedule is due already: no quicker round than usual
        due: float | None = await conn.fetchval(sql.NEXT_TICK_IN)
        return due


async def _start(
    conn: asyncpg.Connection, name: str, ticks: list[datetime], trigger: str | None
) -> list[uuid.UUID]:
    keys = [tick_key(name, t) if trigger is None else trigger for t in ticks]
    row = await conn.fetchrow(sql.START_TICKS, name, keys, [tick_text(t) for t in ticks])
    return list(row["ids"])
