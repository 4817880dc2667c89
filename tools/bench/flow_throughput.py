# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-flow vs DBOS, side by side on the same Postgres server in one run.

Workloads, each measured interleaved (ours, DBOS, DBOS, ours, ...) and reported as medians:

* throughput: N workflows x 10 trivial steps (1,000 in a full run) enqueued up front, then
  1 or 2 worker processes drain them; workflows/s from "go" to the last completion (this
  includes the workers' start: our ``run_worker``, DBOS's ``launch()``). Also CPU per step
  (all worker processes) and commits per step (``pg_stat_database.xact_commit`` delta of the
  database over the window, less this harness's own polling reads). DBOS: queued workflows
  (``DBOS.register_queue`` defaults, enqueued with ``DBOSClient``), one executor id per
  process. Ours: ``run_worker(concurrency=64)``, default lease/heartbeat settings.
* start -> result latency (p50, p99) of a 1-step workflow, worker in the same process
  (ours: ``flow.start`` + ``flow.result``; DBOS: ``start_workflow_async`` + ``get_result``).
* send_signal -> resumed latency (p50, p99): a run blocked waiting for a signal gets one and
  runs its next step (ours: ``send_signal`` / ``wait_for_signal``; DBOS: ``send`` / ``recv``).

DBOS is a process-wide singleton, so every measurement runs in child processes (this file
with ``--child``); DBOS gets its own database on the same server and never sees the
``forktex_flow`` schema. ``--quick`` shrinks everything to a smoke run of under a minute.

    uv run python tools/bench/flow_throughput.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Child, Row, emit, expect_line, interleave, postgres_database, print_rows

from forktex_core.flow import Flow, FlowContext
from forktex_core.testing import create_database, drop_database

SELF = Path(__file__).resolve()
STEPS = 10
CONCURRENCY = 64  # our worker's slots; DBOS's queue has no per-worker limit by default
DBOS_NAME = "DBOS 3 (same Postgres)"

# -- workflow definitions (both sides) ----------------------------------------------------


def build_ours(url: str) -> tuple[Flow, dict[str, float]]:
    flow = Flow(database_url=url)
    resumed: dict[str, float] = {}

    @flow.step
    async def trivial(ctx: FlowContext, i: int) -> int:
        return i

    @flow.workflow(name="bench.ten", version=1)
    async def ten(ctx: FlowContext, _: object) -> int:
        total = 0
        for i in range(STEPS):
            total += await trivial(ctx, i)
        return total

    @flow.workflow(name="bench.one", version=1)
    async def one(ctx: FlowContext, _: object) -> int:
        return await trivial(ctx, 1)

    @flow.step
    async def mark(ctx: FlowContext) -> None:
        resumed[str(ctx.run_id)] = time.perf_counter()

    @flow.workflow(name="bench.signal", version=1)
    async def sig(ctx: FlowContext, _: object) -> None:
        await ctx.wait_for_signal("go")
        await mark(ctx)

    return flow, resumed


def build_dbos(url: str, executor: str) -> dict[str, Any]:
    """Configure the DBOS singleton in this (child) process and register its workflows."""
    from dbos import DBOS

    DBOS(
        config={
            "name": "forktex-bench",
            "system_database_url": url,
            "executor_id": executor,
            "log_level": "WARNING",
        }
    )
    resumed: dict[str, float] = {}

    @DBOS.step()
    async def trivial(i: int) -> int:
        return i

    @DBOS.workflow(name="bench.ten")
    async def ten() -> int:
        total = 0
        for i in range(STEPS):
            total += await trivial(i)
        return total

    @DBOS.workflow(name="bench.one")
    async def one() -> int:
        return await trivial(1)

    @DBOS.step()
    async def mark() -> None:
        wfid = DBOS.workflow_id
        assert wfid is not None
        resumed[wfid] = time.perf_counter()

    @DBOS.workflow(name="bench.signal")
    async def sig() -> None:
        await DBOS.set_event_async("ready", True)
        await DBOS.recv_async("go", timeout_seconds=60)
        await mark()

    return {"one": one, "sig": sig, "resumed": resumed}


# -- child processes ----------------------------------------------------------------------


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


async def child_ours(task: str, url: str, n: int) -> None:
    flow, resumed = build_ours(url)
    await flow.connect()
    try:
        if task == "worker":
            emit("READY")
            await expect_line("GO")
            cpu0 = time.process_time()
            worker = asyncio.create_task(flow.run_worker(concurrency=CONCURRENCY))
            await expect_line("STOP")
            flow.stop()
            await worker
            emit("CPU", time.process_time() - cpu0)
            return
        worker = asyncio.create_task(flow.run_worker(concurrency=8))
        await flow.wait_worker_started()
        lat: list[float] = []
        for i in range(n + 5):  # the first five warm up
            if task == "latency":
                t0 = time.perf_counter()
                await flow.result(await flow.start("bench.one"), timeout=30)
                dt = time.perf_counter() - t0
            else:
                run_id = await flow.start("bench.signal")
                while (await flow.get_run(run_id)).status != "waiting":  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                await asyncio.sleep(0.02)
                t0 = time.perf_counter()
                await flow.send_signal(run_id, "go")
                await flow.result(run_id, timeout=30)
                dt = resumed[str(run_id)] - t0
            if i >= 5:
                lat.append(dt * 1e3)
        flow.stop()
        await worker
        emit("LATENCY", lat)
    finally:
        await flow.close()


async def child_dbos(task: str, url: str, n: int, executor: str) -> None:
    from dbos import DBOS, DBOSClient, run_dbos_database_migrations

    if task == "enqueue":
        # Not a launched DBOS: a launched process would dequeue from the registered queue
        # itself, and its PENDING workflows would be stranded when it exits.
        run_dbos_database_migrations(url)  # creates the DBOS system tables (not timed)
        client = DBOSClient(system_database_url=url)
        try:
            for _ in range(n):
                await client.enqueue_async({"queue_name": "bench", "workflow_name": "bench.ten"})
        finally:
            client.destroy()
        emit("DONE")
        return
    defs = build_dbos(url, executor)
    try:
        if task == "worker":
            emit("READY")
            await expect_line("GO")
            cpu0 = time.process_time()
            DBOS.launch()
            await DBOS.register_queue_async("bench")
            await expect_line("STOP")
            emit("CPU", time.process_time() - cpu0)
            return
        DBOS.launch()
        lat: list[float] = []
        for i in range(n + 5):
            if task == "latency":
                t0 = time.perf_counter()
                handle = await DBOS.start_workflow_async(defs["one"])
                await handle.get_result()
                dt = time.perf_counter() - t0
            else:
                handle = await DBOS.start_workflow_async(defs["sig"])
                wfid = handle.get_workflow_id()
                await DBOS.get_event_async(wfid, "ready", timeout_seconds=30)
                await asyncio.sleep(0.02)  # let it block in recv()
                t0 = time.perf_counter()
                await DBOS.send_async(wfid, None, "go")
                await handle.get_result()
                dt = defs["resumed"][wfid] - t0
            if i >= 5:
                lat.append(dt * 1e3)
        emit("LATENCY", lat)
    finally:
        DBOS.destroy()


# -- the parent: orchestration ------------------------------------------------------------


async def xact_commit(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(value)
    finally:
        await conn.close()


class Side:
    """How one side enqueues, resets and counts finished workflows."""

    def __init__(self, name: str, url: str, dsn: str, done_sql: str, reset_sql: str) -> None:
        self.name = name
        self.url = url
        self.dsn = dsn
        self.done_sql = done_sql
        self.reset_sql = reset_sql
        self.cpu_us: dict[int, list[float]] = {1: [], 2: []}
        self.commits: dict[int, list[float]] = {1: [], 2: []}
        self.p99: dict[str, list[float]] = {"latency": [], "signal": []}


async def enqueue(side: Side, n: int, logdir: Path, client: Flow) -> None:
    conn = await asyncpg.connect(side.dsn)
    try:
        await conn.execute(side.reset_sql)
    finally:
        await conn.close()
    if side.name == "ours":
        for _ in range(n):
            await client.start("bench.ten")
        return
    child = await Child.start(SELF, logdir, "dbos", "enqueue", side.url, n)
    await child.expect("DONE")
    await child.finish()


async def throughput(side: Side, n: int, workers: int, logdir: Path, client: Flow) -> float:
    """One measured drain of ``n`` enqueued workflows by ``workers`` processes: wf/s."""
    await enqueue(side, n, logdir, client)
    children = [
        await Child.start(SELF, logdir, side.name, "worker", side.url) for _ in range(workers)
    ]
    for child in children:
        await child.expect("READY")
    monitor = await asyncpg.connect(side.dsn)
    commits0 = await xact_commit(side.dsn)
    t0 = time.perf_counter()
    for child in children:
        child.send("GO")
    polls = 0
    while True:
        polls += 1
        if await monitor.fetchval(side.done_sql) >= n:
            break
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - t0
    await monitor.close()
    cpu = 0.0
    for child in children:
        child.send("STOP")
    for child in children:
        cpu += await child.expect("CPU")
        await child.finish()
    await asyncio.sleep(0.6)  # exited backends have flushed their statistics by now
    commits = await xact_commit(side.dsn) - commits0 - polls - 1
    steps = n * STEPS
    side.cpu_us[workers].append(cpu / steps * 1e6)
    side.commits[workers].append(commits / steps)
    return n / elapsed


async def latency(side: Side, task: str, n: int, logdir: Path) -> float:
    child = await Child.start(SELF, logdir, side.name, task, side.url, n)
    values: list[float] = await child.expect("LATENCY")
    await child.finish()
    p50, p99 = percentiles(values)
    side.p99[task].append(p99)
    return p50


async def run(quick: bool) -> list[Row]:
    n = 150 if quick else 1000
    rounds = 1 if quick else 3
    lat_n = 40 if quick else 300
    sig_n = 20 if quick else 100
    rows: list[Row] = []
    with postgres_database() as db, tempfile.TemporaryDirectory(prefix="flow-bench-") as tmp:
        logdir = Path(tmp)
        dbos_db = create_database(db)
        try:
            ours = Side(
                "ours",
                db.url,
                db.dsn,
                "SELECT count(*) FROM forktex_flow.runs WHERE status = 'succeeded'",
                "DELETE FROM forktex_flow.runs",
            )
            dbos = Side(
                "dbos",
                dbos_db.dsn,
                dbos_db.dsn,
                "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS'",
                "DO $$ BEGIN IF to_regclass('dbos.workflow_status') IS NOT NULL THEN "
                "TRUNCATE dbos.workflow_status CASCADE; END IF; END $$",
            )
            client, _ = build_ours(db.url)
            await client.connect()
            try:
                for workers in (1, 2):

                    def bound(side: Side, w: int = workers) -> Callable[[], Any]:
                        return lambda: throughput(side, n, w, logdir, client)

                    a, b = await interleave(bound(ours), bound(dbos), rounds)
                    note = f"{n} x {STEPS} steps, {workers} worker process(es)"
                    rows.append(Row("flow", "throughput", a, "wf/s", DBOS_NAME, b, rounds, note))
                    rows.append(
                        Row(
                            "flow",
                            "CPU per step, all worker processes",
                            statistics.median(ours.cpu_us[workers]),
                            "µs",
                            DBOS_NAME,
                            statistics.median(dbos.cpu_us[workers]),
                            rounds,
                            f"{workers} worker(s)",
                        )
                    )
                    rows.append(
                        Row(
                            "flow",
                            "commits per step (pg_stat_database.xact_commit)",
                            statistics.median(ours.commits[workers]),
                            "commits",
                            DBOS_NAME,
                            statistics.median(dbos.commits[workers]),
                            rounds,
                            f"{workers} worker(s), all transactions incl. claims/polls",
                        )
                    )
            finally:
                await client.close()
            for task, label, count in (
                ("latency", "start -> result, 1-step workflow", lat_n),
                ("signal", "send_signal -> resumed", sig_n),
            ):

                def measure(side: Side, t: str = task, c: int = count) -> Callable[[], Any]:
                    return lambda: latency(side, t, c, logdir)

                a, b = await interleave(measure(ours), measure(dbos), max(rounds, 2))
                runs = max(rounds, 2)
                rows.append(Row("flow", f"{label} p50", a, "ms", DBOS_NAME, b, runs, f"n={count}"))
                rows.append(
                    Row(
                        "flow",
                        f"{label} p99",
                        statistics.median(ours.p99[task]),
                        "ms",
                        DBOS_NAME,
                        statistics.median(dbos.p99[task]),
                        runs,
                        f"n={count}",
                    )
                )
        finally:
            drop_database(db, dbos_db.database)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a smoke run under a minute")
    parser.add_argument("--child", nargs=4, metavar=("SIDE", "TASK", "URL", "N"))
    args = parser.parse_args()
    if args.child:
        side, task, url, count = args.child
        if side == "ours":
            asyncio.run(child_ours(task, url, int(count)))
        else:
            import os

            asyncio.run(child_dbos(task, url, int(count), f"bench-{os.getpid()}"))
        return
    print_rows(asyncio.run(run(args.quick)))


if __name__ == "__main__":
    main()
