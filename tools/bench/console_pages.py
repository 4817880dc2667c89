# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.console pages with 1,000,000 runs in the table (``--quick``: 50,000).

Every page is requested through the console's ASGI app (httpx, in-process: what a browser
waits for, minus the network) on one database holding ``N`` runs with a realistic mix
(20 workflows, 3 versions, 93 % succeeded, 4 % failed, a few dead / cancelled / waiting /
pending / running, 500 organisations in metadata, 30 days of creation times, one run in ten
on one of three flow-control queues), side by side
with the same page on a database holding 10,000 such runs: a page whose cost grows with the
table shows a ratio well above 1. Two rows compare with what a console would do instead:
an OFFSET page 1,000 pages deep (``flow.list_runs(offset=...)``) against our keyset page at
the same depth, and an exact ``count(*) GROUP BY status`` against the counts the console
refreshes (``/api/counts``: live statuses exact, finished ones estimated).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from _harness import Row, interleave, main, postgres_database

from forktex_core.console import flow_console
from forktex_core.flow import Flow

SMALL = 10_000

FILL = """
INSERT INTO forktex_flow.runs (id, workflow, version, status, input, output, metadata,
                               created_at, updated_at, started_at, finished_at, wake_at,
                               queue, admitted_at)
SELECT gen_random_uuid(), 'wf.' || (i % 20), 1 + (i % 7) % 3, s.status,
       json_build_object('n', i), CASE WHEN s.status = 'succeeded' THEN '{"ok": true}'::json END,
       jsonb_build_object('org', 'o' || (i % 500)),
       c.at, c.at, c.at + interval '1 second',
       CASE WHEN s.status IN ('succeeded', 'failed', 'dead', 'cancelled')
            THEN c.at + interval '3 seconds' END,
       CASE WHEN s.status IN ('pending', 'waiting') THEN c.at END,
       CASE WHEN i % 10 = 0 THEN 'q.' || (i % 3) END,
       CASE WHEN i % 10 = 0 AND s.status IN ('running', 'waiting') THEN c.at END
FROM generate_series(1, $1) AS i
CROSS JOIN LATERAL (SELECT CASE
    WHEN i % 1000 < 930 THEN 'succeeded' WHEN i % 1000 < 970 THEN 'failed'
    WHEN i % 1000 < 975 THEN 'dead' WHEN i % 1000 < 985 THEN 'cancelled'
    WHEN i % 1000 < 995 THEN 'waiting' WHEN i % 1000 < 999 THEN 'pending'
    ELSE 'running' END AS status) s
CROSS JOIN LATERAL (SELECT now() - make_interval(secs => 30 * 86400.0 * (1 - i::float8 / $1))
                    AS at) c
"""

# the three flow-control queues one run in ten goes through (3.3 % of the runs each)
QUEUES = """
INSERT INTO forktex_flow.queues (name, concurrency, rate_limit, rate_period)
VALUES ('q.0', 10, NULL, NULL), ('q.1', 50, 100, 60), ('q.2', NULL, NULL, NULL)
"""

STEPS = """
INSERT INTO forktex_flow.steps (run_id, seq, name, kind, status, attempt, output,
                                started_at, finished_at)
SELECT $1, g, 'step.' || g, 'step', 'completed', 1, '{"v": 1}'::json, now(), now()
FROM generate_series(0, 19) AS g
"""


async def fill(dsn: str, runs: int) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(FILL, runs)
        await conn.execute(QUEUES)
        run_id = await conn.fetchval(
            "SELECT id FROM forktex_flow.runs WHERE workflow = 'wf.3' ORDER BY created_at DESC "
            "LIMIT 1"
        )
        await conn.execute(STEPS, run_id)
        await conn.execute("VACUUM ANALYZE forktex_flow.runs")
        await conn.execute("VACUUM ANALYZE forktex_flow.steps")
        return str(run_id)
    finally:
        await conn.close()


