# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Continue-as-new: the run keeps its id and unconsumed signals, its log so far becomes an
archived generation, lineage is in metadata, and bad calls raise flow's own errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forktex_core.flow import Flow, FlowContext, RunStatus

from .conftest import user_metadata


async def test_entity_continues_as_new_keeping_id_and_pending_signals(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="entity.counter", version=1)
    async def counter(ctx: FlowContext, state: dict[str, int]) -> int:
        total = state["total"]
        for _ in range(3):
            total += await ctx.wait_for_signal("add")
        if total >= 12:
            return total
        ctx.continue_as_new({"total": total})

    run_id = await flow.start("entity.counter", {"total": 0}, metadata={"org": "o1"})
    for n in range(1, 7):  # sent before anything runs: three of them outlive generation 0
        await flow.send_signal(run_id, "add", n)
    async with h.running(flow):
        assert await flow.result(run_id, timeout=30) == 21
    info = await flow.get_run(run_id)
    assert info.input == {"total": 6}
    archives = await flow.list_runs(metadata={"continued_into": str(run_id)})
    assert len(archives) == 1
    archive = archives[0]
    assert user_metadata(info.metadata) == {
        "org": "o1",
        "generation": 1,
        "continued_from": str(archive.id),
    }
    assert user_metadata(archive.metadata) == {
        "org": "o1",
        "generation": 0,
        "continued_into": str(run_id),
    }
    assert (archive.status, archive.input, archive.output) == (
        RunStatus.SUCCEEDED,
        {"total": 0},
        {"total": 6},
    )
    # each generation's log and consumed signals are its own
    assert [s.output for s in await flow.history(run_id)] == [4, 5, 6]
    assert [s.output for s in await flow.history(archive.id)] == [1, 2, 3]
    assert [s.payload for s in await flow.signals(run_id)] == [4, 5, 6]
    assert [s.payload for s in await flow.signals(archive.id)] == [1, 2, 3]


async def test_continue_as_new_bad_calls(make_flow: Callable[..., Flow], h: Any) -> None:
    flow = make_flow()

    @flow.step
    async def inside(ctx: FlowContext) -> str:
        try:
            ctx.continue_as_new(1)
        except Exception as exc:
            return type(exc).__name__
        return "continued"

    @flow.workflow(name="entity.bad", version=1)
    async def bad(ctx: FlowContext) -> list[str]:
        caught = [await inside(ctx)]
        try:
            ctx.continue_as_new(object())
        except Exception as exc:
            caught.append(type(exc).__name__)
        return caught

    async with h.running(flow):
        run_id = await flow.start("entity.bad")
        assert await flow.result(run_id, timeout=30) == ["InvalidArgument", "NotSerialisable"]
    assert await flow.list_runs(metadata={"continued_into": str(run_id)}) == []


async def test_a_signal_sent_while_the_entity_suspends_wakes_it_without_a_poll(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    """Its wake-up NOTIFY arrives while the worker still has the run in flight (so the claim
    skips it); the worker must claim again when that execution ends, not at the next poll
    or housekeeping round (both an hour away here)."""
    flow = make_flow(poll_interval=3600, reaper_interval=3600)

    @flow.workflow(name="entity.echo", version=1)
    async def echo(ctx: FlowContext, state: dict[str, int]) -> int:
        count = state["count"]
        for _ in range(5):
            await ctx.wait_for_signal("ping")
            count += 1
            await ctx.set_event(f"seen-{count}", count)
        if count < 15:
            ctx.continue_as_new({"count": count})
        return count

    run_id = await flow.start("entity.echo", {"count": 0})  # claimed by the first claim
    async with h.running(flow):
        for n in range(1, 16):
            await flow.send_signal(run_id, "ping")  # right after the previous event
            assert await flow.get_event(run_id, f"seen-{n}", timeout=30) == n
        assert await flow.result(run_id, timeout=30) == 15
