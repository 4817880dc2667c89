# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Counting without reading documents: ``count()`` of one choice of an indexed
single_select field is an index-only scan of that choice's count index (built, replaced
and dropped with the field's index), and ``facets()`` of several fields of few values
counts them together in one scan of the rows."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from forktex_core.data import Count, Field, InvalidQuery, Register, RowQuery, init_schema
from forktex_core.data._compile import (
    MAX_JOINT_GROUPS,
    Sql,
    facet_sql,
    joint_facet_sql,
    joint_facets,
    where_sql,
)
from forktex_core.data._index import (
    MAX_COUNTED_CHOICES,
    choice_index_name,
    choice_index_prefix,
    counted_choices,
)
from forktex_core.data._schema import MIGRATIONS, SCHEMA
from forktex_core.db import ensure_schema

CHOICES = ("open", "paid", "it's \\ odd")  # a quote and a backslash reach the index DDL


async def _indexes(engine: AsyncEngine, prefix: str) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'forktex_data' "
                "AND starts_with(indexname, :p) ORDER BY 1"
            ),
            {"p": prefix},
        )
        return list(found.scalars())


async def _count_plan(explain_nodes: Any, reg: Register, query: RowQuery) -> list[dict[str, Any]]:
    plan = await query.plan()
    sql = Sql()
    where = where_sql(sql, plan, reg.id, reg.tenant_id)
    statement = f"SELECT count(*) FROM forktex_data.rows r WHERE {where}"
    nodes: list[dict[str, Any]] = await explain_nodes(statement, sql.params)
    return nodes


async def test_a_choice_is_counted_from_its_count_index(
    tenant: uuid.UUID, explain_nodes: Any, vacuum: Any
) -> None:
    reg = await Register.create(
        "tickets",
        tenant_id=tenant,
        fields=[Field("state", "single_select", choices=CHOICES, indexed=True)],
    )
    rng = random.Random(5)
    values = [rng.choice((*CHOICES, None)) for _ in range(6000)]
    await reg.insert_many([{"state": v} for v in values])
    await vacuum()
    key = reg.field("state").key
    for choice in CHOICES:
        nodes = await _count_plan(explain_nodes, reg, RowQuery(reg).where(state=choice))
        scans = [n for n in nodes if n.get("Index Name") == choice_index_name(reg.id, key, choice)]
        assert scans and scans[0]["Node Type"] == "Index Only Scan", nodes
        assert scans[0]["Heap Fetches"] < 60, scans  # no row is read, bar unflushed pages
        assert await RowQuery(reg).where(state=choice).count() == values.count(choice)
    # filters the predicate does not imply are counted as before, and correctly
    assert await RowQuery(reg).where(state__in=["open", "paid"]).count() == sum(
        v in ("open", "paid") for v in values
    )
    assert await RowQuery(reg).where(state__is_null=True).count() == values.count(None)


