# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Claims: their cost does not grow with other versions' runs, and workflows registered
while a worker runs are claimed by it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import Flow, FlowContext, Graph, _sql

FOREIGN = 20_000


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _literal(value: Any) -> str:
    if isinstance(value, list):
        return (
            "ARRAY["
            + ", ".join(_literal(v) for v in value)
            + "]::"
            + ("text[]" if value and isinstance(value[0], str) else "int[]")
        )
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_claim_probes_only_its_own_versions(
    make_flow: Callable[..., Flow], pg: Any, mode: str
) -> None:
    flow = make_flow()
    await flow.connect()
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(
            "INSERT INTO forktex_flow.runs (id, workflow, version, status, wake_at) "
            "SELECT gen_random_uuid(), 'ver.flow', 1, 'pending', "
            f"now() - make_interval(secs => g) FROM generate_series(1, {FOREIGN}) g"
        )
        await conn.execute("ANALYZE forktex_flow.runs")
        await conn.execute(f"SET plan_cache_mode = {mode}")
        args = _sql.claim_args(16, "w", ["ver.flow:2"], 5.0, [])
        params = (
            ", ".join(_literal(a) for a in args[:5]) + ", ARRAY[]::uuid[], ARRAY[NULL]::float8[]"
        )
        await conn.execute(f"PREPARE claim AS {_sql.CLAIM}")
        tx = conn.transaction()
        await tx.start()
        try:
            raw = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim({params})")
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    nodes = list(_nodes(json.loads(raw)[0]["Plan"]))
    seq_scans = [n for n in nodes if n["Node Type"] == "Seq Scan"]
    assert not seq_scans, seq_scans
    used = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert "runs_claim_version" in used, used
    assert used <= {"runs_claim_version", "runs_pkey", "steps_pkey"}, used
    probes = [n for n in nodes if n.get("Index Name") == "runs_claim_version"]
    # the probe reads only runs of the worker's own version: none here, whatever the rest
    assert all(n.get("Rows Removed by Filter", 0) == 0 for n in probes), probes
    assert all(n["Actual Rows"] == 0 for n in probes), probes


async def test_workflows_and_graphs_registered_after_the_worker_started_are_claimed(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="late.first", version=1)
    async def first(ctx: FlowContext) -> int:
        return 1

    async with h.running(flow):

        @flow.workflow(name="late.second", version=1)
        async def second(ctx: FlowContext) -> int:
            return 2

        g = Graph(name="late.graph", version=1, initial="only")

        @g.state("only", terminal=True)
        async def only(ctx: FlowContext, payload: Any) -> Any:
            return payload

        flow.register_graph(g)
        assert await flow.result(await flow.start("late.second"), timeout=20) == 2
        out = await flow.result(await flow.start("late.graph", input={"x": 1}), timeout=20)
        assert out == {"x": 1}
        conn = await asyncpg.connect(pg.dsn)
        try:

            async def published() -> bool:
                versions = await conn.fetchval(
                    "SELECT versions::text FROM forktex_flow.workers WHERE id = $1",
                    flow.worker_id,
                )
                return versions is not None and {
                    "late.first:1",
                    "late.second:1",
                    "late.graph:1",
                } <= set(json.loads(versions))

            await h.wait_until(published)
        finally:
            await conn.close()


def _two_queues(make_flow: Callable[..., Flow]) -> Flow:
    """A flow serving ``claims.queued`` v1 through the queues ``busy`` and ``quiet``."""
    flow = make_flow()
    flow.queue("busy", concurrency=10)
    flow.queue("quiet", concurrency=10)

    @flow.workflow(name="claims.queued", version=1)
    async def queued(ctx: FlowContext) -> None:
        return None

    return flow


