# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Queues (declaration, validation, introspection, CLI), dedup keys, delayed starts, the
FlowClient and transactional starts."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from forktex_core.flow import (
    FlowClient,
    FlowContext,
    InvalidArgument,
    Queue,
    RunFailed,
    RunNotFound,
    RunStatus,
    UnknownQueue,
    UnknownWorkflow,
)
from forktex_core.flow._cli import main

BURST = Path(__file__).with_name("flow_start_burst.py")


# -- declaration and validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"concurrency": 0}, "concurrency must be an integer >= 1"),
        ({"worker_concurrency": -1}, "worker_concurrency must be an integer >= 1"),
        ({"partition_concurrency": 0}, "partition_concurrency"),
        ({"limit": 5}, "limit and period go together"),
        ({"period": 5}, "limit and period go together"),
        ({"limit": 0, "period": 1}, "limit must be an integer >= 1"),
        ({"limit": 1, "period": 0}, "period"),
        ({"concurrency": 2, "worker_concurrency": 3}, "must not exceed concurrency"),
        ({"priorities": "yes"}, "priorities must be True or False"),
        ({"concurrency": 2**31}, "at most"),
    ],
)
def test_queue_bad_definitions(make_flow: Any, kwargs: dict[str, Any], match: str) -> None:
    flow = make_flow()
    with pytest.raises(InvalidArgument, match=match):
        flow.queue("q", **kwargs)


def test_queue_bad_name(make_flow: Any) -> None:
    with pytest.raises(InvalidArgument, match="queue name"):
        make_flow().queue("")
    with pytest.raises(InvalidArgument, match="queue name"):
        Queue("a\x00b")


async def test_start_validation(make_flow: Any) -> None:
    flow = make_flow()
    flow.queue("plain", concurrency=2)
    flow.queue("keyed", partition_concurrency=1)

    @flow.workflow(name="v.job")
    async def job(ctx: FlowContext) -> None:
        return None

    with pytest.raises(UnknownQueue, match="'nope'"):
        await flow.start("v.job", queue="nope")
    with pytest.raises(InvalidArgument, match="without priorities"):
        await flow.start("v.job", queue="plain", priority=3)
    with pytest.raises(InvalidArgument, match="needs a queue with priorities"):
        await flow.start("v.job", priority=3)
    with pytest.raises(InvalidArgument, match="priority must be an integer"):
        await flow.start("v.job", queue="plain", priority=1.5)
    with pytest.raises(InvalidArgument, match="is partitioned"):
        await flow.start("v.job", queue="keyed")
    with pytest.raises(InvalidArgument, match="not partitioned"):
        await flow.start("v.job", queue="plain", partition_key="a")
    with pytest.raises(InvalidArgument, match="partition_key needs a queue"):
        await flow.start("v.job", partition_key="a")
    with pytest.raises(InvalidArgument, match="dedup_key"):
        await flow.start("v.job", dedup_key="")
    with pytest.raises(InvalidArgument, match="delay"):
        await flow.start("v.job", delay=-1)
    with pytest.raises(InvalidArgument, match="not_before must be a timezone-aware"):
        await flow.start("v.job", not_before=datetime(2030, 1, 1))
    with pytest.raises(InvalidArgument, match="not both"):
        await flow.start("v.job", delay=1, not_before=datetime.now(UTC))
    with pytest.raises(InvalidArgument, match="queue"):
        await flow.list_runs(queue="")
    with pytest.raises(InvalidArgument, match="queue"):
        flow.workflow(name="v.other", queue="")
    assert await flow.list_runs() == []  # nothing was stored by a refused start


