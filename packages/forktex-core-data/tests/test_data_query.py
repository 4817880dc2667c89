# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""RowQuery on Postgres and in memory: every operator, ordering, paginate / scroll (also
under concurrent inserts), search, facets, archive / restore / delete, and bad input."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    Field,
    InvalidCursor,
    InvalidQuery,
    InvalidValue,
    MemoryRegister,
    Register,
    RegisterSource,
    RowQuery,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FIELDS = [
    Field("name", "text"),
    Field("n", "integer", indexed=True),
    Field("price", "decimal"),
    Field("ok", "boolean"),
    Field("day", "date"),
    Field("at", "datetime"),
    Field("mail", "email"),
    Field("site", "url"),
    Field("status", "single_select", choices=("draft", "sent", "paid")),
    Field("tags", "multi_select", choices=("red", "green", "blue")),
    Field("meta", "json"),
]


def _rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(12):
        rows.append(
            {
                "id": uuid.UUID(int=(0x0190 << 112) + i + 1),
                "name": None if i == 11 else f"{'Alpha' if i % 2 else 'beta'} item {i} 100%_off",
                "n": None if i == 10 else i % 5,
                "price": Decimal(i) / 4,
                "ok": None if i == 9 else i % 3 == 0,
                "day": date(2026, 1, 1) + timedelta(days=i),
                "at": T0 + timedelta(hours=i * 7),
                "mail": f"u{i}@example.com",
                "site": f"https://s{i % 3}.example.com/p",
                "status": ("draft", "sent", "paid")[i % 3],
                "tags": [("red", "green", "blue")[j] for j in range(3) if (i >> j) & 1],
                "meta": {"i": i, "even": i % 2 == 0, "list": [i, "x"]},
            }
        )
    return rows


@pytest.fixture
async def sources(engine: AsyncEngine, tenant: uuid.UUID) -> tuple[Register, MemoryRegister]:
    pg = await Register.create("things", tenant_id=tenant, fields=FIELDS, date_field="day")
    rows = _rows()
    inserted = await pg.insert_many([{k: v for k, v in r.items() if k != "id"} for r in rows])
    for row, new in zip(rows, inserted, strict=True):
        row["id"] = new.id
    mem = MemoryRegister("things", FIELDS, rows=rows, date_field="day")
    return pg, mem


CASES: list[tuple[dict[str, Any], int]] = [
    ({"status": "paid"}, 4),
    ({"status__ne": "paid"}, 8),
    ({"status__in": ["paid", "sent"]}, 8),
    ({"status__in": []}, 0),
    ({"n": 3}, 2),
    ({"n__ne": 3}, 10),  # keeps the row without n
    ({"n__lt": 2}, 5),
    ({"n__lte": 2}, 7),
    ({"n__gt": 2}, 4),
    ({"n__gte": "2"}, 6),
    ({"n__between": [1, 3]}, 7),
    ({"n__in": [0, 4]}, 4),
    ({"n__is_null": True}, 1),
    ({"n": None}, 1),
    ({"n__ne": None}, 11),
    ({"price__gt": "1.5"}, 5),
    ({"price__between": [Decimal("0.5"), 1]}, 3),
    ({"ok": True}, 3),
    ({"ok": False}, 8),
    ({"ok__ne": True}, 9),
    ({"day__gte": date(2026, 1, 10)}, 3),
    ({"at__lt": T0 + timedelta(hours=14)}, 2),
    ({"mail": "U3@Example.com"}, 1),
    ({"mail__starts_with": "u1"}, 3),
    ({"site__contains": "s1."}, 4),
    ({"name__contains": "Alpha"}, 5),
    ({"name__contains": "100%_"}, 11),
    ({"name__starts_with": "beta item 1"}, 1),
    ({"name__starts_with": "beta%"}, 0),
    ({"name__lt": "b"}, 5),
    ({"name__is_null": True}, 1),
    ({"tags__contains": "red"}, 6),
    ({"tags__contains": ["red", "green"]}, 3),
    ({"tags": ["green", "red"]}, 2),
    ({"tags__is_null": True}, 2),
    ({"meta__contains": {"even": True}}, 6),
    ({"meta__contains": {"list": ["x"]}}, 12),
    ({"meta": {"i": 3, "even": False, "list": [3, "x"]}}, 1),
    ({"id__in": []}, 0),
    ({"created_at__lte": datetime(2100, 1, 1, tzinfo=UTC)}, 12),
]


