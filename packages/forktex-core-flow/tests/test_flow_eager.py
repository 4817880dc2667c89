# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Eager starts: a run started in a process whose worker has a free slot for it is inserted
and claimed in one call, within every limit of its queue; otherwise it is started as
before and the workers are notified."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import Flow, FlowContext, RunStatus, _sql


def _eager(info: Any) -> bool:
    """Claimed in the start's own transaction: started at the instant it was created."""
    return info.started_at is not None and info.started_at == info.created_at


@pytest.mark.parametrize("queue", [None, "mail"])
async def test_a_start_in_a_worker_process_begins_there_in_the_same_call(
    make_flow: Callable[..., Flow], h: Any, queue: str | None
) -> None:
    flow = make_flow()
    flow.queue("mail", concurrency=2, limit=5, period=60)
    entered: list[uuid.UUID] = []

    @flow.workflow(name="eager.hello", version=1)
    async def hello(ctx: FlowContext, name: str) -> str:
        entered.append(ctx.run_id)
        return f"hello {name}"

    async with h.running(flow, concurrency=4):
        run_id = await flow.start("eager.hello", "ada", queue=queue)
        assert await flow.result(run_id, timeout=10) == "hello ada"
        info = await flow.get_run(run_id)
        assert _eager(info), info
    assert entered == [run_id]
    if queue is not None:
        (mail,) = await flow.queues("mail")
        assert mail.window_starts == 1  # the rate window counted the eager admission


REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


