# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.data at 1,000,000 rows of a realistic 15-field register vs the same data in
a plain table with typed columns and the indexes a developer would add, in one run.

The register ``orders`` (text, a unique order number, a reference to ``customers``,
single and multi selects, dates, datetimes, integers, decimals, a boolean, email, url,
json) holds 1,000,000 rows; 10,000 customers; another tenant's register shares the table
(as in production). The baseline ``bench_orders`` has the same rows in typed columns
with a foreign key, a unique constraint, btree indexes on the filtered and sorted columns
and a GIN index on a ``tsvector`` column generated from the same searchable values as the
register's (number, status, tags, email, website, notes, channel): the register is always
searchable, so the plain table is too, and both of its write paths (multi-row ``INSERT``
and ``COPY``) pay for the vector and its GIN entries like the register does.

Workloads (interleaved A B A B, medians):

* scroll 50, ``where(customer=X).order_by("-placed_at")``, all pages of random customers
* scroll 50, ``where(amount_cents__between=[a, a + 999]).order_by("-placed_at")``
* scroll 50, ``where(status="paid").order_by("-placed_at")`` (an unselective filter)
* scroll 50, ``where(tags__contains=T)`` and ``search(W)``, each ``order_by("-placed_at")``
  (the plain table has a GIN index on its ``tags`` array and on its ``tsvector``)
* group-by sum: ``group_by("status").aggregate(total=Sum("amount_cents"), n=Count())``
  over the whole register, and over one customer's orders, vs ``GROUP BY status``
* ``count()`` of the whole register, of a status, of a customer's orders
* ``facets("status", "channel")`` of the whole register and of a customer's orders, vs
  two ``GROUP BY ... ORDER BY count DESC LIMIT 20``
* ``insert_many`` of 1,000 rows (coercion, search vector, reference links, unique claims)
  vs one multi-row ``INSERT ... SELECT unnest(...)``
* ``import_csv`` of a 5,000-row CSV text (parsing, per-row checks, batches of 1,000) vs
  ``COPY ... FROM STDIN (FORMAT csv)`` of the same rows into the plain table

``--quick``: 50,000 rows (a smoke run under a minute).

    uv run python tools/bench/data_scale.py --quick
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main, postgres_database

from forktex_core.data import Count, Field, Register, RowQuery, Sum
from forktex_core.db import close_engine, init_engine, uuid7

MODULE = "data"
PAGE = 50
BATCH = 5_000
STATUSES = ("draft", "open", "paid", "shipped", "void")
TAGS = ("vip", "rush", "gift", "b2b", "promo")
CHANNELS = ("web", "phone", "store")
WORDS = ("red", "blue", "large", "small", "steel", "oak", "linen", "glass", "paper", "stone")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
FIELDS = [
    Field("number", "text", required=True, unique=True),
    Field("customer", "reference", target="customers", indexed=True),
    Field("status", "single_select", choices=STATUSES, indexed=True),
    Field("tags", "multi_select", choices=TAGS),
    Field("placed_at", "datetime", indexed=True),
    Field("due_on", "date"),
    Field("amount_cents", "integer", indexed=True),
    Field("quantity", "integer"),
    Field("discount", "decimal"),
    Field("paid", "boolean"),
    Field("email", "email"),
    Field("website", "url"),
    Field("notes", "text"),
    Field("channel", "single_select", choices=CHANNELS),
    Field("meta", "json"),
]
COLUMNS = (
    "id, number, customer_id, status, tags, placed_at, due_on, amount_cents, quantity, "
    "discount, paid, email, website, notes, channel, meta"
)
BASELINE_DDL = [
    "CREATE TABLE bench_customers (id uuid PRIMARY KEY, name text NOT NULL, country text)",
    # array_to_string is only STABLE; a generated column needs an IMMUTABLE expression.
    "CREATE FUNCTION bench_words(text[]) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE "
    "AS $$ SELECT array_to_string($1, ' ') $$",
    "CREATE TABLE bench_orders (id uuid PRIMARY KEY, number text NOT NULL UNIQUE, "
    "customer_id uuid REFERENCES bench_customers (id), status text, tags text[], "
    "placed_at timestamptz, due_on date, amount_cents bigint, quantity bigint, "
    "discount numeric, paid boolean, email text, website text, notes text, channel text, "
    "meta jsonb, search tsvector GENERATED ALWAYS AS (to_tsvector('simple', "
    "coalesce(number, '') || ' ' || coalesce(status, '') || ' ' || "
    "coalesce(bench_words(tags), '') || ' ' || coalesce(email, '') || ' ' || "
    "coalesce(website, '') || ' ' || coalesce(notes, '') || ' ' || coalesce(channel, ''))) "
    "STORED)",
    "CREATE INDEX bench_orders_customer ON bench_orders (customer_id)",
    "CREATE INDEX bench_orders_status ON bench_orders (status)",
    "CREATE INDEX bench_orders_placed ON bench_orders (placed_at, id)",
    "CREATE INDEX bench_orders_amount ON bench_orders (amount_cents)",
    "CREATE INDEX bench_orders_search ON bench_orders USING gin (search)",
    "CREATE INDEX bench_orders_tags ON bench_orders USING gin (tags)",
]
BASELINE_INSERT = text(
    f"INSERT INTO bench_orders ({COLUMNS}) SELECT u.id, u.number, u.customer, "
    "u.status, CAST(u.tags AS text[]), u.placed_at, u.due_on, u.amount_cents, u.quantity, "
    "u.discount, u.paid, u.email, u.website, u.notes, u.channel, CAST(u.meta AS jsonb) "
    "FROM unnest("
    "CAST(:id AS uuid[]), CAST(:number AS text[]), CAST(:customer AS uuid[]), "
    "CAST(:status AS text[]), CAST(:tags AS text[]), CAST(:placed_at AS timestamptz[]), "
    "CAST(:due_on AS date[]), CAST(:amount_cents AS bigint[]), CAST(:quantity AS bigint[]), "
    "CAST(:discount AS numeric[]), CAST(:paid AS boolean[]), CAST(:email AS text[]), "
    "CAST(:website AS text[]), CAST(:notes AS text[]), CAST(:channel AS text[]), "
    "CAST(:meta AS text[])) AS u(id, number, customer, status, tags, placed_at, due_on, "
    "amount_cents, quantity, discount, paid, email, website, notes, channel, meta)"
)
# tags and meta travel as text (a '{a,b}' array literal, JSON) and are cast per row; the
# search vector is generated by the table (as for COPY).


