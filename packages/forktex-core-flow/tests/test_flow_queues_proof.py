# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Queue limits proven with three real worker processes, one of them SIGKILLed mid-run.

The runs log every execution's interval (database clock); the assertions are on those
intervals: global and per-worker concurrency, the sliding rate window, priority order
while saturated, and partitions (one at a time per key, in start order, keys in parallel).
"""

from __future__ import annotations

import functools
import random
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import FlowClient, RunStatus

from .conftest import wait_until
from .worker_procs import WorkerProcs

APP = Path(__file__).with_name("flow_queue_app.py")

pytestmark = pytest.mark.slow


@pytest.fixture
def workers(pg: Any, tmp_path: Path) -> Iterator[Callable[[int], list[subprocess.Popen[bytes]]]]:
    procs = WorkerProcs(APP, pg.url, tmp_path)

    def start(n: int) -> list[subprocess.Popen[bytes]]:
        for _ in range(n):
            procs.start("--concurrency", "16")
        return procs.procs

    yield start
    procs.stop()


until = functools.partial(wait_until, timeout=60.0)


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant (an end before a start at the same instant)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


def most_in_window(instants: list[datetime], period: float) -> int:
    """The most instants in any closed window of ``period`` seconds."""
    times = sorted(instants)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] < t - timedelta(seconds=period):
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_queue_limits_hold_across_three_workers_and_a_sigkill(pg: Any, workers: Any) -> None:
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute(
        "CREATE TABLE q_log (id serial PRIMARY KEY, run_id uuid, pid int, "
        "started timestamptz, ended timestamptz)"
    )
    client = FlowClient(database_url=pg.url)
    await client.connect()
    try:
        procs = workers(3)
        # the workers declare the queues when they start
        await until(lambda: conn.fetchval("SELECT count(*) = 4 FROM forktex_flow.queues"))
        await until(lambda: conn.fetchval("SELECT count(*) = 3 FROM forktex_flow.workers"))
        runs: dict[str, list[uuid.UUID]] = {"conc": [], "rate": [], "prio": [], "part": []}
        # priorities: a blocker saturates the queue, then priorities arrive shuffled
        blocker = await client.start("q.job", {"seconds": 1.0}, queue="prio")
        await until(lambda: conn.fetchval("SELECT count(*) FROM q_log WHERE run_id = $1", blocker))
        priorities = list(range(1, 9))
        random.shuffle(priorities)
        for p in priorities:
            runs["prio"].append(
                await client.start("q.job", {"seconds": 0.05, "tag": p}, queue="prio", priority=p)
            )
        for _i in range(24):
            runs["conc"].append(await client.start("q.job", {"seconds": 0.3}, queue="conc"))
        for _i in range(12):
            runs["rate"].append(await client.start("q.job", {"seconds": 0.02}, queue="rate"))
        order: dict[str, list[uuid.UUID]] = {"a": [], "b": [], "c": []}
        for _i in range(6):
            for key in order:
                rid = await client.start(
                    "q.job", {"seconds": 0.15}, queue="part", partition_key=key
                )
                order[key].append(rid)
                runs["part"].append(rid)
        # SIGKILL a worker that is running a run of the concurrency queue
        await until(
            lambda: conn.fetchval(
                "SELECT count(*) >= 4 FROM q_log l JOIN forktex_flow.runs r ON r.id = l.run_id "
                "WHERE r.queue = 'conc'"
            )
        )
        busy = await conn.fetchval(
            "SELECT l.pid FROM q_log l JOIN forktex_flow.runs r ON r.id = l.run_id "
            "WHERE r.queue = 'conc' AND l.ended IS NULL LIMIT 1"
        )
        victim = next(p for p in procs if p.pid == busy) if busy else procs[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = await conn.fetchval("SELECT clock_timestamp()")
        for rid in [blocker, *(r for ids in runs.values() for r in ids)]:
            assert (await client.result(rid, timeout=90)) is not None
        rows = await conn.fetch(
            "SELECT l.run_id, l.pid, l.started, coalesce(l.ended, $1) AS ended, r.queue, "
            "r.partition_key, r.priority, r.admitted_at FROM q_log l "
            "JOIN forktex_flow.runs r ON r.id = l.run_id ORDER BY l.started",
            killed_at,
        )
        by_queue: dict[str, list[Any]] = {}
        for row in rows:
            by_queue.setdefault(row["queue"], []).append(row)
        # the kill cut executions short: some run had to run again elsewhere
        assert sum(1 for r in rows if r["pid"] == victim.pid) >= 1
        # global concurrency 4, per worker 2
        conc = by_queue["conc"]
        assert max_overlap([(r["started"], r["ended"]) for r in conc]) <= 4
        for pid in {r["pid"] for r in conc}:
            mine = [(r["started"], r["ended"]) for r in conc if r["pid"] == pid]
            assert max_overlap(mine) <= 2, pid
        assert max_overlap([(r["started"], r["ended"]) for r in conc]) >= 3  # it did run wide
        # rate: 4 per second over any window, admissions and the runs' own starts
        admitted = [r["admitted_at"] for r in {r["run_id"]: r for r in by_queue["rate"]}.values()]
        assert most_in_window(admitted, 1.0) <= 4
        first_starts = {}
        for r in by_queue["rate"]:
            first_starts.setdefault(r["run_id"], r["started"])
        assert most_in_window(list(first_starts.values()), 0.9) <= 4
        starts = await conn.fetch("SELECT at FROM forktex_flow.queue_starts WHERE queue = 'rate'")
        assert len(starts) == 12 or most_in_window([s["at"] for s in starts], 1.0) <= 4
        # priorities: while saturated by the blocker, higher priority first
        prio = [r for r in by_queue["prio"] if r["run_id"] != blocker]
        seen: list[int] = []
        for r in prio:
            if r["priority"] not in seen:
                seen.append(r["priority"])
        assert seen == sorted(priorities, reverse=True)
        assert max_overlap([(r["started"], r["ended"]) for r in by_queue["prio"]]) == 1
        # partitions: one at a time per key, in start order; keys in parallel
        part = by_queue["part"]
        for key, ids in order.items():
            mine = [r for r in part if r["partition_key"] == key]
            assert max_overlap([(r["started"], r["ended"]) for r in mine]) == 1, key
            started = []
            for r in mine:
                if r["run_id"] not in started:
                    started.append(r["run_id"])
            assert started == ids, key
        assert max_overlap([(r["started"], r["ended"]) for r in part]) >= 2
        for rid in [blocker, *(r for ids in runs.values() for r in ids)]:
            assert (await client.get_run(rid)).status is RunStatus.SUCCEEDED
    finally:
        await client.close()
        await conn.close()