async def test_count_indexes_hold_only_the_live_rows_of_their_register_and_choice(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    """Archived rows, other choices, other registers and other tenants (a register of the
    same name, same choices, rows written later) never count."""
    fields = [Field("state", "single_select", choices=CHOICES, indexed=True)]
    reg = await Register.create("tickets", tenant_id=tenant, fields=fields)
    other = await Register.create("tickets", tenant_id=uuid.uuid4(), fields=fields)
    sibling = await Register.create("queue", tenant_id=tenant, fields=fields)
    rows = await reg.insert_many([{"state": "paid"}] * 5 + [{"state": "open"}] * 3)
    await other.insert_many([{"state": "paid"}] * 7)
    await sibling.insert_many([{"state": "paid"}] * 2)
    await reg.archive(rows[0].id)
    await reg.archive(rows[1].id)
    await reg.update(rows[5].id, {"state": "paid"})  # moves to another choice's index
    assert await RowQuery(reg).where(state="paid").count() == 4
    assert await RowQuery(reg).where(state="open").count() == 2
    assert await RowQuery(reg).archived().where(state="paid").count() == 2
    assert await RowQuery(reg).with_archived().where(state="paid").count() == 6
    assert await RowQuery(other).where(state="paid").count() == 7
    assert await RowQuery(sibling).where(state="paid").count() == 2
    await reg.restore(rows[0].id)
    assert await RowQuery(reg).where(state="paid").count() == 5


async def test_count_indexes_follow_the_field(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    """Built with the field's index, replaced when its choices change (a new storage key),
    dropped when the field is no longer indexed, removed, or its register dropped."""
    reg = await Register.create(
        "tickets",
        tenant_id=tenant,
        fields=[
            Field("state", "single_select", choices=("open", "paid"), indexed=True),
            Field("kind", "single_select", choices=("a", "b")),
        ],
    )
    await reg.insert_many([{"state": "paid", "kind": "a"}, {"state": "open", "kind": "b"}])
    old = reg.field("state").key
    assert len(await _indexes(engine, choice_index_prefix(reg.id, old))) == 2
    assert await _indexes(engine, choice_index_prefix(reg.id, reg.field("kind").key)) == []

    await reg.change_field_type("state", "single_select", choices=("open", "paid", "void"))
    new = reg.field("state").key
    assert new != old and await _indexes(engine, choice_index_prefix(reg.id, old)) == []
    assert await _indexes(engine, choice_index_prefix(reg.id, new)) == sorted(
        choice_index_name(reg.id, new, c) for c in ("open", "paid", "void")
    )
    await reg.insert({"state": "void"})
    assert [await RowQuery(reg).where(state=c).count() for c in ("open", "paid", "void")] == [
        1,
        1,
        1,
    ]

    await reg.set_indexed("kind", True)
    kind = reg.field("kind").key
    assert len(await _indexes(engine, choice_index_prefix(reg.id, kind))) == 2
    assert await RowQuery(reg).where(kind="a").count() == 1
    await reg.set_indexed("kind", False)
    assert await _indexes(engine, choice_index_prefix(reg.id, kind)) == []
    await reg.remove_field("state")
    assert await _indexes(engine, choice_index_prefix(reg.id, new)) == []

    await reg.set_indexed("kind", True)
    register_id = reg.id
    await reg.drop()
    assert await _indexes(engine, f"fdc_{register_id.hex}_") == []


def test_which_choices_get_count_indexes() -> None:
    assert counted_choices(Field("s", "single_select", choices=("a", "b"))) == ("a", "b")
    assert counted_choices(Field("s", "single_select", choices=("a", "x" * 256))) == ()
    many = tuple(f"c{i}" for i in range(MAX_COUNTED_CHOICES + 1))
    assert counted_choices(Field("s", "single_select", choices=many)) == ()
    assert counted_choices(Field("s", "multi_select", choices=("a",))) == ()
    assert counted_choices(Field("s", "text")) == ()


async def test_migration_7_builds_count_indexes_of_existing_fields(
    forktex_new_database: Any,
) -> None:
    db = forktex_new_database()
    engine = create_async_engine(db.url, pool_size=2)
    try:
        await ensure_schema(engine, SCHEMA, MIGRATIONS[:6])
        tenant, rid = uuid.uuid4(), uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO forktex_data.registers (id, tenant_id, name) VALUES (:r, :t, 'q')"
                ),
                {"r": rid, "t": tenant},
            )
            for position, (name, indexed) in enumerate([("state", True), ("kind", False)]):
                await conn.execute(
                    text(
                        "INSERT INTO forktex_data.fields (id, register_id, tenant_id, name, key, "
                        "type, position, indexed, options) VALUES (:id, :r, :t, :n, :k, "
                        "'single_select', :p, :i, CAST(:o AS jsonb))"
                    ),
                    {"id": uuid.uuid4(), "r": rid, "t": tenant, "n": name, "k": f"f90{position}",
                     "p": position, "i": indexed, "o": '{"choices": ["x", "y"]}'},
                )  # fmt: skip
            await conn.execute(
                text(
                    "INSERT INTO forktex_data.rows (id, tenant_id, register_id, data) "
                    "SELECT gen_random_uuid(), :t, :r, jsonb_build_object('f900', v) "
                    "FROM unnest(ARRAY['x', 'x', 'y']) AS v"
                ),
                {"r": rid, "t": tenant},
            )
        state = await init_schema(engine)
        assert state.applied == (7,)
        assert await _indexes(engine, f"fdc_{rid.hex}_") == sorted(
            choice_index_name(rid, "f900", c) for c in ("x", "y")
        )
        async with engine.connect() as conn:
            options = (
                await conn.execute(
                    text(
                        "SELECT attoptions FROM pg_attribute WHERE attname = 'data' "
                        "AND attrelid = 'forktex_data.rows'::regclass"
                    )
                )
            ).scalar_one()
        assert "n_distinct=200" in options
        reg = await Register.load("q", tenant_id=tenant, engine=engine)
        assert await RowQuery(reg).where(state="x").count() == 2
    finally:
        await engine.dispose()


