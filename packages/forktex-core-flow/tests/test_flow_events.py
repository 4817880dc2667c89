# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Run events: ``ctx.set_event`` is recorded once like a step, ``flow.get_event`` waits for
it (woken by NOTIFY), the latest value wins, and bad input raises flow's own errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import (
    EventNotSet,
    Flow,
    FlowContext,
    InvalidArgument,
    NotSerialisable,
    RunNotFound,
)

NOBODY = uuid.UUID("00000000-0000-4000-8000-000000000002")


async def test_get_event_waits_for_the_value_and_the_latest_wins(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    release = asyncio.Event()

    @flow.step
    async def hold(ctx: FlowContext) -> str:
        await release.wait()
        return "held"

    @flow.workflow(name="ev.progress", version=1)
    async def wf(ctx: FlowContext) -> str:
        await ctx.set_event("progress", {"done": 1, "of": 2})
        out = await hold(ctx)
        await ctx.set_event("progress", {"done": 2, "of": 2})
        await ctx.set_event("nothing", None)
        return out

    run_id = await flow.start("ev.progress")
    # waiting before any worker runs: the value arrives later, by NOTIFY
    early = asyncio.create_task(flow.get_event(run_id, "progress", timeout=60))
    late = asyncio.create_task(flow.get_event(str(run_id), "nothing", timeout=60))
    await asyncio.sleep(0.2)
    assert not early.done()
    async with h.running(flow):
        assert await asyncio.wait_for(early, 30) == {"done": 1, "of": 2}
        assert not late.done()
        release.set()
        assert await asyncio.wait_for(late, 30) is None
        assert await flow.result(run_id, timeout=30) == "held"
    assert await flow.get_event(run_id, "progress", timeout=0) == {"done": 2, "of": 2}
    events = [(s.seq, s.name, s.output) for s in await flow.history(run_id) if s.kind == "event"]
    assert events == [
        (0, "event:progress", {"done": 1, "of": 2}),
        (2, "event:progress", {"done": 2, "of": 2}),
        (3, "event:nothing", None),
    ]


async def test_replay_does_not_write_an_event_again(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()
    executions = 0

    @flow.workflow(name="ev.replay", version=1)
    async def wf(ctx: FlowContext) -> int:
        nonlocal executions
        executions += 1
        await ctx.set_event("stage", "before sleep")
        await ctx.sleep(1.0)  # suspends: the body replays from the top on wake-up
        await ctx.set_event("stage", "after sleep")
        return executions

    async with h.running(flow):
        run_id = await flow.start("ev.replay")
        assert await flow.get_event(run_id, "stage", timeout=30) == "before sleep"
        assert await flow.result(run_id, timeout=30) == 2  # replayed once
    assert await flow.get_event(run_id, "stage") == "after sleep"
    conn = await asyncpg.connect(pg.dsn)
    try:
        rows = await conn.fetch(
            "SELECT seq, output::text FROM forktex_flow.steps "
            "WHERE run_id = $1 AND kind = 'event' ORDER BY seq",
            run_id,
        )
    finally:
        await conn.close()
    assert [(r["seq"], r["output"]) for r in rows] == [(0, '"before sleep"'), (2, '"after sleep"')]


async def test_get_event_bad_input_and_missing_values(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="ev.quiet", version=1)
    async def wf(ctx: FlowContext) -> str:
        await ctx.set_event("set", 1)
        return "done"

    with pytest.raises(RunNotFound):
        await flow.get_event(NOBODY, "progress", timeout=1)
    with pytest.raises(InvalidArgument, match="run_id"):
        await flow.get_event("not-a-uuid", "progress")
    run_id = await flow.start("ev.quiet")
    with pytest.raises(EventNotSet) as timed_out:  # nothing runs it yet
        await flow.get_event(run_id, "set", timeout=0.2)
    assert (timed_out.value.run_id, timed_out.value.key, timed_out.value.finished) == (
        run_id,
        "set",
        False,
    )
    for bad_key in ("", "k" * 201, "a\x00b", 7):
        with pytest.raises(InvalidArgument, match="event key"):
            await flow.get_event(run_id, bad_key)  # type: ignore[arg-type]
    for bad_timeout in (-1, float("nan"), float("inf"), "1", True):
        with pytest.raises(InvalidArgument, match="timeout"):
            await flow.get_event(run_id, "set", timeout=bad_timeout)  # type: ignore[arg-type]
    async with h.running(flow):
        assert await flow.result(run_id, timeout=30) == "done"
    assert await flow.get_event(run_id, "set", timeout=0) == 1
    with pytest.raises(EventNotSet, match="succeeded without setting it") as never:
        await flow.get_event(run_id, "never")  # no timeout: the finished run ends the wait
    assert never.value.finished is True


async def test_set_event_bad_input_raises_in_the_workflow(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="ev.bad", version=1)
    async def wf(ctx: FlowContext) -> list[str]:
        caught = []
        for key, value in (
            ("", 1),
            ("k" * 201, 1),
            ("ok", object()),
            ("ok", float("nan")),
            ("ok", "a\x00b"),
        ):
            try:
                await ctx.set_event(key, value)
            except (InvalidArgument, NotSerialisable) as exc:
                caught.append(type(exc).__name__)
        await ctx.set_event("k" * 200, "longest key")
        return caught

    async with h.running(flow):
        run_id = await flow.start("ev.bad")
        assert await flow.result(run_id, timeout=30) == [
            "InvalidArgument",
            "InvalidArgument",
            "NotSerialisable",
            "NotSerialisable",
            "NotSerialisable",
        ]
    assert await flow.get_event(run_id, "k" * 200) == "longest key"
    # refused values took no position: the one event written is at position 0
    assert [(s.seq, s.kind) for s in await flow.history(run_id)] == [(0, "event")]
