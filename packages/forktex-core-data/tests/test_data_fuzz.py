# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Hostile register names, field names, values and search text are data, never SQL: they
round-trip unchanged, match only themselves, and leave the schema intact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from forktex_core.data import (
    Field,
    InvalidDefinition,
    InvalidQuery,
    InvalidValue,
    Register,
    RowQuery,
    init_schema,
)
from forktex_core.data._compile import select_sql

HOSTILE = [
    "'; DROP TABLE forktex_data.rows; --",
    '"; DROP SCHEMA forktex_data CASCADE; --',
    "x' OR '1'='1",
    "$$; SELECT pg_sleep(10); $$",
    "\\'; DELETE FROM forktex_data.registers; --",
    "data->>'f1'",
    "f1",
    ") OR 1=1 --",
    "%_%",
    "名前 ☃ 🚀",
    "a__gt",
    "Robert'); DROP TABLE students;--",
]


async def _schema_intact(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        tables = (
            await conn.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'forktex_data'")
            )
        ).scalar_one()
        registers = (
            await conn.execute(text("SELECT count(*) FROM forktex_data.registers"))
        ).scalar_one()
    return int(tables), int(registers)


async def test_hostile_names_and_values_are_inert(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    await init_schema(engine)
    tables_before, registers_before = await _schema_intact(engine)
    assert tables_before == 7  # registers, fields, rows, links, uniques, autonumbers, versions
    fields = [Field(name, "text", indexed=i < 3) for i, name in enumerate(HOSTILE)]
    fields.append(Field("tag'); --", "single_select", choices=tuple(HOSTILE)))
    reg = await Register.create(HOSTILE[0], tenant_id=tenant, fields=fields)
    rows = [{name: value for name in HOSTILE} | {"tag'); --": value} for value in HOSTILE]
    inserted = await reg.insert_many(rows)
    for row, source in zip(inserted, rows, strict=True):
        assert dict((await reg.get(row.id)).values) == source
    loaded = await Register.load(HOSTILE[0], tenant_id=tenant)
    for name in HOSTILE:
        for value in HOSTILE:
            assert await RowQuery(loaded).where({name: value}).count() == 1
        assert await RowQuery(loaded).filter(name, "starts_with", "%").count() == 1  # literal %
        assert await RowQuery(loaded).filter(name, "contains", "'").count() == 5
        assert await RowQuery(loaded).order_by("-" + name).first() is not None
    assert await RowQuery(loaded).where({"tag'); --__in": HOSTILE[:2]}).count() == 2
    for value in HOSTILE:
        await RowQuery(loaded).search(value).count()  # any text is a valid search
    facets = await RowQuery(loaded).facets(HOSTILE[1])
    assert sorted(f.value for f in facets[HOSTILE[1]]) == sorted(HOSTILE)
    await loaded.rename_field(HOSTILE[2], HOSTILE[2] + " (renamed)")
    await loaded.change_field_type(HOSTILE[3], "single_select", choices=tuple(HOSTILE))
    await loaded.remove_field(HOSTILE[4])
    assert await RowQuery(loaded).count() == len(HOSTILE)
    assert await _schema_intact(engine) == (tables_before, registers_before + 1)


async def test_generated_sql_contains_no_user_text(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    reg = await Register.create(
        "evil", tenant_id=tenant, fields=[Field(HOSTILE[0], "text"), Field(HOSTILE[2], "integer")]
    )
    plan = await (
        RowQuery(reg)
        .where({HOSTILE[0]: HOSTILE[1], f"{HOSTILE[2]}__gte": 3})
        .search(HOSTILE[3])
        .order_by("-" + HOSTILE[2])
        .plan()
    )
    sql = select_sql(plan, reg.id, reg.tenant_id, limit=5, offset=0, after=None)
    for hostile in HOSTILE[:4]:
        assert hostile not in sql.text
    assert HOSTILE[1] in sql.params.values()
    assert "(('select') & ('pg' <-> 'sleep' <-> '10'))" in sql.params.values()  # the words


@pytest.mark.parametrize("bad", ["", "x" * 64, " lead", "-minus", "tab\there", "nul\x00"])
def test_names_that_could_confuse_the_api_are_refused(bad: str) -> None:
    with pytest.raises(InvalidDefinition):
        Field(bad, "text")
    with pytest.raises(InvalidDefinition):
        Register.load(bad, tenant_id=uuid.uuid4())


@pytest.fixture(scope="module")
def fuzz_world(data_db: Any) -> Iterator[tuple[asyncio.AbstractEventLoop, Register]]:
    """Its own loop and engine: hypothesis drives a sync test, each example runs on it."""
    loop = asyncio.new_event_loop()
    engine = create_async_engine(data_db.url, pool_size=2)
    reg = loop.run_until_complete(
        Register.create(
            "hyp", tenant_id=uuid.uuid4(), fields=[Field("t", "text", indexed=True)], engine=engine
        )
    )
    loop.run_until_complete(reg.insert_many([{"t": v} for v in HOSTILE]))
    yield loop, reg
    loop.run_until_complete(engine.dispose())
    loop.close()


@settings(max_examples=60, deadline=None, database=None)
@given(
    value=st.text(max_size=30).filter(lambda s: "\x00" not in s),
    op=st.sampled_from(["eq", "ne", "lt", "gte", "contains", "starts_with", "in"]),
)
def test_fuzzed_values_only_ever_filter(
    fuzz_world: tuple[asyncio.AbstractEventLoop, Register], value: str, op: str
) -> None:
    loop, reg = fuzz_world
    stored = list(HOSTILE)
    expected = {
        "eq": lambda v: v == value,
        "ne": lambda v: v != value,
        "lt": lambda v: v < value,
        "gte": lambda v: v >= value,
        "contains": lambda v: value in v,
        "starts_with": lambda v: v.startswith(value),
        "in": lambda v: v == value,
    }[op]

    async def run() -> set[str]:
        q = RowQuery(reg).filter("t", op, [value] if op == "in" else value)
        return {r["t"] for r in await q.all()}

    assert loop.run_until_complete(run()) == {v for v in stored if expected(v)}


@pytest.mark.parametrize("value", [*HOSTILE, "\\", "%", "_", "\\%", "a\\_b", "''", '"\'"'])
async def test_fuzzed_values_against_postgres(
    engine: AsyncEngine, tenant: uuid.UUID, value: str
) -> None:
    reg = await Register.create("fuzz", tenant_id=tenant, fields=[Field("t", "text")])
    stored = ["\\", "%", "_", "\\%", "a\\_b", "''", *HOSTILE, value]
    await reg.insert_many([{"t": v} for v in stored])
    got = {r["t"] for r in await RowQuery(reg).filter("t", "starts_with", value).all()}
    assert got == {v for v in stored if v.startswith(value)}
    got = {r["t"] for r in await RowQuery(reg).filter("t", "contains", value).all()}
    assert got == {v for v in stored if value in v}
    assert await RowQuery(reg).where(t=value).count() == stored.count(value)
    with pytest.raises(InvalidValue):
        await reg.insert({"t": value + "\x00"})
    with pytest.raises(InvalidQuery):
        await RowQuery(reg).filter("t", "contains", value + "\x00").count()
