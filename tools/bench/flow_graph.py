# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-flow: per-transition cost of a Graph vs the equivalent @flow.workflow.

Both sides run on one worker in this process, on the same fresh database, interleaved:

* chain: a 10-state graph (each state runs one trivial step, unconditional transitions)
  vs a hand-written workflow calling the same step 10 times;
* branching: the same chain where every state has two conditional transitions
  (``{"field": "i", "op": "<", ...}`` / ``>=``), vs the workflow with the same ``if``.

Figure: wall time per transition (= per state, one checkpoint each) while a batch of runs
executes concurrently. The graph's state entries ride along with the step checkpoints, so
the target is a ratio of at most 1.2x.

    uv run python tools/bench/flow_graph.py --quick
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main, postgres_database

from forktex_core.flow import Flow, FlowContext, Graph

STATES = 10


def build(url: str) -> Flow:
    flow = Flow(database_url=url)

    @flow.step
    async def trivial(ctx: FlowContext, payload: dict[str, int]) -> dict[str, int]:
        return {"i": payload["i"] + 1}

    @flow.workflow(name="bench.chain.wf", version=1)
    async def chain_wf(ctx: FlowContext, payload: dict[str, int]) -> dict[str, int]:
        for _ in range(STATES):
            payload = await trivial(ctx, payload)
        return payload

    @flow.workflow(name="bench.branch.wf", version=1)
    async def branch_wf(ctx: FlowContext, payload: dict[str, int]) -> dict[str, int]:
        for _ in range(STATES):
            payload = await trivial(ctx, payload)
            if payload["i"] < 1_000_000:
                continue
            raise RuntimeError("unreachable")
        return payload

    async def handler(ctx: FlowContext, payload: dict[str, int]) -> dict[str, int]:
        return await trivial(ctx, payload)

    for name, branching in (("bench.chain.graph", False), ("bench.branch.graph", True)):
        g = Graph(name=name, version=1, initial="s0")
        for i in range(STATES):
            g.add_state(f"s{i}", handler, terminal=i == STATES - 1)
        for i in range(STATES - 1):
            if branching:
                g.add_state(f"x{i}", handler, terminal=True)
                g.transition(f"s{i}", f"s{i + 1}", when={"field": "i", "op": "<", "value": 10**6})
                g.transition(f"s{i}", f"x{i}", when={"field": "i", "op": ">=", "value": 10**6})
            else:
                g.transition(f"s{i}", f"s{i + 1}")
        flow.register_graph(g)
    return flow


async def per_transition_us(flow: Flow, workflow: str, runs: int) -> float:
    start = time.perf_counter()
    ids = [await flow.start(workflow, input={"i": 0}) for _ in range(runs)]
    outs = await asyncio.gather(*(flow.result(rid, timeout=300) for rid in ids))
    elapsed = time.perf_counter() - start
    assert all(o == {"i": STATES} for o in outs), outs[:3]
    return elapsed / (runs * STATES) * 1e6


async def run(quick: bool) -> list[Row]:
    runs_per_batch = 40 if quick else 400
    repeats = 3 if quick else 9
    rows: list[Row] = []
    with postgres_database() as db:
        flow = build(db.url)
        worker = asyncio.create_task(flow.run_worker(concurrency=8))
        try:
            await flow.wait_worker_started()
            for name in ("chain", "branch"):  # warm-up
                await per_transition_us(flow, f"bench.{name}.graph", 5)
                await per_transition_us(flow, f"bench.{name}.wf", 5)
            for name, label in (
                ("chain", f"{STATES}-state chain, 1 step per state"),
                ("branch", f"{STATES}-state chain, 2 conditional transitions per state"),
            ):
                ours, base = await interleave(
                    lambda n=name: per_transition_us(flow, f"bench.{n}.graph", runs_per_batch),
                    lambda n=name: per_transition_us(flow, f"bench.{n}.wf", runs_per_batch),
                    repeats,
                )
                rows.append(
                    Row(
                        module="flow",
                        workload=f"Graph per transition: {label}",
                        ours=ours,
                        unit="µs",
                        baseline_name="same steps in a @flow.workflow",
                        baseline=base,
                        runs=repeats,
                        note=f"{runs_per_batch} concurrent runs, target <= 1.2x",
                    )
                )
        finally:
            flow.stop()
            await worker
            await flow.close()
    return rows


if __name__ == "__main__":
    main(run)
