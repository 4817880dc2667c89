# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The workflow run by the worker subprocesses of the chaos test (test_flow_chaos.py).

Started as ``python -m forktex_core.flow._cli worker tests/flow_chaos_app.py:flow``; the
test passes (test code, not library code, reads them) the database URL the workers use in
``FLOW_TEST_URL`` (a fault-injecting proxy), a direct DSN for the bookkeeping inserts in
``FLOW_TEST_DIRECT_DSN``, and this worker's wall-clock skew in ``FLOW_TEST_CLOCK_SKEW``
(seconds added to ``time.time()`` in this process: the library must not depend on it).

``chaos.pipeline`` runs five steps and a durable sleep after step 1; step 2 is
transactional. Every execution of a plain step's body inserts one row into ``chaos_exec``
and every committed transactional step one row into ``chaos_effects``; neither table has a
unique constraint, so duplicates show.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from typing import Any

import asyncpg
from sqlalchemy import text

from forktex_core.flow import Flow, FlowContext

URL = os.environ["FLOW_TEST_URL"]
DSN = os.environ.get("FLOW_TEST_DIRECT_DSN") or URL.replace(
    "postgresql+asyncpg://", "postgresql://"
)
STEPS = 5
TX_STEP = 2
SLEEP_AFTER = 1

_SKEW = float(os.environ.get("FLOW_TEST_CLOCK_SKEW", "0"))
if _SKEW:
    _real_time = time.time
    time.time = lambda: _real_time() + _SKEW  # this worker's wall clock is wrong


def sleep_seconds(k: int) -> float:
    """The durable sleep of run ``k``: some stay in-process, most suspend the run."""
    return 0.2 + (k % 4) * 0.15


flow = Flow(
    database_url=URL,
    lease=2.0,
    heartbeat=0.3,
    reaper_interval=0.2,
    poll_interval=0.5,
    max_recovery_attempts=50,
    shutdown_grace=0.5,
)

_pool: asyncpg.Pool | None = None
_TRANSIENT = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InternalClientError,
)


async def _record_execution(run_id: uuid.UUID, step: int) -> None:
    """Insert one ``chaos_exec`` row for this execution (idempotent across our retries)."""
    global _pool
    token = uuid.uuid4()
    for attempt in range(100):
        try:
            if _pool is None:
                _pool = await asyncpg.create_pool(DSN, min_size=1, max_size=4)
            await _pool.execute(
                "INSERT INTO chaos_exec (token, run_id, step, pid) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (token) DO NOTHING",
                token,
                run_id,
                step,
                os.getpid(),
            )
            return
        except _TRANSIENT:  # the test terminated our backend: try again
            await asyncio.sleep(0.05 * min(attempt + 1, 10))
    raise RuntimeError("could not record a step execution")


@flow.step
async def plain(ctx: FlowContext, k: int, i: int) -> int:
    await _record_execution(ctx.run_id, i)
    await asyncio.sleep(random.uniform(0.02, 0.25))
    return k * 10 + i


@flow.transaction
async def effect(ctx: FlowContext, session: Any, k: int, i: int) -> int:
    await session.execute(
        text("INSERT INTO chaos_effects (run_id, step, pid) VALUES (:r, :s, :p)"),
        {"r": ctx.run_id, "s": i, "p": os.getpid()},
    )
    await asyncio.sleep(random.uniform(0.0, 0.05))
    return k * 10 + i


@flow.workflow(name="chaos.pipeline", version=1)
async def pipeline(ctx: FlowContext, k: int) -> list[int]:
    out = []
    for i in range(STEPS):
        if i == TX_STEP:
            out.append(await effect(ctx, k, i))
        else:
            out.append(await plain(ctx, k, i))
        if i == SLEEP_AFTER:
            await ctx.sleep(sleep_seconds(k))
    return out
