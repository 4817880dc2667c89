# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""group_by / aggregate on Postgres and in memory: every function, grouping by text,
select, multi_select, boolean and reference fields, filters and archive modes, empty
results, typed values, and bad input."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    AggregateRow,
    Avg,
    Count,
    Field,
    InvalidQuery,
    Max,
    MemoryRegister,
    Min,
    Q,
    Register,
    RegisterSource,
    RowQuery,
    Sum,
)
from forktex_core.data._aggregates import check_aggregates
from forktex_core.data._compile import aggregate_sql

FIELDS = [
    Field("name", "text"),
    Field("qty", "integer"),
    Field("total", "decimal"),
    Field("paid", "boolean"),
    Field("due", "date"),
    Field("status", "single_select", choices=("draft", "paid", "void")),
    Field("tags", "multi_select", choices=("vip", "late")),
    Field("meta", "json"),
]
ROWS: list[dict[str, Any]] = [
    {"name": "a", "qty": 2, "total": "10.50", "paid": True, "due": "2026-01-05",
     "status": "paid", "tags": ["vip"]},
    {"name": "b", "qty": 3, "total": "4.25", "paid": True, "due": "2026-02-01",
     "status": "paid", "tags": ["vip", "late"]},
    {"name": "c", "qty": None, "total": "100", "paid": False, "due": None,
     "status": "draft", "tags": []},
    {"name": "d", "qty": 8, "total": None, "paid": None, "due": "2025-12-31",
     "status": None, "tags": ["late"]},
]  # fmt: skip


def _indexed(f: Field) -> Field:
    return Field(
        f.name,
        f.kind.value,
        choices=f.choices,
        indexed=f.kind.value not in ("json", "multi_select"),
    )


@pytest.fixture(params=["postgres", "postgres-indexed", "memory"])
async def source(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryRegister("sales", FIELDS, rows=ROWS)
        return
    # Indexed fields are grouped by their indexed expression, read from the documents
    # directly; others through a subquery: both give the same groups.
    fields = [_indexed(f) for f in FIELDS] if request.param == "postgres-indexed" else FIELDS
    reg = await Register.create("sales", tenant_id=uuid.uuid4(), fields=fields)
    await reg.insert_many(ROWS)
    yield reg
    await reg.drop()


async def test_whole_register(source: RegisterSource) -> None:
    [row] = await RowQuery(source).aggregate(
        n=Count(), with_qty=Count("qty"), qty=Sum("qty"), total=Sum("total"),
        mean=Avg("qty"), low=Min("due"), high=Max("total"), first=Min("name"),
    )  # fmt: skip
    assert row.group == {}
    assert row.as_dict() == {
        "n": 4, "with_qty": 3, "qty": 13, "total": Decimal("114.75"),
        "mean": Decimal("4.333333333333333333333333333333333"),
        "low": date(2025, 12, 31), "high": Decimal(100), "first": "a",
    }  # fmt: skip
    assert type(row["qty"]) is int


async def test_group_by_select_in_value_order_none_last(source: RegisterSource) -> None:
    rows = await RowQuery(source).group_by("status").aggregate(n=Count(), total=Sum("total"))
    assert [(r["status"], r["n"], r["total"]) for r in rows] == [
        ("draft", 1, Decimal(100)),
        ("paid", 2, Decimal("14.75")),
        (None, 1, None),
    ]
    assert all(isinstance(r, AggregateRow) for r in rows)


async def test_group_by_multi_select_and_boolean(source: RegisterSource) -> None:
    rows = await RowQuery(source).group_by("tags").aggregate(n=Count(), q=Sum("qty"))
    assert [r.as_dict() for r in rows] == [
        {"tags": "late", "n": 2, "q": 11},
        {"tags": "vip", "n": 2, "q": 5},
        {"tags": None, "n": 1, "q": None},
    ]
    rows = await RowQuery(source).group_by("paid", "tags").aggregate(n=Count())
    assert [(*r.group.values(), r["n"]) for r in rows] == [
        (False, None, 1), (True, "late", 1), (True, "vip", 2), (None, "late", 1),
    ]  # fmt: skip


async def test_filters_apply_before_grouping(source: RegisterSource) -> None:
    q = RowQuery(source).where(Q(status="paid") | Q(qty__gte=5))
    rows = await q.group_by("status").aggregate({"mean total": Avg("total")}, n=Count())
    assert [r.as_dict() for r in rows] == [
        {"status": "paid", "mean total": Decimal("7.375"), "n": 2},
        {"status": None, "mean total": None, "n": 1},
    ]
    [empty] = await RowQuery(source).where(qty__gt=100).aggregate(n=Count(), s=Sum("qty"))
    assert empty.as_dict() == {"n": 0, "s": None}
    assert await RowQuery(source).where(qty__gt=100).group_by("status").aggregate(n=Count()) == []
    limited = await RowQuery(source).group_by("name").aggregate(n=Count(), limit=2)
    assert [r["name"] for r in limited] == ["a", "b"]


async def test_avg_is_exact_to_34_digits(source: RegisterSource) -> None:
    [row] = await RowQuery(source).where(qty__in=[2, 8]).aggregate(mean=Avg("qty"))
    assert row["mean"] == Decimal("5") and str(row["mean"]) == "5"
    [row] = await RowQuery(source).where(qty__in=[2, 8]).aggregate(mean=Avg("total"))
    assert row["mean"] == Decimal("10.5")
    [row] = await RowQuery(source).where(name__in=["a", "b", "c"]).aggregate(m=Avg("total"))
    assert row["m"] == Decimal("38.25")
    [row] = await RowQuery(source).where(name__in=["b", "c", "d"]).aggregate(m=Avg("qty"))
    assert row["m"] == Decimal("5.5")
    [row] = await RowQuery(source).aggregate(m=Avg("qty"))
    assert len(row["m"].as_tuple().digits) == 34


async def test_bad_input(source: RegisterSource) -> None:
    q = RowQuery(source)
    with pytest.raises(InvalidQuery, match="cannot group by 'meta'"):
        await q.group_by("meta").aggregate(n=Count())
    with pytest.raises(InvalidQuery, match="cannot group by 'id'"):
        await q.group_by("id").aggregate(n=Count())
    with pytest.raises(InvalidQuery, match="names 'status' twice"):
        await q.group_by("status", "status").aggregate(n=Count())
    with pytest.raises(InvalidQuery, match=r"Sum\('name'\) does not apply"):
        await q.aggregate(s=Sum("name"))
    with pytest.raises(InvalidQuery, match=r"Min\('paid'\) does not apply"):
        await q.aggregate(s=Min("paid"))
    with pytest.raises(InvalidQuery, match=r"Count\('tags'\) does not apply"):
        await q.aggregate(s=Count("tags"))
    with pytest.raises(InvalidQuery, match="has no field 'nope'"):
        await q.aggregate(s=Max("nope"))
    with pytest.raises(InvalidQuery, match="at least one aggregate"):
        await q.aggregate()
    with pytest.raises(InvalidQuery, match="takes Count"):
        await q.aggregate(n="count")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="also a group_by"):
        await q.group_by("status").aggregate(status=Count())
    with pytest.raises(InvalidQuery, match="limit must be an int"):
        await q.aggregate(n=Count(), limit=0)
    with pytest.raises(InvalidQuery, match="takes a field name"):
        Sum(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match=r"group_by\(\) takes field names"):
        q.group_by(1)  # type: ignore[arg-type]


