# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Property: any generated query returns exactly what the same query returns over the
in-memory source, which evaluates the plan in plain Python — same rows, same order, same
pages, same counts and facets."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from forktex_core.data import Field, MemoryRegister, Period, Q, Register, RowQuery

TEXT_OPS = ("contains", "icontains", "not_contains", "not_icontains", "starts_with")
PERIODS = st.sampled_from(
    [Period.today(), Period.yesterday(), Period.last_days(3), Period.next_days(4),
     Period.this_month(), Period.last_month()]
)  # fmt: skip
NOW = datetime(2026, 1, 10, 23, 30, tzinfo=UTC)  # already the 11th in Berlin

FIELDS = [
    Field("name", "text"),
    Field("n", "integer", indexed=True),
    Field("price", "decimal"),
    Field("ok", "boolean"),
    Field("day", "date", indexed=True),
    Field("status", "single_select", choices=("draft", "sent", "paid")),
    Field("tags", "multi_select", choices=("x", "y", "z")),
    # stored formula fields: filtered, sorted and faceted like the fields they are computed from
    Field("total", "decimal", formula="{price} * {n}", indexed=True),
    Field("shout", "text", formula="upper({name})"),
]
FORMULAS = ("total", "shout")
TEXTS = ["", "a", "ab", "b", "ba", "A", "a_b", "a%", "é", "É", "ab c"]
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(TEXTS),
    "n": st.integers(-3, 3),
    "price": st.sampled_from([Decimal("0"), Decimal("1.5"), Decimal("-2"), Decimal("10")]),
    "ok": st.booleans(),
    "day": st.dates(date(2026, 1, 1), date(2026, 1, 20)),
    "status": st.sampled_from(["draft", "sent", "paid"]),
    "tags": st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=2),
    "total": st.sampled_from([Decimal("0"), Decimal("3"), Decimal("-4.5"), Decimal("30")]),
    "shout": st.sampled_from([t.upper() for t in TEXTS]),
}


def _row(rng: random.Random) -> dict[str, Any]:
    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.15 else value

    return {
        "name": maybe(rng.choice(TEXTS)),
        "n": maybe(rng.randint(-3, 3)),
        "price": maybe(rng.choice(["0", "1.5", "-2", "10", "3.25"])),
        "ok": maybe(rng.random() < 0.5),
        "day": maybe(date(2026, 1, 1) + timedelta(days=rng.randint(0, 19))),
        "status": maybe(rng.choice(["draft", "sent", "paid"])),
        "tags": [t for t in "xyz" if rng.random() < 0.4],
    }


@st.composite
def conditions(draw: st.DrawFn) -> tuple[str, str, Any]:
    f = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(sorted(f.operators)))
    value: Any
    if op == "is_null":
        value = draw(st.booleans())
    elif op == "in":
        value = draw(st.lists(VALUES[f.name], max_size=3))
    elif op == "between":
        value = [draw(VALUES[f.name]), draw(VALUES[f.name])]
    elif op in TEXT_OPS and f.kind.value == "text":
        value = draw(st.sampled_from(TEXTS))
    elif op == "during":
        value = draw(PERIODS)
    elif op == "not_contains" and f.name == "tags":
        value = draw(VALUES["tags"])
    else:
        value = draw(VALUES[f.name])
    return f.name, op, value


@st.composite
def groups(draw: st.DrawFn, depth: int = 2) -> Q:
    """A Q expression: conditions combined with |, & and ~, nested up to ``depth``."""
    if depth == 0 or draw(st.booleans()):
        name, op, value = draw(conditions())
        q = Q({f"{name}__{op}": value})
    else:
        parts = draw(st.lists(groups(depth - 1), min_size=1, max_size=3))
        q = parts[0]
        for part in parts[1:]:
            q = q | part if draw(st.booleans()) else q & part
    return ~q if draw(st.integers(0, 3)) == 0 else q


