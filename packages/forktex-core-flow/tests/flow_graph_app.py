# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A graph run by worker subprocesses in the graph crash test.

Started as ``python -m forktex_core.flow._cli worker tests/flow_graph_app.py:flow``; the
test passes the database URL and a coordination directory in the environment (test code,
not library code, reads them).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from forktex_core.flow import Flow, FlowContext, Graph

URL = os.environ["FLOW_TEST_URL"]
DIR = Path(os.environ["FLOW_TEST_DIR"])

flow = Flow(
    database_url=URL,
    lease=1.5,
    heartbeat=0.3,
    reaper_interval=0.2,
    poll_interval=0.5,
    shutdown_grace=0.5,
)


def _log(run_id: object, what: str) -> None:
    with open(DIR / f"exec-{run_id}", "a") as fh:
        fh.write(f"{what} {os.getpid()}\n")


@flow.step
async def work(ctx: FlowContext, what: str) -> str:
    _log(ctx.run_id, what)
    if what == "hold":
        (DIR / f"holding-{ctx.run_id}-{os.getpid()}").touch()
        while not (DIR / "release").exists():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return what


g = Graph(name="crash.graph", version=1, initial="intake")


@g.state("intake")
async def intake(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "intake": await work(ctx, "intake")}


@g.state("process")
async def process(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "process": await work(ctx, "hold")}


@g.state("approve", manual=True)
async def approve(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return payload


@g.state("done", terminal=True)
async def done(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "done": await work(ctx, "done")}


g.transition("intake", "process")
g.transition("process", "approve")
g.transition("approve", "done")
flow.register_graph(g)
