# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Operators' views: keyset pages of runs with every filter, counts by status (exact and
estimated), workers and the leader, signals of a run, and bad input for each."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import (
    Flow,
    FlowContext,
    InvalidArgument,
    RunInfo,
    RunNotFound,
    RunPage,
    RunStatus,
    _sql,
)


async def _populate(flow: Flow, h: Any) -> list[uuid.UUID]:
    """Runs of two workflows and versions in every status a worker gives them."""

    @flow.workflow(name="views.a", version=1)
    async def a1(ctx: FlowContext, n: int) -> int:
        if n % 5 == 0:
            raise ValueError("five")
        if n % 5 == 1:
            await ctx.wait_for_signal("go")
        return n

    @flow.workflow(name="views.a", version=2)
    async def a2(ctx: FlowContext, n: int) -> int:
        return n

    @flow.workflow(name="views.b", version=1)
    async def b1(ctx: FlowContext, n: int) -> int:
        if n % 2 == 0:
            await ctx.wait_for_signal("go")
        return n

    ids = []
    async with h.running(flow):
        for n in range(36):
            workflow, version = [("views.a", 1), ("views.a", 2), ("views.b", 1)][n % 3]
            meta = {"org": "o1" if n % 2 else "o2", "n": n}
            ids.append(await flow.start(workflow, n, version=version, metadata=meta))

        async def settled() -> bool:
            runs = await flow.list_runs(limit=100)
            return all(r.status in ("succeeded", "failed", "waiting") for r in runs)

        await h.wait_until(settled)
    waiting = [r.id for r in await flow.list_runs(status="waiting", limit=100)]
    for rid in waiting[:2]:
        await flow.cancel(rid)
    # pending: a version no worker serves
    ids.append(await flow.start("views.a", 100, version=2, metadata={"org": "o1"}))
    return ids


async def _walk(flow: Flow, limit: int, **filters: Any) -> list[RunInfo]:
    runs: list[RunInfo] = []
    after = None
    for _ in range(100):
        page = await flow.page_runs(limit=limit, after=after, **filters)
        assert isinstance(page, RunPage)
        assert len(page.runs) <= limit
        runs.extend(page.runs)
        if page.next is None:
            return runs
        assert len(page.runs) == limit
        after = page.next
    raise AssertionError("pagination did not end")


def _matches(run: RunInfo, filters: dict[str, Any]) -> bool:
    status = filters.get("status")
    statuses = None if status is None else {status} if isinstance(status, str) else set(status)
    return (
        (filters.get("workflow") is None or run.workflow == filters["workflow"])
        and (filters.get("version") is None or run.version == filters["version"])
        and (statuses is None or run.status.value in statuses)
        and all(run.metadata.get(k) == v for k, v in (filters.get("metadata") or {}).items())
        and (filters.get("created_after") is None or run.created_at >= filters["created_after"])
        and (filters.get("created_before") is None or run.created_at < filters["created_before"])
    )


