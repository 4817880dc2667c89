# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-flow: a claim from a partitioned queue costs what it admits, not the backlog.

A queue with ``partition_concurrency=1`` holds a backlog of runnable runs spread over 500
partition keys (say, tenants). A worker's claim of 10 runs, with that backlog at 1,000,
10,000 and 50,000 runs: ours (``claim_queued`` walks the queue in admission order and stops
once it has its runs) vs ranking every run of the queue per key and taking the first ones
(the claim of schema migration 5, installed beside ours under another name), on the same
database and rows, alternately. Each claim runs in a transaction that is rolled back, so
every call sees the same backlog. Milliseconds per claim, measured from the client.

    uv run python tools/bench/flow_partitions.py --quick
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main, postgres_database

from forktex_core.flow import Flow, FlowContext, _schema

KEYS = 500
CLAIM = (
    "SELECT id FROM forktex_flow.{fn}(10, 'bench', ARRAY['bench.part'], ARRAY[1], 30, "
    "ARRAY[]::uuid[], ARRAY[]::text[], ARRAY[]::int[], ARRAY[NULL]::float8[])"
)
FILL = """
INSERT INTO forktex_flow.runs
    (id, workflow, version, status, input, queue, partition_key, queue_seq, wake_at, metadata)
SELECT gen_random_uuid(), 'bench.part', 1, 'pending', '0', 'tenants', 'tenant-' || (g % $2),
       nextval('forktex_flow.queue_order'), now(), '{}'
FROM generate_series(1, $1) g
"""


def ranked_claim() -> str:
    """Migration 5's claim_queued, created as ``claim_queued_ranked``."""
    queues = _schema.MIGRATIONS[4]
    function = queues[queues.index("CREATE FUNCTION") :]
    return function.replace(".claim_queued(", ".claim_queued_ranked(", 1)


async def claim_ms(conn: asyncpg.Connection, fn: str) -> float:
    """One claim of 10 runs, rolled back; its wall time in ms."""
    tx = conn.transaction()
    await tx.start()
    try:
        start = time.perf_counter()
        rows = await conn.fetch(CLAIM.format(fn=fn))
        took = (time.perf_counter() - start) * 1e3
        if len(rows) != 10:
            raise RuntimeError(f"{fn} claimed {len(rows)} runs, expected 10")
        return took
    finally:
        await tx.rollback()


async def run(quick: bool) -> list[Row]:
    backlogs = (1_000, 10_000) if quick else (1_000, 10_000, 50_000)
    repeats = 5 if quick else 15
    rows: list[Row] = []
    with postgres_database() as db:
        flow = Flow(database_url=db.url)
        flow.queue("tenants", partition_concurrency=1)

        @flow.workflow(name="bench.part", version=1, queue="tenants")
        async def part(ctx: FlowContext, n: int) -> int:
            return n

        await flow.queues()  # creates the schema and stores the queue
        conn = await asyncpg.connect(db.dsn)
        try:
            await conn.execute(ranked_claim())
            for backlog in backlogs:
                await conn.execute("DELETE FROM forktex_flow.runs")
                await conn.execute(FILL, backlog, KEYS)
                await conn.execute("ANALYZE forktex_flow.runs")
                ours, ranked = await interleave(
                    lambda: claim_ms(conn, "claim_queued"),
                    lambda: claim_ms(conn, "claim_queued_ranked"),
                    repeats,
                )
                rows.append(
                    Row(
                        "flow",
                        f"claim 10 from a partitioned queue, backlog {backlog:,} ({KEYS} keys)",
                        ours,
                        "ms",
                        "ranking the backlog per key (migration 5)",
                        ranked,
                        repeats,
                    )
                )
        finally:
            await conn.close()
            await flow.close()
    return rows


if __name__ == "__main__":
    main(run)
