# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-flow queues vs DBOS queues, side by side on the same Postgres in one run.

Workloads (interleaved ours/DBOS, medians):

* queue throughput: N workflows x 10 trivial steps (1,000 in a full run) enqueued up front
  on a queue with global concurrency 10, drained by one worker process; workflows/s from
  "go" to the last completion (including the worker's start). Ours: ``flow.queue("bench",
  concurrency=10)``, ``run_worker(concurrency=64)``; DBOS: ``register_queue("bench",
  concurrency=10)`` with its defaults (polling every second).
* the cost of a queue: the same drain without a queue by a worker with 10 slots
  (``run_worker(concurrency=10)``), against the queued drain; the ratio is queued time over
  plain time (both ours).
* enqueue -> start latency (p50, p99) on an idle queue: from just before the start call to
  the first line of the workflow body, worker in the same process (ours:
  ``flow.start(queue=...)``, an eager start; DBOS: ``Queue.enqueue_async``); and ours
  started by a ``FlowClient`` instead (the worker learns of the run by notification, as
  when an API process starts it).

DBOS is a process-wide singleton, so every measurement runs in child processes (this file
with ``--child``); DBOS gets its own database on the same server.

    uv run python tools/bench/flow_queues.py --quick
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

from forktex_core.flow import Flow, FlowClient, FlowContext
from forktex_core.testing import create_database, drop_database

SELF = Path(__file__).resolve()
STEPS = 10
LIMIT = 10  # the queue's global concurrency, both sides
DBOS_NAME = "DBOS 3 queue (same Postgres)"


def build_ours(url: str, queues: bool = True) -> tuple[Flow, dict[str, float]]:
    flow = Flow(database_url=url)
    if queues:  # the plain side runs on a database of its own, without any queue
        flow.queue("bench", concurrency=LIMIT)
        flow.queue("idle", concurrency=LIMIT)
    entered: dict[str, float] = {}

    @flow.step
    async def trivial(ctx: FlowContext, i: int) -> int:
        return i

    @flow.workflow(name="bench.ten", version=1)
    async def ten(ctx: FlowContext, _: object) -> int:
        total = 0
        for i in range(STEPS):
            total += await trivial(ctx, i)
        return total

    @flow.workflow(name="bench.enter", version=1)
    async def enter(ctx: FlowContext, _: object) -> None:
        entered.setdefault(str(ctx.run_id), time.perf_counter())

    return flow, entered


def build_dbos(url: str, executor: str) -> dict[str, Any]:
    from dbos import DBOS

    DBOS(
        config={
            "name": "forktex-bench-queues",
            "system_database_url": url,
            "executor_id": executor,
            "log_level": "WARNING",
        }
    )
    entered: dict[str, float] = {}

    @DBOS.step()
    async def trivial(i: int) -> int:
        return i

    @DBOS.workflow(name="bench.ten")
    async def ten() -> int:
        total = 0
        for i in range(STEPS):
            total += await trivial(i)
        return total

    @DBOS.workflow(name="bench.enter")
    async def enter() -> None:
        wfid = DBOS.workflow_id
        assert wfid is not None
        entered.setdefault(wfid, time.perf_counter())

    return {"enter": enter, "entered": entered}


# -- child processes ----------------------------------------------------------------------


