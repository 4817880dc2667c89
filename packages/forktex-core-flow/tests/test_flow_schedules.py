# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Schedules in one process: declared and runtime schedules fire their ticks as runs keyed
by the tick; pause, resume, trigger, backfill, delete; bad input is refused by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import (
    Flow,
    FlowContext,
    InvalidSchedule,
    ScheduleNotFound,
)


async def _keys(pg: Any, schedule: str) -> list[str]:
    conn = await asyncpg.connect(pg.dsn)
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key FROM forktex_flow.runs WHERE metadata->>'schedule' = $1 "
            "ORDER BY idempotency_key",
            schedule,
        )
    finally:
        await conn.close()
    return [r["idempotency_key"] for r in rows]


async def test_a_declared_schedule_runs_each_tick_once(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()
    seen: list[dict[str, Any]] = []

    @flow.schedule("* * * * * *", input={"n": 1})
    @flow.workflow(name="sched.every_second")
    async def every_second(ctx: FlowContext, payload: dict[str, Any]) -> None:
        seen.append(payload)

    async with h.running(flow):
        await h.wait_until(lambda: len(seen) >= 3, timeout=10)
        info = (await flow.schedules())[0]
    keys = await _keys(pg, "sched.every_second")
    assert len(keys) == len(set(keys)) >= 3
    assert all(k.startswith("schedule:sched.every_second:") and k.endswith("Z") for k in keys)
    assert seen[0] == {"n": 1}
    assert info.name == "sched.every_second" and info.declared and not info.paused
    assert info.last_tick is not None and info.next_tick > info.last_tick