@pytest.fixture
async def shop(engine: AsyncEngine, tenant: uuid.UUID) -> Register:
    reg = await Register.create(
        "shop",
        tenant_id=tenant,
        fields=[
            Field("status", "single_select", choices=("b", "a", "c", "d"), indexed=True),
            Field("channel", "single_select", choices=("web", "store")),
            Field("paid", "boolean"),
            Field("tags", "multi_select", choices=("x", "y")),
            Field("n", "integer"),
        ],
    )
    rng = random.Random(11)
    rows = [
        {
            "status": rng.choice(("a", "b", "c", "d", None)),
            "channel": rng.choice(("web", "store", None)),
            "paid": rng.choice((True, False, None)),
            "tags": rng.choice(([], ["x"], ["x", "y"])),
            "n": rng.randrange(4),
        }
        for _ in range(3000)
    ]
    # ties: as many "a" as "b" rows, so the order among equal counts shows
    rows += [{"status": "a"}] * 50 + [{"status": "b"}] * 50
    await reg.insert_many(rows)
    await reg.archive((await RowQuery(reg).where(status="c").first()).id)  # type: ignore[union-attr]
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE forktex_data.rows"))
    return reg


def test_fields_of_few_values_are_counted_together() -> None:
    status = Field("status", "single_select", choices=("a", "b")).with_key("f1")
    paid = Field("paid", "boolean").with_key("f2")
    tags = Field("tags", "multi_select", choices=("x",)).with_key("f3")
    n = Field("n", "integer").with_key("f4")
    assert joint_facets([status, n, paid, tags]) == [status, paid]
    assert joint_facets([status, n, tags]) == []  # one field alone: counted on its own
    wide = Field("w", "single_select", choices=tuple(map(str, range(MAX_JOINT_GROUPS))))
    assert joint_facets([status, wide, paid]) == [status, paid]


async def test_facets_of_several_fields_in_one_scan_equal_one_scan_each(
    engine: AsyncEngine, shop: Register, explain_nodes: Any
) -> None:
    fields = [shop.field(name) for name in ("status", "channel", "paid")]
    for query in (
        RowQuery(shop),
        RowQuery(shop).where(n__gte=2),
        RowQuery(shop).with_archived(),
        RowQuery(shop).where(n=99),  # no rows: no counts
    ):
        plan = await query.plan()
        for limit in (1, 2, 20):
            sql = joint_facet_sql(plan, fields, shop.id, shop.tenant_id, limit)
            nodes = await explain_nodes(sql.text, sql.params, analyze=False)
            scans = [n for n in nodes if n.get("Relation Name") == "rows"]
            assert len(scans) == 1, nodes  # one read of the rows for every field
            together = await query.facets("status", "channel", "paid", "tags", "n", limit=limit)
            assert list(together) == ["status", "channel", "paid", "tags", "n"]
            for f in fields:
                statement, params = facet_sql(plan, f, shop.id, shop.tenant_id, limit)
                async with engine.connect() as conn:
                    alone = [(r.v, int(r.n)) for r in await conn.execute(text(statement), params)]
                got = [(c.value, c.count) for c in together[f.name]]
                assert got == alone, (f.name, limit, got, alone)
    # the Python evaluation agrees (ties by value, None last)
    rows = await RowQuery(shop).all()
    counts = Counter(r["status"] for r in rows)
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    got = (await RowQuery(shop).facets("status", "paid", limit=20))["status"]
    assert [(c.value, c.count) for c in got] == expected


async def test_facets_of_a_field_that_cannot_be_counted_are_refused(shop: Register) -> None:
    """Every name is checked before anything is counted, as with one field."""
    with pytest.raises(InvalidQuery, match="has no field 'nope'"):
        await RowQuery(shop).facets("status", "nope")
    with pytest.raises(InvalidQuery, match="cannot facet on 'id'"):
        await RowQuery(shop).facets("status", "channel", "id")


async def test_whole_register_aggregates_and_facets_run_without_jit(
    engine: AsyncEngine, shop: Register
) -> None:
    """JIT compilation (30 ms per process over a large register) costs a statement that
    reads every document more than it saves: it is turned off for that statement's
    transaction only, and filtered statements do without the extra round trip."""
    async with engine.connect() as conn:
        default = (await conn.execute(text("SHOW jit"))).scalar_one()
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])  # (conn, cursor, statement, parameters, context, executemany)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        runs = {
            "whole": RowQuery(shop).group_by("status").aggregate(n=Count()),
            "filtered": RowQuery(shop).where(n=1).group_by("status").aggregate(n=Count()),
            "facets": RowQuery(shop).facets("status", "channel"),
            "filtered facets": RowQuery(shop).search("web").facets("status", "channel"),
        }
        statements = {}
        for name, run in runs.items():
            seen.clear()
            await run
            statements[name] = list(seen)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    off = "SET LOCAL jit = off"
    assert off in statements["whole"] and off in statements["facets"], statements
    assert off not in statements["filtered"] + statements["filtered facets"], statements
    async with engine.connect() as conn:  # the pooled connection kept its setting
        assert (await conn.execute(text("SHOW jit"))).scalar_one() == default
