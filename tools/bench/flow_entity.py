# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-flow: per-signal wake-up latency of a long-lived entity workflow.

An entity run loops on ``ctx.wait_for_signal("add")`` and publishes a ``ctx.set_event``
per signal; every wake-up replays the run's log. Ours calls ``ctx.continue_as_new`` every
500 signals (the log stays short); the baseline is the same entity without it (the log
grows by two entries per signal). Figure: median milliseconds from ``send_signal`` to the
entity's event for that signal, measured over a window of signals after the entity has
handled 10, 1,000 (and, in full mode, 10,000) of them. Ours should stay flat.

    uv run python tools/bench/flow_entity.py --quick
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, main, postgres_database

from forktex_core.flow import Flow, FlowContext

EVERY = 500  # ours continues as new after this many signals
WINDOW = 20  # signals measured at each checkpoint


def build(url: str) -> Flow:
    flow = Flow(database_url=url)

    async def loop(ctx: FlowContext, state: dict[str, int], every: int | None) -> int:
        count, handled = state["count"], 0
        while every is None or handled < every:
            await ctx.wait_for_signal("add")
            count, handled = count + 1, handled + 1
            await ctx.set_event(f"seen-{count}", count)
        ctx.continue_as_new({"count": count})

    @flow.workflow(name="bench.entity.continued", version=1)
    async def continued(ctx: FlowContext, state: dict[str, int]) -> int:
        return await loop(ctx, state, EVERY)

    @flow.workflow(name="bench.entity.growing", version=1)
    async def growing(ctx: FlowContext, state: dict[str, int]) -> int:
        return await loop(ctx, state, None)

    return flow


async def signal_ms(flow: Flow, run_id: uuid.UUID, count: int) -> float:
    """Send one signal and wait for the entity's event for it; milliseconds."""
    start = time.perf_counter()
    await flow.send_signal(run_id, "add")
    await flow.get_event(run_id, f"seen-{count}", timeout=120)
    return (time.perf_counter() - start) * 1e3


async def run(quick: bool) -> list[Row]:
    checkpoints = (10, 1_000) if quick else (10, 1_000, 10_000)
    rows: list[Row] = []
    with postgres_database() as db:
        flow = build(db.url)
        worker = asyncio.create_task(flow.run_worker(concurrency=4))
        try:
            await flow.wait_worker_started()
            ours = await flow.start("bench.entity.continued", {"count": 0})
            base = await flow.start("bench.entity.growing", {"count": 0})
            sent = 0
            flat: float | None = None
            for mark in checkpoints:
                # bring both entities to ``mark`` signals handled (the baseline only up to
                # 1,000: beyond, its replay makes the run take hours)
                while sent < mark:
                    sent += 1
                    await signal_ms(flow, ours, sent)
                    if mark <= 1_000:
                        await signal_ms(flow, base, sent)
                a: list[float] = []
                b: list[float] = []
                for _ in range(WINDOW):
                    sent += 1
                    a.append(await signal_ms(flow, ours, sent))
                    if mark <= 1_000:
                        b.append(await signal_ms(flow, base, sent))
                mine = statistics.median(a)
                if flat is None:
                    flat = mine
                if b:
                    rows.append(
                        Row(
                            module="flow",
                            workload=f"entity wake-up after {mark:,} signals",
                            ours=mine,
                            unit="ms",
                            baseline_name="same entity without continue-as-new",
                            baseline=statistics.median(b),
                            runs=WINDOW,
                            note=f"continue-as-new every {EVERY}",
                        )
                    )
                else:
                    rows.append(
                        Row(
                            module="flow",
                            workload=f"entity wake-up after {mark:,} signals",
                            ours=mine,
                            unit="ms",
                            baseline_name="ours after 10 signals",
                            baseline=flat,
                            runs=WINDOW,
                            note=f"continue-as-new every {EVERY}; target flat",
                        )
                    )
        finally:
            flow.stop()
            await worker
            await flow.close()
    return rows


if __name__ == "__main__":
    main(run)
