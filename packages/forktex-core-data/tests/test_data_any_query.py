# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Property: any ``RowQuery`` built from arbitrary user input — field names, operators,
values, sorts, search text, date ranges, cursors, page sizes — either runs or raises
data's own error (a :class:`DataError`), over Postgres and in memory. Never a driver
error, never a Python ``ValueError`` / ``OverflowError`` / ``RecursionError`` /
``UnicodeEncodeError`` from deep inside."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from datetime import date, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from forktex_core.data import (
    OPERATORS,
    DataError,
    Field,
    MemoryRegister,
    Register,
    RegisterSource,
    RowQuery,
)

FIELDS = [
    Field("name", "text", indexed=True),
    Field("n", "integer", indexed=True),
    Field("price", "decimal"),
    Field("ok", "boolean"),
    Field("day", "date"),
    Field("at", "datetime", indexed=True),
    Field("mail", "email", unique=True),
    Field("site", "url"),
    Field("status", "single_select", choices=("draft", "paid")),
    Field("tags", "multi_select", choices=("x", "y")),
    Field("meta", "json"),
    Field("other", "reference", target="any"),
]
NAMES = [f.name for f in FIELDS] + ["id", "created_at", "updated_at", "archived_at"]

# Every code point, lone surrogates and NUL included.
text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),
    st.sampled_from(["", " ", "-", "__", "\x00", "\ud800", "a\udfffb", "'; DROP TABLE x; --"]),
    st.integers(0, 3).map(lambda i: ["x" * 300, "é" * 5000, "word " * 3000, "9" * 5000][i]),
)
offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 2**63 - 1]),
    st.sampled_from([1, -1]).map(lambda sign: sign * 10**5000),  # past the int-to-str limit
    st.floats(),
    st.decimals(),
    text,
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), offsets)),
    st.uuids(),
    st.binary(max_size=4),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(text, inner, max_size=3),
        st.integers(1, 3).map(lambda n: [0] * (n * 11_000)),  # past the IN limit
    ),
    max_leaves=6,
)
names = st.one_of(
    st.sampled_from(NAMES),
    st.tuples(st.sampled_from(NAMES), st.sampled_from([*OPERATORS, "bogus"])).map("__".join),
    text,
    st.integers(),
)
sorts = st.lists(st.one_of(names, st.sampled_from(NAMES).map(lambda n: "-" + n)), max_size=10)


def _cursor_from(payload: Any) -> str:
    try:
        raw = json.dumps(payload, default=str)
    except ValueError:  # an int past Python's int-to-str limit: spell it out
        raw = '{"f": "x", "k": [' + "9" * 5000 + "]}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


cursors = st.one_of(
    st.none(),
    text,
    st.builds(lambda f, k: _cursor_from({"f": f, "k": k}), text, st.lists(scalars, max_size=3)),
    st.integers(1, 3000).map(lambda d: _cursor_from({"f": "x", "k": "[" * d})),
    st.integers(100, 4000).map(lambda d: "WwWw" * d),
)
sizes = st.one_of(st.integers(), st.sampled_from([1, 50, 1000, 2**70]), st.none(), text)


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "where": draw(st.lists(st.tuples(names, values), max_size=3)),
        "filter": draw(st.lists(st.tuples(names, st.one_of(names, text), values), max_size=2)),
        "sort": draw(st.one_of(st.none(), sorts)),
        "search": draw(st.one_of(st.none(), text)),
        "range": draw(
            st.one_of(
                st.none(),
                st.tuples(
                    st.sampled_from(["since", "until"]),
                    st.one_of(st.dates(), st.datetimes(timezones=offsets), scalars),
                    st.one_of(st.none(), names),
                ),
            )
        ),
        "archived": draw(st.sampled_from([None, "archived", "with_archived"])),
        "terminal": draw(st.sampled_from(["scroll", "paginate", "all", "count", "facets"])),
        "cursor": draw(cursors),
        "size": draw(sizes),
        "facet": draw(st.lists(names, min_size=0, max_size=2)),
    }


class World:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine: AsyncEngine | None = None
        self.sources: list[RegisterSource] = []


@pytest.fixture(scope="module")
def world(data_db: Any) -> Iterator[World]:
    w = World()

    async def setup() -> None:
        w.engine = create_async_engine(data_db.url, pool_size=2)
        tenant = uuid.uuid4()
        target = await Register.create(
            "any", tenant_id=tenant, fields=[Field("x", "text")], engine=w.engine
        )
        ref = await target.insert({"x": "a"})
        pg = await Register.create("hostile", tenant_id=tenant, fields=FIELDS, engine=w.engine)
        rows: list[dict[str, Any]] = [
            {"name": "alpha", "n": 1, "price": "1.5", "ok": True, "day": date(2026, 1, 1),
             "at": "2026-01-01T10:00:00Z", "mail": "a@example.com", "site": "https://a.example",
             "status": "paid", "tags": ["x"], "meta": {"k": [1, "v"]}, "other": ref.id},
            {"name": "beta " * 80, "n": -5, "status": "draft"},
            {},
        ]  # fmt: skip
        await pg.insert_many(rows)
        mem = MemoryRegister(
            "hostile",
            FIELDS,
            rows=rows,
            targets={"any": MemoryRegister("any", [Field("x", "text")])},
        )
        w.sources = [pg, mem]

    w.loop.run_until_complete(setup())
    yield w
    assert w.engine is not None
    w.loop.run_until_complete(w.engine.dispose())
    w.loop.close()


async def _run(source: RegisterSource, spec: dict[str, Any]) -> None:
    q = RowQuery(source)
    for name, value in spec["where"]:
        q = q.where({name: value})
    for name, op, value in spec["filter"]:
        q = q.filter(name, op, value)
    if spec["sort"] is not None:
        q = q.order_by(*spec["sort"])
    if spec["search"] is not None:
        q = q.search(spec["search"])
    if spec["range"] is not None:
        which, value, field = spec["range"]
        q = getattr(q, which)(value, field=field)
    if spec["archived"] is not None:
        q = getattr(q, spec["archived"])()
    terminal, size = spec["terminal"], spec["size"]
    if terminal == "scroll":
        await q.scroll(page_size=size if size is not None else 50, cursor=spec["cursor"])
    elif terminal == "paginate":
        await q.paginate(page=size if size is not None else 1, size=2)
    elif terminal == "all":
        await q.all(limit=size)
    elif terminal == "count":
        await q.count()
    else:
        await q.facets(*spec["facet"], limit=size if size is not None else 5)


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(spec=queries())
def test_any_query_runs_or_raises_datas_own_error(world: World, spec: dict[str, Any]) -> None:
    for source in world.sources:
        try:
            world.loop.run_until_complete(_run(source, spec))
        except DataError:
            pass