async def median_ms(get: Callable[[], Awaitable[Any]], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        await get()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


async def run(quick: bool) -> list[Row]:
    big = 50_000 if quick else 1_000_000
    n = 5 if quick else 20
    repeats = 3 if quick else 5
    rows: list[Row] = []
    with postgres_database() as large, postgres_database() as small:
        flows = {"large": Flow(large.url), "small": Flow(small.url)}
        for flow in flows.values():
            await flow.connect()
        targets = {"large": await fill(large.dsn, big), "small": await fill(small.dsn, SMALL)}
        clients = {
            side: httpx.AsyncClient(
                transport=httpx.ASGITransport(
                    app=flow_console(flow, allow_anonymous=True, counts_ttl=0)
                ),
                base_url="http://bench",
            )
            for side, flow in flows.items()
        }
        try:
            day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 10 * 86400))
            pages = [
                ("runs page, no filter", "/"),
                ("runs page, status=dead (0.5 %)", "/?status=dead"),
                ("runs page, status=failed+dead", "/?status=failed&status=dead"),
                ("runs page, workflow + status=failed", "/?workflow=wf.3&status=failed"),
                ("runs page, workflow + version", "/?workflow=wf.3&version=2"),
                ("runs page, metadata org (0.2 %)", "/?metadata=org%3Do7"),
                ("runs page, one day", f"/?from={day}T00:00&to={day}T23:59"),
                ("runs page, queue q.1 (3.3 %)", "/?queue=q.1"),
                ("runs page, queue + status=failed", "/?queue=q.1&status=failed"),
                ("queues page, 3 queues", "/queues"),
                ("run page, 20 steps", "/runs/{run}"),
                ("workers page", "/workers"),
                ("live counts (/api/counts)", "/api/counts"),
            ]
            for label, path in pages:

                def get(side: str, path: str = path) -> Callable[[], Awaitable[float]]:
                    async def once() -> Any:
                        url = path.replace("{run}", targets[side])
                        response = await clients[side].get(url)
                        assert response.status_code == 200, (url, response.status_code)

                    return lambda: median_ms(once, n)

                await get("large")()
                await get("small")()
                ours, base = await interleave(get("large"), get("small"), repeats)
                rows.append(
                    Row(
                        "console",
                        f"{label}, {big:,} runs",
                        ours,
                        "ms",
                        f"same page, {SMALL:,} runs",
                        base,
                        repeats,
                        f"n={n} per run",
                    )
                )

            # 1,000 pages deep: keyset (what the console does) vs OFFSET
            flow = flows["large"]
            depth = 1000 * 50
            cursor = None
            page = await flow.page_runs(limit=1000)
            for _ in range(depth // 1000 - 1):
                assert page.next is not None
                page = await flow.page_runs(limit=1000, after=page.next)
            cursor = page.next

            async def keyset() -> float:
                return await median_ms(lambda: flow.page_runs(limit=50, after=cursor), n)

            async def offset() -> float:
                return await median_ms(lambda: flow.list_runs(limit=50, offset=depth), n)

            ours, base = await interleave(keyset, offset, repeats)
            rows.append(
                Row(
                    "console",
                    f"a page {depth:,} runs deep, {big:,} runs",
                    ours,
                    "ms",
                    "OFFSET page (list_runs)",
                    base,
                    repeats,
                    f"n={n} per run",
                )
            )

            conn = await asyncpg.connect(large.dsn)
            try:

                async def estimated() -> float:
                    return await median_ms(lambda: flow.run_counts(), n)

                async def exact() -> float:
                    sql = "SELECT status, count(*) FROM forktex_flow.runs GROUP BY status"
                    return await median_ms(lambda: conn.fetch(sql), n)

                ours, base = await interleave(estimated, exact, repeats)
            finally:
                await conn.close()
            rows.append(
                Row(
                    "console",
                    f"counts by status, {big:,} runs",
                    ours,
                    "ms",
                    "exact count(*) GROUP BY status",
                    base,
                    repeats,
                    "live statuses exact, finished estimated",
                )
            )
        finally:
            for client in clients.values():
                await client.aclose()
            for flow in flows.values():
                await flow.close()
    return rows


if __name__ == "__main__":
    main(run)
