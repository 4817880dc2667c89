# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Forks: a new run that replays a finished run's results before a position and executes
from there, on the same or a newer version; lineage in metadata; bad input refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from forktex_core.flow import (
    Flow,
    FlowContext,
    FlowHooks,
    HookDenied,
    InvalidArgument,
    RunFailed,
    RunInfo,
    RunNotFound,
    RunStatus,
    UnknownWorkflow,
)

from .conftest import user_metadata

NOBODY = uuid.UUID("00000000-0000-4000-8000-000000000003")


def _app(flow: Flow, calls: list[str]) -> None:
    @flow.step
    async def fetch(ctx: FlowContext, order: dict[str, Any]) -> dict[str, Any]:
        calls.append("fetch")
        return {"id": order["id"], "raw": "42 EUR"}

    @flow.step
    async def parse(ctx: FlowContext, doc: dict[str, Any]) -> int:
        calls.append("parse")
        return int(doc["raw"])  # the bug: "42 EUR" is not an int

    @flow.step
    async def parse_amount(ctx: FlowContext, doc: dict[str, Any]) -> int:
        calls.append("parse_amount")
        return int(doc["raw"].split()[0])

    @flow.workflow(name="fork.invoice", version=1)
    async def v1(ctx: FlowContext, order: dict[str, Any]) -> dict[str, Any]:
        doc = await fetch(ctx, order)
        await ctx.set_event("stage", "fetched")
        return {"id": doc["id"], "amount": await parse(ctx, doc)}

    @flow.workflow(name="fork.invoice", version=2)
    async def v2(ctx: FlowContext, order: dict[str, Any]) -> dict[str, Any]:
        doc = await fetch(ctx, order)
        await ctx.set_event("stage", "fetched")
        return {"id": doc["id"], "amount": await parse_amount(ctx, doc)}


