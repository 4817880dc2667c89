# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A lease belongs to one execution of a run: every way an execution ends settles its run.

An execution that gives up while its worker lives on hands its run back; an unexpected error
fails the run with the error recorded; a failing run stops its other branches first; no step
starts once ``cancel()`` returned; a step that blocks the event loop never gets its run
executed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import Flow, FlowContext, RunCancelled, RunFailed, StepFailed

CHECKPOINT_TRIGGER = """
CREATE TABLE refuse_checkpoints (sqlstate text NOT NULL);
CREATE FUNCTION refuse_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE code text;
BEGIN
    SELECT sqlstate INTO code FROM refuse_checkpoints LIMIT 1;
    IF code IS NOT NULL THEN
        RAISE EXCEPTION 'checkpoint refused by the test' USING ERRCODE = code;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_checkpoint BEFORE INSERT OR UPDATE ON forktex_flow.steps
    FOR EACH ROW WHEN (NEW.name LIKE '%guarded%') EXECUTE FUNCTION refuse_checkpoint();
"""


async def test_run_whose_execution_gives_up_is_recovered_while_its_worker_lives(
    make_flow: Callable[..., Flow], h: Any, pg: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The checkpoint fails with a connection-class error for longer than the lease."""
    flow = make_flow(lease=1.0, heartbeat=0.2, max_recovery_attempts=20)
    bodies: list[int] = []

    @flow.step
    async def guarded(ctx: FlowContext) -> str:
        bodies.append(1)
        return "written"

    @flow.workflow(name="exec.give_up", version=1)
    async def wf(ctx: FlowContext) -> str:
        return str(await guarded(ctx))

    await flow.connect()
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(CHECKPOINT_TRIGGER)
        await conn.execute("INSERT INTO refuse_checkpoints VALUES ('57P01')")  # admin_shutdown
        caplog.set_level(logging.WARNING, logger="forktex_core.flow")
        async with h.running(flow):
            run_id = await flow.start("exec.give_up")
            await h.wait_until(lambda: "failed for good" in caplog.text)
            await conn.execute("DELETE FROM refuse_checkpoints")
            # the worker is alive and heartbeating all along: the run must not stay leased
            assert await flow.result(run_id, timeout=20) == "written"
        info = await flow.get_run(run_id)
        assert info.recovery_attempts >= 1  # a give-up counts like a lost lease
        assert len(bodies) >= 2
    finally:
        await conn.close()


async def test_unexpected_checkpoint_error_fails_the_run_even_if_the_workflow_catches(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()

    @flow.step
    async def guarded(ctx: FlowContext) -> str:
        return "never stored"

    @flow.workflow(name="exec.refused", version=1)
    async def wf(ctx: FlowContext) -> str:
        try:
            await guarded(ctx)
        except Exception:  # the checkpoint was not written: carrying on would diverge
            return "swallowed"
        return "stored"

    await flow.connect()
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(CHECKPOINT_TRIGGER)
        await conn.execute("INSERT INTO refuse_checkpoints VALUES ('P0001')")
        async with h.running(flow):
            run_id = await flow.start("exec.refused")
            with pytest.raises(RunFailed) as err:
                await flow.result(run_id, timeout=20)
        assert "checkpoint refused by the test" in err.value.error["message"]
    finally:
        await conn.close()


async def test_unexpected_completion_error_fails_the_run_with_the_error_recorded(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="exec.no_complete", version=1)
    async def wf(ctx: FlowContext) -> str:
        return "done"

    await flow.connect()
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(
            """
            CREATE FUNCTION refuse_completion() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'completion refused by the test'; END $$;
            CREATE TRIGGER refuse_completion BEFORE UPDATE ON forktex_flow.runs FOR EACH ROW
                WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION refuse_completion();
            """
        )
        async with h.running(flow):
            run_id = await flow.start("exec.no_complete")
            with pytest.raises(RunFailed) as err:
                await flow.result(run_id, timeout=20)
        assert err.value.status == "failed"
        assert "completion refused by the test" in err.value.error["message"]
    finally:
        await conn.close()


async def test_no_step_starts_after_cancel_returned(make_flow: Callable[..., Flow], h: Any) -> None:
    """The body swallows the cancellation (or never hears of it): the next step must not run."""
    flow = make_flow()
    ran: list[str] = []
    gate = asyncio.Event()
    ended = asyncio.Event()

    @flow.step
    async def first(ctx: FlowContext) -> None:
        ran.append("first")

    @flow.step
    async def second(ctx: FlowContext) -> None:
        ran.append("second")

    @flow.workflow(name="exec.cancel_gap", version=1)
    async def wf(ctx: FlowContext) -> None:
        try:
            await first(ctx)
            with contextlib.suppress(asyncio.CancelledError):
                await gate.wait()
            await second(ctx)
        finally:
            ended.set()

    async def first_done(run_id: Any) -> bool:
        return any(s.status == "completed" for s in await flow.history(run_id))

    async with h.running(flow):
        run_id = await flow.start("exec.cancel_gap")
        await h.wait_until(lambda: first_done(run_id))
        await flow.cancel(run_id)
        gate.set()
        await asyncio.wait_for(ended.wait(), 20)
        with pytest.raises(RunCancelled):
            await flow.result(run_id, timeout=5)
    assert ran == ["first"]


async def test_a_step_right_after_a_checkpoint_needs_no_lease_read_but_one_after_a_yield_does(
    make_flow: Callable[..., Flow], h: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The previous checkpoint proves the lease until the event loop polls again: back-to-back
    steps read the run's row once (the first step), a step after any other await reads it."""
    from forktex_core.flow import _held

    reads: list[uuid.UUID] = []
    real = _held.HeldChecks.held

    async def counted(self: Any, run_id: uuid.UUID, execution: uuid.UUID) -> bool:
        reads.append(run_id)
        return await real(self, run_id, execution)

    monkeypatch.setattr(_held.HeldChecks, "held", counted)
    flow = make_flow()

    @flow.step
    async def tick(ctx: FlowContext, i: int) -> int:
        return i

    @flow.workflow(name="exec.back_to_back", version=1)
    async def back_to_back(ctx: FlowContext) -> int:
        return sum([await tick(ctx, i) for i in range(6)])

    @flow.workflow(name="exec.yields", version=1)
    async def yields(ctx: FlowContext) -> int:
        total = 0
        for i in range(4):
            total += await tick(ctx, i)
            await asyncio.sleep(0)  # the loop polls: the proof is gone
        return total

    async with h.running(flow):
        a = await flow.start("exec.back_to_back")
        assert await flow.result(a, timeout=20) == 15
        b = await flow.start("exec.yields")
        assert await flow.result(b, timeout=20) == 6
    assert reads.count(a) == 1  # the first step only
    assert reads.count(b) == 4  # every step


async def test_failing_branch_stops_its_siblings_before_the_failure_is_recorded(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    fail = {"boom": True}
    slow_events: list[str] = []
    release = asyncio.Event()

    @flow.step
    async def boom(ctx: FlowContext) -> str:
        await asyncio.sleep(0.05)
        if fail["boom"]:
            raise RuntimeError("boom")
        return "boom ok"

    @flow.step
    async def slow(ctx: FlowContext) -> str:
        try:
            await release.wait()
        except asyncio.CancelledError:
            slow_events.append("cancelled")
            raise
        slow_events.append("finished")
        return "slow ok"

    @flow.workflow(name="exec.siblings", version=1)
    async def wf(ctx: FlowContext) -> list[str]:
        return list(await asyncio.gather(boom(ctx), slow(ctx)))

    async with h.running(flow):
        run_id = await flow.start("exec.siblings")
        with pytest.raises(RunFailed):
            await flow.result(run_id, timeout=20)
        # the sibling was stopped before the failure became visible
        assert slow_events == ["cancelled"]
        fail["boom"] = False
        await flow.retry(run_id)
        release.set()
        assert await flow.result(run_id, timeout=20) == ["boom ok", "slow ok"]
    assert slow_events == ["cancelled", "finished"]


async def test_step_blocking_the_event_loop_beyond_the_lease_runs_once(
    make_flow: Callable[..., Flow], h: Any, pg: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Another worker (the leader, in its own thread) would reap a run whose lease lapsed."""
    caplog.set_level(logging.WARNING, logger="forktex_core.flow")
    settings: dict[str, Any] = {
        "lease": 1.0,
        "heartbeat": 0.2,
        "reaper_interval": 0.1,
        "poll_interval": 0.5,
        "shutdown_grace": 0.5,
    }
    reaper = Flow(database_url=pg.url, **settings)
    reaper_loop: list[asyncio.AbstractEventLoop] = []
    started = threading.Event()

    async def reaper_main() -> None:
        reaper_loop.append(asyncio.get_running_loop())
        worker = asyncio.create_task(reaper.run_worker(concurrency=1))
        await reaper.wait_worker_started()
        started.set()
        try:
            await worker
        finally:
            await reaper.close()

    thread = threading.Thread(target=asyncio.run, args=(reaper_main(),), daemon=True)
    thread.start()
    try:
        assert started.wait(30)
        deadline = time.monotonic() + 30
        while not reaper.is_leader:  # the reaping worker leads before the other one starts
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        flow = make_flow(**settings)
        executions: list[int] = []

        @flow.step
        async def blocking_call(ctx: FlowContext) -> str:
            executions.append(1)
            time.sleep(2.5)  # noqa: ASYNC251 - the point: a step that blocks the loop
            return "done"

        @flow.workflow(name="exec.blocking", version=1)
        async def wf(ctx: FlowContext) -> str:
            return str(await blocking_call(ctx))

        async with h.running(flow):
            run_id = await flow.start("exec.blocking")
            assert await flow.result(run_id, timeout=30) == "done"
        assert executions == [1]
        assert (await flow.get_run(run_id)).recovery_attempts == 0
        stalls = [r.getMessage() for r in caplog.records if "blocked" in r.getMessage()]
        assert stalls and "blocking_call" in stalls[0] and "to_thread" in stalls[0]
    finally:
        if reaper_loop:
            reaper_loop[0].call_soon_threadsafe(reaper.stop)
        thread.join(30)


async def test_step_failure_that_ends_a_run_names_its_position(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.step
    async def bad(ctx: FlowContext) -> None:
        raise ValueError("bad")

    @flow.workflow(name="exec.position", version=1)
    async def wf(ctx: FlowContext) -> None:
        ctx.now()
        try:
            await bad(ctx)
        except StepFailed as exc:
            assert exc.seq == 1
            raise

    async with h.running(flow):
        run_id = await flow.start("exec.position")
        with pytest.raises(RunFailed) as err:
            await flow.result(run_id, timeout=20)
    assert err.value.error["seqs"] == [1]


async def test_position_written_by_a_zombie_execution_is_replayed_not_diverged_from(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    """A reaped execution that still ran wrote the position first: replay its result."""
    flow = make_flow(lease=30.0, heartbeat=0.3)  # only a hand-back can bring it back quickly
    entered = asyncio.Event()
    release = asyncio.Event()
    bodies: list[str] = []

    @flow.step
    async def fetch(ctx: FlowContext) -> str:
        bodies.append("fetch")
        entered.set()
        await release.wait()
        return "mine"

    @flow.workflow(name="exec.zombie", version=1)
    async def wf(ctx: FlowContext) -> str:
        return str(await fetch(ctx))

    conn = await asyncpg.connect(pg.dsn)
    try:
        async with h.running(flow):
            run_id = await flow.start("exec.zombie")
            await asyncio.wait_for(entered.wait(), 20)
            await conn.execute(
                "INSERT INTO forktex_flow.steps (run_id, seq, name, kind, status, output) "
                "VALUES ($1, 0, $2, 'step', 'completed', '\"zombie\"')",
                run_id,
                fetch.__forktex_step__.name,  # type: ignore[attr-defined]
            )
            release.set()
            assert await flow.result(run_id, timeout=20) == "zombie"
        assert bodies == ["fetch"]
        assert (await flow.get_run(run_id)).recovery_attempts == 0
    finally:
        await conn.close()