async def test_keyset_pages_match_every_filter_combination(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    await _populate(flow, h)
    everything = await flow.list_runs(limit=1000)
    assert {r.status for r in everything} >= {"succeeded", "failed", "waiting", "cancelled"}
    middle = sorted(r.created_at for r in everything)[len(everything) // 3]
    late = sorted(r.created_at for r in everything)[2 * len(everything) // 3]
    options: dict[str, list[Any]] = {
        "workflow": [None, "views.a"],
        "version": [None, 2],
        "status": [None, "failed", ["waiting", "cancelled", "pending"], []],
        "metadata": [None, {"org": "o1"}],
        "created_after": [None, middle],
        "created_before": [None, late],
    }
    checked = 0
    for combo in itertools.product(*options.values()):
        filters = dict(zip(options, combo, strict=True))
        if filters["version"] is not None and filters["workflow"] is None:
            continue
        expected = [r.id for r in everything if _matches(r, filters)]
        for limit in (1, 4, 1000):
            got = [r.id for r in await _walk(flow, limit, **filters)]
            assert got == expected, (filters, limit)
        checked += 1
    assert checked > 50


async def test_pages_filter_by_queue_through_its_index(make_flow: Any, pg: Any) -> None:
    flow = make_flow()
    flow.queue("views.q1")
    flow.queue("views.q2", concurrency=1)

    @flow.workflow(name="views.queued", version=1)
    async def queued(ctx: FlowContext) -> None:
        return None

    @flow.workflow(name="views.other", version=1)
    async def other(ctx: FlowContext) -> None:
        return None

    placed: dict[str | None, list[uuid.UUID]] = {"views.q1": [], "views.q2": [], None: []}
    for n in range(15):
        queue = ["views.q1", "views.q2", None][n % 3]
        workflow = "views.other" if n % 5 == 0 else "views.queued"
        placed[queue].append(await flow.start(workflow, queue=queue))
    everything = await flow.list_runs(limit=100)
    for queue in ("views.q1", "views.q2"):
        expected = [r.id for r in everything if r.queue == queue]
        assert sorted(expected) == sorted(placed[queue])
        for limit in (1, 2, 100):
            assert [r.id for r in await _walk(flow, limit, queue=queue)] == expected
        # with the other filters: each narrows within the queue
        mine = [r.id for r in everything if r.queue == queue and r.workflow == "views.queued"]
        got = await _walk(flow, 2, queue=queue, workflow="views.queued", status="pending")
        assert [r.id for r in got] == mine and mine
    assert (await flow.page_runs(queue="views.q1", status="failed")).runs == []
    assert (await flow.page_runs(queue="views.none")).runs == []

    # the statement of a queue page reads the queue's index, not the table
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute("SET enable_seqscan = off")
        statement = _sql.page_runs(30.0, ("queue",), False)
        plan = "\n".join(
            r[0] for r in await conn.fetch("EXPLAIN " + statement, 51, None, None, "views.q1")
        )
    finally:
        await conn.close()
    assert "runs_queue_created" in plan, plan


async def test_pages_do_not_shift_when_runs_start_meanwhile(make_flow: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="views.shift", version=1)
    async def wf(ctx: FlowContext) -> None:
        return None

    first = [await flow.start("views.shift") for _ in range(6)]
    page = await flow.page_runs(limit=3)
    assert [r.id for r in page.runs] == first[::-1][:3]
    for _ in range(4):
        await flow.start("views.shift")
    assert page.next is not None
    rest = await flow.page_runs(limit=3, after=page.next)
    assert [r.id for r in rest.runs] == first[::-1][3:]
    assert rest.next is None


async def test_page_runs_refuses_bad_input(make_flow: Any) -> None:
    flow = make_flow()
    naive = datetime(2026, 1, 1)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"version": 1}, "version filters need a workflow"),
        ({"workflow": "w", "version": 0}, "version must be an int >= 1"),
        ({"workflow": "w", "version": "1"}, "version must be an int >= 1"),
        ({"workflow": ""}, "workflow must be a non-empty string"),
        ({"status": "lost"}, "status must be one of"),
        ({"metadata": ["org"]}, "metadata must be a dict"),
        ({"created_after": naive}, "created_after must be a timezone-aware datetime"),
        ({"created_before": "2026-01-01"}, "created_before must be a timezone-aware"),
        ({"after": "not-a-cursor"}, "after must be a cursor from RunPage.next"),
        ({"after": f"2026-01-01T00:00:00_{uuid.uuid4()}"}, "after must be a cursor"),
        ({"after": "2026-01-01T00:00:00+00:00_nope"}, "after must be a cursor"),
        ({"after": 5}, "after must be a cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit must be at most 1000"),
        ({"queue": ""}, "queue must be a non-empty string"),
        ({"queue": "a\x00b"}, "queue must be a non-empty string"),
        ({"queue": 7}, "queue must be a non-empty string"),
        ({"queue": "q" * 201}, "at most 200 characters"),
    ]
    for kwargs, message in bad:
        with pytest.raises(InvalidArgument, match=message):
            await flow.page_runs(**kwargs)


