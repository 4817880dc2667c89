# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.data on 1,000,000 rows vs hand-written SQL on a real table with the same data.

* scroll: ``RowQuery(invoices).where(status="paid").order_by("-issued_at").scroll(50)``,
  walking pages with the returned cursor (``issued_at`` indexed: a per-register partial
  expression index on the JSONB value) vs ``SELECT ... WHERE status = $1 AND
  (issued_at, id) < ($2, $3) ORDER BY issued_at DESC, id DESC LIMIT 51`` on a table with
  typed columns and an ``(issued_at, id)`` index. Both return dicts/objects per row.
* insert: ``Register.insert_many`` (coercion, search vector, version lock) of 1,000 rows
  vs one hand-written multi-row ``INSERT ... SELECT unnest(...)`` into the real table.

Same engine, same server, interleaved runs. ``--quick``: 50,000 rows.

    uv run python tools/bench/data_scroll.py --quick
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main, postgres_database

from forktex_core.data import Field, Register, RowQuery
from forktex_core.db import close_engine, init_engine, uuid7

MODULE = "data"
STATUSES = ("draft", "sent", "paid", "void")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 10_000
PAGE = 50
FIELDS = [
    Field("number", "text", required=True),
    # Indexed so Postgres keeps statistics on the JSONB expression (the real table has them
    # for its column): with the default 0.5% guess the planner would sort instead of walking
    # the issued_at index.
    Field("status", "single_select", choices=STATUSES, indexed=True),
    Field("amount", "integer"),
    Field("issued_at", "datetime", indexed=True),
]


def _batch(rng: random.Random, start: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "number": f"INV-{i}",
            "status": rng.choice(STATUSES),
            "amount": rng.randint(0, 100_000),
            "issued_at": T0 + timedelta(seconds=rng.randint(0, 2 * 365 * 86400)),
        }
        for i in range(start, start + n)
    ]


BASELINE_DDL = [
    "CREATE TABLE bench_invoices (id uuid PRIMARY KEY, number text NOT NULL, status text, "
    "amount bigint, issued_at timestamptz)",
]
BASELINE_INDEX = "CREATE INDEX bench_invoices_issued ON bench_invoices (issued_at, id)"
BASELINE_INSERT = text(
    "INSERT INTO bench_invoices (id, number, status, amount, issued_at) "
    "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:numbers AS text[]), "
    "CAST(:statuses AS text[]), CAST(:amounts AS bigint[]), CAST(:ats AS timestamptz[]))"
)
BASELINE_FIRST = text(
    "SELECT id, number, status, amount, issued_at FROM bench_invoices WHERE status = :s "
    "ORDER BY issued_at DESC, id DESC LIMIT :n"
)
BASELINE_NEXT = text(
    "SELECT id, number, status, amount, issued_at FROM bench_invoices WHERE status = :s "
    "AND (issued_at, id) < (:at, :id) ORDER BY issued_at DESC, id DESC LIMIT :n"
)


async def _baseline_insert(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            BASELINE_INSERT,
            {
                "ids": [uuid7() for _ in rows],
                "numbers": [r["number"] for r in rows],
                "statuses": [r["status"] for r in rows],
                "amounts": [r["amount"] for r in rows],
                "ats": [r["issued_at"] for r in rows],
            },
        )


async def _load(engine: AsyncEngine, invoices: Register, total: int) -> float:
    """Load ``total`` rows into both; returns our insert rate (rows/s) during the load."""
    rng = random.Random(42)
    ours_seconds = 0.0
    for start in range(0, total, BATCH):
        rows = _batch(rng, start, min(BATCH, total - start))
        began = time.perf_counter()
        await invoices.insert_many(rows)
        ours_seconds += time.perf_counter() - began
        await _baseline_insert(engine, rows)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(BASELINE_INDEX))
        await conn.execute(text("VACUUM ANALYZE bench_invoices"))
        await conn.execute(text("VACUUM ANALYZE forktex_data.rows"))
    return total / ours_seconds


async def run(quick: bool) -> list[Row]:
    total = 50_000 if quick else 1_000_000
    runs, pages = (5, 20) if quick else (11, 40)
    with postgres_database() as pg:
        engine = init_engine(pg.url, pool_size=5)
        try:
            async with engine.begin() as conn:
                for ddl in BASELINE_DDL:
                    await conn.execute(text(ddl))
            invoices = await Register.create(
                "invoices", tenant_id=uuid.uuid4(), fields=FIELDS, date_field="issued_at"
            )
            load_rate = await _load(engine, invoices, total)
            query = RowQuery(invoices).where(status="paid").order_by("-issued_at")
            ours_ms: list[float] = []
            base_ms: list[float] = []

            async def ours_walk() -> float:
                cursor = None
                times = []
                for _ in range(pages):
                    began = time.perf_counter()
                    page = await query.scroll(page_size=PAGE, cursor=cursor)
                    times.append((time.perf_counter() - began) * 1000)
                    assert len(page) == PAGE
                    cursor = page.next_cursor
                ours_ms.extend(times)
                return statistics.median(times)

            async def base_walk() -> float:
                last: Any = None
                times = []
                for _ in range(pages):
                    began = time.perf_counter()
                    async with engine.connect() as conn:
                        if last is None:
                            result = await conn.execute(
                                BASELINE_FIRST, {"s": "paid", "n": PAGE + 1}
                            )
                        else:
                            result = await conn.execute(
                                BASELINE_NEXT,
                                {"s": "paid", "at": last["issued_at"], "id": last["id"],
                                 "n": PAGE + 1},
                            )  # fmt: skip
                        items = [dict(r._mapping) for r in result][:PAGE]
                    times.append((time.perf_counter() - began) * 1000)
                    assert len(items) == PAGE
                    last = items[-1]
                base_ms.extend(times)
                return statistics.median(times)

            for _ in range(2):  # warm caches, prepared statements and the pool on both sides
                await ours_walk()
                await base_walk()
            ours_ms.clear()
            base_ms.clear()
            ours, base = await interleave(ours_walk, base_walk, runs)
            p50_ours = statistics.median(ours_ms)
            p95_ours = statistics.quantiles(ours_ms, n=20)[-1]
            rows = [
                Row(
                    MODULE,
                    f"scroll 50 (where status, order -issued_at, {total:,} rows)",
                    ours,
                    "ms/page",
                    "hand-written keyset SQL, real table",
                    base,
                    runs,
                    f"p50 {p50_ours:.2f} ms, p95 {p95_ours:.2f} ms over {len(ours_ms)} pages",
                )
            ]

            rng = random.Random(7)
            insert_n = 1000

            async def ours_insert() -> float:
                batch = _batch(rng, 0, insert_n)
                began = time.perf_counter()
                await invoices.insert_many(batch)
                return insert_n / (time.perf_counter() - began)

            async def base_insert() -> float:
                batch = _batch(rng, 0, insert_n)
                began = time.perf_counter()
                await _baseline_insert(engine, batch)
                return insert_n / (time.perf_counter() - began)

            ours_rate, base_rate = await interleave(ours_insert, base_insert, runs)
            rows.append(
                Row(
                    MODULE,
                    "insert_many 1,000 rows",
                    ours_rate,
                    "rows/s",
                    "multi-row INSERT (unnest), real table",
                    base_rate,
                    runs,
                    f"bulk load ran at {load_rate:,.0f} rows/s; higher is better",
                )
            )
            return rows
        finally:
            await close_engine()


if __name__ == "__main__":
    main(run)
