# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The workflow of ``make demo`` (tools/demo.py): a four-step "deploy".

Worker processes run it with ``forktex-flow worker tools/demo_flows.py:flow``; the demo
passes the database URL in ``FORKTEX_DEMO_DB_URL``. Every execution of a step body is
recorded in the ``demo_exec`` table (when it started, when it finished, which process ran
it), so the demo can show that no completed step ever ran twice.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import asyncpg

from forktex_core.flow import Flow, FlowContext

URL = os.environ["FORKTEX_DEMO_DB_URL"]
STEPS = ("provision", "configure", "deploy", "verify")

# Default lease, heartbeat and reaper settings: what the demo shows is what you get.
flow = Flow(database_url=URL)

_pool: asyncpg.Pool | None = None


async def _execute(ctx: FlowContext, step: str) -> None:
    """Record this execution of ``step``, then do 0.3-0.5 s of "work"."""
    global _pool
    if _pool is None:
        _pool = await asyncpg.create_pool(
            URL.replace("postgresql+asyncpg://", "postgresql://"), min_size=1, max_size=4
        )
    exec_id = await _pool.fetchval(
        "INSERT INTO demo_exec (run_id, step, pid) VALUES ($1, $2, $3) RETURNING id",
        ctx.run_id,
        step,
        os.getpid(),
    )
    await asyncio.sleep(random.uniform(0.3, 0.5))
    await _pool.execute(
        "UPDATE demo_exec SET finished_at = clock_timestamp() WHERE id = $1", exec_id
    )


@flow.step(name="provision")
async def provision(ctx: FlowContext, app: str) -> str:
    await _execute(ctx, "provision")
    return f"vps-{app}"


@flow.step(name="configure")
async def configure(ctx: FlowContext, server: str) -> dict[str, Any]:
    await _execute(ctx, "configure")
    return {"server": server, "tls": True, "replicas": 2}


@flow.step(name="deploy")
async def deploy_release(ctx: FlowContext, config: dict[str, Any], version: str) -> str:
    await _execute(ctx, "deploy")
    return f"{config['server']}/releases/{version}"


@flow.step(name="verify")
async def verify(ctx: FlowContext, release: str) -> bool:
    await _execute(ctx, "verify")
    return True


@flow.workflow(name="demo.deploy", version=1)
async def deploy(ctx: FlowContext, app: dict[str, str]) -> dict[str, Any]:
    server = await provision(ctx, app["name"])
    config = await configure(ctx, server)
    release = await deploy_release(ctx, config, app["version"])
    healthy = await verify(ctx, release)
    return {"server": server, "release": release, "healthy": healthy}
