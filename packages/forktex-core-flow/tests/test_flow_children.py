# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Child workflows: ``ctx.start_child`` / ``ctx.run_child`` start a child once (recorded like
a step), the parent waits without a worker slot and is woken by the child's end, failures
surface as ``ChildFailed``, cancelling the parent cancels its children, fan-out/fan-in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import (
    ChildFailed,
    ChildHandle,
    Flow,
    FlowContext,
    InvalidArgument,
    NotSerialisable,
    RunFailed,
    RunNotFound,
    RunStatus,
    StepFailed,
    UnknownQueue,
    UnknownWorkflow,
)
from forktex_core.flow._cli import main


async def _status_is(flow: Flow, run_id: Any, status: RunStatus) -> bool:
    return (await flow.get_run(run_id)).status is status


def _double(flow: Flow) -> None:
    @flow.workflow(name="child.double", version=1)
    async def double(ctx: FlowContext, n: int) -> dict[str, int]:
        return {"n": n * 2}


async def test_run_child_returns_the_output_and_the_child_knows_its_parent(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    _double(flow)

    @flow.workflow(name="parent.one", version=1)
    async def parent(ctx: FlowContext, n: int) -> list[Any]:
        handle = await ctx.start_child("child.double", n)
        assert isinstance(handle, ChildHandle)
        out = await handle.result()
        again = await ctx.run_child("child.double", n + 1)
        return [str(handle.run_id), out, again]

    async with h.running(flow):
        run_id = await flow.start("parent.one", 5)
        child_id, out, again = await flow.result(run_id, timeout=30)
    assert out == {"n": 10} and again == {"n": 12}
    child = await flow.get_run(child_id)
    assert child.parent_id == run_id and child.workflow == "child.double"
    assert child.status is RunStatus.SUCCEEDED
    assert (await flow.get_run(run_id)).parent_id is None
    kinds = [(s.kind, s.name) for s in await flow.history(run_id)]
    assert kinds[0] == ("child", "child:child.double")
    assert kinds[1] == ("signal", f"signal:flow.child:{child_id}")
    assert [k for k, _ in kinds] == ["child", "signal", "child", "signal"]


async def test_child_outcome_signal_names_are_reserved(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    """Nobody but the database sends ``flow.child:<id>`` signals: a caller forging one would
    hand a parent a made-up child outcome, so sending or waiting for one is refused."""
    flow = make_flow()
    _double(flow)

    @flow.workflow(name="parent.forges", version=1)
    async def forges(ctx: FlowContext, target: str) -> list[str]:
        errors = []
        for bad in (
            lambda: ctx.wait_for_signal(f"flow.child:{target}"),
            lambda: ctx.send_signal(target, f"flow.child:{target}", {"n": 99}),
        ):
            try:
                bad().close()
                errors.append("accepted")
            except InvalidArgument as exc:
                errors.append(str(exc))
        return errors

    @flow.workflow(name="parent.waits", version=1)
    async def waits(ctx: FlowContext) -> Any:
        return await ctx.run_child("child.double", 4)

    async with h.running(flow):
        parent = await flow.start("parent.waits")
        out = await flow.result(await flow.start("parent.forges", str(parent)), timeout=30)
        with pytest.raises(InvalidArgument, match="reserved"):
            await flow.send_signal(parent, f"flow.child:{parent}", {"n": 99})
        assert await flow.result(parent, timeout=30) == {"n": 8}
    assert len(out) == 2 and all("is reserved" in e and "flow.child:" in e for e in out), out


async def test_bad_input_is_refused_with_a_clear_error(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    _double(flow)

    @flow.step
    async def starts_in_a_step(ctx: FlowContext) -> None:
        await ctx.start_child("child.double", 1)

    @flow.workflow(name="parent.bad", version=1)
    async def parent(ctx: FlowContext) -> list[str]:
        seen: list[str] = []  # per execution: the body runs again after the wait below
        for call in (
            lambda: ctx.start_child("no.such.workflow", 1),
            lambda: ctx.start_child(42, 1),
            lambda: ctx.start_child("child.double", 1, cancel_with_parent="yes"),
            lambda: ctx.start_child("child.double", 1, metadata=["x"]),
            lambda: ctx.start_child("child.double", 1, version=7),
            lambda: ctx.start_child("child.double", 1, priority="high"),
            lambda: ctx.start_child("child.double", 1, queue="no-such-queue"),
            lambda: ctx.start_child("child.double", 1, idempotency_key="taken"),
            lambda: ctx.start_child("child.double", {1, 2}),
            lambda: starts_in_a_step(ctx),
            lambda: ctx.run_child("no.such.workflow"),
            lambda: ctx.run_child("child.double", 1, cancel_with_parent=None),
        ):
            try:
                await call()
            except (InvalidArgument, UnknownWorkflow, UnknownQueue, NotSerialisable) as exc:
                seen.append(type(exc).__name__)
            except StepFailed as exc:
                seen.append(exc.error_type)
        handle = await ctx.start_child("child.double", 1, idempotency_key="mine")
        await handle.result()
        try:
            handle.result()
        except InvalidArgument:
            seen.append("awaited twice")
        return seen

    async with h.running(flow):
        other = await flow.start("child.double", 3, idempotency_key="taken")
        run_id = await flow.start("parent.bad")
        assert await flow.result(run_id, timeout=30) == [
            "UnknownWorkflow",
            "InvalidArgument",
            "InvalidArgument",
            "InvalidArgument",
            "UnknownWorkflow",
            "InvalidArgument",
            "UnknownQueue",
            "InvalidArgument",
            "NotSerialisable",
            "InvalidArgument",
            "UnknownWorkflow",
            "InvalidArgument",
            "awaited twice",
        ]
    # nothing was started but the one good child (its key kept)
    [child] = await flow.children(run_id)
    assert child.idempotency_key == "mine" and child.id != other


async def test_a_one_slot_worker_runs_a_parent_that_awaits_its_child(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    _double(flow)

    @flow.workflow(name="parent.slot", version=1)
    async def parent(ctx: FlowContext) -> Any:
        return await ctx.run_child("child.double", 21)

    async with h.running(flow, concurrency=1):
        run_id = await flow.start("parent.slot")
        assert await flow.result(run_id, timeout=30) == {"n": 42}


async def test_the_parent_waits_without_a_slot_until_the_child_ends(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="child.gate", version=1)
    async def gate(ctx: FlowContext) -> Any:
        return await ctx.wait_for_signal("open")

    @flow.workflow(name="parent.gate", version=1)
    async def parent(ctx: FlowContext) -> Any:
        handle = await ctx.start_child("child.gate")
        return {"child": str(handle.run_id), "got": await handle.result()}

    async with h.running(flow, concurrency=1):
        run_id = await flow.start("parent.gate")
        await h.wait_until(lambda: _status_is(flow, run_id, RunStatus.WAITING))
        [child] = await flow.list_runs(workflow="child.gate")
        await h.wait_until(lambda: _status_is(flow, child.id, RunStatus.WAITING))
        await flow.send_signal(child.id, "open", {"by": "ana"})
        assert await flow.result(run_id, timeout=30) == {
            "child": str(child.id),
            "got": {"by": "ana"},
        }


async def test_a_failed_child_surfaces_as_child_failed_naming_it(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="child.fails", version=1)
    async def fails(ctx: FlowContext) -> None:
        raise ValueError("card declined")

    @flow.workflow(name="parent.catches", version=1)
    async def catches(ctx: FlowContext) -> dict[str, Any]:
        try:
            await ctx.run_child("child.fails")
        except ChildFailed as exc:
            return {
                "id": str(exc.run_id),
                "wf": exc.workflow,
                "status": exc.status,
                "error": exc.error["type"],
                "msg": str(exc),
            }
        return {}

    @flow.workflow(name="parent.lets_it_fail", version=1)
    async def lets(ctx: FlowContext) -> None:
        await ctx.run_child("child.fails")

    async with h.running(flow):
        caught = await flow.start("parent.catches")
        out = await flow.result(caught, timeout=30)
        failing = await flow.start("parent.lets_it_fail")
        with pytest.raises(RunFailed) as info:
            await flow.result(failing, timeout=30)
    assert out["wf"] == "child.fails" and out["status"] == "failed"
    assert out["error"] == "ValueError"
    assert out["id"] in out["msg"] and "card declined" in out["msg"]
    assert info.value.error["type"] == "ChildFailed"
    assert "child.fails" in info.value.error["message"]


async def test_replay_never_starts_a_second_child(make_flow: Callable[..., Flow], h: Any) -> None:
    flow = make_flow()
    _double(flow)
    bodies = 0

    @flow.workflow(name="parent.replays", version=1)
    async def parent(ctx: FlowContext) -> Any:
        nonlocal bodies
        bodies += 1
        first = await ctx.start_child("child.double", 1)
        await ctx.sleep(0.5)  # suspends: the body runs again from the log
        second = await ctx.start_child("child.double", 2)
        return [await first.result(), await second.result()]

    async with h.running(flow):
        run_id = await flow.start("parent.replays")
        assert await flow.result(run_id, timeout=30) == [{"n": 2}, {"n": 4}]
    assert bodies >= 2
    kids = await flow.list_runs(workflow="child.double")
    assert len(kids) == 2 and {k.parent_id for k in kids} == {run_id}


async def test_cancelling_the_parent_cancels_its_children_unless_told_not_to(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="child.forever", version=1)
    async def forever(ctx: FlowContext, follow: bool) -> Any:
        if follow:  # a grandchild, cancelled with its parent too
            await ctx.start_child("child.forever", False)
        return await ctx.wait_for_signal("never")

    @flow.workflow(name="parent.cancelled", version=1)
    async def parent(ctx: FlowContext) -> Any:
        a = await ctx.start_child("child.forever", True)
        b = await ctx.start_child("child.forever", False, cancel_with_parent=False)
        return await asyncio.gather(a.result(), b.result())

    async with h.running(flow):
        run_id = await flow.start("parent.cancelled")
        await h.wait_until(lambda: _status_is(flow, run_id, RunStatus.WAITING))

        async def three_waiting() -> bool:
            kids = await flow.list_runs(workflow="child.forever", status="waiting")
            return len(kids) == 3

        await h.wait_until(three_waiting)
        await flow.cancel(run_id)
        runs = await flow.list_runs(workflow="child.forever")
    by_parent = {r.parent_id: r for r in runs if r.parent_id == run_id}
    statuses = sorted(r.status.value for r in runs)
    assert statuses == ["cancelled", "cancelled", "waiting"]
    kept = [r for r in runs if r.status is RunStatus.WAITING]
    assert kept[0].parent_id == run_id and by_parent
    grandchild = [r for r in runs if r.parent_id not in (run_id, None)]
    assert len(grandchild) == 1 and grandchild[0].status is RunStatus.CANCELLED
    assert "cancelled with its parent" in grandchild[0].error["message"]


async def test_a_cancelled_child_surfaces_in_the_parent(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="child.waits", version=1)
    async def waits(ctx: FlowContext) -> Any:
        return await ctx.wait_for_signal("never")

    @flow.workflow(name="parent.sees_cancel", version=1)
    async def parent(ctx: FlowContext) -> str:
        try:
            await ctx.run_child("child.waits")
        except ChildFailed as exc:
            return exc.status
        return "no"

    async with h.running(flow):
        run_id = await flow.start("parent.sees_cancel")
        await h.wait_until(lambda: _status_is(flow, run_id, RunStatus.WAITING))
        [child] = await flow.list_runs(workflow="child.waits")
        await flow.cancel(child.id)
        assert await flow.result(run_id, timeout=30) == "cancelled"


async def test_wait_first_over_a_child_and_a_sleep(make_flow: Callable[..., Flow], h: Any) -> None:
    flow = make_flow()
    _double(flow)

    @flow.workflow(name="child.slow", version=1)
    async def slow(ctx: FlowContext) -> str:
        await ctx.wait_for_signal("never")
        return "late"

    @flow.workflow(name="parent.races", version=1)
    async def parent(ctx: FlowContext) -> list[Any]:
        fast = await ctx.start_child("child.double", 4)
        slow_one = await ctx.start_child("child.slow")
        won = await ctx.wait_first(slow_one.result(), fast.result())
        timed = await ctx.wait_first((await ctx.start_child("child.slow")).result(), ctx.sleep(1.0))
        return [list(won), list(timed)]

    async with h.running(flow):
        run_id = await flow.start("parent.races")
        assert await flow.result(run_id, timeout=30) == [[1, {"n": 8}], [1, None]]


async def test_fan_out_of_1000_children_gathered(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    # a heartbeat renewing parent and children many times a second, 64 slots: with the
    # parent's row as the lock between a child's end and the parent's suspension this
    # deadlocked every run
    flow = make_flow(heartbeat=0.05)
    _double(flow)

    @flow.workflow(name="parent.fan", version=1)
    async def fan(ctx: FlowContext, n: int) -> int:
        handles = await asyncio.gather(*(ctx.start_child("child.double", i) for i in range(n)))
        outs = await asyncio.gather(*(hd.result() for hd in handles))
        assert [o["n"] for o in outs] == [2 * i for i in range(n)]
        more = await asyncio.gather(*(ctx.run_child("child.double", i) for i in range(3)))
        return sum(o["n"] for o in outs) + len(more)

    async with h.running(flow, concurrency=64):
        run_id = await flow.start("parent.fan", 1000)
        assert await flow.result(run_id, timeout=300) == 999 * 1000 + 3
    kids = await flow.list_runs(workflow="child.double", limit=2000)
    assert len(kids) == 1003 and all(k.status is RunStatus.SUCCEEDED for k in kids)
    # children ending while their worker renews parent and children together never
    # deadlock (a deadlock would fail a child; Postgres counts them per database)
    await flow.close()
    conn = await asyncpg.connect(pg.dsn)
    try:
        await asyncio.sleep(1.0)  # exited backends report their statistics
        deadlocks = await conn.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    assert deadlocks == 0


async def test_children_of_a_run_in_the_api_and_the_cli(
    make_flow: Callable[..., Flow], h: Any, pg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = make_flow()
    _double(flow)

    @flow.workflow(name="parent.two", version=1)
    async def parent(ctx: FlowContext) -> list[Any]:
        return list(await asyncio.gather(*(ctx.run_child("child.double", i) for i in (1, 2))))

    async with h.running(flow):
        run_id = await flow.start("parent.two")
        assert await flow.result(run_id, timeout=30) == [{"n": 2}, {"n": 4}]
    kids = await flow.children(run_id)
    # oldest first; the two were started concurrently (gather), so either may be older
    assert [k.created_at for k in kids] == sorted(k.created_at for k in kids)
    assert sorted(k.input for k in kids) == [1, 2] and {k.parent_id for k in kids} == {run_id}
    assert await flow.children(kids[0].id) == []
    with pytest.raises(RunNotFound):
        await flow.children("00000000-0000-0000-0000-000000000000")
    with pytest.raises(InvalidArgument):
        await flow.children("not-a-uuid")

    url = ["--database-url", pg.url]
    code = await asyncio.to_thread(main, ["runs", "show", str(run_id), *url])
    out = capsys.readouterr().out
    assert code == 0 and f"children  2: {kids[0].id} (succeeded)" in out
    code = await asyncio.to_thread(main, ["runs", "show", str(kids[1].id), *url])
    out = capsys.readouterr().out
    assert code == 0 and f"parent    {run_id}" in out


async def test_a_parent_is_woken_even_if_its_row_was_locked_when_the_child_ended(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="child.gated", version=1)
    async def gated(ctx: FlowContext) -> Any:
        return await ctx.wait_for_signal("open")

    @flow.workflow(name="parent.locked", version=1)
    async def parent(ctx: FlowContext) -> Any:
        return await ctx.run_child("child.gated")

    async with h.running(flow):
        run_id = await flow.start("parent.locked")
        await h.wait_until(lambda: _status_is(flow, run_id, RunStatus.WAITING))
        [child] = await flow.children(run_id)
        await h.wait_until(lambda: _status_is(flow, child.id, RunStatus.WAITING))
        conn = await asyncpg.connect(pg.dsn)
        try:
            # another transaction holds the waiting parent's row while the child ends, then
            # rolls back without waking it (as a refused flow.retry of the parent would)
            tx = conn.transaction()
            await tx.start()
            await conn.execute(
                "SELECT 1 FROM forktex_flow.runs WHERE id = $1 FOR NO KEY UPDATE", run_id
            )
            await flow.send_signal(child.id, "open", "through")
            await h.wait_until(lambda: _status_is(flow, child.id, RunStatus.SUCCEEDED))
            await tx.rollback()
        finally:
            await conn.close()
        assert await flow.result(run_id, timeout=30) == "through"


async def test_a_fork_after_a_child_start_gets_the_childs_outcome_or_is_refused(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    """A fork copies a child's start but the child reports to the original parent: a fork
    that awaits a finished child gets its outcome; one that would await a live child forever
    is refused, naming it."""
    flow = make_flow()
    _double(flow)

    @flow.workflow(name="child.gate", version=1)
    async def gate(ctx: FlowContext, n: int) -> int:
        await ctx.wait_for_signal("open")
        return n

    @flow.workflow(name="parent.forked", version=1)
    async def parent(ctx: FlowContext, n: int) -> Any:
        handle = await ctx.start_child("child.double", n)
        return await handle.result()

    @flow.workflow(name="parent.leaves", version=1)
    async def leaves(ctx: FlowContext, n: int) -> str:
        handle = await ctx.start_child("child.gate", n, cancel_with_parent=False)
        if ctx.run_id is not None and n > 0:
            return str(handle.run_id)  # never awaited here
        return str(await handle.result())

    async with h.running(flow):
        source = await flow.start("parent.forked", 4)
        assert await flow.result(source, timeout=30) == {"n": 8}
        fork = await flow.fork(source, from_step=1)  # after the start, before the result
        assert await flow.result(fork, timeout=30) == {"n": 8}
        assert len(await flow.children(source)) == 1  # the fork started no second child
        assert await flow.children(fork) == []

        left = await flow.start("parent.leaves", 1)
        child = await flow.result(left, timeout=30)
        with pytest.raises(InvalidArgument, match=f"child {child} at position 0.*still"):
            await flow.fork(left, from_step=1)
        assert await flow.fork(left, from_step=0)  # the fork starts a child of its own
        await flow.send_signal(child, "open")
        assert await flow.result(child, timeout=30) == 1
        later = await flow.fork(left, from_step=1, version=None)
        assert await flow.result(later, timeout=30) == child  # same path: not awaited
