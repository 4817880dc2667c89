# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-flow vs DBOS: fan-out/fan-in of child workflows, side by side.

One parent workflow starts N children (1,000 in a full run; each returns ``2 * i``) and
awaits all of their results. Ours: ``ctx.start_child`` under ``asyncio.gather``, then
``asyncio.gather`` over ``handle.result()`` (the parent suspends without a worker slot and
is woken as children end); worker ``run_worker(concurrency=64)`` in the measuring process.
DBOS: ``DBOS.start_workflow_async`` per child from the parent workflow, then
``handle.get_result()`` each (both recorded as DBOS steps); launched in the measuring process.
Figure: seconds from the parent's start to its result (median of interleaved runs), and
children per second.

DBOS is a process-wide singleton, so each measurement runs in a child process (this file
with ``--child``); DBOS gets its own database on the same server. ``--quick``: one round.

    uv run python tools/bench/flow_children.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Child, Row, emit, interleave, postgres_database, print_rows

from forktex_core.flow import Flow, FlowContext
from forktex_core.testing import create_database, drop_database

SELF = Path(__file__).resolve()
CONCURRENCY = 64
DBOS_NAME = "DBOS 3 (same Postgres)"


async def child_ours(url: str, n: int) -> None:
    flow = Flow(database_url=url)

    @flow.workflow(name="bench.child", version=1)
    async def child(ctx: FlowContext, i: int) -> int:
        return 2 * i

    @flow.workflow(name="bench.parent", version=1)
    async def parent(ctx: FlowContext, count: int) -> int:
        handles = await asyncio.gather(*(ctx.start_child("bench.child", i) for i in range(count)))
        results = await asyncio.gather(*(h.result() for h in handles))
        return sum(results)

    await flow.connect()
    worker = asyncio.create_task(flow.run_worker(concurrency=CONCURRENCY))
    try:
        await flow.wait_worker_started()
        t0 = time.perf_counter()
        total = await flow.result(await flow.start("bench.parent", n), timeout=600)
        elapsed = time.perf_counter() - t0
        assert total == n * (n - 1), total
        emit("SECONDS", elapsed)
    finally:
        flow.stop()
        await worker
        await flow.close()


async def child_dbos(url: str, n: int) -> None:
    from dbos import DBOS

    DBOS(
        config={
            "name": "forktex-bench",
            "system_database_url": url,
            "executor_id": f"bench-{os.getpid()}",
            "log_level": "WARNING",
        }
    )

    @DBOS.workflow(name="bench.child")
    async def child(i: int) -> int:
        return 2 * i

    @DBOS.workflow(name="bench.parent")
    async def parent(count: int) -> int:
        handles = [await DBOS.start_workflow_async(child, i) for i in range(count)]
        return sum([await h.get_result() for h in handles])

    DBOS.launch()
    try:
        t0 = time.perf_counter()
        handle = await DBOS.start_workflow_async(parent, n)
        total = await handle.get_result()
        elapsed = time.perf_counter() - t0
        assert total == n * (n - 1), total
        emit("SECONDS", elapsed)
    finally:
        DBOS.destroy()


async def fan(side: str, url: str, n: int, logdir: Path) -> float:
    """One measured fan-out/fan-in in a fresh child process; seconds."""
    child = await Child.start(SELF, logdir, side, "fan", url, n)
    seconds: float = await child.expect("SECONDS")
    await child.finish()
    return seconds


async def run(quick: bool) -> list[Row]:
    n = 1000
    rounds = 1 if quick else 3
    with postgres_database() as db, tempfile.TemporaryDirectory(prefix="flow-bench-") as tmp:
        logdir = Path(tmp)
        dbos_db = create_database(db)
        try:
            a, b = await interleave(
                lambda: fan("ours", db.url, n, logdir),
                lambda: fan("dbos", dbos_db.dsn, n, logdir),
                rounds,
            )
        finally:
            drop_database(db, dbos_db.database)
    note = f"{n:,} children started from one workflow and awaited"
    return [
        Row("flow", "fan-out/fan-in, parent start -> result", a, "s", DBOS_NAME, b, rounds, note),
        Row(
            "flow",
            "fan-out/fan-in, children per second",
            n / a,
            "1/s",
            DBOS_NAME,
            n / b,
            rounds,
            note,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--child", nargs=4, metavar=("SIDE", "TASK", "URL", "N"))
    args = parser.parse_args()
    if args.child:
        side, _task, url, count = args.child
        runner: Any = child_ours if side == "ours" else child_dbos
        asyncio.run(runner(url, int(count)))
        return
    print_rows(asyncio.run(run(args.quick)))


if __name__ == "__main__":
    main()
