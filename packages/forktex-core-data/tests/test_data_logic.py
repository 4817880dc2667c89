# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Filter logic on Postgres and in memory: Q expressions (OR / AND / NOT, nested),
icontains / not_contains / not_icontains, relative dates (Period) with the host's clock
and time zone, the compiled SQL staying parameterised and tenant-filtered, and bad input."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    Field,
    InvalidQuery,
    MemoryRegister,
    Period,
    Q,
    Register,
    RegisterSource,
    RowQuery,
)
from forktex_core.data._compile import select_sql

FIELDS = [
    Field("name", "text"),
    Field("total", "integer", indexed=True),
    Field("status", "single_select", choices=("draft", "paid", "void")),
    Field("tags", "multi_select", choices=("vip", "late")),
    Field("due", "date"),
    Field("at", "datetime"),
]
ROWS: list[dict[str, Any]] = [
    {"name": "Äpfel GmbH", "total": 50, "status": "paid", "tags": ["vip"],
     "due": "2026-03-10", "at": "2026-03-10T22:30:00+00:00"},  # 23:30 in Berlin
    {"name": "birne AG", "total": 150, "status": "draft", "tags": [],
     "due": "2026-03-01", "at": "2026-03-10T23:30:00+00:00"},  # the 11th in Berlin
    {"name": "Cherry Ltd", "total": None, "status": "void", "tags": ["late"],
     "due": "2026-02-27", "at": "2026-02-28T12:00:00+00:00"},
    {"name": None, "total": 300, "status": None, "tags": ["vip", "late"],
     "due": None, "at": None},
]  # fmt: skip
NOW = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(params=["postgres", "memory"])
async def source(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryRegister("invoices", FIELDS, rows=ROWS)
        return
    reg = await Register.create("invoices", tenant_id=uuid.uuid4(), fields=FIELDS)
    await reg.insert_many(ROWS)
    yield reg
    await reg.drop()


async def _names(source: RegisterSource, *filters: Any, **kwargs: Any) -> list[str | None]:
    q = RowQuery(source, clock=lambda: NOW, timezone=BERLIN).where(*filters, **kwargs)
    return [r["name"] for r in await q.order_by("total").all()]


async def test_or_and_not_groups(source: RegisterSource) -> None:
    assert await _names(source, Q(status="paid") | Q(total__gte=200)) == ["Äpfel GmbH", None]
    # NOT selects every row its inner filter does not: missing totals included.
    assert await _names(source, ~Q(total__gte=100)) == ["Äpfel GmbH", "Cherry Ltd"]
    nested = (Q(status="draft") | Q(status="void")) & ~Q(tags__contains="late")
    assert await _names(source, nested) == ["birne AG"]
    assert await _names(source, ~(Q(status="paid") | Q(total=None))) == ["birne AG", None]
    assert await _names(source, ~~Q(status="paid")) == ["Äpfel GmbH"]
    # Groups and keywords AND together; a mapping works inside Q as in where().
    assert await _names(source, Q({"total__lt": 200}) | Q(name=None), tags__contains="vip") == [
        "Äpfel GmbH",
        None,
    ]


async def test_contains_variants(source: RegisterSource) -> None:
    assert await _names(source, name__icontains="äPFEL") == ["Äpfel GmbH"]
    assert await _names(source, name__contains="äpfel") == []
    assert await _names(source, name__not_contains="AG") == ["Äpfel GmbH", None, "Cherry Ltd"]
    assert await _names(source, name__not_icontains="l") == ["birne AG", None]
    assert await _names(source, tags__not_contains="vip") == ["birne AG", "Cherry Ltd"]


async def test_relative_dates_follow_the_clock_and_zone(source: RegisterSource) -> None:
    assert await _names(source, due__during=Period.today()) == ["Äpfel GmbH"]
    assert await _names(source, at__during=Period.today()) == ["Äpfel GmbH"]
    assert await _names(source, at__during=Period.next_days(2)) == ["Äpfel GmbH", "birne AG"]
    assert await _names(source, due__during=Period.last_days(10)) == ["Äpfel GmbH", "birne AG"]
    assert await _names(source, due__during=Period.last_month()) == ["Cherry Ltd"]
    assert await _names(source, ~Q(due__during=Period.this_month())) == [None, "Cherry Ltd"]
    utc = RowQuery(source, clock=lambda: NOW).where(at__during=Period.today())
    assert sorted(r["name"] for r in await utc.all()) == ["birne AG", "Äpfel GmbH"]


async def test_clock_is_read_each_time_the_query_runs(source: RegisterSource) -> None:
    moments = iter([NOW, datetime(2026, 3, 1, 9, tzinfo=UTC)])
    q = RowQuery(source, clock=lambda: next(moments)).where(due__during=Period.today())
    assert [r["name"] for r in await q.all()] == ["Äpfel GmbH"]
    assert [r["name"] for r in await q.all()] == ["birne AG"]


def test_period_days() -> None:
    assert Period.this_month().days(date(2026, 12, 31)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert Period.last_month().days(date(2026, 1, 15)) == (date(2025, 12, 1), date(2026, 1, 1))
    assert Period.last_days(7).days(date(2026, 3, 10)) == (date(2026, 3, 4), date(2026, 3, 11))
    with pytest.raises(InvalidQuery, match="outside the years"):
        Period.next_days(5).days(date(9999, 12, 30))


async def test_bad_input(source: RegisterSource) -> None:
    with pytest.raises(InvalidQuery, match="takes another Q"):
        Q(status="paid") | {"total": 5}  # type: ignore[operator]
    with pytest.raises(InvalidQuery, match="keys must be field names"):
        Q({1: 2})
    with pytest.raises(InvalidQuery, match="number of days from 1"):
        Period.last_days(0)
    with pytest.raises(InvalidQuery, match="takes a Period"):
        await RowQuery(source).where(due__during=date(2026, 3, 1)).count()
    with pytest.raises(InvalidQuery, match="'during' does not apply to field 'total'"):
        await RowQuery(source).where(total__during=Period.today()).count()
    with pytest.raises(InvalidQuery, match="'icontains' does not apply to field 'tags'"):
        await RowQuery(source).where(Q(tags__icontains="v") | Q(total=1)).count()
    with pytest.raises(InvalidQuery, match="has no field 'nope'"):
        await RowQuery(source).where(~Q(nope=1)).count()
    naive = RowQuery(source, clock=lambda: datetime(2026, 3, 1))
    with pytest.raises(InvalidQuery, match="timezone-aware"):
        await naive.where(due__during=Period.today()).count()
    with pytest.raises(InvalidQuery, match="timezone must be a tzinfo"):
        RowQuery(source, timezone="Europe/Berlin")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="clock must be a callable"):
        RowQuery(source, clock=NOW)  # type: ignore[arg-type]
    many = Q(total=1)
    for _ in range(1000):
        many = many | Q(total=1)
    with pytest.raises(InvalidQuery, match="at most 1,000 conditions"):
        RowQuery(source).where(many)
    deep = Q(total=1)
    for level in range(40):
        deep = ~deep if level % 2 else deep | Q(total=level)
    with pytest.raises(InvalidQuery, match="nest at most 32 levels deep"):
        RowQuery(source).where(deep)
    fine = Q(total=1)
    for level in range(31):
        fine = fine & Q(name="x") if level % 2 else ~fine
    assert await RowQuery(source).where(fine).count() >= 0


async def test_compiled_sql_is_parameterised_and_tenant_filtered(engine: AsyncEngine) -> None:
    reg = await Register.create("sqlcheck", tenant_id=uuid.uuid4(), fields=FIELDS)
    secret = "x'); DROP TABLE forktex_data.rows; --"
    q = RowQuery(reg).where(~(Q(name__icontains=secret) | Q(name__not_contains=secret)))
    plan = await q.plan()
    sql = select_sql(plan, reg.id, reg.tenant_id, limit=5, offset=0, after=None)
    assert secret not in sql.text and "DROP" not in sql.text
    assert list(sql.params.values()).count(secret) == 2
    assert "r.tenant_id = :p0" in sql.text and sql.params["p0"] == reg.tenant_id
    assert await q.count() == 0
    await reg.drop()


async def _scroll(q: RowQuery) -> list[str | None]:
    names: list[str | None] = []
    cursor = None
    while True:
        page = await q.scroll(page_size=1, cursor=cursor)
        names += [r["name"] for r in page]
        if page.next_cursor is None:
            return names
        cursor = page.next_cursor


async def test_single_select_sorts_by_choice_order(source: RegisterSource) -> None:
    # choices ("draft", "paid", "void"): not alphabetical once reversed; None is last
    assert await _scroll(RowQuery(source).order_by("status")) == [
        "birne AG", "Äpfel GmbH", "Cherry Ltd", None,
    ]  # fmt: skip
    assert await _scroll(RowQuery(source).order_by("-status", "name")) == [
        None, "Cherry Ltd", "Äpfel GmbH", "birne AG",
    ]  # fmt: skip
    reordered = MemoryRegister(
        "r", [Field("s", "single_select", choices=("zeta", "alpha", "mid"))],
        rows=[{"s": "alpha"}, {"s": "mid"}, {"s": "zeta"}],
    )  # fmt: skip
    rows = await RowQuery(reordered).order_by("s").all()
    assert [r["s"] for r in rows] == ["zeta", "alpha", "mid"]


async def test_single_select_cursor_holds_a_checked_rank(source: RegisterSource) -> None:
    import base64
    import json

    from forktex_core.data import InvalidCursor

    q = RowQuery(source).order_by("status")
    page = await q.scroll(page_size=1)
    assert page.next_cursor is not None
    doc = json.loads(base64.urlsafe_b64decode(page.next_cursor + "=="))
    assert doc["k"][0] == 1  # "draft" is the first choice
    doc["k"][0] = 4  # only 3 choices
    edited = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    with pytest.raises(InvalidCursor, match="malformed or edited"):
        await q.scroll(page_size=1, cursor=edited)
