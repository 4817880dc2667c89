# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""One clock, the database's: a worker's skewed wall clock changes no timer; the workflow
timeout runs from the first pickup of a run, not from ``start()``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import Flow, FlowContext


@pytest.mark.parametrize("skew", [-2.0, 2.0], ids=["behind", "ahead"])
async def test_timers_follow_the_database_clock_not_the_workers(
    make_flow: Callable[..., Flow], h: Any, pg: Any, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + skew)
    flow = make_flow()
    bodies: list[float] = []

    @flow.workflow(name="clock.sleep", version=1, timeout=4.0)
    async def wf(ctx: FlowContext) -> float:
        bodies.append(1)
        start = ctx.now()
        await ctx.sleep(1.0)
        return (ctx.now() - start).total_seconds()

    async with h.running(flow):
        run_id = await flow.start("clock.sleep")
        elapsed = await flow.result(run_id, timeout=20)
    # one execution until the sleep, one after it: no claim/replay cycles in between
    assert len(bodies) == 2
    assert 1.0 <= elapsed < 2.0
    conn = await asyncpg.connect(pg.dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (s.output::text)::float8 - extract(epoch FROM s.finished_at) AS ahead, "
            "extract(epoch FROM r.started_at) AS started "
            "FROM forktex_flow.steps s JOIN forktex_flow.runs r ON r.id = s.run_id "
            "WHERE s.run_id = $1 AND s.kind = 'sleep'",
            run_id,
        )
        now_row = await conn.fetchval(
            "SELECT (output::text)::float8 FROM forktex_flow.steps "
            "WHERE run_id = $1 AND kind = 'now' ORDER BY seq LIMIT 1",
            run_id,
        )
    finally:
        await conn.close()
    # the wake-up time was set 1 s after the checkpoint, on the database's clock
    assert row["ahead"] == pytest.approx(1.0, abs=0.25)
    # ctx.now() reads the same clock
    assert now_row == pytest.approx(float(row["started"]), abs=0.5)


async def test_workflow_timeout_starts_at_the_first_pickup(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="clock.queued", version=1, timeout=1.0)
    async def wf(ctx: FlowContext) -> str:
        return "ran"

    run_id = await flow.start("clock.queued")
    assert (await flow.get_run(run_id)).deadline is None
    await asyncio.sleep(1.5)  # queued for longer than its timeout: not yet started
    async with h.running(flow):
        assert await flow.result(run_id, timeout=20) == "ran"
    info = await flow.get_run(run_id)
    assert info.deadline is not None and info.started_at is not None
    assert (info.deadline - info.started_at).total_seconds() == pytest.approx(1.0, abs=0.01)
