# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Storage keys: one key belongs to one field of one register for its whole life, so no
tenant's data can make another tenant's query fail — not even when Postgres evaluates a
condition on every row of a page (a lossy bitmap heap scan). Databases written with the
old per-register keys are migrated in place."""

from __future__ import annotations

import asyncio
import json
import random
import string
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from forktex_core.data import Field, ReferenceViolation, Register, RowQuery, init_schema
from forktex_core.data._compile import Sql, where_sql
from forktex_core.data._schema import MIGRATIONS, SCHEMA
from forktex_core.db import ensure_schema

PAD = 600  # characters of incompressible text per row: about five rows per heap page


@pytest.fixture
async def small_memory(data_db: Any) -> AsyncIterator[AsyncEngine]:
    """An engine whose sessions have the smallest work_mem and may only use bitmap scans:
    a bitmap over more than ~1,000 heap pages then goes lossy."""
    engine = create_async_engine(
        data_db.url,
        pool_size=2,
        connect_args={
            "server_settings": {
                "work_mem": "64kB",
                "enable_seqscan": "off",
                "enable_indexscan": "off",
                "enable_indexonlyscan": "off",
            }
        },
    )
    try:
        yield engine
    finally:
        await engine.dispose()


def _pad(rng: random.Random) -> str:
    letters = string.ascii_letters + string.digits
    return " ".join("".join(rng.choices(letters, k=9)) for _ in range(PAD // 10))


async def test_lossy_bitmap_scan_never_casts_another_tenants_value(
    small_memory: AsyncEngine,
) -> None:
    rng = random.Random(1)
    nums = await Register.create(
        "nums",
        tenant_id=uuid.uuid4(),
        fields=[Field("n", "integer", indexed=True), Field("pad", "text")],
        engine=small_memory,
    )
    codes = await Register.create(
        "codes",
        tenant_id=uuid.uuid4(),
        fields=[Field("code", "text"), Field("pad", "text")],
        engine=small_memory,
    )
    expected = 0
    for _ in range(150):  # interleaved: every run of heap pages holds rows of both tenants
        batch = [{"n": rng.randint(0, 100), "pad": _pad(rng)} for _ in range(40)]
        expected += sum(10 <= r["n"] <= 60 for r in batch)
        await nums.insert_many(batch)
        await codes.insert_many([{"code": "FR", "pad": _pad(rng)} for _ in range(40)])
    async with small_memory.connect() as conn:
        await conn.execute(text("ANALYZE forktex_data.rows"))

    query = RowQuery(nums).where(n__between=[10, 60])
    assert await query.count() == expected
    assert len(await query.all()) == expected

    plan = await query.plan()
    sql = Sql()
    where = where_sql(sql, plan, nums.id, nums.tenant_id)
    async with small_memory.connect() as conn:
        explained = (
            await conn.execute(
                text(
                    "EXPLAIN (ANALYZE, FORMAT JSON) "
                    f"SELECT count(*) FROM forktex_data.rows r WHERE {where}"
                ),
                sql.params,
            )
        ).scalar_one()
    doc = json.dumps(explained if not isinstance(explained, str) else json.loads(explained))
    lossy = [int(x) for x in _values(json.loads(doc), "Lossy Heap Blocks")]
    assert lossy and max(lossy) > 0, "the scan did not go lossy: the test proves nothing"


def _values(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        found = [node[key]] if key in node else []
        for value in node.values():
            found += _values(value, key)
        return found
    if isinstance(node, list):
        return [v for item in node for v in _values(item, key)]
    return []


async def test_storage_keys_are_never_shared_or_reused(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    registers = []
    for i in range(3):
        registers.append(
            await Register.create(
                f"keys{i}",
                tenant_id=uuid.uuid4() if i else tenant,
                fields=[Field("a", "integer"), Field("b", "text"), Field("c", "boolean")],
            )
        )
    first = registers[0]
    await first.insert({"a": 7, "b": "42"})
    old_keys = {f.name: f.key for f in first.fields}
    await first.change_field_type("b", "integer")
    await first.change_field_type("a", "text")
    await first.remove_field("c")
    await first.add_field(Field("c", "decimal"))
    assert (await first.get((await RowQuery(first).first()).id)).values == {  # type: ignore[union-attr]
        "a": "7",
        "b": 42,
        "c": None,
    }
    new_keys = {f.name: f.key for f in first.fields}
    assert not set(new_keys.values()) & set(old_keys.values())  # a retyped field moves on
    async with engine.connect() as conn:
        keys = (await conn.execute(text("SELECT key FROM forktex_data.fields"))).scalars().all()
    assert len(keys) == len(set(keys))  # no two fields of any registers share a key


async def test_old_per_register_keys_are_migrated(forktex_new_database: Any) -> None:
    db = forktex_new_database()
    engine = create_async_engine(db.url, pool_size=2)
    try:
        await ensure_schema(engine, SCHEMA, MIGRATIONS[:1])  # the layout of release 0.3
        tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
        nums, codes = uuid.uuid4(), uuid.uuid4()
        async with engine.begin() as conn:
            await _old_register(
                conn, nums, tenant_a, "nums", [("n", "integer", True), ("label", "text", True)]
            )
            await _old_register(conn, codes, tenant_b, "codes", [("code", "text", False)])
            for i in range(30):
                await _old_row(conn, nums, tenant_a, {"f1": i, "f2": f"label {i}"})
                await _old_row(conn, codes, tenant_b, {"f1": "FR", "f7": "orphan"})
            await conn.execute(
                text(
                    f"CREATE INDEX fdx_{nums.hex}_f1 ON forktex_data.rows "
                    f"(((data->>'f1')::bigint), id) WHERE register_id = '{nums}'"
                )
            )
            await conn.execute(
                text(
                    f"CREATE INDEX fdx_{nums.hex}_f2 ON forktex_data.rows "
                    f"(((data->>'f2') COLLATE \"C\"), id) WHERE register_id = '{nums}'"
                )
            )
            await conn.execute(
                text(
                    "CREATE STATISTICS forktex_data.fds_f2 ON ((data->>'f2') COLLATE \"C\") "
                    "FROM forktex_data.rows"
                )
            )

        state = await init_schema(engine)
        assert state.applied == (2, 3, 4, 5, 6, 7)

        async with engine.connect() as conn:
            fields = (await conn.execute(text("SELECT name, key FROM forktex_data.fields"))).all()
            indexes = (
                (
                    await conn.execute(
                        text(
                            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'forktex_data' "
                            "AND indexname LIKE 'fdx_%' ORDER BY indexname"
                        )
                    )
                )
                .scalars()
                .all()
            )
            stats = (
                (await conn.execute(text("SELECT stxname FROM pg_statistic_ext ORDER BY stxname")))
                .scalars()
                .all()
            )
            foreign_keys = (
                (
                    await conn.execute(
                        text(
                            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid "
                            "IN ('forktex_data.links'::regclass, 'forktex_data.uniques'::regclass, "
                            "'forktex_data.rows'::regclass)"
                        )
                    )
                )
                .scalars()
                .all()
            )
            orphan = (
                await conn.execute(
                    text("SELECT data FROM forktex_data.rows WHERE register_id = :r LIMIT 1"),
                    {"r": codes},
                )
            ).scalar_one()
        assert foreign_keys == ["links_target_id_fkey"]  # the library removes the rest
        keys = [key for _name, key in fields]
        assert len(set(keys)) == 3 and not {"f1", "f2"} & set(keys)
        assert all(int(k[1:]) >= 8 for k in keys)  # above every key ever handed out
        by_name = dict(fields)
        assert orphan == {by_name["code"]: "FR", "f7": "orphan"}  # unknown keys kept as is
        assert len(indexes) == 2 and all("left" in i or "bigint" in i for i in indexes)
        assert all(by_name["n"] in i or by_name["label"] in i for i in indexes)
        assert sorted(s for s in stats if s.startswith("fds_")) == sorted(
            [f"fds_{by_name['n']}", f"fds_{by_name['label']}"]
        )

        reg = await Register.load("nums", tenant_id=tenant_a, engine=engine)
        assert await RowQuery(reg).where(n__between=[10, 19]).count() == 10
        assert (await RowQuery(reg).order_by("-label").first())["n"] == 9  # type: ignore[index]
        new = await reg.insert({"n": 100, "label": "new"})
        assert (await reg.get(new.id)).values == {"n": 100, "label": "new"}
        assert (
            await RowQuery(Register.load("codes", tenant_id=tenant_b, engine=engine))
            .where(code="FR")
            .count()
            == 30
        )
        assert (await ensure_schema(engine, SCHEMA, MIGRATIONS)).applied == ()
    finally:
        await engine.dispose()


async def _old_register(
    conn: Any, rid: uuid.UUID, tenant: uuid.UUID, name: str, fields: list[tuple[str, str, bool]]
) -> None:
    await conn.execute(
        text(
            "INSERT INTO forktex_data.registers (id, tenant_id, name, next_key) "
            "VALUES (:id, :t, :n, :k)"
        ),
        {"id": rid, "t": tenant, "n": name, "k": 8},
    )
    for position, (fname, kind, indexed) in enumerate(fields, start=1):
        await conn.execute(
            text(
                "INSERT INTO forktex_data.fields (id, register_id, tenant_id, name, key, type, "
                "position, indexed) VALUES (:id, :r, :t, :n, :k, :type, :p, :i)"
            ),
            {"id": uuid.uuid4(), "r": rid, "t": tenant, "n": fname, "k": f"f{position}",
             "type": kind, "p": position, "i": indexed},
        )  # fmt: skip


async def _old_row(conn: Any, rid: uuid.UUID, tenant: uuid.UUID, data: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "INSERT INTO forktex_data.rows (id, tenant_id, register_id, data) "
            "VALUES (:id, :t, :r, CAST(:d AS jsonb))"
        ),
        {"id": uuid.uuid4(), "t": tenant, "r": rid, "d": json.dumps(data)},
    )


async def _orphans(engine: AsyncEngine) -> dict[str, int]:
    """Rows, links and unique claims whose register, row or field no longer exists (none
    may ever)."""
    checks = {
        "links without source row": "SELECT count(*) FROM forktex_data.links l "
        "LEFT JOIN forktex_data.rows r ON r.id = l.source_id WHERE r.id IS NULL",
        "links without field": "SELECT count(*) FROM forktex_data.links l "
        "LEFT JOIN forktex_data.fields f ON f.id = l.field_id WHERE f.id IS NULL",
        "claims without row": "SELECT count(*) FROM forktex_data.uniques u "
        "LEFT JOIN forktex_data.rows r ON r.id = u.row_id WHERE r.id IS NULL",
        "claims without field": "SELECT count(*) FROM forktex_data.uniques u "
        "LEFT JOIN forktex_data.fields f ON f.id = u.field_id WHERE f.id IS NULL",
        "rows without register": "SELECT count(*) FROM forktex_data.rows r "
        "LEFT JOIN forktex_data.registers g ON g.id = r.register_id WHERE g.id IS NULL",
    }
    async with engine.connect() as conn:
        return {k: int((await conn.execute(text(q))).scalar_one()) for k, q in checks.items()}


async def test_nothing_outlives_its_register_row_or_field(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    await init_schema(engine)
    clean = {k: 0 for k in await _orphans(engine)}
    people = await Register.create(
        "people", tenant_id=tenant, fields=[Field("name", "text", unique=True)]
    )
    ada, bob, cy = await people.insert_many([{"name": "ada"}, {"name": "bob"}, {"name": "cy"}])
    notes = await Register.create(
        "notes",
        tenant_id=tenant,
        fields=[
            Field("code", "text", unique=True),
            Field("author", "reference", target="people"),
            Field("readers", "reference", target="people", many=True),
            Field("reply_to", "reference", target="notes"),
            Field("serial", "integer", unique=True),
        ],
    )
    first = await notes.insert({"code": "n1", "author": ada, "readers": [bob, cy], "serial": 1})
    rows = await notes.insert_many(
        [
            {"code": f"n{i}", "author": bob, "readers": [ada], "reply_to": first, "serial": i}
            for i in range(2, 12)
        ]
    )
    steps: list[tuple[str, Any]] = [
        ("update", lambda: notes.update(rows[0].id, {"readers": [cy], "code": "m2"})),
        ("delete one", lambda: notes.delete(rows[1].id)),
        ("bulk delete", lambda: RowQuery(notes).where(serial__gte=8).delete()),
        ("retype reference", lambda: notes.change_field_type("readers", "text")),
        ("retype unique", lambda: notes.change_field_type("serial", "text")),
        ("drop unique", lambda: notes.set_unique("code", False)),
        ("remove reference", lambda: notes.remove_field("author")),
        ("remove unique", lambda: notes.remove_field("serial")),
        ("delete replies", lambda: RowQuery(notes).where(reply_to=first.id).delete()),
        ("drop register", lambda: notes.drop()),
        ("delete people", lambda: RowQuery(people).delete()),
    ]
    for label, step in steps:
        await step()
        assert await _orphans(engine) == clean, label
    assert await RowQuery(people).count() == 0
    # and the reference still refuses deleting a referenced row
    again = await people.insert({"name": "dee"})
    notes = await Register.create(
        "notes", tenant_id=tenant, fields=[Field("author", "reference", target="people")]
    )
    await notes.insert({"author": again})
    with pytest.raises(ReferenceViolation):
        await people.delete(again.id)
    with pytest.raises(ReferenceViolation):
        await RowQuery(people).delete()
    assert await RowQuery(people).count() == 1


async def test_a_delete_waits_for_a_schema_change_claiming_its_values(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    """Deletes hold the register like writes do: a schema change claiming unique values
    (set_unique) of a row being deleted cannot leave a claim behind."""
    reg = await Register.create("claims", tenant_id=tenant, fields=[Field("code", "text")])
    row = await reg.insert({"code": "x"})
    field_id = await _field_id(engine, reg.id, "code")
    schema_change = await engine.connect()
    try:
        await schema_change.begin()
        await schema_change.execute(
            text("SELECT 1 FROM forktex_data.registers WHERE id = :id FOR UPDATE"), {"id": reg.id}
        )
        # what set_unique("code") does: claim the values, mark the field, bump the version
        await schema_change.execute(
            text("INSERT INTO forktex_data.uniques (field_id, value, row_id) VALUES (:f, 'x', :r)"),
            {"f": field_id, "r": row.id},
        )
        await schema_change.execute(
            text("UPDATE forktex_data.fields SET is_unique = true WHERE id = :f"), {"f": field_id}
        )
        await schema_change.execute(
            text("UPDATE forktex_data.registers SET version = version + 1 WHERE id = :id"),
            {"id": reg.id},
        )
        deleting = asyncio.create_task(reg.delete(row.id))
        for _ in range(200):  # until the delete waits for the register (≤ 10 s)
            if deleting.done() or await _waiting_on_lock(engine):
                break
            await asyncio.sleep(0.05)
        await schema_change.commit()
    finally:
        await schema_change.close()
    await asyncio.wait_for(deleting, 10)
    assert all(n == 0 for n in (await _orphans(engine)).values()), await _orphans(engine)


async def _field_id(engine: AsyncEngine, register_id: uuid.UUID, name: str) -> uuid.UUID:
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                text("SELECT id FROM forktex_data.fields WHERE register_id = :r AND name = :n"),
                {"r": register_id, "n": name},
            )
        ).scalar_one()
    return uuid.UUID(str(found))


async def _waiting_on_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return bool(
            (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )
                )
            ).scalar_one()
        )