_DRAIN = """
DO $$
DECLARE before bigint; after bigint; worst bigint := 0; r record;
BEGIN
  FOR i IN 1..30 LOOP
    SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) INTO before
    FROM pg_stat_xact_user_tables WHERE relid = 'forktex_flow.runs'::regclass;
    FOR r IN SELECT * FROM forktex_flow.claim_queued(
        10, 'w', ARRAY['claims.queued'], ARRAY[1], 30.0, '{}'::uuid[], '{}'::text[],
        '{}'::int[], ARRAY[NULL::float8]) LOOP
      UPDATE forktex_flow.runs SET status = 'succeeded', finished_at = now() WHERE id = r.id;
    END LOOP;
    SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) INTO after
    FROM pg_stat_xact_user_tables WHERE relid = 'forktex_flow.runs'::regclass;
    worst := greatest(worst, after - before);
  END LOOP;
  PERFORM set_config('forktex_test.worst', worst::text, true);
END $$;
"""


async def test_a_queued_claim_reads_few_runs_while_a_backlog_drains(
    make_flow: Callable[..., Flow], pg: Any
) -> None:
    """A queue drained claim after claim (10 admitted, then finished, again and again) with
    a long history and a long backlog, and a quiet queue with a short history: each claim
    reads tens of runs. Finished runs keep their admission time, and asking "does the quiet
    queue have admitted runs to resume?" as an EXISTS read the whole table once the session's
    plans were cached (10-12 ms per claim at 40,000 runs)."""
    flow = _two_queues(make_flow)
    await flow.start("claims.queued", queue="busy")  # declares the queues
    conn = await asyncpg.connect(pg.dsn)
    try:
        for queue, status, admitted, n in [
            ("busy", "succeeded", "now()", FOREIGN),
            ("busy", "pending", "NULL", FOREIGN),
            ("quiet", "succeeded", "now()", 100),
        ]:
            await conn.execute(
                "INSERT INTO forktex_flow.runs (id, workflow, version, status, wake_at, queue, "
                f"queue_seq, admitted_at) SELECT gen_random_uuid(), 'claims.queued', 1, "
                f"'{status}', now(), '{queue}', nextval('forktex_flow.queue_order'), {admitted} "
                f"FROM generate_series(1, {n})"
            )
        await conn.execute("ANALYZE forktex_flow.runs")
        async with conn.transaction():
            await conn.execute(_DRAIN)
            worst = int(await conn.fetchval("SELECT current_setting('forktex_test.worst')"))
            left = await conn.fetchval(
                "SELECT count(*) FROM forktex_flow.runs WHERE queue = 'busy' AND status = 'pending'"
            )
    finally:
        await conn.close()
    assert left == FOREIGN + 1 - 300  # 30 claims of 10
    assert worst <= 200, worst


async def test_a_queued_claim_reads_few_runs_however_many_the_table_holds(
    make_flow: Callable[..., Flow], pg: Any
) -> None:
    """A queued claim asks every queue whether runs wait in it: one probe of the queue's
    index of waiting runs, never a read of the runs table (a queue with nothing waiting is
    the common case, and every claim asks)."""
    flow = _two_queues(make_flow)
    await flow.connect()
    for _ in range(20):
        await flow.start("claims.queued", queue="busy")
    conn = await asyncpg.connect(pg.dsn)
    try:
        # a backlog of runs this worker does not serve, and the quiet queue's history
        await conn.execute(
            "INSERT INTO forktex_flow.runs (id, workflow, version, status, wake_at) "
            "SELECT gen_random_uuid(), 'claims.other', 1, 'pending', now() "
            f"FROM generate_series(1, {FOREIGN // 4})"
        )
        await conn.execute(
            "INSERT INTO forktex_flow.runs (id, workflow, version, status, queue, queue_seq, "
            "admitted_at, finished_at) SELECT gen_random_uuid(), 'claims.queued', 1, "
            "'succeeded', 'quiet', nextval('forktex_flow.queue_order'), now(), now() "
            f"FROM generate_series(1, {FOREIGN // 4})"
        )
        await conn.execute("ANALYZE forktex_flow.runs")
        args = _sql.claim_args(16, "w", ["claims.queued:1"], 5.0, [])
        tx = conn.transaction()
        await tx.start()
        try:
            claimed = await conn.fetch(_sql.CLAIM_QUEUED, *args, [], [])
            read = await conn.fetchval(
                "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
                "FROM pg_stat_xact_user_tables WHERE relid = 'forktex_flow.runs'::regclass"
            )
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    assert len(claimed) == 10
    # the ten admitted runs, the held slots counted, the probes: tens, not thousands
    assert read <= 100, read