async def test_long_choices_sharing_their_first_256_characters_stay_apart(
    engine: AsyncEngine,
) -> None:
    # An indexed select is grouped by its index expression (the first 256 characters)
    # only when no choice is longer: these two would fall into one group.
    long_a, long_b = "x" * 256 + "a", "x" * 256 + "b"
    reg = await Register.create(
        "labels",
        tenant_id=uuid.uuid4(),
        fields=[
            Field("label", "single_select", choices=(long_b, long_a, "short"), indexed=True),
            Field("n", "integer", indexed=True),
        ],
    )
    await reg.insert_many([{"label": long_a, "n": 1}, {"label": long_b, "n": 2}, {"n": 4}])
    rows = await RowQuery(reg).group_by("label").aggregate(total=Sum("n"), k=Count())
    assert [(r["label"], r["total"], r["k"]) for r in rows] == [
        (long_b, 2, 1),
        (long_a, 1, 1),
        (None, 4, 1),
    ]
    by_number = await RowQuery(reg).group_by("n").aggregate(k=Count())
    assert [(r["n"], r["k"]) for r in by_number] == [(1, 1), (2, 1), (4, 1)]


async def test_grouping_by_an_indexed_field_hashes_values_not_rows(engine: AsyncEngine) -> None:
    statuses = ("draft", "open", "paid", "void")
    reg = await Register.create(
        "orders",
        tenant_id=uuid.uuid4(),
        fields=[
            Field("status", "single_select", choices=statuses, indexed=True),
            Field("kind", "single_select", choices=statuses),
            Field("amount", "integer"),
            Field("note", "text"),
        ],
    )
    await reg.insert_many(
        [
            {"status": statuses[i % 4], "kind": statuses[i % 3], "amount": i, "note": "n" * 200}
            for i in range(4000)
        ]
    )
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE forktex_data.rows"))

    async def explain(field: str) -> str:
        plan = await RowQuery(reg).group_by(field).plan()
        groups = (plan.info.field(field),)
        checked = check_aggregates(plan.info, [("s", Sum("amount")), ("n", Count())], groups)
        sql = aggregate_sql(plan, groups, checked, reg.id, reg.tenant_id, 1000)
        async with engine.connect() as conn:
            rows = await conn.execute(text("EXPLAIN " + sql.text), sql.params)
            return "\n".join(r[0] for r in rows)

    # The statistics of the indexed field tell the planner there are four groups: it
    # hashes them while reading the documents.
    indexed = await explain("status")
    assert re.search(r"HashAggregate\s+\(cost=[0-9.]+ rows=4 ", indexed), indexed
    # Without statistics the values are read in a subquery first (the planner would
    # guess a group per row otherwise and sort whole rows): it hashes them too.
    plain = await explain("kind")
    assert "HashAggregate" in plain and "Sort Key: ((r.data" not in plain, plain
    rows = await RowQuery(reg).group_by("status").aggregate(s=Sum("amount"), n=Count())
    assert [(r["status"], r["n"]) for r in rows] == [(s, 1000) for s in statuses]
    assert sum(r["s"] for r in rows) == sum(range(4000))