async def test_run_counts_exact_then_estimated_with_live_statuses_exact(
    make_flow: Any, h: Any, pg: Any
) -> None:
    flow = make_flow()
    await _populate(flow, h)
    everything = await flow.list_runs(limit=1000)
    expected = {s: sum(r.status == s for r in everything) for s in RunStatus}
    counts = await flow.run_counts()
    assert counts.exact and counts.by_status == expected
    assert counts.total == len(everything)

    conn = await asyncpg.connect(flow._dsn)
    try:
        await conn.execute("ANALYZE forktex_flow.runs")
    finally:
        await conn.close()
    estimated = await flow.run_counts(exact_below=1)
    assert not estimated.exact
    for status in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING):
        assert estimated.by_status[status] == expected[status]
    # ANALYZE read every row of so small a table: its frequencies are the real ones
    assert estimated.by_status == expected
    still_exact = await flow.run_counts(exact_below=10_000)
    assert still_exact.exact and still_exact.by_status == expected
    with pytest.raises(InvalidArgument, match="exact_below"):
        await flow.run_counts(exact_below=-1)


async def test_workers_show_versions_liveness_and_the_leader(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="views.served", version=3)
    async def wf(ctx: FlowContext) -> None:
        return None

    assert await flow.workers() == []
    async with h.running(flow):
        await h.wait_until(flow.leader)
        (worker,) = await flow.workers()
        assert worker.id == flow.worker_id and worker.alive and worker.leader
        assert worker.versions == ["views.served:3"]
        assert worker.heartbeat >= worker.started_at
    assert await flow.workers() == []  # a stopping worker removes its row


async def test_a_silent_worker_is_listed_as_not_alive(make_flow: Any, pg: Any) -> None:
    flow = make_flow()
    await flow.connect()
    conn = await asyncpg.connect(flow._dsn)
    try:
        await conn.execute(
            "INSERT INTO forktex_flow.workers (id, hostname, pid, heartbeat, versions) "
            "VALUES ('gone', 'h', 1, now() - interval '1 hour', '[\"x:1\"]')"
        )
    finally:
        await conn.close()
    (worker,) = await flow.workers()
    assert (worker.id, worker.alive, worker.leader, worker.versions) == (
        "gone",
        False,
        False,
        ["x:1"],
    )


async def test_signals_of_a_run(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="views.signals", version=1)
    async def wf(ctx: FlowContext) -> Any:
        return await ctx.wait_for_signal("go")

    run_id = await flow.start("views.signals")
    assert await flow.signals(run_id) == []
    await flow.send_signal(run_id, "other", {"x": 1})
    await flow.send_signal(run_id, "go", {"code": "abc"})
    async with h.running(flow):
        assert await flow.result(run_id, timeout=20) == {"code": "abc"}
    other, go = await flow.signals(str(run_id))
    assert (other.name, other.payload, other.consumed_at) == ("other", {"x": 1}, None)
    assert (go.name, go.payload, go.consumed_seq) == ("go", {"code": "abc"}, 0)
    assert go.consumed_at is not None and go.id > other.id
    assert [s.name for s in await flow.signals(run_id, limit=1)] == ["other"]
    with pytest.raises(RunNotFound):
        await flow.signals(uuid.uuid4())
    with pytest.raises(InvalidArgument):
        await flow.signals("not-a-uuid")
    with pytest.raises(InvalidArgument):
        await flow.signals(run_id, limit=0)


async def test_cursor_round_trips_across_timezones(make_flow: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="views.tz", version=1)
    async def wf(ctx: FlowContext) -> None:
        return None

    ids = [await flow.start("views.tz") for _ in range(3)]
    since = datetime.now(UTC) - timedelta(hours=1)
    east = since.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    page = await flow.page_runs(limit=2, created_after=east)
    assert page.next is not None
    rest = await flow.page_runs(limit=2, created_after=east, after=page.next)
    assert [r.id for r in page.runs + rest.runs] == ids[::-1]
    await asyncio.sleep(0)
