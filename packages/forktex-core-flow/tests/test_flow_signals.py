# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Signals exactly once: consumption is idempotent per position, and a workflow's own
``ctx.send_signal`` is recorded like a step (sent once, however often the body replays)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from forktex_core.flow import (
    Flow,
    FlowContext,
    InvalidArgument,
    NotSerialisable,
    RunFinished,
    RunNotFound,
    RunStatus,
    _signals,
)

NOBODY = uuid.UUID("00000000-0000-4000-8000-000000000001")


async def _status(flow: Flow, run_id: Any, status: RunStatus) -> bool:
    return (await flow.get_run(run_id)).status is status


async def test_consuming_twice_at_one_position_consumes_one_signal(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    """What a transient-error retry does after the reply of a committed consume was lost."""
    flow = make_flow()
    entered = asyncio.Event()
    release = asyncio.Event()

    @flow.step
    async def hold(ctx: FlowContext) -> None:
        entered.set()
        await release.wait()

    @flow.workflow(name="sig.twice", version=1)
    async def wf(ctx: FlowContext) -> Any:
        await hold(ctx)
        return await ctx.wait_for_signal("m")  # position 1, already consumed below

    pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=2)
    try:
        async with h.running(flow):
            run_id = await flow.start("sig.twice")
            await asyncio.wait_for(entered.wait(), 20)
            await flow.send_signal(run_id, "m", payload="first")
            await flow.send_signal(run_id, "m", payload="second")
            execution = await pool.fetchval(
                "SELECT execution FROM forktex_flow.runs WHERE id = $1", run_id
            )
            once = await _signals.consume(pool, run_id, "m", 1, "signal:m", execution)
            again = await _signals.consume(pool, run_id, "m", 1, "signal:m", execution)
            assert once == again == (True, '"first"')
            release.set()
            # the driver consumes at position 1 a third time: still the same signal
            assert await flow.result(run_id, timeout=20) == "first"
        left = await pool.fetch(
            "SELECT payload::text AS p FROM forktex_flow.signals "
            "WHERE run_id = $1 AND consumed_at IS NULL",
            run_id,
        )
        assert [r["p"] for r in left] == ['"second"']
    finally:
        await pool.close()


async def test_ctx_send_signal_is_sent_once_across_replays(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()
    bodies: list[int] = []

    @flow.workflow(name="sig.receiver", version=1)
    async def receiver(ctx: FlowContext) -> list[Any]:
        first = await ctx.wait_for_signal("ping")
        await ctx.wait_for_signal("done")
        return [first]

    @flow.workflow(name="sig.sender", version=1)
    async def sender(ctx: FlowContext, target: str) -> dict[str, Any]:
        bodies.append(1)
        signal_id = await ctx.send_signal(target, "ping", {"n": 1})
        await ctx.sleep(0.4)  # suspends: the body is replayed after it
        await ctx.wait_for_signal("go")  # and again after this
        try:
            await ctx.send_signal(NOBODY, "ping")
            missing = "sent"
        except RunNotFound:
            missing = "RunNotFound"
        errors = []
        for bad in (
            lambda: ctx.send_signal(target, ""),
            lambda: ctx.send_signal("not-a-uuid", "x"),
            lambda: ctx.send_signal(target, "x", {1, 2}),
        ):
            try:
                bad().close()
            except (InvalidArgument, NotSerialisable) as exc:
                errors.append(type(exc).__name__)
        return {"signal_id": signal_id, "missing": missing, "errors": errors}

    async with h.running(flow):
        target = await flow.start("sig.receiver")
        run_id = await flow.start("sig.sender", input=str(target))

        async def waits_for_go() -> bool:
            return any(s.name == "signal:go" for s in await flow.history(run_id))

        await h.wait_until(waits_for_go)  # past the sleep
        await flow.send_signal(run_id, "go")
        out = await flow.result(run_id, timeout=20)
        await flow.send_signal(target, "done")
        assert await flow.result(target, timeout=20) == [{"n": 1}]
    assert len(bodies) >= 3  # replayed after the sleep and after the signal
    assert out["missing"] == "RunNotFound"
    assert out["errors"] == ["InvalidArgument", "InvalidArgument", "NotSerialisable"]
    conn = await asyncpg.connect(pg.dsn)
    try:
        sent = await conn.fetch(
            "SELECT id FROM forktex_flow.signals WHERE run_id = $1 AND name = 'ping'", target
        )
    finally:
        await conn.close()
    assert [r["id"] for r in sent] == [out["signal_id"]]
    kinds = [(s.kind, s.name, s.status) for s in await flow.history(run_id)]
    assert kinds[0] == ("send", "send:ping", "completed")
    assert ("send", "send:ping", "failed") in kinds


async def test_ctx_send_signal_to_a_finished_run_is_recorded(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="sig.done", version=1)
    async def done(ctx: FlowContext) -> int:
        return 1

    @flow.workflow(name="sig.late", version=1)
    async def late(ctx: FlowContext, target: str) -> str:
        try:
            await ctx.send_signal(target, "x")
        except RunFinished as exc:
            outcome = f"RunFinished {exc.status}"
        await ctx.wait_for_signal("go")  # replay re-raises the recorded outcome
        return outcome

    async with h.running(flow):
        target = await flow.start("sig.done")
        await flow.result(target, timeout=20)
        run_id = await flow.start("sig.late", input=str(target))
        await h.wait_until(lambda: _status(flow, run_id, RunStatus.WAITING))
        await flow.send_signal(run_id, "go")
        assert await flow.result(run_id, timeout=20) == "RunFinished succeeded"