async def child_ours(task: str, url: str, n: int) -> None:
    flow, entered = build_ours(url, queues=task not in ("plain-worker", "latency-plain"))
    await flow.connect()
    try:
        if task in ("worker", "plain-worker"):
            emit("READY")
            await expect_line("GO")
            slots = 64 if task == "worker" else LIMIT
            worker = asyncio.create_task(flow.run_worker(concurrency=slots))
            await expect_line("STOP")
            flow.stop()
            await worker
            emit("DONE")
            return
        worker = asyncio.create_task(flow.run_worker(concurrency=16))
        await flow.wait_worker_started()
        # latency-client: started by a client without a worker (another API process, say),
        # so the worker learns of it by notification; else by this process's worker's Flow
        starter = FlowClient(database_url=url) if task == "latency-client" else flow
        lat: list[float] = []
        try:
            for i in range(n + 5):  # the first five warm up
                await asyncio.sleep(0.01)  # idle: nothing in flight
                t0 = time.perf_counter()
                queue = None if task == "latency-plain" else "idle"
                run_id = await starter.start("bench.enter", queue=queue)
                await flow.result(run_id, timeout=30)
                if i >= 5:
                    lat.append((entered[str(run_id)] - t0) * 1e3)
        finally:
            if starter is not flow:
                await starter.close()
        flow.stop()
        await worker
        emit("LATENCY", lat)
    finally:
        await flow.close()


async def child_dbos(task: str, url: str, n: int, executor: str) -> None:
    from dbos import DBOS, DBOSClient, run_dbos_database_migrations

    if task == "enqueue":
        run_dbos_database_migrations(url)
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
            DBOS.launch()
            await DBOS.register_queue_async("bench", concurrency=LIMIT)
            await expect_line("STOP")
            emit("DONE")
            return
        DBOS.launch()
        queue = await DBOS.register_queue_async("idle", concurrency=LIMIT)
        lat: list[float] = []
        for i in range(n + 5):
            await asyncio.sleep(0.01)
            t0 = time.perf_counter()
            handle = await queue.enqueue_async(defs["enter"])
            await handle.get_result()
            if i >= 5:
                lat.append((defs["entered"][handle.get_workflow_id()] - t0) * 1e3)
        emit("LATENCY", lat)
    finally:
        DBOS.destroy()


# -- the parent ---------------------------------------------------------------------------


class Side:
    def __init__(self, name: str, url: str, dsn: str, done_sql: str, reset_sql: str) -> None:
        self.name = name
        self.url = url
        self.dsn = dsn
        self.done_sql = done_sql
        self.reset_sql = reset_sql
        self.p99: list[float] = []


async def drain(side: Side, n: int, logdir: Path, client: Flow, task: str = "worker") -> float:
    """Enqueue ``n`` workflows, then time one worker process draining them: seconds."""
    conn = await asyncpg.connect(side.dsn)
    try:
        await conn.execute(side.reset_sql)
    finally:
        await conn.close()
    if side.name == "ours":
        queue = "bench" if task == "worker" else None
        for _ in range(n):
            await client.start("bench.ten", queue=queue)
    else:
        filler = await Child.start(SELF, logdir, "dbos", "enqueue", side.url, n, timeout=900.0)
        await filler.expect("DONE")
        await filler.finish()
    child = await Child.start(SELF, logdir, side.name, task, side.url, timeout=900.0)
    await child.expect("READY")
    monitor = await asyncpg.connect(side.dsn)
    t0 = time.perf_counter()
    child.send("GO")
    while await monitor.fetchval(side.done_sql) < n:  # noqa: ASYNC110 - polls the database
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - t0
    await monitor.close()
    child.send("STOP")
    await child.expect("DONE")
    await child.finish()
    return elapsed


async def latency(side: Side, n: int, logdir: Path, task: str = "latency") -> float:
    child = await Child.start(SELF, logdir, side.name, task, side.url, n, timeout=900.0)
    values: list[float] = sorted(await child.expect("LATENCY"))
    await child.finish()
    side.p99.append(values[min(len(values) - 1, round(0.99 * (len(values) - 1)))])
    return statistics.median(values)