# Search text: words of the data, absent words, operators, quotes and punctuation-only
# "words" (a search with no words at all matches nothing, on both sides).
searches = (
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "a",
                    "ab",
                    "b",
                    "ba",
                    "A",
                    "é",
                    "draft",
                    "paid",
                    "x",
                    "z",
                    "zz",
                    "or",
                    "OR",
                    "a*",
                    "dr*",
                ]
            ),
            st.sampled_from(['"ab c"', '"c ab"', "a_b", "-a", "-paid", '-"ab c"', "a-b", "É"]),
            st.text(alphabet=' -"_%!.*aAbBé', min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=4,
    )
    .map(" ".join)
    .filter(lambda s: s.strip() != "")
)

orders = st.lists(
    st.tuples(
        st.sampled_from(
            ["name", "n", "price", "ok", "day", "status", "id", "archived_at", *FORMULAS]
        ),
        st.booleans(),
    ),
    max_size=3,
    unique_by=lambda t: t[0],
)


class World:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine: AsyncEngine | None = None
        self.pg: Register | None = None
        self.mem: MemoryRegister | None = None

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def world(data_db: Any) -> Iterator[World]:
    w = World()

    async def setup() -> None:
        w.engine = create_async_engine(data_db.url, pool_size=2)
        tenant = uuid.uuid4()
        w.pg = await Register.create("prop", tenant_id=tenant, fields=FIELDS, engine=w.engine)
        rng = random.Random(7)
        rows = [_row(rng) for _ in range(80)]
        inserted = await w.pg.insert_many(rows)
        await w.pg.archive(inserted[0].id)
        w.mem = MemoryRegister(
            "prop",
            FIELDS,
            rows=[
                {"id": r.id, "archived_at": r.archived_at}
                | {k: v for k, v in r.values.items() if k not in FORMULAS}  # computed there too
                for r in inserted
            ],
        )
        await w.mem.archive_rows(await RowQuery(w.mem).where(id=inserted[0].id).plan(), True)
        computed = {r.id: dict(r.values) for r in await RowQuery(w.mem).with_archived().all()}
        assert computed == {r.id: dict(r.values) for r in inserted}  # formulas agree

    w.run(setup())
    yield w
    assert w.engine is not None
    w.run(w.engine.dispose())
    w.loop.close()


async def _walk(query: RowQuery, size: int) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    cursor = None
    for _ in range(200):
        page = await query.scroll(page_size=size, cursor=cursor)
        seen += [r.id for r in page]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("scroll did not end")


@settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    filters=st.lists(st.one_of(conditions(), groups()), max_size=3),
    order=orders,
    size=st.integers(1, 9),
    archived=st.sampled_from(["active", "archived", "all"]),
    facet=st.sampled_from(["name", "n", "ok", "status", "tags", "day", *FORMULAS]),
    search=st.one_of(st.none(), searches),
)
@example(filters=[], order=[("id", False), ("name", False)], size=1, archived="active",
         facet="name", search=None)  # fmt: skip
@example(filters=[], order=[], size=3, archived="all", facet="name", search="!!!")
def test_postgres_matches_python_evaluation(
    world: World,
    filters: list[tuple[str, str, Any] | Q],
    order: list[tuple[str, bool]],
    size: int,
    archived: str,
    facet: str,
    search: str | None,
) -> None:
    async def check() -> None:
        assert world.pg is not None and world.mem is not None
        results = []
        for source in (world.pg, world.mem):
            q = RowQuery(source, clock=lambda: NOW, timezone=ZoneInfo("Europe/Berlin"))
            for item in filters:
                q = q.where(item) if isinstance(item, Q) else q.filter(*item)
            q = q.order_by(*[("-" if desc else "") + name for name, desc in order])
            if search is not None:
                q = q.search(search)
            if archived == "archived":
                q = q.archived()
            elif archived == "all":
                q = q.with_archived()
            everything = [r.id for r in await q.all()]
            walked = await _walk(q, size)
            second = await q.paginate(page=2, size=size)
            facets = await q.facets(facet, limit=5)
            results.append(
                (everything, walked, [r.id for r in second], second.total, facets, await q.count())
            )
        pg, mem = results
        assert pg[0] == mem[0]
        assert pg[1] == pg[0]  # scrolling visits every row once, in order
        assert pg == mem

    world.run(check())