async def test_fork_of_a_failed_run_on_the_fixed_version_succeeds(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    calls: list[str] = []
    _app(flow, calls)
    async with h.running(flow):
        failed = await flow.start("fork.invoice", {"id": 7}, version=1, metadata={"org": "o1"})
        with pytest.raises(RunFailed):
            await flow.result(failed, timeout=30)
        assert calls == ["fetch", "parse"]
        history = await flow.history(failed)
        failing = next(s.seq for s in history if s.status == "failed")
        assert failing == 2
        fork = await flow.fork(failed, from_step=failing, version=2)
        assert await flow.result(fork, timeout=30) == {"id": 7, "amount": 42}
    # fetch and the event were replayed from the original's log, not executed again
    assert calls == ["fetch", "parse", "parse_amount"]
    info = await flow.get_run(fork)
    assert (info.workflow, info.version, info.input) == ("fork.invoice", 2, {"id": 7})
    assert user_metadata(info.metadata) == {
        "org": "o1",
        "forked_from": str(failed),
        "forked_from_step": 2,
    }
    assert [r.id for r in await flow.list_runs(metadata={"forked_from": str(failed)})] == [fork]
    steps = [(s.seq, s.name.rsplit(".", 1)[-1], s.status) for s in await flow.history(fork)]
    assert steps == [
        (0, "fetch", "completed"),
        (1, "event:stage", "completed"),
        (2, "parse_amount", "completed"),
    ]
    assert await flow.get_event(fork, "stage", timeout=0) == "fetched"
    assert (await flow.get_run(failed)).status is RunStatus.FAILED  # the original is untouched


async def test_fork_from_zero_or_the_end_and_on_the_same_version(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    calls: list[str] = []
    _app(flow, calls)
    async with h.running(flow):
        done = await flow.start("fork.invoice", {"id": 1}, version=2)
        assert await flow.result(done, timeout=30) == {"id": 1, "amount": 42}
        whole = await flow.fork(done, from_step=3)  # every position replayed: nothing runs
        assert await flow.result(whole, timeout=30) == {"id": 1, "amount": 42}
        assert calls == ["fetch", "parse_amount"]
        fresh = await flow.fork(done, from_step=0)  # nothing copied: everything runs again
        assert await flow.result(fresh, timeout=30) == {"id": 1, "amount": 42}
        assert calls == ["fetch", "parse_amount", "fetch", "parse_amount"]
        again = await flow.fork(whole, from_step=1)  # a fork of a fork
        assert await flow.result(again, timeout=30) == {"id": 1, "amount": 42}
    assert (await flow.get_run(whole)).version == 2
    assert user_metadata((await flow.get_run(again)).metadata) == {
        "forked_from": str(whole),
        "forked_from_step": 1,
    }
    assert calls[-1] == "parse_amount" and calls.count("fetch") == 2


async def test_fork_bad_input(make_flow: Callable[..., Flow], h: Any) -> None:
    flow = make_flow()
    calls: list[str] = []
    _app(flow, calls)

    @flow.workflow(name="fork.live", version=1)
    async def live(ctx: FlowContext) -> None:
        await ctx.wait_for_signal("go")

    with pytest.raises(RunNotFound):
        await flow.fork(NOBODY, from_step=0)
    with pytest.raises(InvalidArgument, match="run_id"):
        await flow.fork("nope", from_step=0)
    async with h.running(flow):
        done = await flow.start("fork.invoice", {"id": 2}, version=2)
        await flow.result(done, timeout=30)
        for bad in (-1, 1.5, "1", True, None):
            with pytest.raises(InvalidArgument, match="from_step"):
                await flow.fork(done, from_step=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="between 0 and 3"):
            await flow.fork(done, from_step=4)
        with pytest.raises(UnknownWorkflow):
            await flow.fork(done, from_step=1, version=9)
        waiting = await flow.start("fork.live")
        await h.wait_until(lambda: _status_is(flow, waiting, RunStatus.WAITING))
        with pytest.raises(InvalidArgument, match="is waiting; only finished runs"):
            await flow.fork(waiting, from_step=0)
        await flow.cancel(waiting)
        forked = await flow.fork(waiting, from_step=0)  # a cancelled run can be forked
        await flow.send_signal(forked, "go")
        assert await flow.result(forked, timeout=30) is None
    assert len(await flow.list_runs(workflow="fork.invoice")) == 1  # refused forks left nothing


async def test_fork_goes_through_its_sources_queue(make_flow: Callable[..., Flow], h: Any) -> None:
    flow = make_flow()
    calls: list[str] = []
    _app(flow, calls)
    accounts = flow.queue("fork.accounts", partition_concurrency=1, priorities=True)

    @flow.workflow(name="fork.hold", version=1)
    async def hold(ctx: FlowContext) -> None:
        await ctx.wait_for_signal("go")

    async with h.running(flow):
        failed = await flow.start(
            "fork.invoice", {"id": 9}, version=1, queue=accounts, priority=5, partition_key="a1"
        )
        with pytest.raises(RunFailed):
            await flow.result(failed, timeout=30)
        holder = await flow.start("fork.hold", queue=accounts, partition_key="a1")
        await h.wait_until(lambda: _status_is(flow, holder, RunStatus.WAITING))
        fork = await flow.fork(failed, from_step=2, version=2)
        info = await flow.get_run(fork)
        assert (info.queue, info.priority, info.partition_key) == ("fork.accounts", 5, "a1")
        # the holder has partition a1's only slot: the fork waits in the queue for it
        (queued,) = await flow.queues("fork.accounts")
        assert (queued.depth, queued.partitions) == (1, {"a1": 1})
        assert (await flow.get_run(fork)).status is RunStatus.PENDING
        await flow.send_signal(holder, "go")
        assert await flow.result(fork, timeout=30) == {"id": 9, "amount": 42}
    assert calls == ["fetch", "parse", "parse_amount"]


async def _status_is(flow: Flow, run_id: Any, status: RunStatus) -> bool:
    return (await flow.get_run(run_id)).status is status


class OnlyTheFix(FlowHooks):
    """Forks only onto version 2 and only from the start of step 1 or later."""

    def __init__(self) -> None:
        self.seen: list[tuple[uuid.UUID, int, int | None]] = []

    async def authorize_fork(self, run: RunInfo, from_step: int, version: int | None) -> None:
        self.seen.append((run.id, from_step, version))
        if version != 2:
            raise HookDenied(f"fork {run.workflow} onto the fixed version 2, not {version}")


async def test_fork_is_authorised_by_the_hooks_and_a_denial_writes_nothing(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    hooks = OnlyTheFix()
    flow = make_flow(hooks=[hooks])
    calls: list[str] = []
    _app(flow, calls)
    async with h.running(flow):
        failed = await flow.start("fork.invoice", {"id": 3}, version=1)
        with pytest.raises(RunFailed):
            await flow.result(failed, timeout=30)
        with pytest.raises(HookDenied, match="onto the fixed version 2, not None"):
            await flow.fork(failed, from_step=1)
        assert len(await flow.list_runs(workflow="fork.invoice")) == 1
        # bad input is refused before the authoriser sees it; unknown runs too
        with pytest.raises(InvalidArgument, match="from_step"):
            await flow.fork(failed, from_step=-1)
        with pytest.raises(RunNotFound):
            await flow.fork(NOBODY, from_step=0, version=2)
        fixed = await flow.fork(failed, from_step=1, version=2)
        assert await flow.result(fixed, timeout=30) == {"id": 3, "amount": 42}
    assert hooks.seen == [(failed, 1, None), (failed, 1, 2)]
