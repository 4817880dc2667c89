# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""ensure_schema(): idempotent, ordered, transactional, safe under concurrent start-up."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from forktex_core.db import (
    InvalidArgument,
    SchemaMigrationError,
    SchemaState,
    advisory_lock_key,
    ensure_schema,
)

BASE = [
    "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);"
    "CREATE TABLE applied (step text NOT NULL)",  # several statements in one migration
    "INSERT INTO applied VALUES ('m2'); SELECT pg_sleep(0.2)",  # widens any race window
]


def _name() -> str:
    return f"t_schema_{secrets.token_hex(4)}"


@pytest.fixture
async def engine(forktex_postgres: Any) -> Any:
    eng = create_async_engine(forktex_postgres.url)
    yield eng
    await eng.dispose()


async def _versions(engine: AsyncEngine, schema: str) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f'SELECT version FROM "{schema}"._forktex_schema_version ORDER BY version')
        )
        return [r.version for r in rows]


async def _applied(engine: AsyncEngine, schema: str) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(f'SELECT step FROM "{schema}".applied'))).scalars())


async def test_creates_migrates_and_is_idempotent(engine: AsyncEngine) -> None:
    schema = _name()
    state = await ensure_schema(engine, schema, migrations=BASE)
    assert state == SchemaState(schema, 2, (1, 2))
    assert await ensure_schema(engine, schema, BASE) == SchemaState(schema, 2, ())
    calls: list[str] = []

    async def third(conn: AsyncConnection) -> None:
        # search_path points at the schema while migrations run
        await conn.execute(text("INSERT INTO applied VALUES ('m3')"))
        calls.append("m3")

    state = await ensure_schema(engine, schema, [*BASE, third])
    assert state.applied == (3,) and state.version == 3
    assert await ensure_schema(engine, schema, [*BASE, third]) == SchemaState(schema, 3, ())
    assert calls == ["m3"]
    assert await _versions(engine, schema) == [1, 2, 3]
    assert sorted(await _applied(engine, schema)) == ["m2", "m3"]
    async with engine.connect() as conn:  # the tables landed in the schema, not in public
        found = await conn.execute(
            text("SELECT table_schema FROM information_schema.tables WHERE table_name='items'")
        )
        assert {r.table_schema for r in found} == {schema}
        # search_path is back to normal afterwards
        assert schema not in (await conn.execute(text("SHOW search_path"))).scalar_one()


async def test_failed_migration_applies_nothing(engine: AsyncEngine) -> None:
    schema = _name()
    await ensure_schema(engine, schema, BASE[:1])
    broken = [*BASE, "INSERT INTO applied VALUES ('m3')", "SELECT * FROM no_such_table"]
    with pytest.raises(
        SchemaMigrationError, match=r"migration 4 of schema .* failed.*no_such_table"
    ):
        await ensure_schema(engine, schema, broken)
    assert await _versions(engine, schema) == [1]
    assert await _applied(engine, schema) == []  # m2 and m3 were rolled back too


async def test_edited_or_unknown_migrations_are_refused(engine: AsyncEngine) -> None:
    schema = _name()
    await ensure_schema(engine, schema, BASE)
    edited = [BASE[0] + " ", BASE[1].replace("m2", "m2-edited")]
    with pytest.raises(SchemaMigrationError, match=r"migration 2 .* was edited"):
        await ensure_schema(engine, schema, edited)
    with pytest.raises(SchemaMigrationError, match="at version 2 but this code knows only 1"):
        await ensure_schema(engine, schema, BASE[:1])
    # whitespace around a migration is not an edit
    assert (await ensure_schema(engine, schema, ["  " + BASE[0] + "\n", BASE[1]])).applied == ()


