# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Registers and rows on real Postgres: lazy loading, writes, uniqueness under concurrency,
references, archive/restore/delete, tenant isolation and bad input."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from forktex_core.data import (
    Field,
    InvalidDefinition,
    InvalidValue,
    NotFound,
    ReferenceViolation,
    Register,
    RegisterNotLoaded,
    RowQuery,
    UniqueViolation,
    init_schema,
)
from forktex_core.db import EngineNotInitialised, close_engine

CUSTOMER_FIELDS = [
    Field("name", "text", required=True),
    Field("email", "email", unique=True),
    Field("tier", "single_select", choices=("free", "pro"), default="free"),
]


async def _customers(tenant: uuid.UUID) -> Register:
    return await Register.create("customers", tenant_id=tenant, fields=CUSTOMER_FIELDS)


async def test_load_is_lazy_and_awaitable(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    await _customers(tenant)
    handle = Register.load("customers", tenant_id=tenant)
    assert not handle.loaded and "not loaded" in repr(handle)
    with pytest.raises(RegisterNotLoaded, match=r"await Register\.load"):
        _ = handle.fields
    page = await RowQuery(handle).scroll()  # the first query fetches the definition
    assert handle.loaded and page.items == () and page.next_cursor is None
    eager = await Register.load("customers", tenant_id=str(tenant))
    assert [f.name for f in eager.fields] == ["name", "email", "tier"]
    assert eager.field("tier").default == "free" and eager.version == 1
    with pytest.raises(InvalidDefinition, match="no field 'nope'; fields: 'name'"):
        eager.field("nope")
    with pytest.raises(NotFound, match="'nope' does not exist"):
        await Register.load("nope", tenant_id=tenant)
    missing = Register.load("nope", tenant_id=tenant)
    with pytest.raises(NotFound):
        await RowQuery(missing).count()


async def test_engine_argument_and_missing_engine(data_db: Any, tenant: uuid.UUID) -> None:
    await close_engine()
    with pytest.raises(EngineNotInitialised):
        await Register.load("customers", tenant_id=tenant)
    own = create_async_engine(data_db.url)
    try:
        state = await init_schema(own)
        assert state.schema == "forktex_data" and state.version >= 1
        assert await init_schema(own) == state  # once per engine
        with pytest.raises(InvalidValue, match="needs a SQLAlchemy AsyncEngine"):
            await init_schema(data_db.url)
        reg = await Register.create("mine", tenant_id=tenant, fields=[Field("n", "integer")],
                                    engine=own)  # fmt: skip
        await reg.insert({"n": 1})
        again = await Register.load("mine", tenant_id=tenant, engine=own)
        assert await RowQuery(again).count() == 1
    finally:
        await own.dispose()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: Register.load("x", tenant_id="nope"), InvalidValue, "tenant_id must be a UUID"),
        (lambda t: Register.load("", tenant_id=t), InvalidDefinition, "1-63 characters"),
        (lambda t: Register.load("x", tenant_id=t, engine="db"), InvalidValue, "AsyncEngine"),
    ],
)
def test_load_rejects_bad_arguments(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call(uuid.uuid4())


async def test_create_rejects_bad_definitions(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    await _customers(tenant)
    with pytest.raises(InvalidDefinition, match="already exists for this tenant"):
        await _customers(tenant)
    with pytest.raises(InvalidDefinition, match="names field"):
        await Register.create("d", tenant_id=tenant, fields=[Field("a", "text")] * 2)
    with pytest.raises(InvalidDefinition, match="list of Field"):
        await Register.create("d", tenant_id=tenant, fields=["a"])  # type: ignore[list-item]
    with pytest.raises(InvalidDefinition, match="date_field 'a'"):
        await Register.create("d", tenant_id=tenant, fields=[Field("a", "text")], date_field="a")
    with pytest.raises(InvalidDefinition, match="targets register 'ghost'"):
        await Register.create(
            "d", tenant_id=tenant, fields=[Field("g", "reference", target="ghost")]
        )
    with pytest.raises(InvalidDefinition, match="label"):
        await Register.create("d", tenant_id=tenant, label=3)  # type: ignore[arg-type]
    # nothing half-created
    assert [r.name for r in await Register.catalog(tenant_id=tenant)] == ["customers"]


async def test_insert_defaults_required_and_bad_rows(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    reg = await _customers(tenant)
    row = await reg.insert({"name": "Ada"})
    assert row["tier"] == "free" and row.get("email") is None and row["id"] == row.id
    with pytest.raises(KeyError, match="no field 'x'"):
        row["x"]
    with pytest.raises(InvalidValue, match="'name' of register 'customers' is required"):
        await reg.insert({"email": "a@b.co"})
    with pytest.raises(InvalidValue, match="no field 'nickname'; fields: 'name', 'email'"):
        await reg.insert({"name": "x", "nickname": "y"})
    with pytest.raises(InvalidValue, match="mapping"):
        await reg.insert(["name"])  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="list of mappings"):
        await reg.insert_many({"name": "x"})  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="'tier'"):  # one bad row: none inserted
        await reg.insert_many([{"name": "ok"}, {"name": "bad", "tier": "gold"}])
    assert await reg.insert_many([]) == []
    assert await RowQuery(reg).count() == 1


async def test_large_insert_many_is_all_or_nothing_across_statements(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    """insert_many writes 100 rows per statement here; a failure in any (a bad value,
    a unique value already taken earlier in the same call, a dangling reference) leaves
    nothing written."""
    people = await Register.create("people", tenant_id=tenant, fields=[Field("n", "text")])
    ada = await people.insert({"n": "ada"})
    reg = await Register.create(
        "bulk",
        tenant_id=tenant,
        fields=[
            Field("code", "text", unique=True),
            Field("n", "integer"),
            Field("who", "reference", target="people"),
        ],
    )

    def rows() -> list[dict[str, Any]]:
        return [{"code": f"c{i}", "n": i, "who": ada.id} for i in range(700)]

    bad_value, taken, dangling = rows(), rows(), rows()
    bad_value[620]["n"] = "many"
    taken[560]["code"] = "c10"
    dangling[690]["who"] = uuid.uuid4()
    with pytest.raises(InvalidValue, match="'n'"):
        await reg.insert_many(bad_value)
    with pytest.raises(UniqueViolation, match="'code'"):
        await reg.insert_many(taken)
    with pytest.raises(ReferenceViolation, match="'who'"):
        await reg.insert_many(dangling)
    assert await RowQuery(reg).count() == 0
    inserted = await reg.insert_many(rows())
    assert [r["n"] for r in inserted] == list(range(700))
    assert [r["n"] for r in await RowQuery(reg).order_by("n").all()] == list(range(700))
    assert await RowQuery(reg).where(who=ada.id).count() == 700
    with pytest.raises(ReferenceViolation):
        await people.delete(ada.id)


async def test_a_target_deleted_while_a_write_runs_is_a_reference_violation(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    people = await Register.create("people", tenant_id=tenant, fields=[Field("n", "text")])
    target = await people.insert({"n": "ada"})
    notes = await Register.create(
        "notes", tenant_id=tenant, fields=[Field("who", "reference", target="people")]
    )
    note = await notes.insert({})
    deleter = await engine.connect()
    try:
        await deleter.begin()
        await deleter.execute(
            text("DELETE FROM forktex_data.rows WHERE id = :id"), {"id": target.id}
        )
        writes = [  # the bulk insert statement and the update's link statement
            asyncio.create_task(notes.insert_many([{"who": target.id}] * 300)),
            asyncio.create_task(notes.update(note.id, {"who": target.id})),
        ]

        async def blocked() -> int:
            async with engine.connect() as conn:
                return int(
                    (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type "
                                "= 'Lock' AND query LIKE '%forktex_data.links%'"
                            )
                        )
                    ).scalar_one()
                )

        for _ in range(200):  # both writes wait for the deleting transaction (≤ 10 s)
            if await blocked() == 2:
                break
            await asyncio.sleep(0.05)
        assert await blocked() == 2
        await deleter.commit()
    finally:
        await deleter.close()
    for write in writes:
        with pytest.raises(ReferenceViolation, match="deleted from register 'people'"):
            await write
    assert await RowQuery(notes).where(who__is_null=False).count() == 0
    assert await RowQuery(notes).count() == 1


async def test_update_get_archive_restore_delete(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    reg = await _customers(tenant)
    row = await reg.insert({"name": "Ada", "email": "ada@example.com"})
    updated = await reg.update(row.id, {"tier": "pro", "email": None})
    assert updated["tier"] == "pro" and updated["email"] is None and updated["name"] == "Ada"
    assert updated.updated_at is not None and row.updated_at is not None
    assert updated.updated_at >= row.updated_at
    assert (await reg.get(str(row.id)))["tier"] == "pro"
    with pytest.raises(InvalidValue, match="'name' of register 'customers' is required"):
        await reg.update(row.id, {"name": None})
    archived = await reg.archive(row.id)
    assert archived.archived and (await reg.archive(row.id)).archived_at == archived.archived_at
    assert await RowQuery(reg).count() == 0
    assert await RowQuery(reg).archived().count() == 1
    assert (await reg.get(row.id)).archived  # get still finds archived rows
    assert not (await reg.restore(row.id)).archived
    assert await RowQuery(reg).count() == 1
    await reg.delete(row.id)
    for call in (reg.get, reg.delete, reg.archive, reg.restore):
        with pytest.raises(NotFound, match="has no row"):
            await call(row.id)
    with pytest.raises(NotFound):
        await reg.update(row.id, {"name": "x"})
    for bad in ("nope", 5, None, True):
        with pytest.raises(InvalidValue, match="row id must be a UUID"):
            await reg.get(bad)  # type: ignore[arg-type]


async def test_unique_is_enforced_by_postgres_under_concurrency(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    reg = await _customers(tenant)
    others = [Register.load("customers", tenant_id=tenant) for _ in range(8)]

    async def claim(r: Register) -> str:
        try:
            await r.insert({"name": "racer", "email": "Same@Example.com"})
        except UniqueViolation as exc:
            assert exc.field == "email"
            return "lost"
        return "won"

    outcomes = await asyncio.gather(*(claim(r) for r in others))
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert await RowQuery(reg).where(email="same@example.com").count() == 1
    with pytest.raises(UniqueViolation, match="'email' of register 'customers' is unique"):
        await reg.insert_many(
            [{"name": "a", "email": "x@example.com"}, {"name": "b", "email": "X@example.com"}]
        )
    other = await reg.insert({"name": "c", "email": "c@example.com"})
    with pytest.raises(UniqueViolation):
        await reg.update(other.id, {"email": "same@example.com"})
    await reg.update(other.id, {"email": "c@example.com"})  # keeping its own value is fine
    await reg.delete(other.id)
    await reg.insert({"name": "d", "email": "c@example.com"})  # freed by the delete
    assert await RowQuery(reg).count() == 2


async def test_references_one_and_many(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    customers = await _customers(tenant)
    tags = await Register.create("tags", tenant_id=tenant, fields=[Field("label", "text")])
    invoices = await Register.create(
        "invoices",
        tenant_id=tenant,
        fields=[
            Field("number", "text"),
            Field("customer", "reference", target="customers"),
            Field("tags", "reference", target="tags", many=True),
            Field("parent", "reference", target="invoices"),
        ],
    )
    assert [f.name for f in invoices.relationships] == ["customer", "tags", "parent"]
    acme = await customers.insert({"name": "Acme"})
    t1, t2 = await tags.insert_many([{"label": "red"}, {"label": "blue"}])
    first = await invoices.insert({"number": "1", "customer": acme, "tags": [t1.id, t2.id]})
    second = await invoices.insert({"number": "2", "customer": acme.id, "parent": first.id})
    page = await RowQuery(invoices).include("customer", "tags", "parent").order_by("number").all()
    assert page[0].included["customer"]["name"] == "Acme"
    assert [t["label"] for t in page[0].included["tags"]] == ["red", "blue"]
    assert page[0].included["parent"] is None
    assert page[1].included["parent"].id == first.id and page[1].included["tags"] == ()
    assert await RowQuery(invoices).where(customer=acme.id).count() == 2
    assert await RowQuery(invoices).where(tags__contains=t2.id).count() == 1
    # dangling references are refused, nothing written
    with pytest.raises(ReferenceViolation, match="'customer' of register 'invoices'"):
        await invoices.insert({"number": "3", "customer": uuid.uuid4()})
    with pytest.raises(ReferenceViolation, match="do not exist in register 'customers'"):
        await invoices.insert({"number": "3", "customer": t1.id})  # a row of another register
    with pytest.raises(ReferenceViolation):
        await invoices.update(second.id, {"tags": [t1.id, uuid.uuid4()]})
    assert (await invoices.get(second.id))["tags"] is None
    # referenced rows cannot be hard-deleted; archiving is fine
    with pytest.raises(ReferenceViolation, match=r"referenced by 'invoices'\.'customer'"):
        await customers.delete(acme.id)
    with pytest.raises(ReferenceViolation, match=r"'invoices'\.'tags'"):
        await RowQuery(tags).delete()
    await customers.archive(acme.id)
    await invoices.update(first.id, {"tags": [t2.id]})
    assert await RowQuery(tags).where(label="red").delete() == 1  # no longer referenced
    with pytest.raises(ReferenceViolation, match="target of reference field"):
        await customers.drop()
    await RowQuery(invoices).with_archived().where(number="2").delete()
    await invoices.update(first.id, {"customer": None})
    await customers.delete(acme.id)
    await invoices.drop()
    await customers.drop()
    with pytest.raises(NotFound):
        await Register.load("customers", tenant_id=tenant)


async def test_tenant_isolation(engine: AsyncEngine) -> None:
    alpha, beta = uuid.uuid4(), uuid.uuid4()
    a_customers = await _customers(alpha)
    secret = await a_customers.insert({"name": "Alpha secret", "email": "boss@alpha.io"})
    b_customers = await _customers(beta)  # same name, other tenant: allowed and separate
    await b_customers.insert({"name": "Beta", "email": "boss@alpha.io"})  # unique per tenant
    assert await RowQuery(b_customers).count() == 1
    assert await RowQuery(b_customers).search("secret").count() == 0
    for call in (b_customers.get, b_customers.delete, b_customers.archive, b_customers.restore):
        with pytest.raises(NotFound):
            await call(secret.id)
    with pytest.raises(NotFound):
        await b_customers.update(secret.id, {"name": "pwned"})
    # references cannot point into another tenant
    b_orders = await Register.create(
        "orders", tenant_id=beta, fields=[Field("c", "reference", target="customers")]
    )
    with pytest.raises(ReferenceViolation):
        await b_orders.insert({"c": secret.id})
    # a register of tenant A is invisible to tenant B, even by name
    only_a = await Register.create("only_alpha", tenant_id=alpha)
    with pytest.raises(NotFound):
        await Register.load("only_alpha", tenant_id=beta)
    assert "only_alpha" not in [r.name for r in await Register.catalog(tenant_id=beta)]
    # bulk query operations of B never touch A's rows
    assert await RowQuery(b_customers).with_archived().delete() == 1
    assert await RowQuery(b_customers).archive() == 0
    survivor = await a_customers.get(secret.id)
    assert survivor["name"] == "Alpha secret" and not survivor.archived
    await only_a.drop()


async def test_catalog_and_drop(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    with pytest.raises(InvalidValue):
        await Register.catalog(tenant_id="x")
    b = await Register.create("b", tenant_id=tenant, fields=[Field("n", "integer", indexed=True)])
    await Register.create("a", tenant_id=tenant)
    assert [r.name for r in await Register.catalog(tenant_id=tenant)] == ["a", "b"]
    async with engine.connect() as conn:
        before = (
            await conn.execute(
                text("SELECT count(*) FROM pg_indexes WHERE indexname LIKE :p"),
                {"p": f"fdx_{b.id.hex}_%"},
            )
        ).scalar_one()
    assert before == 1
    await b.insert({"n": 1})
    b_id = b.id
    await b.drop()
    assert not b.loaded
    async with engine.connect() as conn:
        rows, indexes = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM forktex_data.rows WHERE tenant_id = :t), "
                    "(SELECT count(*) FROM pg_indexes WHERE indexname LIKE :p)"
                ),
                {"t": tenant, "p": f"fdx_{b_id.hex}_%"},
            )
        ).one()
    assert rows == 0 and indexes == 0
    with pytest.raises(NotFound):
        await b.drop()