@pytest.mark.parametrize(("filters", "expected"), CASES, ids=[str(c[0]) for c in CASES])
async def test_every_operator_agrees_with_memory(
    sources: tuple[Register, MemoryRegister], filters: dict[str, Any], expected: int
) -> None:
    pg, mem = sources
    got_pg = [r.id for r in await RowQuery(pg).where(filters).all()]
    got_mem = [r.id for r in await RowQuery(mem).where(filters).all()]
    assert got_pg == got_mem
    assert len(got_pg) == expected
    assert await RowQuery(pg).where(filters).count() == expected


async def test_ordering_with_nulls_and_ties(sources: tuple[Register, MemoryRegister]) -> None:
    pg, mem = sources
    for order in (("n", "-price"), ("-n",), ("-ok", "name"), ("status", "-at"), ("-name",)):
        a = [r.id for r in await RowQuery(pg).order_by(*order).all()]
        b = [r.id for r in await RowQuery(mem).order_by(*order).all()]
        assert a == b, order
    rows = await RowQuery(pg).order_by("n").all()
    assert rows[-1]["n"] is None  # NULL sorts last ascending ...
    assert (await RowQuery(pg).order_by("-n").first()) == rows[-1]  # ... and first descending


@pytest.mark.parametrize("order", [("-at",), ("n",), ("-n", "name"), ("ok", "-day"), ()])
async def test_scroll_and_paginate_walk_everything(
    sources: tuple[Register, MemoryRegister], order: tuple[str, ...]
) -> None:
    for source in sources:
        query = RowQuery(source).order_by(*order)
        expected = [r.id for r in await query.all()]
        seen: list[uuid.UUID] = []
        cursor = None
        while True:
            page = await query.scroll(page_size=5, cursor=cursor)
            seen += [r.id for r in page]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected
        pages = [await query.paginate(page=p, size=5) for p in (1, 2, 3, 4)]
        assert [r.id for p in pages for r in p] == expected
        assert pages[0].total == 12 and pages[0].pages == 3 and pages[0].has_more
        assert not pages[2].has_more and pages[3].items == ()


async def test_since_until_and_the_spec_sketch(sources: tuple[Register, MemoryRegister]) -> None:
    pg, mem = sources
    for source in (pg, mem):
        q = RowQuery(source).since(date(2026, 1, 3)).until(date(2026, 1, 5))
        assert sorted(r["day"].day for r in await q.all()) == [3, 4, 5]
        at = (
            RowQuery(source).since(date(2026, 1, 2), field="at").until(date(2026, 1, 3), field="at")
        )
        assert await at.count() == len([i for i in range(12) if 24 <= i * 7 < 72])
    handle = Register.load("things", tenant_id=pg.tenant_id)
    result = await (
        RowQuery(handle)
        .where(status="paid")
        .since(date(2026, 1, 1))
        .order_by("-at")
        .scroll(page_size=2)
    )
    assert [r["status"] for r in result] == ["paid", "paid"] and result.next_cursor
    with pytest.raises(InvalidQuery, match="needs a date or datetime field; 'n' is integer"):
        await RowQuery(pg).since(date(2026, 1, 1), field="n").count()
    two_dates = MemoryRegister("x", [Field("a", "date"), Field("b", "date")])
    with pytest.raises(InvalidQuery, match="cannot pick a date field"):
        await RowQuery(two_dates).since(date(2026, 1, 1)).count()
    with pytest.raises(InvalidValue, match="takes a date, got a datetime"):
        await RowQuery(pg).since(T0).count()
    assert await RowQuery(MemoryRegister("y", [])).since(date(2000, 1, 1)).count() == 0