async def test_redefinition_latest_wins_with_a_warning(
    make_flow: Any, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = make_flow(), make_flow()
    first.queue("emails", concurrency=5)
    second.queue("emails", concurrency=7, limit=10, period=60)
    assert [q.queue for q in await first.queues()] == [Queue("emails", concurrency=5)]
    with caplog.at_level(logging.WARNING, logger="forktex_core.flow"):
        infos = await second.queues("emails")
    assert infos[0].queue == Queue("emails", concurrency=7, limit=10, period=60.0)
    assert "queue 'emails' redefined" in caplog.text
    assert "latest declaration wins" in caplog.text


# -- running through queues ------------------------------------------------------------------


async def test_default_queue_introspection_and_list_by_queue(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    flow.queue("reports", concurrency=1, limit=100, period=60)
    release = asyncio.Event()

    @flow.workflow(name="r.job", queue="reports")
    async def job(ctx: FlowContext, n: int) -> int:
        await release.wait()
        return n

    @flow.workflow(name="r.free")
    async def free(ctx: FlowContext) -> str:
        return "free"

    ids = [await flow.start("r.job", n) for n in range(3)]
    other = await flow.start("r.free")
    assert (await flow.get_run(ids[0])).queue == "reports"
    assert (await flow.get_run(other)).queue is None
    async with h.running(flow):
        await h.wait_until(lambda: _active(flow, "reports", 1))
        (info,) = await flow.queues("reports")
        assert (info.name, info.depth, info.active, info.running) == ("reports", 2, 1, 1)
        assert info.window_starts == 1
        assert await flow.result(other, timeout=20) == "free"
        release.set()
        assert [await flow.result(i, timeout=20) for i in ids] == [0, 1, 2]
        (info,) = await flow.queues("reports")
        assert (info.depth, info.active, info.window_starts) == (0, 0, 3)
    listed = {r.id for r in await flow.list_runs(queue="reports")}
    assert listed == set(ids)
    assert await flow.queues("nothing") == []


async def _active(flow: Any, name: str, n: int) -> bool:
    (info,) = await flow.queues(name)
    return bool(info.active == n)


async def test_partition_counts_in_queues(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    flow.queue("tenants", partition_concurrency=1)
    release = asyncio.Event()

    @flow.workflow(name="t.job", queue="tenants")
    async def job(ctx: FlowContext, n: int) -> int:
        await release.wait()
        return n

    ids = [await flow.start("t.job", n, partition_key=f"org-{n % 2}") for n in range(4)]
    async with h.running(flow):
        await h.wait_until(lambda: _active(flow, "tenants", 2))
        (info,) = await flow.queues()
        assert info.partitions == {"org-0": 1, "org-1": 1}
        assert info.depth == 2
        release.set()
        assert [await flow.result(i, timeout=20) for i in ids] == [0, 1, 2, 3]


async def test_a_partition_keeps_start_order_past_a_version_this_worker_lacks(
    make_flow: Any, h: Any, pg: Any
) -> None:
    """The claim walks the queue in order: key a's first run (version 2, which no worker
    serves) keeps key a's second run waiting, while key b proceeds; a backlog of one full key
    ahead does not stop the other keys either."""
    flow = make_flow()
    flow.queue("tenants", partition_concurrency=1)

    @flow.workflow(name="t.ordered", version=1, queue="tenants")
    async def ordered(ctx: FlowContext, n: int) -> int:
        return n

    client = FlowClient(pg.url)
    try:
        await flow.queues()  # stores the queue's definition for the client
        head = await client.start("t.ordered", 0, version=2, queue="tenants", partition_key="a")
        behind = await flow.start("t.ordered", 1, partition_key="a")
        backlog = [await flow.start("t.ordered", n, partition_key="c") for n in range(2, 40)]
        other = await flow.start("t.ordered", 99, partition_key="b")
        async with h.running(flow):
            assert await flow.result(other, timeout=20) == 99
            assert [await flow.result(r, timeout=20) for r in backlog] == list(range(2, 40))
            assert (await flow.get_run(behind)).status.value == "pending"
            assert (await flow.get_run(head)).status.value == "pending"
            await flow.cancel(head)
            assert await flow.result(behind, timeout=20) == 1
    finally:
        await client.close()


async def test_a_slot_is_held_while_waiting_for_a_signal(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    flow.queue("one", concurrency=1)

    @flow.workflow(name="s.job", queue="one")
    async def job(ctx: FlowContext, n: int) -> Any:
        return await ctx.wait_for_signal("go")

    first = await flow.start("s.job", 1)
    second = await flow.start("s.job", 2)
    async with h.running(flow):
        await h.wait_until(lambda: _status(flow, first, RunStatus.WAITING), timeout=20)
        await asyncio.sleep(0.5)
        assert (await flow.get_run(second)).status is RunStatus.PENDING
        await flow.send_signal(first, "go", 1)
        assert await flow.result(first, timeout=20) == 1
        await h.wait_until(lambda: _status(flow, second, RunStatus.WAITING), timeout=20)
        await flow.send_signal(second, "go", 2)
        assert await flow.result(second, timeout=20) == 2


async def _status(flow: Any, run_id: uuid.UUID, status: RunStatus) -> bool:
    return bool((await flow.get_run(run_id)).status is status)


async def test_a_worker_without_queues_finds_them_after_a_missed_notification(
    make_flow: Any, pg: Any, h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="m.job")
    async def job(ctx: FlowContext) -> str:
        return "ran"

    async with h.running(flow):  # no queue exists yet: plain claims
        conn = await asyncpg.connect(pg.dsn)
        try:  # declared behind the workers' backs: no "queues" notification
            await conn.execute(
                "INSERT INTO forktex_flow.queues (name, concurrency) VALUES ('q', 1)"
            )
        finally:
            await conn.close()
        run_id = await flow.start("m.job", queue="q")
        assert await flow.result(run_id, timeout=20) == "ran"  # the fallback poll looked again


# -- dedup and delay -------------------------------------------------------------------------


async def test_dedup_returns_the_live_run_then_frees_the_key(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    gate = asyncio.Event()

    @flow.workflow(name="d.job")
    async def job(ctx: FlowContext, n: int) -> int:
        await gate.wait()
        return n

    a = await flow.start("d.job", 1, dedup_key="k")
    assert await flow.start("d.job", 2, dedup_key="k") == a
    other = await flow.start("d.job", 3, dedup_key="other")
    assert other != a
    async with h.running(flow):
        gate.set()
        assert await flow.result(a, timeout=20) == 1
        b = await flow.start("d.job", 4, dedup_key="k")  # the key is free once a finished
        assert b != a
        assert await flow.result(b, timeout=20) == 4
        assert await flow.result(other, timeout=20) == 3


async def test_dedup_under_fifty_starts_from_three_processes(make_flow: Any, pg: Any) -> None:
    client = FlowClient(database_url=pg.url)
    await client.connect()
    try:
        procs = [
            subprocess.Popen(  # noqa: ASYNC220 - the test's own child processes
                [sys.executable, str(BURST), "burst", pg.url, str(n), "one-key"],
                stdout=subprocess.PIPE,
            )
            for n in (17, 17, 16)
        ]
        outputs = [p.communicate(timeout=60)[0].decode().split() for p in procs]
        assert all(p.returncode == 0 for p in procs)
        ids = {uuid.UUID(i) for out in outputs for i in out}
        assert sum(len(out) for out in outputs) == 50
        assert len(ids) == 1
        runs = await client.list_runs(workflow="dedup.job")
        assert [r.id for r in runs] == list(ids)
        assert runs[0].dedup_key == "one-key"
    finally:
        await client.close()


async def test_delay_and_not_before_are_durable(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    flow.queue("later", concurrency=5)

    @flow.workflow(name="l.job")
    async def job(ctx: FlowContext, n: int) -> float:
        return ctx.now().timestamp()

    delayed = await flow.start("l.job", 1, delay=timedelta(seconds=1.2))
    queued = await flow.start("l.job", 2, delay=1.2, queue="later")
    past = await flow.start("l.job", 3, not_before=datetime.now(UTC) - timedelta(hours=1))
    (info,) = await flow.queues("later")
    assert (info.depth, info.delayed) == (1, 1)
    async with h.running(flow):
        assert await flow.result(past, timeout=20)
        run = await flow.get_run(delayed)
        assert run.status is RunStatus.PENDING and run.wake_at is not None
        for rid in (delayed, queued):
            await flow.result(rid, timeout=20)
            run = await flow.get_run(rid)
            assert run.started_at is not None
            assert (run.started_at - run.created_at).total_seconds() >= 1.2


# -- the client without the code --------------------------------------------------------------


async def test_client_starts_by_name_and_waits_for_a_worker(
    make_flow: Any, pg: Any, h: Any
) -> None:
    client = FlowClient(database_url=pg.url)
    try:
        assert "secret" not in repr(
            FlowClient(database_url=pg.url.replace("postgres@", "u:secret@"))
        )
        rid = await client.start("c.job", {"n": 2})
        info = await client.get_run(rid)
        assert (info.status, info.version, info.waiting_for_worker) == (
            RunStatus.PENDING,
            1,
            True,
        )
        worker = make_flow()

        @worker.workflow(name="c.job", version=3)
        async def job(ctx: FlowContext, params: dict[str, Any]) -> int:
            return int(params["n"]) * int(await ctx.wait_for_signal("times"))

        async with h.running(worker):
            later = await client.start("c.job", {"n": 5})  # the version the worker announces
            assert (await client.get_run(later)).version == 3
            await client.send_signal(later, "times", 10)
            assert await client.result(later, timeout=20) == 50
            old = await client.get_run(rid)
            assert old.waiting_for_worker  # version 1 is served by no one
            assert {r.id for r in await client.list_runs(workflow="c.job")} == {rid, later}
        with pytest.raises(InvalidArgument, match="workflow"):
            await client.start(123)
        with pytest.raises(InvalidArgument, match="':'"):
            await client.start("a:b")
        with pytest.raises(InvalidArgument, match="version"):
            await client.start("c.job", version=0)
    finally:
        await client.close()
    with pytest.raises(InvalidArgument):
        FlowClient(database_url="mysql://nope")


async def test_a_client_started_run_gets_the_workers_timeout(
    make_flow: Any, pg: Any, h: Any
) -> None:
    client = FlowClient(database_url=pg.url)
    worker = make_flow()

    @worker.workflow(name="slow.job", timeout=0.5)
    async def slow(ctx: FlowContext) -> None:
        await ctx.sleep(30)

    try:
        rid = await client.start("slow.job")
        assert (await client.get_run(rid)).deadline is None
        async with h.running(worker):
            with pytest.raises(RunFailed) as err:
                await client.result(rid, timeout=20)
        assert err.value.error["type"] == "WorkflowTimeout"
        assert (await client.get_run(rid)).deadline is not None
    finally:
        await client.close()


async def test_a_flow_with_workflows_still_refuses_unknown_names(make_flow: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="known")
    async def known(ctx: FlowContext) -> None:
        return None

    with pytest.raises(UnknownWorkflow):
        await flow.start("unknown")


# -- transactional start ----------------------------------------------------------------------


async def test_transactional_start_commit_and_rollback(make_flow: Any, pg: Any, h: Any) -> None:
    flow = make_flow(poll_interval=60.0)  # only the NOTIFY at commit can wake the worker

    @flow.workflow(name="tx.job")
    async def job(ctx: FlowContext, params: dict[str, Any]) -> int:
        return int(params["n"])

    engine = create_async_engine(pg.url)
    try:
        async with h.running(flow):
            await asyncio.sleep(0.3)  # the worker's first claim is behind it
            rolled_back: uuid.UUID | None = None
            with pytest.raises(RuntimeError, match="abort"):
                async with AsyncSession(engine) as session, session.begin():
                    await session.execute(text("SELECT 1"))
                    rolled_back = await flow.start("tx.job", {"n": 1}, session=session)
                    raise RuntimeError("abort")
            assert rolled_back is not None
            async with engine.connect() as conn:
                committed = await flow.start("tx.job", {"n": 7}, session=conn)
                with pytest.raises(RunNotFound):
                    await flow.get_run(committed)  # not visible before the commit
                await conn.commit()
            assert await flow.result(committed, timeout=20) == 7
            await asyncio.sleep(0.3)
            with pytest.raises(RunNotFound):
                await flow.get_run(rolled_back)
        with pytest.raises(InvalidArgument, match="AsyncSession or AsyncConnection"):
            await flow.start("tx.job", {"n": 1}, session=object())
    finally:
        await engine.dispose()


async def test_transactional_start_killed_before_commit_leaves_nothing(
    make_flow: Any, pg: Any
) -> None:
    flow = make_flow()
    await flow.connect()
    proc = subprocess.Popen(  # noqa: ASYNC220 - the test's own child process
        [sys.executable, str(BURST), "hold", pg.url], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        run_id = uuid.UUID(line.decode().strip())
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        conn = await asyncpg.connect(pg.dsn)
        try:
            deadline = time.monotonic() + 30
            while await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            ):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
        with pytest.raises(RunNotFound):
            await flow.get_run(run_id)
        assert await flow.list_runs() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# -- CLI ---------------------------------------------------------------------------------------


async def test_cli_queues(make_flow: Any, pg: Any, capsys: pytest.CaptureFixture[str]) -> None:
    flow = make_flow()
    flow.queue("emails", concurrency=10, worker_concurrency=2, limit=100, period=60)
    flow.queue("billing", partition_concurrency=1, priorities=True)

    @flow.workflow(name="cli.job")
    async def job(ctx: FlowContext) -> None:
        return None

    await flow.start("cli.job", queue="emails")
    await flow.start("cli.job", queue="billing", partition_key="org-1", priority=2)
    code = await asyncio.to_thread(main, ["queues", "--database-url", pg.url])
    out = capsys.readouterr().out
    assert code == 0
    assert "concurrency=10 worker=2 rate=100/60s" in out
    assert "partition=1 priorities" in out
    assert "2 queue(s)" in out
    code = await asyncio.to_thread(
        main, ["runs", "list", "--database-url", pg.url, "--queue", "billing"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "1 run(s)" in out
    code = await asyncio.to_thread(
        main, ["queues", "--database-url", "postgresql://u:pw@127.0.0.1:1/x"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "pw" not in err
