# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-flow: claims cost the same however many runs of other versions pile up.

Two fresh databases side by side: one holds 100,000 runnable runs of ``bench.claim``
version 1 (a fleet redeployed as version 2 leaves them to a v1 worker that is gone), the
other none. A worker serving only version 2 must not pay for them:

* claim: the claim statement a v2 worker sends on every poll and wake-up (nothing to
  claim), with the foreign runs vs without: its time on the server (planning + execution,
  from ``EXPLAIN ANALYZE``, insensitive to a busy machine) and its wall time per call from
  the client; target <= 2 ms and a ratio near 1;
* start -> result of a one-step v2 workflow on a running v2 worker, with vs without.

    uv run python tools/bench/flow_claim.py --quick
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main, per_op_us, postgres_database

from forktex_core.flow import Flow, FlowContext, _claim, _sql

FOREIGN = 100_000


def build(url: str) -> Flow:
    flow = Flow(database_url=url)

    @flow.step
    async def trivial(ctx: FlowContext) -> int:
        return 1

    @flow.workflow(name="bench.claim", version=2)
    async def v2(ctx: FlowContext) -> int:
        return await trivial(ctx)

    return flow


async def pile_up(dsn: str, runs: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO forktex_flow.runs (id, workflow, version, status, wake_at) "
            "SELECT gen_random_uuid(), 'bench.claim', 1, 'pending', "
            f"now() - make_interval(secs => g) FROM generate_series(1, {runs}) g"
        )
        await conn.execute("ANALYZE forktex_flow.runs")
    finally:
        await conn.close()


async def run(quick: bool) -> list[Row]:
    claims = 200 if quick else 2000
    latencies = 30 if quick else 300
    repeats = 3 if quick else 7
    with postgres_database() as piled, postgres_database() as empty:
        flows = {"piled": build(piled.url), "empty": build(empty.url)}
        for flow in flows.values():
            await flow.connect()
        await pile_up(piled.dsn, FOREIGN)
        pools = {
            "piled": await asyncpg.create_pool(piled.dsn, min_size=1, max_size=1),
            "empty": await asyncpg.create_pool(empty.dsn, min_size=1, max_size=1),
        }
        try:

            async def claim_us(side: str, n: int = claims) -> float:
                pool = pools[side]
                return await per_op_us(
                    lambda: _claim.claim(pool, 16, "bench", ["bench.claim:2"], 5.0, []), n
                )

            async def server_ms(side: str) -> float:
                args = _sql.claim_args(16, "bench", ["bench.claim:2"], 5.0, [])
                times = []
                async with pools[side].acquire() as conn:
                    for _ in range(claims // 10):
                        tx = conn.transaction()
                        await tx.start()
                        try:
                            raw = await conn.fetchval(
                                f"EXPLAIN (ANALYZE, FORMAT JSON) {_sql.CLAIM}", *args
                            )
                        finally:
                            await tx.rollback()
                        plan = json.loads(raw)[0]
                        times.append(plan["Planning Time"] + plan["Execution Time"])
                return statistics.median(times)

            for side in pools:  # warm up the statement caches
                await claim_us(side, 20)
            what = f"{FOREIGN:,} pending runs of another version"
            rows = []
            ours, base = await interleave(
                lambda: server_ms("piled"), lambda: server_ms("empty"), repeats
            )
            rows.append(
                Row(
                    module="flow",
                    workload=f"claim with nothing to claim, server time, {what}",
                    ours=ours,
                    unit="ms",
                    baseline_name="same claim, no other runs",
                    baseline=base,
                    runs=repeats,
                    note=f"n={claims // 10} per run, plan + execute, target <= 2 ms",
                )
            )
            ours, base = await interleave(
                lambda: claim_us("piled"), lambda: claim_us("empty"), repeats
            )
            rows.append(
                Row(
                    module="flow",
                    workload=f"claim with nothing to claim, wall time per call, {what}",
                    ours=ours / 1000,
                    unit="ms",
                    baseline_name="same claim, no other runs",
                    baseline=base / 1000,
                    runs=repeats,
                    note=f"n={claims} per run",
                )
            )
            workers = {
                side: asyncio.create_task(flow.run_worker(concurrency=8))
                for side, flow in flows.items()
            }
            for flow in flows.values():
                await flow.wait_worker_started()

            async def p50_ms(side: str) -> float:
                flow = flows[side]
                values = []
                for _ in range(latencies):
                    start = time.perf_counter()
                    await flow.result(await flow.start("bench.claim"), timeout=60)
                    values.append((time.perf_counter() - start) * 1e3)
                return statistics.median(values)

            ours, base = await interleave(lambda: p50_ms("piled"), lambda: p50_ms("empty"), repeats)
            rows.append(
                Row(
                    module="flow",
                    workload=f"start -> result p50, v2 worker, {FOREIGN:,} pending v1 runs",
                    ours=ours,
                    unit="ms",
                    baseline_name="same, no other runs",
                    baseline=base,
                    runs=repeats,
                    note=f"n={latencies} per run",
                )
            )
            for flow in flows.values():
                flow.stop()
            await asyncio.gather(*workers.values())
        finally:
            for pool in pools.values():
                await pool.close()
            for flow in flows.values():
                await flow.close()
    return rows


if __name__ == "__main__":
    main(run)