async def test_an_eager_run_does_not_inherit_the_starting_callers_context(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    """The run executes in the worker's context, as a claimed run does: the caller's
    context variables (a request's state, a trace) do not leak into it."""
    flow = make_flow()

    @flow.workflow(name="eager.context", version=1)
    async def context(ctx: FlowContext) -> str:
        return REQUEST.get()

    async with h.running(flow, concurrency=2):
        token = REQUEST.set("request-42")
        try:
            run_id = await flow.start("eager.context")
        finally:
            REQUEST.reset(token)
        assert await flow.result(run_id, timeout=10) == "none"
        assert _eager(await flow.get_run(run_id))


@pytest.mark.parametrize(
    "limits", [{"concurrency": 1}, {"worker_concurrency": 1}, {"partition_concurrency": 1}]
)
async def test_an_eager_start_keeps_the_queue_limits(
    make_flow: Callable[..., Flow], h: Any, limits: dict[str, int]
) -> None:
    """A full queue (global, this worker's share, or the run's partition key) is not
    jumped: the second run waits, and starts when the first ends."""
    flow = make_flow()
    flow.queue("one", **limits)
    gate = asyncio.Event()
    running: list[int] = []
    most = 0

    @flow.workflow(name="eager.held", version=1)
    async def held(ctx: FlowContext, n: int) -> int:
        nonlocal most
        running.append(n)
        most = max(most, len(running))
        await gate.wait()
        running.remove(n)
        return n

    key = "k" if "partition_concurrency" in limits else None
    async with h.running(flow, concurrency=8):
        first = await flow.start("eager.held", 1, queue="one", partition_key=key)
        await h.wait_until(lambda: running == [1])
        second = await flow.start("eager.held", 2, queue="one", partition_key=key)
        await asyncio.sleep(0.3)
        info = await flow.get_run(second)
        assert info.status is RunStatus.PENDING and info.started_at is None
        gate.set()
        assert await flow.result(first, timeout=10) == 1
        assert await flow.result(second, timeout=10) == 2
        assert _eager(await flow.get_run(first))
        assert not _eager(await flow.get_run(second))
    assert most == 1


async def test_no_eager_start_without_a_free_slot_or_for_a_keyed_or_later_run(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    gate = asyncio.Event()

    @flow.workflow(name="eager.slow", version=1)
    async def slow(ctx: FlowContext, n: int) -> int:
        if n == 0:
            await gate.wait()
        return n

    async with h.running(flow, concurrency=1):
        busy = await flow.start("eager.slow", 0)
        assert _eager(await flow.get_run(busy))
        waiting = await flow.start("eager.slow", 1)  # the one slot is taken
        assert (await flow.get_run(waiting)).status is RunStatus.PENDING
        gate.set()
        assert await flow.result(waiting, timeout=10) == 1
        assert not _eager(await flow.get_run(waiting))
        keyed = [
            await flow.start("eager.slow", 2, idempotency_key="k-2"),
            await flow.start("eager.slow", 3, dedup_key="d-3"),
            await flow.start("eager.slow", 4, delay=0.1),
        ]
        for run_id in keyed:
            await flow.result(run_id, timeout=10)
            assert not _eager(await flow.get_run(run_id))


async def _start_claimed(
    conn: asyncpg.Connection, run_id: uuid.UUID, queue: str | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        _sql.START_CLAIMED,
        run_id,
        "eager.fifo",
        1,
        "null",
        None,
        "{}",
        queue,
        0,
        None,
        "w-eager",
        5.0,
        [],
        [],
    )


async def test_an_eager_start_does_not_pass_a_run_ahead_of_it_in_its_queue(
    make_flow: Callable[..., Flow], pg: Any
) -> None:
    """A run waiting ahead in the queue keeps its place: the new run is left pending and
    the workers are told of it. Outside a queue, the start claims its own run."""
    flow = make_flow()
    flow.queue("fifo", concurrency=5)

    @flow.workflow(name="eager.fifo", version=1)
    async def fifo(ctx: FlowContext) -> None:
        return None

    older = await flow.start("eager.fifo", queue="fifo")  # no worker: stays pending
    listener = await asyncpg.connect(pg.dsn)
    conn = await asyncpg.connect(pg.dsn)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(_sql.WORK_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        queued, plain = uuid.uuid4(), uuid.uuid4()
        assert await _start_claimed(conn, queued, "fifo") == []
        assert await asyncio.wait_for(heard.get(), 5) == ""
        rows = await _start_claimed(conn, plain, None)
        assert [r["id"] for r in rows] == [plain] and rows[0]["seqs"] is None
        status = dict(
            await conn.fetch(
                "SELECT id, status FROM forktex_flow.runs WHERE id = ANY($1)",
                [older, queued, plain],
            )
        )
        assert status == {older: "pending", queued: "pending", plain: "running"}
    finally:
        await listener.close()
        await conn.close()


@pytest.mark.parametrize("limits", [{"limit": 1, "period": 60}, {"priorities": True}])
async def test_an_eager_start_keeps_the_rate_window_and_priorities(
    make_flow: Callable[..., Flow], pg: Any, limits: dict[str, Any]
) -> None:
    """A rate window holding its limit refuses the eager admission; a higher priority
    waiting run goes first. Either way the run is left pending, and nothing is counted."""
    flow = make_flow()
    flow.queue("q", **limits)

    @flow.workflow(name="eager.fifo", version=1)
    async def fifo(ctx: FlowContext) -> None:
        return None

    conn = await asyncpg.connect(pg.dsn)
    try:
        first = uuid.uuid4()
        if "limit" in limits:
            await flow.queues()  # stores the declaration
            assert [r["id"] for r in await _start_claimed(conn, first, "q")] == [first]
        else:
            await flow.start("eager.fifo", queue="q", priority=5)  # no worker: waits
        second = uuid.uuid4()
        assert await _start_claimed(conn, second, "q") == []
        assert (
            await conn.fetchval("SELECT status FROM forktex_flow.runs WHERE id = $1", second)
            == "pending"
        )
        starts = await conn.fetchval("SELECT count(*) FROM forktex_flow.queue_starts")
        assert starts == (1 if "limit" in limits else 0)
    finally:
        await conn.close()


async def test_a_failed_eager_call_starts_the_run_the_ordinary_way(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    """The server refusing the eager call (here: its function is gone) writes nothing;
    the start falls back to the plain insert, and the run still runs."""
    flow = make_flow()

    @flow.workflow(name="eager.fallback", version=1)
    async def fallback(ctx: FlowContext, n: int) -> int:
        return n + 1

    await flow.connect()
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute("DROP FUNCTION forktex_flow.start_claimed")
    finally:
        await conn.close()
    async with h.running(flow, concurrency=2):
        run_id = await flow.start("eager.fallback", 41)
        assert await flow.result(run_id, timeout=10) == 42
        assert not _eager(await flow.get_run(run_id))
        runs = await flow.list_runs(workflow="eager.fallback")
        assert [r.id for r in runs] == [run_id]  # nothing half-written by the failed call
