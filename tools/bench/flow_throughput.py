# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-flow throughput and latency.

Workloads (one worker in this process, on a fresh database):

* throughput: N workflows x 10 trivial steps (1,000 in a full run), workflows/s;
  plus CPU per step (this process) and Postgres transactions per step;
* start -> result p50 of a 1-step workflow;
* send_signal -> resumed p50 (a waiting run picks the signal up and runs its next step).

DBOS is not installed in this workspace, so the baseline column carries the DBOS figures
measured on this kind of machine (issue 5: 23-31 workflows/s, 5.4 ms, 8.0 ms), labelled as
reference figures, not a side-by-side measurement.

    uv run python tools/bench/flow_throughput.py --quick
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, main, postgres_database

from forktex_core.flow import Flow, FlowContext

DBOS_WF_PER_S = 27.0  # 23-31 measured (issue 5)
DBOS_START_RESULT_MS = 5.4
DBOS_SIGNAL_MS = 8.0
DBOS = "DBOS (ref. figures, not run)"


def build(url: str) -> tuple[Flow, dict[str, float]]:
    flow = Flow(database_url=url)
    resumed: dict[str, float] = {}

    @flow.step
    async def trivial(ctx: FlowContext, i: int) -> int:
        return i

    @flow.workflow(name="bench.ten", version=1)
    async def ten(ctx: FlowContext, _: object) -> int:
        total = 0
        for i in range(10):
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


async def write_xids(dsn: str) -> int:
    """The transaction-id counter: it advances once per transaction that writes."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT txid_current()"))
    finally:
        await conn.close()


async def throughput(flow: Flow, dsn: str, n: int) -> tuple[float, float, float]:
    """workflows/s, CPU µs per step (worker process), write transactions per step."""
    for _ in range(n):
        await flow.start("bench.ten")
    conn = await asyncpg.connect(dsn)
    x0 = await write_xids(dsn)
    cpu0, t0 = time.process_time(), time.perf_counter()
    worker = asyncio.create_task(flow.run_worker(concurrency=64))
    while (  # noqa: ASYNC110 - polling the database is the point here
        await conn.fetchval("SELECT count(*) FROM forktex_flow.runs WHERE status = 'succeeded'") < n
    ):
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    x1 = await write_xids(dsn)
    await conn.execute("DELETE FROM forktex_flow.runs")
    await conn.close()
    flow.stop()
    await worker
    steps = n * 10
    return n / elapsed, cpu / steps * 1e6, (x1 - x0 - 1) / steps


async def start_result(flow: Flow, n: int) -> float:
    worker = asyncio.create_task(flow.run_worker(concurrency=8))
    await flow.wait_worker_started()
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        await flow.result(await flow.start("bench.one"), timeout=30)
        lat.append(time.perf_counter() - t0)
    flow.stop()
    await worker
    return statistics.median(lat[5:]) * 1e3


async def signal_resume(flow: Flow, resumed: dict[str, float], n: int) -> float:
    worker = asyncio.create_task(flow.run_worker(concurrency=8))
    await flow.wait_worker_started()
    lat = []
    for _ in range(n):
        run_id = await flow.start("bench.signal")
        while (await flow.get_run(run_id)).status != "waiting":  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        t0 = time.perf_counter()
        await flow.send_signal(run_id, "go")
        await flow.result(run_id, timeout=30)
        lat.append(resumed[str(run_id)] - t0)
    flow.stop()
    await worker
    return statistics.median(lat[3:]) * 1e3


async def run(quick: bool) -> list[Row]:
    n = 200 if quick else 1000
    lat_n = 40 if quick else 200
    with postgres_database() as db:
        flow, resumed = build(db.url)
        try:
            await flow.connect()
            wf_s, cpu_us, commits_per_step = await throughput(flow, db.dsn, n)
            p50 = await start_result(flow, lat_n)
            sig = await signal_resume(flow, resumed, lat_n // 2)
        finally:
            await flow.close()
    note = f"{n} x 10 steps, 1 worker"
    return [
        Row("flow", "throughput", wf_s, "wf/s", DBOS, DBOS_WF_PER_S, 1, note),
        Row(
            "flow",
            "CPU per step (worker process)",
            cpu_us,
            "µs",
            DBOS,
            3900.0,
            1,
            "DBOS 31-48 ms CPU per 10-step workflow",
        ),
        Row(
            "flow",
            "write transactions per step (incl. claims, completions, heartbeats)",
            commits_per_step,
            "commits",
            DBOS,
            1.2,
            1,
        ),
        Row(
            "flow", "start -> result p50, 1-step workflow", p50, "ms", DBOS, DBOS_START_RESULT_MS, 1
        ),
        Row("flow", "send_signal -> resumed p50", sig, "ms", DBOS, DBOS_SIGNAL_MS, 1),
    ]


if __name__ == "__main__":
    main(run)