async def test_with_a_connection_in_and_outside_a_transaction(engine: AsyncEngine) -> None:
    schema = _name()
    async with engine.connect() as conn:  # no transaction: ensure_schema commits itself
        assert (await ensure_schema(conn, schema, BASE[:1])).applied == (1,)
    assert await _versions(engine, schema) == [1]
    async with engine.connect() as conn:
        await conn.execute(text("SET search_path TO public"))
        await conn.commit()
        async with conn.begin() as tx:  # caller's transaction: caller decides
            assert (await ensure_schema(conn, schema, BASE)).applied == (2,)
            assert (await conn.execute(text("SHOW search_path"))).scalar_one() == "public"
            await tx.rollback()
    assert await _versions(engine, schema) == [1]


async def test_concurrent_tasks_on_separate_connections(forktex_postgres: Any) -> None:
    schema = _name()
    engines = [create_async_engine(forktex_postgres.url) for _ in range(6)]
    try:
        states = await asyncio.gather(*(ensure_schema(e, schema, BASE) for e in engines))
    finally:
        await asyncio.gather(*(e.dispose() for e in engines))
    assert sorted(s.applied for s in states) == [(), (), (), (), (), (1, 2)]
    check = create_async_engine(forktex_postgres.url)
    try:
        assert await _versions(check, schema) == [1, 2]
        assert await _applied(check, schema) == ["m2"]
    finally:
        await check.dispose()


WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from sqlalchemy.ext.asyncio import create_async_engine
    from forktex_core.db import ensure_schema

    async def main(url, schema, migrations):
        engines = [create_async_engine(url) for _ in range(3)]
        try:
            states = await asyncio.gather(*(ensure_schema(e, schema, migrations) for e in engines))
        finally:
            for e in engines:
                await e.dispose()
        print(json.dumps([list(s.applied) for s in states]))

    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
    """
)


async def test_several_processes_start_at_once(forktex_postgres: Any, engine: AsyncEngine) -> None:
    import json

    schema = _name()
    migrations = [*BASE, "INSERT INTO applied VALUES ('m3')"]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            forktex_postgres.url,
            schema,
            json.dumps(migrations),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    applied: list[list[int]] = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        applied.extend(json.loads(out))
    assert sorted(applied) == [[]] * 11 + [[1, 2, 3]]  # exactly one of 12 callers migrated
    assert await _versions(engine, schema) == [1, 2, 3]
    assert sorted(await _applied(engine, schema)) == ["m2", "m3"]


@pytest.mark.parametrize(
    ("schema", "migrations", "match"),
    [
        ("Bad-Name", BASE, "schema name 'Bad-Name' is not allowed"),
        ('x"; drop table y; --', BASE, "is not allowed"),
        ("", BASE, "is not allowed"),
        ("a" * 64, BASE, "is not allowed"),
        (None, BASE, "schema name None is not allowed"),
        ("public", BASE, "reserved"),
        ("pg_mine", BASE, "reserved"),
        ("information_schema", BASE, "reserved"),
        ("ok_name", "CREATE TABLE x ()", "must be an ordered list"),
        ("ok_name", None, "must be an ordered list"),
        ("ok_name", {"CREATE TABLE x ()"}, "must be an ordered list"),
        ("ok_name", ["   "], "migration 1 of 'ok_name' is an empty SQL string"),
        ("ok_name", ["SELECT 1", 42], "migration 2 of 'ok_name' must be SQL text"),
    ],
)
async def test_bad_input(engine: AsyncEngine, schema: Any, migrations: Any, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        await ensure_schema(engine, schema, migrations)


async def test_bind_must_be_engine_or_connection(forktex_postgres: Any) -> None:
    with pytest.raises(InvalidArgument, match="needs an AsyncEngine or AsyncConnection"):
        await ensure_schema(forktex_postgres.url, "ok_name", BASE)


@pytest.mark.parametrize("bad", [None, 5, "Bad Name", "x" * 64])
def test_advisory_lock_key_bad_input(bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="is not allowed"):
        advisory_lock_key(bad)


def test_advisory_lock_key_is_stable_and_distinct() -> None:
    assert advisory_lock_key("forktex_flow") == advisory_lock_key("forktex_flow")
    assert advisory_lock_key("forktex_flow") != advisory_lock_key("forktex_data")
    assert -(2**63) <= advisory_lock_key("forktex_flow") < 2**63
