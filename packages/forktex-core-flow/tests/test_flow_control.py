# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Control and introspection: cancel, retry, non-determinism, timeouts, retention, listings,
durable retry counts, transactional steps, bad input."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from forktex_core.flow import (
    Flow,
    FlowClosed,
    FlowContext,
    InvalidArgument,
    NotSerialisable,
    ResultTimeout,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunNotFound,
    RunNotRetryable,
    RunStatus,
    StepFailed,
)

from .conftest import user_metadata


async def _status(flow: Flow, run_id: Any, status: str) -> bool:
    return (await flow.get_run(run_id)).status == status


async def test_non_determinism_names_both_steps(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    flip = {"v": False}

    @flow.step
    async def charge(ctx: FlowContext) -> str:
        return "charged"

    @flow.step
    async def refund(ctx: FlowContext) -> str:
        return "refunded"

    @flow.workflow(name="nd", version=1)
    async def wf(ctx: FlowContext) -> str:
        out = await (refund(ctx) if flip["v"] else charge(ctx))
        await ctx.wait_for_signal("go")
        return out

    async with h.running(flow):
        run_id = await flow.start("nd")
        await h.wait_until(lambda: _status(flow, run_id, "waiting"))
        flip["v"] = True
        await flow.send_signal(run_id, "go")
        with pytest.raises(RunFailed) as err:
            await flow.result(run_id, timeout=20)
    assert err.value.error["type"] == "NonDeterminismError"
    msg = err.value.error["message"]
    assert "charge" in msg and "refund" in msg and "position 0" in msg


async def test_cancel_and_retry(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    calls: list[str] = []
    fail = {"v": True}

    @flow.step
    async def first(ctx: FlowContext) -> int:
        calls.append("first")
        return 1

    @flow.step
    async def second(ctx: FlowContext) -> int:
        calls.append("second")
        if fail["v"]:
            raise RuntimeError("transient outage")
        return 2

    @flow.workflow(name="cr", version=1)
    async def wf(ctx: FlowContext) -> int:
        return await first(ctx) + await second(ctx)

    @flow.step
    async def forever(ctx: FlowContext) -> None:
        await asyncio.sleep(3600)

    @flow.workflow(name="long", version=1)
    async def long(ctx: FlowContext) -> None:
        await forever(ctx)

    async with h.running(flow):
        run_id = await flow.start("cr")
        with pytest.raises(RunFailed):
            await flow.result(run_id, timeout=20)
        fail["v"] = False
        await flow.retry(run_id)
        assert await flow.result(run_id, timeout=20) == 3
        assert calls == ["first", "second", "second"]  # resumed from the checkpoint

        running = await flow.start("long")
        await h.wait_until(lambda: _status(flow, running, "running"))
        await flow.cancel(running)
        with pytest.raises(RunCancelled):
            await flow.result(running, timeout=10)
        waiting = await flow.start("cr")  # will finish; cancel a finished run fails
        await flow.result(waiting, timeout=20)
        with pytest.raises(RunFinished):
            await flow.cancel(waiting)
        with pytest.raises(RunNotRetryable):
            await flow.retry(waiting)
        await h.wait_until(lambda: flow._worker is not None and flow._worker.active_runs == 0)


async def test_workflow_timeout(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="slow", version=1, timeout=0.5)
    async def wf(ctx: FlowContext) -> None:
        await ctx.wait_for_signal("never")

    async with h.running(flow):
        run_id = await flow.start("slow")
        with pytest.raises(RunFailed) as err:
            await flow.result(run_id, timeout=20)
    assert err.value.error["type"] == "WorkflowTimeout"


async def test_durable_attempt_count_across_worker_restart(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    attempts: list[int] = []

    @flow.step(max_attempts=3, backoff=30)
    async def flaky(ctx: FlowContext) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return len(attempts)

    @flow.workflow(name="durable-retry", version=1)
    async def wf(ctx: FlowContext) -> int:
        return await flaky(ctx)

    async with h.running(flow):
        run_id = await flow.start("durable-retry")
        await h.wait_until(lambda: len(attempts) == 1)
        await h.wait_until(lambda: _history_status(flow, run_id, "retrying"))
    # the worker stopped during the 30 s backoff and handed the run back
    assert (await flow.get_run(run_id)).status is RunStatus.PENDING
    async with h.running(flow):
        assert await flow.result(run_id, timeout=20) == 2
    (step,) = await flow.history(run_id)
    assert step.attempt == 2 and step.status == "completed"


async def _history_status(flow: Flow, run_id: Any, status: str) -> bool:
    hist = await flow.history(run_id)
    return bool(hist) and hist[0].status == status


async def test_transactional_step_commits_with_checkpoint(make_flow: Any, h: Any, pg: Any) -> None:
    flow = make_flow()
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, sku text)")

    @flow.transaction
    async def record(ctx: FlowContext, session: Any, sku: str) -> int:
        res = await session.execute(
            text("INSERT INTO orders (sku) VALUES (:s) RETURNING id"), {"s": sku}
        )
        return int(res.scalar_one())

    @flow.step(transactional=True)
    async def broken(ctx: FlowContext, session: Any) -> None:
        await session.execute(text("INSERT INTO orders (sku) VALUES ('rolled-back')"))
        raise ValueError("abort")

    @flow.workflow(name="tx", version=1)
    async def wf(ctx: FlowContext) -> list[Any]:
        out: list[Any] = [await record(ctx, "a1")]
        try:
            await broken(ctx)
        except StepFailed as exc:
            out.append(exc.error_message)
        await ctx.wait_for_signal("go")  # replay must not insert again
        return out

    try:
        async with h.running(flow):
            run_id = await flow.start("tx")
            await h.wait_until(lambda: _status(flow, run_id, "waiting"))
            await flow.send_signal(run_id, "go")
            out = await flow.result(run_id, timeout=20)
        assert out[1] == "abort"
        assert await conn.fetchval("SELECT array_agg(sku) FROM orders") == ["a1"]
        # outside a workflow a transaction is a plain call in its own transaction
        assert await record(None, "plain") > 0
        assert await conn.fetchval("SELECT count(*) FROM orders") == 2
    finally:
        await conn.close()


async def test_introspection_and_listing(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.step
    async def s(ctx: FlowContext, x: int) -> int:
        await asyncio.sleep(0.01)
        return x

    @flow.workflow(name="a", version=1)
    async def a(ctx: FlowContext, x: int) -> int:
        return await s(ctx, x)

    @flow.workflow(name="b", version=2)
    async def b(ctx: FlowContext, x: int) -> int:
        raise ValueError("b fails")

    before = datetime.now(UTC) - timedelta(seconds=1)
    ids_a = [await flow.start(a, i, metadata={"tenant": "t1"}) for i in range(5)]
    id_b = await flow.start("b", 0)
    async with h.running(flow):
        for r in ids_a:
            await flow.result(r, timeout=20)
        with pytest.raises(RunFailed):
            await flow.result(id_b, timeout=20)
    info = await flow.get_run(ids_a[0])
    assert info.status is RunStatus.SUCCEEDED and info.output == 0
    assert user_metadata(info.metadata) == {"tenant": "t1"} and info.started_at and info.finished_at
    assert info.worker is None and info.version == 1
    assert [r.id for r in await flow.list_runs(workflow="a")] == ids_a[::-1]
    page1 = await flow.list_runs(limit=4)
    page2 = await flow.list_runs(limit=4, offset=4)
    assert len(page1) == 4 and len(page2) == 2
    assert {r.id for r in page1 + page2} == {*ids_a, id_b}
    failed = await flow.list_runs(status=[RunStatus.FAILED])
    assert [r.id for r in failed] == [id_b] and failed[0].version == 2
    assert await flow.list_runs(created_before=before) == []
    assert len(await flow.list_runs(created_after=before, status="succeeded")) == 5
    (step,) = await flow.history(ids_a[2])
    assert step.output == 2 and step.attempt == 1 and step.duration is not None
    assert step.duration >= 0.0


async def test_retention_prunes_finished_runs(make_flow: Any, h: Any) -> None:
    flow = make_flow(retention=0.3, prune_batch=2, reaper_interval=0.1)

    @flow.workflow(name="r", version=1)
    async def wf(ctx: FlowContext) -> int:
        return 1

    @flow.workflow(name="keep", version=1)
    async def keep(ctx: FlowContext) -> int:
        return await ctx.wait_for_signal("never")  # type: ignore[no-any-return]

    async with h.running(flow):
        done = [await flow.start("r") for _ in range(5)]
        alive = await flow.start("keep")
        for r in done:
            await flow.result(r, timeout=20)

        async def pruned() -> bool:
            return [r.id for r in await flow.list_runs()] == [alive]

        await h.wait_until(pruned, timeout=30)
    with pytest.raises(RunNotFound):
        await flow.get_run(done[0])


async def test_bad_input_for_every_public_call(make_flow: Any, pg: Any) -> None:
    with pytest.raises(InvalidArgument, match="database_url"):
        Flow(database_url="mysql://u:secret@h/db")
    with pytest.raises(InvalidArgument) as err:
        Flow(database_url="mysql://u:secret@h/db")
    assert "secret" not in str(err.value)
    with pytest.raises(InvalidArgument):
        Flow(database_url=pg.url, lease=1, heartbeat=1)
    with pytest.raises(InvalidArgument):
        Flow(database_url=pg.url, lease=-1)
    flow = make_flow()
    assert "secret" not in repr(Flow(database_url="postgresql://u:secret@h/db"))

    with pytest.raises(InvalidArgument):
        flow.step(lambda ctx: None)  # not async
    with pytest.raises(InvalidArgument):
        flow.step(max_attempts=0)
    with pytest.raises(InvalidArgument):
        flow.step(retry_on=(int,))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        flow.step(timeout=-1)
    with pytest.raises(InvalidArgument):
        flow.workflow(name="", version=1)
    with pytest.raises(InvalidArgument):
        flow.workflow(name="x", version=0)

    @flow.workflow(name="ok", version=1)
    async def ok(ctx: FlowContext) -> None:
        return None

    with pytest.raises(InvalidArgument):

        @flow.workflow(name="ok", version=1)
        async def other(ctx: FlowContext) -> None:
            return None

    with pytest.raises(InvalidArgument):
        await flow.start(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        await flow.start("ok", idempotency_key="")
    with pytest.raises(NotSerialisable):
        await flow.start("ok", input=float("nan"))
    with pytest.raises(InvalidArgument):
        await flow.start("ok", metadata=[1])  # type: ignore[arg-type]
    for call in (flow.get_run, flow.history, flow.cancel, flow.retry, flow.result):
        with pytest.raises(InvalidArgument):
            await call("not-a-uuid")
        with pytest.raises(RunNotFound):
            await call(uuid.uuid4())
    with pytest.raises(InvalidArgument):
        await flow.send_signal("nope", "x")
    with pytest.raises(RunNotFound):
        await flow.send_signal(uuid.uuid4(), "x")
    run_id = await flow.start("ok")
    with pytest.raises(InvalidArgument):
        await flow.send_signal(run_id, "")
    with pytest.raises(NotSerialisable):
        await flow.send_signal(run_id, "x", payload={1, 2})
    with pytest.raises(InvalidArgument):
        await flow.result(run_id, timeout=0)
    with pytest.raises(ResultTimeout):
        await flow.result(run_id, timeout=0.1)
    with pytest.raises(InvalidArgument):
        await flow.list_runs(status="bogus")
    with pytest.raises(InvalidArgument):
        await flow.list_runs(limit=0)
    with pytest.raises(InvalidArgument):
        await flow.list_runs(offset=-1)
    with pytest.raises(InvalidArgument):
        await flow.list_runs(created_after=datetime.now())  # naive
    with pytest.raises(InvalidArgument):
        await flow.run_worker(concurrency=0)
    await flow.cancel(run_id)
    with pytest.raises(RunFinished):
        await flow.send_signal(run_id, "x")
    await flow.close()
    with pytest.raises(FlowClosed):
        await flow.start("ok")
