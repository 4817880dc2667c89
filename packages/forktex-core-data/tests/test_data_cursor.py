# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every cursor ``scroll()`` mints is accepted back: sort keys are bounded (text sorts by
its first 256 characters), so a cursor never outgrows the length ``decode`` accepts for
its query — whatever the values, the types and the number of sort fields."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import Field, MemoryRegister, Register, RowQuery
from forktex_core.data._cursor import max_length
from forktex_core.data._limits import SORT_CHARS

FIELDS = [
    Field("t", "text", indexed=True),
    Field("u", "text"),
    Field("mail", "email"),
    Field("site", "url"),
    Field("s", "single_select", choices=("a" * 400, "b" * 400, "\x01" * 300)),
    Field("n", "integer"),
    Field("d", "decimal"),
    Field("ok", "boolean"),
    Field("day", "date"),
    Field("at", "datetime"),
]
SORTABLE = ["t", "u", "mail", "site", "s", "n", "d", "ok", "day", "at", "created_at", "id"]

WORST = [
    "\x01" * 7000,  # every character a 6-byte JSON escape
    "\U0010ffff" * 7000,  # 4 bytes of UTF-8 each
    "x" * 7000,
    "x" * SORT_CHARS + "a",
    "x" * SORT_CHARS + "b",
    "x" * (SORT_CHARS - 1),
    "",
]
DECIMALS = [
    Decimal("-0." + "0" * 99 + "9" * 250),
    Decimal("9" * 101 + "." + "9" * 149),
    Decimal("-" + "9" * 101),
]


def _rows() -> list[dict[str, Any]]:
    rows = []
    for i, t in enumerate(WORST * 3):
        rows.append(
            {
                "t": t,
                "u": WORST[(i + 1) % len(WORST)],
                "mail": f"{'m' * 60}{i % 4}@{'d' * 60}.example.com",
                "site": "https://example.com/" + "p" * 2000 + str(i % 2),
                "s": FIELDS[4].choices[i % 3],
                "n": [2**63 - 1, -(2**63), 0][i % 3],
                "d": DECIMALS[i % 3],
                "ok": i % 2 == 0,
                "day": date.max if i % 2 else date.min,
                "at": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            }
        )
    return rows


@pytest.fixture
async def sources(engine: AsyncEngine, tenant: uuid.UUID) -> tuple[Register, MemoryRegister]:
    pg = await Register.create("cursors", tenant_id=tenant, fields=FIELDS)
    inserted = await pg.insert_many(_rows())
    mem = MemoryRegister(
        "cursors",
        FIELDS,
        rows=[{"id": r.id, "created_at": r.created_at, **r.values} for r in inserted],
    )
    return pg, mem


async def _walk(query: RowQuery) -> list[uuid.UUID]:
    plan = await query.plan()
    seen: list[uuid.UUID] = []
    cursor = None
    for _ in range(100):
        page = await query.scroll(page_size=1, cursor=cursor)
        seen += [r.id for r in page]
        if page.next_cursor is None:
            return seen
        assert len(page.next_cursor) <= max_length(plan)
        cursor = page.next_cursor
    raise AssertionError("scroll did not end")


@pytest.mark.parametrize(
    "order",
    [("t",), ("-t",), ("-u", "t"), ("s", "-site", "mail"), ("-d", "n", "-t"), ("-at", "day")],
)
async def test_huge_sort_values_scroll_to_the_end(
    sources: tuple[Register, MemoryRegister], order: tuple[str, ...]
) -> None:
    pg, mem = sources
    expected = [r.id for r in await RowQuery(pg).order_by(*order).all()]
    assert expected == [r.id for r in await RowQuery(mem).order_by(*order).all()]
    for source in sources:
        assert await _walk(RowQuery(source).order_by(*order)) == expected


async def test_text_sorts_by_its_first_characters_then_by_row_id(
    sources: tuple[Register, MemoryRegister],
) -> None:
    pg, _ = sources
    rows = await RowQuery(pg).where(t__starts_with="x" * SORT_CHARS).order_by("t").all()
    # "x"*256 + "a" and "x"*256 + "b" share their sort key: the row id decides
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert sorted({len(r["t"]) for r in rows}) == [SORT_CHARS + 1, 7000]
    # filters still compare whole values
    texts = [r["t"] for r in _rows()]
    cases: list[tuple[dict[str, Any], int]] = [
        ({"t": "x" * SORT_CHARS + "b"}, 3),
        ({"t__gt": "x" * SORT_CHARS + "a"}, sum(t > "x" * SORT_CHARS + "a" for t in texts)),
        ({"t__lte": "x" * 7000}, sum(t <= "x" * 7000 for t in texts)),
        ({"t__in": ["x" * SORT_CHARS + "a", "zz", "x" * 7000]}, 6),
        ({"t__between": ["x" * 7000, "x" * 7001]}, 3),
        ({"t__starts_with": "x" * 300}, 3),
        ({"t__ne": "x" * 7000}, len(texts) - 3),
    ]
    for filters, expected in cases:
        for source in sources:
            assert await RowQuery(source).where(filters).count() == expected, filters


worst_text = st.one_of(
    st.sampled_from(WORST),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=400),
)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    texts=st.lists(worst_text, min_size=2, max_size=6),
    order=st.lists(
        st.tuples(st.sampled_from(SORTABLE), st.booleans()),
        min_size=1,
        max_size=8,
        unique_by=lambda t: t[0],
    ),
)
async def test_every_minted_cursor_is_accepted(
    texts: list[str], order: list[tuple[str, bool]]
) -> None:
    rows = [{**row, "t": t, "u": t[::-1]} for row, t in zip(_rows(), texts, strict=False)]
    mem = MemoryRegister("cursors", FIELDS, rows=rows)
    query = RowQuery(mem).order_by(*[("-" if desc else "") + name for name, desc in order])
    assert await _walk(query) == [r.id for r in await query.all()]
