# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Workflows of the composition crash tests (run events, forks, children), run by worker
subprocesses.

Started as ``python -m forktex_core.flow._cli worker tests/flow_composition_app.py:flow``;
the test passes the database URL and a coordination directory in the environment (test
code, not library code, reads them).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import asyncpg

from forktex_core.flow import ChildFailed, Flow, FlowContext
from forktex_core.flow._store_children import ChildStore

URL = os.environ["FLOW_TEST_URL"]
DIR = Path(os.environ["FLOW_TEST_DIR"])
DSN = URL.replace("postgresql+asyncpg://", "postgresql://")

flow = Flow(
    database_url=URL,
    lease=1.5,
    heartbeat=0.3,
    reaper_interval=0.2,
    poll_interval=0.5,
    shutdown_grace=0.5,
    max_recovery_attempts=int(os.environ.get("FLOW_TEST_MAX_RECOVERY", "5")),
)


async def _hold(tag: str) -> None:
    """Block until the test creates ``release``, announcing ``holding-<tag>-<pid>``."""
    (DIR / f"holding-{tag}-{os.getpid()}").touch()
    while not (DIR / "release").exists():  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def _log(ctx: FlowContext, name: str) -> None:
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute(
            "INSERT INTO exec_log (run_id, name, pid) VALUES ($1, $2, $3)",
            ctx.run_id,
            name,
            os.getpid(),
        )
    finally:
        await conn.close()


@flow.step
async def prepare(ctx: FlowContext) -> str:
    await _log(ctx, "prepare")
    return "prepared"


@flow.step
async def block(ctx: FlowContext) -> str:
    await _log(ctx, "block")
    await _hold(str(ctx.run_id))
    return "released"


@flow.workflow(name="comp.events", version=1)
async def events(ctx: FlowContext, _: object) -> list[str]:
    first = await prepare(ctx)
    await ctx.set_event("progress", 1)
    second = await block(ctx)  # the worker is killed here, after the event's checkpoint
    await ctx.set_event("progress", 2)
    return [first, second]


@flow.workflow(name="comp.fork", version=1)
async def forked(ctx: FlowContext, _: object) -> list[str]:
    first = await prepare(ctx)
    second = await block(ctx)  # where the fork's worker is killed
    return [first, second]


@flow.workflow(name="comp.first", version=1)
async def first(ctx: FlowContext, _: object) -> list[object]:
    index, value = await ctx.wait_first(ctx.wait_for_signal("a"), ctx.wait_for_signal("b"))
    held = await block(ctx)  # the worker is killed here, after the winner was recorded
    return [index, value, held]


@flow.workflow(name="comp.entity", version=1)
async def entity(ctx: FlowContext, state: dict[str, int]) -> int:
    tick = await ctx.wait_for_signal("tick")
    if state["n"] == 0:
        await block(ctx)  # the worker is killed here, just before continue-as-new
        ctx.continue_as_new({"n": 1})
    return int(tick)


# The crash between a child's insert and its parent's checkpoint: with ``kill-after-child``
# in the directory, the worker SIGKILLs itself right after the child's insert commits.
_insert_child = ChildStore.start


async def _start_then_maybe_die(self: ChildStore, *args: Any, **kwargs: Any) -> Any:
    child = await _insert_child(self, *args, **kwargs)
    flag = DIR / "kill-after-child"
    if flag.exists():
        flag.unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    return child


ChildStore.start = _start_then_maybe_die  # type: ignore[method-assign]


@flow.workflow(name="comp.child", version=1)
async def child(ctx: FlowContext, n: int) -> dict[str, object]:
    held = await block(ctx)  # a worker may be killed here, its parent suspended on it
    return {"n": n, "held": held}


@flow.workflow(name="comp.parent", version=1)
async def parent(ctx: FlowContext, _: object) -> list[object]:
    handle = await ctx.start_child("comp.child", 7)  # a worker may die between its two writes
    return [str(handle.run_id), await handle.result()]


@flow.step
async def die(ctx: FlowContext) -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # every execution kills its worker: the run ends dead


@flow.workflow(name="comp.doomed", version=1)
async def doomed(ctx: FlowContext, _: object) -> None:
    await ctx.wait_for_signal("go")  # the parent is suspended on it by then
    await die(ctx)


@flow.workflow(name="comp.survivor", version=1)
async def survivor(ctx: FlowContext, _: object) -> list[object]:
    try:
        await ctx.run_child("comp.doomed")
    except ChildFailed as exc:
        return [exc.status, exc.error["type"], str(exc.run_id)]
    return []
