# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``ctx.wait_first``: the first of steps, sleeps and signal waits wins, the winner is
recorded (replay takes the same one), a losing sleep never suspends the run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from forktex_core.flow import (
    Flow,
    FlowContext,
    InvalidArgument,
    RunFailed,
    RunStatus,
)


async def _status_is(flow: Flow, run_id: Any, status: RunStatus) -> bool:
    return (await flow.get_run(run_id)).status is status


async def test_a_step_beats_a_long_sleep_without_suspending(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.step
    async def quick(ctx: FlowContext) -> str:
        await asyncio.sleep(0.3)
        return "quick"

    @flow.workflow(name="wf.step_vs_sleep", version=1)
    async def wf(ctx: FlowContext) -> list[Any]:
        index, value = await ctx.wait_first(ctx.sleep(3600), quick(ctx))
        return [index, value]

    async with h.running(flow):
        run_id = await flow.start("wf.step_vs_sleep")
        assert await flow.result(run_id, timeout=30) == [1, "quick"]
    history = [(s.seq, s.kind, s.output) for s in await flow.history(run_id)]
    # the sleep recorded its wake-up time (position 0), the step its result, then the winner
    assert [(seq, kind) for seq, kind, _ in history] == [
        (0, "sleep"),
        (1, "step"),
        (2, "wait_first"),
    ]
    assert history[2][2] == 1


async def test_signal_or_timeout_suspends_then_either_wins(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="wf.approval", version=1)
    async def wf(ctx: FlowContext, limit: float) -> list[Any]:
        index, value = await ctx.wait_first(ctx.wait_for_signal("approve"), ctx.sleep(limit))
        return [index, value]

    async with h.running(flow):
        approved = await flow.start("wf.approval", 3600)
        timed_out = await flow.start("wf.approval", 1.0)
        await h.wait_until(lambda: _status_is(flow, approved, RunStatus.WAITING))
        await flow.send_signal(approved, "approve", {"by": "ana"})
        assert await flow.result(approved, timeout=30) == [0, {"by": "ana"}]
        assert await flow.result(timed_out, timeout=30) == [1, None]
    assert [s.kind for s in await flow.history(timed_out)] == ["signal", "sleep", "wait_first"]


async def test_replay_takes_the_recorded_winner(make_flow: Callable[..., Flow], h: Any) -> None:
    flow = make_flow()
    executions = 0

    @flow.workflow(name="wf.replay", version=1)
    async def wf(ctx: FlowContext) -> list[Any]:
        nonlocal executions
        executions += 1
        index, value = await ctx.wait_first(ctx.wait_for_signal("a"), ctx.wait_for_signal("b"))
        await ctx.wait_for_signal("continue")  # suspends: the body replays from the top
        return [index, value, executions]

    async with h.running(flow):
        run_id = await flow.start("wf.replay")
        await h.wait_until(lambda: _status_is(flow, run_id, RunStatus.WAITING))
        await flow.send_signal(run_id, "b", "from b")
        await h.wait_until(lambda: _has_kind(flow, run_id, "wait_first"))
        await h.wait_until(lambda: _status_is(flow, run_id, RunStatus.WAITING))
        # "a" (first in argument order) is now ready too: a replay that raced again would
        # pick it; the recorded winner is "b"
        await flow.send_signal(run_id, "a", "from a")
        await flow.send_signal(run_id, "continue")
        index, value, runs = await flow.result(run_id, timeout=30)
    assert (index, value) == (1, "from b")
    assert runs == executions >= 3  # the body replayed after the winner was recorded
    unconsumed = [s.name for s in await flow.signals(run_id) if s.consumed_at is None]
    assert unconsumed == ["a"]


async def _has_kind(flow: Flow, run_id: Any, kind: str) -> bool:
    return any(s.kind == kind for s in await flow.history(run_id))


async def test_a_failing_winner_raises_and_bad_input(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.step
    async def broken(ctx: FlowContext) -> None:
        raise ValueError("no luck")

    @flow.workflow(name="wf.fails", version=1)
    async def fails(ctx: FlowContext) -> Any:
        return await ctx.wait_first(broken(ctx), ctx.sleep(3600))

    @flow.workflow(name="wf.bad", version=1)
    async def bad(ctx: FlowContext) -> list[str]:
        caught = []
        for args in ((), (42,), (ctx.sleep(1), "not awaitable")):
            try:
                await ctx.wait_first(*args)
            except InvalidArgument as exc:
                caught.append(str(exc)[:40])
        return caught

    async with h.running(flow):
        failing = await flow.start("wf.fails")
        with pytest.raises(RunFailed) as exc:
            await flow.result(failing, timeout=30)
        assert exc.value.error["type"] == "ValueError" and "no luck" in str(exc.value.error)
        checked = await flow.start("wf.bad")
        assert (
            await flow.result(checked, timeout=30)
            == ["wait_first takes one or more durable awa"] * 3
        )
    assert [s.kind for s in await flow.history(failing)][-1] == "wait_first"