async def test_scroll_is_stable_under_concurrent_inserts(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    reg = await Register.create(
        "feed", tenant_id=tenant, fields=[Field("score", "integer", indexed=True)]
    )
    await reg.insert_many([{"score": i % 7} for i in range(300)])
    original = {r.id for r in await RowQuery(reg).all()}
    stop = asyncio.Event()

    async def writer() -> int:
        written = 0
        while not stop.is_set():
            await reg.insert_many([{"score": s} for s in (0, 3, 6, None)])
            written += 4
            await asyncio.sleep(0)
        return written

    task = asyncio.create_task(writer())
    seen: list[uuid.UUID] = []
    cursor = None
    query = RowQuery(reg).order_by("-score")
    while True:
        page = await query.scroll(page_size=17, cursor=cursor)
        seen += [r.id for r in page]
        await asyncio.sleep(0.005)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    stop.set()
    assert await task > 0
    assert len(seen) == len(set(seen))  # no row twice
    assert original <= set(seen)  # no pre-existing row skipped


async def test_search(sources: tuple[Register, MemoryRegister]) -> None:
    pg, mem = sources
    for source in (pg, mem):
        assert await RowQuery(source).search("alpha").count() == 5
        assert await RowQuery(source).search("ALPHA item 3").count() == 1
        assert await RowQuery(source).search("paid").count() == 4  # select values are text too
        assert await RowQuery(source).search("blue green").count() == 2
        assert await RowQuery(source).search("nothing-like-this").count() == 0
        assert await RowQuery(source).search('"item 3" or "item 5"').count() == 2
        assert await RowQuery(source).search("alpha -paid").count() == 4
        assert await RowQuery(source).search('-"alpha item"').count() == 7
        assert await RowQuery(source).search("item_3").count() == 1  # a phrase of its words
        assert await RowQuery(source).search("U3@EXAMPLE.com").count() == 1
        for wordless in ("!!!", "-", '""', "_ %", "- or"):
            assert await RowQuery(source).search(wordless).count() == 0, wordless
    for bad in ("", "  ", 3):
        with pytest.raises(InvalidQuery, match="non-empty text"):
            RowQuery(pg).search(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="NUL"):
        RowQuery(pg).search("a\x00")


async def test_facets(sources: tuple[Register, MemoryRegister]) -> None:
    pg, mem = sources
    for source in (pg, mem):
        facets = await RowQuery(source).where(n__ne=0).facets("status", "tags", "n", "ok")
        assert [(f.value, f.count) for f in facets["status"]] == [
            ("sent", 4), ("draft", 3), ("paid", 3),
        ]  # fmt: skip
        assert [(f.value, f.count) for f in facets["tags"]] == [
            ("green", 6), ("red", 5), ("blue", 3), (None, 1),
        ]  # fmt: skip
        assert facets["n"][-1].value is None
        assert sum(f.count for f in facets["ok"]) == 10
        top = await RowQuery(source).facets("price", limit=2)
        assert len(top["price"]) == 2 and top["price"][0].count == 1
        assert top["price"][0].value == Decimal(0)
        with pytest.raises(InvalidQuery, match="cannot facet on 'meta'"):
            await RowQuery(source).facets("meta")
        with pytest.raises(InvalidQuery, match="at least one field"):
            await RowQuery(source).facets()
        with pytest.raises(InvalidQuery, match="no field 'nope'"):
            await RowQuery(source).facets("nope")
        with pytest.raises(InvalidQuery, match="limit must be"):
            await RowQuery(source).facets("status", limit=0)


async def test_archive_restore_delete_through_queries(
    sources: tuple[Register, MemoryRegister],
) -> None:
    for source in sources:
        assert await RowQuery(source).where(status="draft").archive() == 4
        assert await RowQuery(source).where(status="draft").archive() == 0
        assert await RowQuery(source).count() == 8
        assert await RowQuery(source).archived().count() == 4
        assert await RowQuery(source).with_archived().count() == 12
        assert all(r.archived for r in await RowQuery(source).archived().all())
        assert await RowQuery(source).where(n=0).restore() == 1
        assert await RowQuery(source).archived().where(n__gte=3).delete() == 2
        assert await RowQuery(source).with_archived().count() == 10
        assert await RowQuery(source).where(status="draft").count() == 1


async def test_archived_at_is_filterable_and_sortable(
    sources: tuple[Register, MemoryRegister],
) -> None:
    for source in sources:
        for status in ("draft", "sent"):
            await RowQuery(source).where(status=status).archive()
            await asyncio.sleep(0.002)  # two distinct archive times
        everything = await RowQuery(source).with_archived().all()
        archived = [r for r in everything if r.archived_at is not None]
        assert len(archived) == 8
        q = RowQuery(source).with_archived()
        assert await q.where(archived_at__is_null=False).count() == 8
        assert await q.where(archived_at=None).count() == 4
        assert await RowQuery(source).where(archived_at__is_null=False).count() == 0
        first_batch = min(r.archived_at for r in archived)  # type: ignore[type-var]
        assert await q.where(archived_at__gt=first_batch).count() == 4
        assert await q.since(first_batch, field="archived_at").count() == 8
        newest = await q.order_by("-archived_at").all()
        assert all(r.archived_at is None for r in newest[:4])  # NULL is the largest value
        assert [r.archived_at for r in newest[4:]] == sorted(
            (r.archived_at for r in archived), reverse=True
        )
        oldest = q.order_by("archived_at", "-n")
        expected = [r.id for r in await oldest.all()]
        walked: list[uuid.UUID] = []
        cursor = None
        while True:
            page = await oldest.scroll(page_size=3, cursor=cursor)
            walked += [r.id for r in page]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == expected and len(walked) == 12
        with pytest.raises(InvalidQuery, match="cannot facet"):
            await q.facets("archived_at")


async def test_query_bad_input(sources: tuple[Register, MemoryRegister]) -> None:
    pg, mem = sources
    for source in (pg, mem):
        q = RowQuery(source)
        cases: list[tuple[Any, type, str]] = [
            (q.where(nope=1), InvalidQuery, r"no field 'nope'; fields: 'name'"),
            (q.where(n__bigger=1), InvalidQuery, "unknown operator 'bigger'.*eq, gt"),
            (q.where(nope__gt=1), InvalidQuery, "no field 'nope';"),
            (q.where(nope__zz=1), InvalidQuery, "no field 'nope__zz'"),
            (q.where(n__contains=1), InvalidQuery, "'contains' does not apply to field 'n'"),
            (q.where(ok__gt=True), InvalidQuery, r"allowed: eq, is_null, ne"),
            (q.where(n="seven"), InvalidValue, r"field 'n' \(integer\) cannot take 'seven'"),
            (q.where(status="void"), InvalidValue, "one of 'draft', 'sent', 'paid'"),
            (q.where(n__in=5), InvalidQuery, "takes a list"),
            (q.where(n__in="12"), InvalidQuery, "takes a list"),
            (q.where(n__in=[1, None]), InvalidQuery, "cannot hold None"),
            (q.where(n__between=[1]), InvalidQuery, r"takes \[low, high\]"),
            (q.where(n__is_null="yes"), InvalidQuery, "True or False"),
            (q.where(n__gt=None), InvalidQuery, "cannot compare with None"),
            (q.where(name__contains=5), InvalidQuery, "takes a string"),
            (q.where(meta__contains=None), InvalidQuery, "JSON value"),
            (q.where(tags__contains="pink"), InvalidValue, "list of choices"),
            (q.filter("n", "gt", "x"), InvalidValue, "'n'"),
            (q.order_by("meta"), InvalidQuery, "cannot sort by 'meta' .*sortable fields"),
            (q.order_by("tags"), InvalidQuery, "cannot sort by 'tags'"),
            (q.order_by("ghost"), InvalidQuery, "no field 'ghost'"),
            (q.order_by("n", "-n"), InvalidQuery, "names 'n' twice"),
            (q.include("name"), InvalidQuery, "include.. takes reference fields"),
        ]
        for query, error, message in cases:
            with pytest.raises(error, match=message):
                await query.all()
        sync_cases: list[tuple[Any, str]] = [
            (lambda: RowQuery("invoices"), "needs a register"),  # type: ignore[arg-type]
            (lambda q=q: q.where(["n"]), "mapping"),
            (lambda q=q: q.where({1: 2}), "field names"),
            (lambda q=q: q.filter("n", "nope", 1), "unknown operator 'nope'"),
            (lambda q=q: q.filter(3, "eq", 1), r"takes \(field, op, value\)"),
            (lambda q=q: q.order_by("-"), "field names"),
            (lambda q=q: q.order_by(3), "field names"),
            (lambda q=q: q.since("2026-01-01"), "date or datetime"),
            (lambda q=q: q.until(datetime(2026, 1, 1)), "timezone-aware"),
            (lambda q=q: q.since(date(2026, 1, 1), field=3), "field name"),
            (lambda q=q: q.include(3), "reference field names"),
        ]
        for call, message in sync_cases:
            with pytest.raises(InvalidQuery, match=message):
                call()
        for kwargs in ({"page_size": 0}, {"page_size": 1001}, {"page_size": True}):
            with pytest.raises(InvalidQuery, match="page_size must be an int from 1 to 1000"):
                await q.scroll(**kwargs)
        for page, size in ((0, 5), (1, 0), ("1", 5)):
            with pytest.raises(InvalidQuery):
                await q.paginate(page=page, size=size)  # type: ignore[arg-type]
        with pytest.raises(InvalidQuery, match="limit must be"):
            await q.all(limit=-1)
        first = await q.order_by("n").scroll(page_size=2)
        assert first.next_cursor is not None
        with pytest.raises(InvalidCursor, match="belongs to another query"):
            await q.order_by("-n").scroll(page_size=2, cursor=first.next_cursor)
        with pytest.raises(InvalidCursor, match="another query"):
            await q.order_by("n").where(n=1).scroll(cursor=first.next_cursor)
        for bad in ("garbage", "e30", first.next_cursor[:-3], 5, ""):
            with pytest.raises(InvalidCursor):
                await q.order_by("n").scroll(cursor=bad)  # type: ignore[arg-type]
        assert isinstance(source, RegisterSource)
        assert "RowQuery(" in repr(q.where(n=1).order_by("n"))