async def run(quick: bool) -> list[Row]:
    n = 150 if quick else 1000
    rounds = 1 if quick else 3
    lat_n = 40 if quick else 100
    rows: list[Row] = []
    with postgres_database() as db, tempfile.TemporaryDirectory(prefix="flow-queues-") as tmp:
        logdir = Path(tmp)
        dbos_db = create_database(db)
        plain_db = create_database(db)
        try:
            ours = Side(
                "ours",
                db.url,
                db.dsn,
                "SELECT count(*) FROM forktex_flow.runs WHERE status = 'succeeded'",
                "DELETE FROM forktex_flow.runs; DELETE FROM forktex_flow.queue_starts",
            )
            dbos = Side(
                "dbos",
                dbos_db.dsn,
                dbos_db.dsn,
                "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS'",
                "DO $$ BEGIN IF to_regclass('dbos.workflow_status') IS NOT NULL THEN "
                "TRUNCATE dbos.workflow_status CASCADE; END IF; END $$",
            )
            plain_side = Side(
                "ours",
                plain_db.url,
                plain_db.dsn,
                "SELECT count(*) FROM forktex_flow.runs WHERE status = 'succeeded'",
                "DELETE FROM forktex_flow.runs",
            )
            client, _ = build_ours(db.url)
            await client.connect()
            plain_client, _ = build_ours(plain_db.url, queues=False)
            await plain_client.connect()
            try:

                def queued(side: Side) -> Callable[[], Any]:
                    async def once() -> float:
                        return n / await drain(side, n, logdir, client)

                    return once

                a, b = await interleave(queued(ours), queued(dbos), rounds)
                note = f"{n} x {STEPS} steps, global concurrency {LIMIT}, 1 worker process"
                rows.append(Row("flow", "queue throughput", a, "wf/s", DBOS_NAME, b, rounds, note))

                async def through_queue() -> float:
                    return await drain(ours, n, logdir, client)

                async def plain() -> float:
                    return await drain(plain_side, n, logdir, plain_client, "plain-worker")

                q, p = await interleave(through_queue, plain, rounds)
                rows.append(
                    Row(
                        "flow",
                        "drain time through a queue (concurrency 10)",
                        q,
                        "s",
                        "ours without a queue (10 worker slots)",
                        p,
                        rounds,
                        f"{n} x {STEPS} steps; ratio = cost of the queue",
                    )
                )
            finally:
                await client.close()
                await plain_client.close()

            def measure(side: Side) -> Callable[[], Any]:
                return lambda: latency(side, lat_n, logdir)

            runs = max(rounds, 2)
            a, b = await interleave(measure(ours), measure(dbos), runs)
            note = f"n={lat_n}, DBOS polling_interval_sec=1 (its default)"
            rows.append(
                Row("flow", "enqueue -> start, idle queue p50", a, "ms", DBOS_NAME, b, runs, note)
            )
            rows.append(
                Row(
                    "flow",
                    "enqueue -> start, idle queue p99",
                    statistics.median(ours.p99),
                    "ms",
                    DBOS_NAME,
                    statistics.median(dbos.p99),
                    runs,
                    note,
                )
            )
            plain_side.p99 = []
            ours.p99 = []
            a, b = await interleave(
                lambda: latency(ours, lat_n, logdir),
                lambda: latency(plain_side, lat_n, logdir, "latency-plain"),
                runs,
            )
            rows.append(
                Row(
                    "flow",
                    "enqueue -> start, idle queue p50",
                    a,
                    "ms",
                    "ours without a queue",
                    b,
                    runs,
                    f"n={lat_n}; the same machine and moment",
                )
            )
            a, b = await interleave(
                lambda: latency(ours, lat_n, logdir),
                lambda: latency(ours, lat_n, logdir, "latency-client"),
                runs,
            )
            rows.append(
                Row(
                    "flow",
                    "enqueue -> start, idle queue p50 (eager: started in the worker's process)",
                    a,
                    "ms",
                    "ours started by a FlowClient (the worker is notified)",
                    b,
                    runs,
                    f"n={lat_n}; the same machine and moment",
                )
            )
        finally:
            drop_database(db, dbos_db.database)
            drop_database(db, plain_db.database)
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