def _keyset(where: str) -> tuple[Any, Any]:
    first = text(
        f"SELECT {COLUMNS} FROM bench_orders WHERE {where} "
        "ORDER BY placed_at DESC, id DESC LIMIT :n"
    )
    after = text(
        f"SELECT {COLUMNS} FROM bench_orders WHERE {where} AND (placed_at, id) < (:at, :id) "
        "ORDER BY placed_at DESC, id DESC LIMIT :n"
    )
    return first, after


class Data:
    """Deterministic realistic rows."""

    def __init__(self, customers: list[uuid.UUID], seed: int) -> None:
        self.customers = customers
        self.rng = random.Random(seed)
        self.serial = 0

    def rows(self, n: int) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        for _ in range(n):
            self.serial += 1
            placed = T0 + timedelta(seconds=rng.randrange(2 * 365 * 86400))
            out.append(
                {
                    "number": f"ORD-{self.serial:09d}-{rng.randrange(10**6):06d}",
                    "customer": rng.choice(self.customers),
                    "status": rng.choice(STATUSES),
                    "tags": [t for t in TAGS if rng.random() < 0.2],
                    "placed_at": placed,
                    "due_on": (placed + timedelta(days=30)).date(),
                    "amount_cents": rng.randrange(1_000_000),
                    "quantity": rng.randrange(1, 50),
                    "discount": Decimal(rng.randrange(0, 3000)) / 100,
                    "paid": rng.random() < 0.6,
                    "email": f"buyer{rng.randrange(100_000)}@example.com",
                    "website": f"https://shop{rng.randrange(1000)}.example.com/o",
                    "notes": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 8))),
                    "channel": rng.choice(CHANNELS),
                    "meta": {"source": rng.choice(CHANNELS), "items": rng.randrange(1, 9)},
                }
            )
        return out


def _baseline_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import json

    return {
        "id": [uuid7() for _ in rows],
        "number": [r["number"] for r in rows],
        "customer": [r["customer"] for r in rows],
        "status": [r["status"] for r in rows],
        "tags": ["{" + ",".join(r["tags"]) + "}" for r in rows],
        "placed_at": [r["placed_at"] for r in rows],
        "due_on": [r["due_on"] for r in rows],
        "amount_cents": [r["amount_cents"] for r in rows],
        "quantity": [r["quantity"] for r in rows],
        "discount": [r["discount"] for r in rows],
        "paid": [r["paid"] for r in rows],
        "email": [r["email"] for r in rows],
        "website": [r["website"] for r in rows],
        "notes": [r["notes"] for r in rows],
        "channel": [r["channel"] for r in rows],
        "meta": [json.dumps(r["meta"]) for r in rows],
    }


