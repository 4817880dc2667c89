# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Workflows run by worker subprocesses in the crash tests.

Started as ``python -m forktex_core.flow._cli worker tests/flow_app.py:flow``; the test
passes the database URL and a coordination directory in the environment (test code, not
library code, reads them).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

from forktex_core.flow import Flow, FlowContext

URL = os.environ["FLOW_TEST_URL"]
DIR = Path(os.environ["FLOW_TEST_DIR"])
DSN = URL.replace("postgresql+asyncpg://", "postgresql://")

flow = Flow(
    database_url=URL,
    lease=float(os.environ.get("FLOW_TEST_LEASE", "1.5")),
    heartbeat=0.3,
    reaper_interval=0.2,
    poll_interval=0.5,
    max_recovery_attempts=int(os.environ.get("FLOW_TEST_MAX_RECOVERY", "5")),
    shutdown_grace=0.5,
)

_pool: asyncpg.Pool | None = None


async def _db() -> asyncpg.Pool:
    global _pool
    if _pool is None:
        _pool = await asyncpg.create_pool(DSN, min_size=1, max_size=4)
    return _pool


async def _hold(tag: str) -> None:
    """Block until the test creates ``release``, announcing ``holding-<tag>-<pid>``."""
    (DIR / f"holding-{tag}-{os.getpid()}").touch()
    while not (DIR / "release").exists():  # noqa: ASYNC110
        await asyncio.sleep(0.02)


@flow.step
async def work(ctx: FlowContext, i: int, hold_at: int) -> int:
    conn = await _db()
    await conn.execute(
        "INSERT INTO exec_log (run_id, seq, pid) VALUES ($1, $2, $3)", ctx.run_id, i, os.getpid()
    )
    if i == hold_at:
        await _hold(str(ctx.run_id))
    return i


@flow.workflow(name="crash.pipeline", version=1)
async def pipeline(ctx: FlowContext, params: dict[str, Any]) -> list[int]:
    return [await work(ctx, i, params["hold_at"]) for i in range(params["steps"])]


@flow.transaction
async def effect(ctx: FlowContext, session: Any, tag: str) -> int:
    await session.execute(
        text("INSERT INTO tx_effects (run_id, tag) VALUES (:r, :t)"), {"r": ctx.run_id, "t": tag}
    )
    return 1


@flow.step
async def block(ctx: FlowContext) -> str:
    await _hold(str(ctx.run_id))
    return "released"


@flow.workflow(name="crash.tx", version=1)
async def tx_flow(ctx: FlowContext, _: Any) -> list[Any]:
    return [await effect(ctx, "a"), await block(ctx), await effect(ctx, "b")]


@flow.workflow(name="crash.sleep", version=1)
async def sleeper(ctx: FlowContext, seconds: float) -> float:
    start = ctx.now()
    await ctx.sleep(seconds)
    return (ctx.now() - start).total_seconds()


@flow.step
async def suicide(ctx: FlowContext) -> None:
    os.kill(os.getpid(), 9)


@flow.workflow(name="crash.poison", version=1)
async def poison(ctx: FlowContext, _: Any) -> None:
    await suicide(ctx)


@flow.workflow(name="crash.wait", version=1)
async def waiter(ctx: FlowContext, _: Any) -> Any:
    return await ctx.wait_for_signal("go")


@flow.step
async def leave(ctx: FlowContext) -> None:
    raise SystemExit(3)  # the step makes its worker exit gracefully


@flow.workflow(name="crash.exit", version=1)
async def exiter(ctx: FlowContext, _: Any) -> None:
    await leave(ctx)
