# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Queued workflows run by worker subprocesses in the queue proof tests.

Every execution of a run's body logs its own interval in ``q_log`` (the database's clock),
so the test sees what really ran when, per worker process. Started as
``python -m forktex_core.flow._cli worker tests/flow_queue_app.py:flow``; the test passes
the database URL in the environment (test code, not library code, reads it).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg

from forktex_core.flow import Flow, FlowContext

URL = os.environ["FLOW_TEST_URL"]
DSN = URL.replace("postgresql+asyncpg://", "postgresql://")

flow = Flow(
    database_url=URL,
    lease=1.5,
    heartbeat=0.3,
    reaper_interval=0.2,
    poll_interval=0.5,
    shutdown_grace=0.5,
)
flow.queue("conc", concurrency=4, worker_concurrency=2)
flow.queue("rate", limit=4, period=1.0)
flow.queue("prio", concurrency=1, priorities=True)
flow.queue("part", partition_concurrency=1)

_pool: asyncpg.Pool | None = None


async def _db() -> asyncpg.Pool:
    global _pool
    if _pool is None:
        _pool = await asyncpg.create_pool(DSN, min_size=1, max_size=4)
    return _pool


@flow.step
async def hold(ctx: FlowContext, seconds: float) -> None:
    await asyncio.sleep(seconds)


@flow.workflow(name="q.job", version=1)
async def job(ctx: FlowContext, params: dict[str, Any]) -> str:
    db = await _db()
    entry = await db.fetchval(
        "INSERT INTO q_log (run_id, pid, started) VALUES ($1, $2, clock_timestamp()) RETURNING id",
        ctx.run_id,
        os.getpid(),
    )
    await hold(ctx, params["seconds"])
    await db.execute("UPDATE q_log SET ended = clock_timestamp() WHERE id = $1", entry)
    return str(params.get("tag"))