async def _baseline_insert(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(BASELINE_INSERT, _baseline_params(rows))


def _register_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as the CSV ``export_csv`` writes: a header of field names, JSON for tags
    and meta, ISO dates."""
    import csv
    import io
    import json

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f.name for f in FIELDS])
    for r in rows:
        writer.writerow(
            [
                json.dumps(r[f.name])
                if f.name in ("tags", "meta")
                else ("true" if r[f.name] else "false")
                if f.name == "paid"
                else r[f.name].isoformat()
                if f.name in ("placed_at", "due_on")
                else str(r[f.name])
                for f in FIELDS
            ]
        )
    return out.getvalue()


def _baseline_csv(rows: list[dict[str, Any]]) -> bytes:
    """The same rows as CSV for ``COPY`` into the typed table (its columns, with ids)."""
    import csv
    import io
    import json

    out = io.StringIO()
    writer = csv.writer(out)
    for r in rows:
        writer.writerow(
            [
                str(uuid7()), r["number"], str(r["customer"]), r["status"],
                "{" + ",".join(r["tags"]) + "}", r["placed_at"].isoformat(),
                r["due_on"].isoformat(), r["amount_cents"], r["quantity"], r["discount"],
                "true" if r["paid"] else "false", r["email"], r["website"], r["notes"],
                r["channel"], json.dumps(r["meta"]),
            ]
        )  # fmt: skip
    return out.getvalue().encode()


async def _baseline_copy(engine: AsyncEngine, data: bytes) -> None:
    import io

    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_to_table(  # type: ignore[union-attr]
            "bench_orders",
            source=io.BytesIO(data),
            columns=[c.strip() for c in COLUMNS.split(",")],
            format="csv",
        )


async def _setup(engine: AsyncEngine, total: int) -> tuple[Register, Data, list[uuid.UUID]]:
    async with engine.begin() as conn:
        for ddl in BASELINE_DDL:
            await conn.execute(text(ddl))
    tenant = uuid.uuid4()
    customers = await Register.create(
        "customers", tenant_id=tenant, fields=[Field("name", "text"), Field("country", "text")]
    )
    people = [
        {"name": f"Customer {i}", "country": ("DE", "FR", "US")[i % 3]} for i in range(10_000)
    ]
    ids = [r.id for r in await customers.insert_many(people)]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO bench_customers (id, name, country) SELECT * FROM "
                "unnest(CAST(:i AS uuid[]), CAST(:n AS text[]), CAST(:c AS text[]))"
            ),
            {"i": ids, "n": [p["name"] for p in people], "c": [p["country"] for p in people]},
        )
    orders = await Register.create(
        "orders", tenant_id=tenant, fields=FIELDS, date_field="placed_at"
    )
    # Another tenant's register with the same shape shares the rows table, as in production.
    other = await Register.create(
        "orders", tenant_id=uuid.uuid4(), fields=[Field("code", "text"), Field("n", "integer")]
    )
    data = Data(ids, seed=42)
    for start in range(0, total, BATCH):
        batch = data.rows(min(BATCH, total - start))
        await orders.insert_many(batch)
        await _baseline_insert(engine, batch)
        await other.insert_many([{"code": "FR", "n": i} for i in range(len(batch) // 10)])
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE bench_orders"))
        await conn.execute(text("VACUUM ANALYZE bench_customers"))
        await conn.execute(text("VACUUM ANALYZE forktex_data.rows"))
    return orders, data, ids


def _scroll_pair(
    engine: AsyncEngine,
    make_query: Callable[[Any], RowQuery],
    where: str,
    params: Callable[[Any], dict[str, Any]],
    keys: list[Any],
    max_pages: int,
) -> tuple[Callable[[], Awaitable[float]], Callable[[], Awaitable[float]], list[float]]:
    """Two measured walks (ours, baseline): every key's first ``max_pages`` pages; each
    returns the median ms per page."""
    first, after = _keyset(where)
    ours_all: list[float] = []

    async def ours() -> float:
        times = []
        for key in keys:
            query = make_query(key)
            cursor = None
            for _ in range(max_pages):
                began = time.perf_counter()
                page = await query.scroll(page_size=PAGE, cursor=cursor)
                times.append((time.perf_counter() - began) * 1000)
                cursor = page.next_cursor
                if cursor is None:
                    break
        ours_all.extend(times)
        return statistics.median(times)

    async def baseline() -> float:
        times = []
        for key in keys:
            last: Any = None
            for _ in range(max_pages):
                began = time.perf_counter()
                async with engine.connect() as conn:
                    if last is None:
                        result = await conn.execute(first, {**params(key), "n": PAGE + 1})
                    else:
                        result = await conn.execute(
                            after,
                            {**params(key), "at": last["placed_at"], "id": last["id"],
                             "n": PAGE + 1},
                        )  # fmt: skip
                    items = [dict(r._mapping) for r in result]
                times.append((time.perf_counter() - began) * 1000)
                if len(items) <= PAGE:
                    break
                last = items[PAGE - 1]
        return statistics.median(times)

    return ours, baseline, ours_all


def _query_pair(
    engine: AsyncEngine,
    ours_query: Callable[[Any], Awaitable[Any]],
    statements: list[str],
    keys: list[Any],
) -> tuple[Callable[[], Awaitable[float]], Callable[[], Awaitable[float]]]:
    """Two measured query sets (ours, baseline) over every key: ``ours_query(key)`` vs the
    baseline ``statements`` (run in order, ``:k`` bound to the key); each returns the
    median ms per key."""
    compiled = [text(s) for s in statements]

    async def ours() -> float:
        times = []
        for key in keys:
            began = time.perf_counter()
            await ours_query(key)
            times.append((time.perf_counter() - began) * 1000)
        return statistics.median(times)

    async def baseline() -> float:
        times = []
        for key in keys:
            began = time.perf_counter()
            async with engine.connect() as conn:
                for statement in compiled:
                    (await conn.execute(statement, {"k": key} if key is not None else {})).all()
            times.append((time.perf_counter() - began) * 1000)
        return statistics.median(times)

    return ours, baseline


async def run(quick: bool) -> list[Row]:
    total = 50_000 if quick else 1_000_000
    runs = 5 if quick else 9
    with postgres_database() as pg:
        engine = init_engine(pg.url, pool_size=5)
        try:
            load_began = time.perf_counter()
            orders, data, customers = await _setup(engine, total)
            load_seconds = time.perf_counter() - load_began
            rng = random.Random(7)
            rows: list[Row] = []
            workloads: list[tuple[str, Callable[[Any], RowQuery], str, Any, list[Any], int]] = [
                (
                    "where(customer=X).order_by(-placed_at)",
                    lambda c: RowQuery(orders).where(customer=c).order_by("-placed_at"),
                    "customer_id = :c",
                    lambda c: {"c": c},
                    rng.sample(customers, 10),
                    5,
                ),
                (
                    "where(amount_cents between a, a+999).order_by(-placed_at)",
                    lambda a: (
                        RowQuery(orders)
                        .where(amount_cents__between=[a, a + 999])
                        .order_by("-placed_at")
                    ),
                    "amount_cents BETWEEN :a AND :b",
                    lambda a: {"a": a, "b": a + 999},
                    [rng.randrange(990_000) for _ in range(5)],
                    5,
                ),
                (
                    "where(status=paid).order_by(-placed_at)",
                    lambda s: RowQuery(orders).where(status=s).order_by("-placed_at"),
                    "status = :s",
                    lambda s: {"s": s},
                    ["paid"],
                    20,
                ),
                (
                    "where(tags__contains=T).order_by(-placed_at)",
                    lambda t: RowQuery(orders).where(tags__contains=t).order_by("-placed_at"),
                    "tags @> ARRAY[CAST(:t AS text)]",
                    lambda t: {"t": t},
                    ["vip", "b2b"],
                    10,
                ),
                (
                    "search(W).order_by(-placed_at)",
                    lambda w: RowQuery(orders).search(w).order_by("-placed_at"),
                    "search @@ to_tsquery('simple', :w)",
                    lambda w: {"w": w},
                    ["steel", "linen"],
                    10,
                ),
            ]
            for label, make_query, where, params, keys, pages in workloads:
                ours, baseline, ours_all = _scroll_pair(
                    engine, make_query, where, params, keys, pages
                )
                for _ in range(2):  # warm caches, prepared statements and the pool
                    await ours()
                    await baseline()
                ours_all.clear()
                ours_ms, base_ms = await interleave(ours, baseline, runs)
                p95 = statistics.quantiles(ours_all, n=20)[-1] if len(ours_all) > 1 else 0.0
                rows.append(
                    Row(
                        MODULE,
                        f"scroll 50 {label}, {total:,} rows",
                        ours_ms,
                        "ms/page",
                        "keyset SQL on a plain indexed table",
                        base_ms,
                        runs,
                        f"p95 {p95:.2f} ms over {len(ours_all)} pages",
                    )
                )

            facet_sql = (
                "SELECT {0}, count(*) FROM bench_orders {1} GROUP BY {0} "
                "ORDER BY 2 DESC, 1 LIMIT 20"
            )
            queries: list[tuple[str, Callable[[Any], Awaitable[Any]], list[str], list[Any]]] = [
                (
                    "group-by sum (status: sum, count), whole register",
                    lambda k: RowQuery(orders)
                    .group_by("status")
                    .aggregate(total=Sum("amount_cents"), n=Count()),
                    ["SELECT status, sum(amount_cents), count(*) FROM bench_orders "
                     "GROUP BY status ORDER BY status"],
                    [None],
                ),
                (
                    "group-by sum (status: sum, count), where(customer=X)",
                    lambda c: RowQuery(orders)
                    .where(customer=c)
                    .group_by("status")
                    .aggregate(total=Sum("amount_cents"), n=Count()),
                    ["SELECT status, sum(amount_cents), count(*) FROM bench_orders "
                     "WHERE customer_id = :k GROUP BY status ORDER BY status"],
                    rng.sample(customers, 10),
                ),
                (
                    "count(), whole register",
                    lambda k: RowQuery(orders).count(),
                    ["SELECT count(*) FROM bench_orders"],
                    [None],
                ),
                (
                    "count(), where(status=S)",
                    lambda s: RowQuery(orders).where(status=s).count(),
                    ["SELECT count(*) FROM bench_orders WHERE status = :k"],
                    ["paid", "void"],
                ),
                (
                    "count(), where(customer=X)",
                    lambda c: RowQuery(orders).where(customer=c).count(),
                    ["SELECT count(*) FROM bench_orders WHERE customer_id = :k"],
                    rng.sample(customers, 10),
                ),
                (
                    "facets(status, channel), whole register",
                    lambda k: RowQuery(orders).facets("status", "channel"),
                    [facet_sql.format("status", ""), facet_sql.format("channel", "")],
                    [None],
                ),
                (
                    "facets(status, channel), where(customer=X)",
                    lambda c: RowQuery(orders).where(customer=c).facets("status", "channel"),
                    [facet_sql.format("status", "WHERE customer_id = :k"),
                     facet_sql.format("channel", "WHERE customer_id = :k")],
                    rng.sample(customers, 10),
                ),
            ]  # fmt: skip
            for label, ours_query, statements, keys in queries:
                ours, baseline = _query_pair(engine, ours_query, statements, keys)
                await ours()
                await baseline()
                ours_ms, base_ms = await interleave(ours, baseline, runs)
                rows.append(
                    Row(
                        MODULE,
                        f"{label}, {total:,} rows",
                        ours_ms,
                        "ms/query",
                        "the same SQL on a plain indexed table",
                        base_ms,
                        runs,
                        "",
                    )
                )

            insert_n = 1000

            async def ours_insert() -> float:
                batch = data.rows(insert_n)
                began = time.perf_counter()
                await orders.insert_many(batch)
                return insert_n / (time.perf_counter() - began)

            async def base_insert() -> float:
                batch = data.rows(insert_n)
                began = time.perf_counter()
                await _baseline_insert(engine, batch)
                return insert_n / (time.perf_counter() - began)

            await ours_insert()
            await base_insert()
            ours_rate, base_rate = await interleave(ours_insert, base_insert, runs)
            rows.append(
                Row(
                    MODULE,
                    "insert_many 1,000 rows of the 15-field register",
                    ours_rate,
                    "rows/s",
                    "multi-row INSERT (unnest) into the plain table",
                    base_rate,
                    runs,
                    f"higher is better; loading both took {load_seconds:,.0f} s",
                )
            )

            import_n = 5000

            async def ours_import() -> float:
                payload = _register_csv(data.rows(import_n))
                began = time.perf_counter()
                report = await orders.import_csv([payload], batch_size=1000)
                assert report.written == import_n, report.errors[:3]
                return import_n / (time.perf_counter() - began)

            async def base_copy() -> float:
                payload = _baseline_csv(data.rows(import_n))
                began = time.perf_counter()
                await _baseline_copy(engine, payload)
                return import_n / (time.perf_counter() - began)

            await ours_import()
            await base_copy()
            ours_rate, base_rate = await interleave(ours_import, base_copy, runs)
            rows.append(
                Row(
                    MODULE,
                    "CSV import rows/s (import_csv, 5,000 rows, batches of 1,000)",
                    ours_rate,
                    "rows/s",
                    "COPY FROM STDIN (csv) into the plain table",
                    base_rate,
                    runs,
                    "higher is better; COPY fills the generated search vector too",
                )
            )
            return rows
        finally:
            await close_engine()


if __name__ == "__main__":
    main(run)
