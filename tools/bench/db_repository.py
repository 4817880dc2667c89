# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.db ``Repository`` vs the equivalent hand-written SQLAlchemy 2 code.

Same engine, same table, interleaved runs. Every operation opens its own session and
commits, as request handlers do; "ours" uses ``get_session()`` (tenant guard installed),
the baseline a plain ``async_sessionmaker`` on the same engine.

    uv run python tools/bench/db_repository.py --quick
"""

from __future__ import annotations

import random
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Index, String, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main, per_op_us, postgres_database

from forktex_core.db import (
    BaseDBModel,
    Repository,
    close_engine,
    get_session,
    init_engine,
)

MODULE = "db"
SEED_ROWS = 5000
STATUSES = ("draft", "sent", "paid", "void")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class BenchInvoice(BaseDBModel):
    __tablename__ = "bench_invoice"
    __table_args__ = (Index("ix_bench_invoice_status_issued", "status", "issued_at"),)
    __filter_fields__ = ("status", "amount")
    __sort_fields__ = ("issued_at",)
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int]
    issued_at: Mapped[datetime]


def _values(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "number": f"INV-{n}",
        "status": rng.choice(STATUSES),
        "amount": rng.randint(0, 1000),
        "issued_at": T0 + timedelta(minutes=rng.randint(0, 500_000)),
    }


async def run(quick: bool) -> list[Row]:
    runs, n = (5, 150) if quick else (15, 600)
    with postgres_database() as pg:
        engine = init_engine(pg.url, pool_size=5)
        raw_maker = async_sessionmaker(engine, expire_on_commit=False)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(
                    lambda sync: BaseDBModel.metadata.create_all(
                        sync, tables=[BenchInvoice.__table__]
                    )
                )
            rng = random.Random(42)
            async with get_session() as session:
                seeded = await Repository(session, BenchInvoice).create_many(
                    [_values(rng, i) for i in range(SEED_ROWS)]
                )
            ids = [row.id for row in seeded]
            counter = [SEED_ROWS]

            def some_id() -> Any:
                return ids[rng.randrange(len(ids))]

            # -- get ------------------------------------------------------------------
            async def ours_get() -> None:
                async with get_session() as s:
                    await Repository(s, BenchInvoice).get(some_id())

            async def raw_get() -> None:
                async with raw_maker() as s, s.begin():
                    obj = await s.get(BenchInvoice, some_id())
                    if obj is None:
                        raise LookupError

            # -- list: filter + sort + limit, with the total ----------------------------
            filters = {"status": "paid", "amount__gte": 100}

            async def ours_list() -> None:
                async with get_session() as s:
                    page = await Repository(s, BenchInvoice).list(
                        filters=filters, sort=["-issued_at"], limit=20
                    )
                    assert len(page.items) == 20

            def raw_where() -> list[Any]:
                return [BenchInvoice.status == "paid", BenchInvoice.amount >= 100]

            async def raw_list_window() -> None:
                async with raw_maker() as s, s.begin():
                    stmt = (
                        select(BenchInvoice, func.count().over())
                        .where(*raw_where())
                        .order_by(BenchInvoice.issued_at.desc(), BenchInvoice.id.desc())
                        .limit(20)
                    )
                    rows = (await s.execute(stmt)).all()
                    items, total = [r[0] for r in rows], rows[0][1]
                    assert len(items) == 20 and total

            async def raw_list_two_queries() -> None:
                async with raw_maker() as s, s.begin():
                    stmt = (
                        select(BenchInvoice)
                        .where(*raw_where())
                        .order_by(BenchInvoice.issued_at.desc(), BenchInvoice.id.desc())
                        .limit(20)
                    )
                    items = (await s.scalars(stmt)).all()
                    total = await s.scalar(
                        select(func.count()).select_from(BenchInvoice).where(*raw_where())
                    )
                    assert len(items) == 20 and total

            # -- create ---------------------------------------------------------------
            async def ours_create() -> None:
                counter[0] += 1
                async with get_session() as s:
                    await Repository(s, BenchInvoice).create(**_values(rng, counter[0]))

            async def raw_create() -> None:
                counter[0] += 1
                async with raw_maker() as s, s.begin():
                    s.add(BenchInvoice(**_values(rng, counter[0])))

            async def measure(
                ours: Callable[[], Awaitable[None]], base: Callable[[], Awaitable[None]]
            ) -> tuple[float, float]:
                for _ in range(20):  # warm statement caches and the pool on both sides
                    await ours()
                    await base()
                return await interleave(
                    lambda: per_op_us(ours, n), lambda: per_op_us(base, n), runs
                )

            rows: list[Row] = []
            for workload, ours, base, base_name, note in (
                ("Repository.get", ours_get, raw_get, "raw SQLAlchemy session.get", ""),
                (
                    "Repository.list",
                    ours_list,
                    raw_list_window,
                    "raw SQLAlchemy (same single query)",
                    "filter+sort+limit 20, with total",
                ),
                (
                    "Repository.list",
                    ours_list,
                    raw_list_two_queries,
                    "raw SQLAlchemy (rows + count query)",
                    "filter+sort+limit 20, with total",
                ),
                ("Repository.create", ours_create, raw_create, "raw SQLAlchemy add+commit", ""),
            ):
                ours_us, base_us = await measure(ours, base)
                rows.append(Row(MODULE, workload, ours_us, "µs/op", base_name, base_us, runs, note))
            return rows
        finally:
            await close_engine()


if __name__ == "__main__":
    main(run)
