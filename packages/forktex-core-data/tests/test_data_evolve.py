# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Schema evolution with data (add / rename / remove / retype, all or nothing), unique and
required flags, and expression indexes the planner really uses (EXPLAIN)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    ConversionFailed,
    Field,
    InvalidDefinition,
    InvalidValue,
    Register,
    RowQuery,
    UniqueViolation,
)
from forktex_core.data._compile import select_sql


async def _items(tenant: uuid.UUID) -> Register:
    reg = await Register.create(
        "items",
        tenant_id=tenant,
        fields=[
            Field("name", "text", required=True),
            Field("qty", "text"),
            Field("price", "decimal"),
            Field("kind", "text"),
        ],
    )
    await reg.insert_many(
        [
            {"name": "bolt", "qty": "10", "price": "1.50", "kind": "a"},
            {"name": "nut", "qty": "7", "price": "2", "kind": "b"},
            {"name": "gear", "qty": None, "price": None, "kind": "a"},
        ]
    )
    return reg


async def test_add_rename_remove_with_data(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    reg = await _items(tenant)
    await reg.add_field(Field("colour", "single_select", choices=("red", "blue"), default="red"))
    assert reg.version == 2
    assert {r["colour"] for r in await RowQuery(reg).all()} == {"red"}  # back-filled
    with pytest.raises(InvalidDefinition, match="needs a default"):
        await reg.add_field(Field("sku", "text", required=True))
    with pytest.raises(InvalidDefinition, match="already has a field 'name'"):
        await reg.add_field(Field("name", "text"))
    with pytest.raises(InvalidDefinition, match="takes a Field"):
        await reg.add_field("sku")  # type: ignore[arg-type]
    await reg.add_field(Field("sku", "text", required=True, default="n/a"))
    await reg.rename_field("qty", "quantity")
    rows = await RowQuery(reg).order_by("name").all()
    assert [r["quantity"] for r in rows] == ["10", None, "7"]  # values kept
    assert "qty" not in rows[0].values
    with pytest.raises(InvalidDefinition, match="already has a field 'name'"):
        await reg.rename_field("quantity", "name")
    with pytest.raises(InvalidDefinition, match="reserved"):
        await reg.rename_field("quantity", "id")
    with pytest.raises(InvalidDefinition, match="no field 'ghost'"):
        await reg.rename_field("ghost", "x")
    assert await RowQuery(reg).search("b").count() == 1
    removed_key = reg.field("kind").key
    await reg.remove_field("kind")
    assert await RowQuery(reg).search("b").count() == 0  # search forgets removed text
    with pytest.raises(InvalidDefinition, match="no field 'kind'"):
        await reg.remove_field("kind")
    async with engine.connect() as conn:
        leftovers = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM forktex_data.rows WHERE register_id = :r AND data ? :key"
                ),
                {"r": reg.id, "key": removed_key},
            )
        ).scalar_one()
    assert leftovers == 0  # the removed field's values are gone from every row
    assert [f.name for f in reg.fields] == ["name", "quantity", "price", "colour", "sku"]


async def test_change_type_converts_or_changes_nothing(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    reg = await _items(tenant)
    change = await reg.change_field_type("qty", "integer")
    assert (change.old_type, change.new_type, change.converted) == ("text", "integer", 2)
    assert await RowQuery(reg).where(qty__gt=8).count() == 1  # typed comparison now
    await reg.insert({"name": "washer", "kind": "not a number"})
    before = {r.id: dict(r.values) for r in await RowQuery(reg).all()}
    version = reg.version
    with pytest.raises(ConversionFailed) as info:
        await reg.change_field_type("kind", "integer")
    assert info.value.failed == 4 and info.value.field == "kind"
    assert {str(v) for _, v, _ in info.value.failures} == {"a", "b", "not a number"}
    assert "cannot convert from text to integer; nothing was changed" in str(info.value)
    await reg.refresh()
    assert reg.version == version and reg.field("kind").kind.value == "text"
    assert {r.id: dict(r.values) for r in await RowQuery(reg).all()} == before
    # decimal -> integer only for whole numbers; -> text keeps the canonical form
    with pytest.raises(ConversionFailed, match="1 of 2"):
        await reg.change_field_type("price", "integer")
    await reg.change_field_type("price", "text")
    assert sorted(r["price"] for r in await RowQuery(reg).where(price__is_null=False).all()) == [
        "1.5",
        "2",
    ]
    await reg.change_field_type("kind", "single_select", choices=("a", "b", "not a number"))
    assert (await RowQuery(reg).facets("kind"))["kind"][0].value == "a"
    await reg.change_field_type("kind", "multi_select", choices=("a", "b", "not a number", "c"))
    assert await RowQuery(reg).where(kind__contains="a").count() == 2
    with pytest.raises(InvalidDefinition, match="into a reference"):
        await reg.change_field_type("name", "reference", target="items")
    with pytest.raises(InvalidDefinition, match="unknown type"):
        await reg.change_field_type("name", "money")


async def test_change_type_dates_unique_and_defaults(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    reg = await Register.create(
        "events",
        tenant_id=tenant,
        fields=[
            Field("day", "date", indexed=True),
            Field("code", "text", unique=True),
            Field("level", "text", default="3"),
        ],
        date_field="day",
    )
    await reg.insert_many(
        [{"day": "2026-01-02", "code": "1.0"}, {"day": "2026-01-03", "code": "1.00"}]
    )
    await reg.change_field_type("day", "datetime")
    days = sorted(r["day"] for r in await RowQuery(reg).all())
    assert days[0] == datetime(2026, 1, 2, tzinfo=UTC)
    assert await RowQuery(reg).since(date(2026, 1, 3)).count() == 1  # still the date field
    with pytest.raises(ConversionFailed, match="is unique"):  # 1.0 and 1.00 collide
        await reg.change_field_type("code", "decimal")
    await reg.change_field_type("level", "integer")
    assert reg.field("level").default == 3
    assert {r["level"] for r in await RowQuery(reg).all()} == {3}
    with pytest.raises(InvalidDefinition, match="default of field 'level' cannot convert"):
        await reg.change_field_type("level", "boolean")


async def test_json_text_json_round_trip_keeps_objects_and_arrays(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    values: list[Any] = [
        {"a": [1, 2.5, None, True], "b": {"c": "d"}},
        [1, "x", {"y": []}],
        {},
        "plain text",
        '{"looks": "like json"}',  # a JSON *string*: becomes an object on the way back
        42,
        True,
    ]
    reg = await Register.create("docs", tenant_id=tenant, fields=[Field("meta", "json")])
    rows = await reg.insert_many([{"meta": v} for v in values])
    to_text = await reg.change_field_type("meta", "text", dry_run=True)
    assert to_text.dry_run and reg.field("meta").kind.value == "json"  # nothing changed
    assert to_text.converted == len(values) and to_text.failed == 0
    assert sorted(str(v) for _, v, _, _ in to_text.losses) == sorted(
        ['{"looks": "like json"}', "42", "True"]
    )
    assert (await reg.change_field_type("meta", "text")).lossy == 3
    assert (await reg.get(rows[0].id))["meta"] == '{"a":[1,2.5,null,true],"b":{"c":"d"}}'
    back = await reg.change_field_type("meta", "json")
    # objects and arrays parse back exactly; other text stays text. Only the string that
    # held JSON with spaces changes: as an object it converts back to compact text.
    assert [(r, v) for r, v, _, _ in back.losses] == [(rows[4].id, '{"looks": "like json"}')]
    got = [(await reg.get(r.id))["meta"] for r in rows]
    assert got[:4] == values[:4]
    assert got[4:] == [{"looks": "like json"}, "42", "true"]


async def test_dry_run_reports_what_a_conversion_loses(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    customers = await Register.create("people", tenant_id=tenant, fields=[Field("n", "text")])
    ada = await customers.insert({"n": "Ada"})
    reg = await Register.create(
        "visits",
        tenant_id=tenant,
        fields=[
            Field("at", "datetime", indexed=True),
            Field("who", "reference", target="people"),
            Field("code", "text"),
        ],
    )
    midnight = datetime(2026, 1, 1, tzinfo=UTC)
    afternoon = datetime(2026, 1, 2, 15, 30, tzinfo=UTC)
    rows = await reg.insert_many(
        [
            {"at": midnight, "who": ada.id, "code": "42"},
            {"at": afternoon, "who": ada.id, "code": "042"},
            {"at": None, "code": "x"},
        ]
    )
    version = reg.version
    to_date = await reg.change_field_type("at", "date", dry_run=True)
    assert (to_date.converted, to_date.lossy) == (2, 1)
    row_id, before, after, reason = to_date.losses[0]
    assert (row_id, before, after) == (rows[1].id, afternoon, date(2026, 1, 2))
    assert "converts back to" in reason
    to_text = await reg.change_field_type("who", "text", dry_run=True)
    assert to_text.lossy == 2 and all("link to register 'people'" in r for *_, r in to_text.losses)
    to_int = await reg.change_field_type("code", "integer", dry_run=True)
    assert (to_int.converted, to_int.lossy, to_int.failed) == (2, 1, 1)
    assert to_int.losses[0][:3] == (rows[1].id, "042", 42)
    assert to_int.failures[0][:2] == (rows[2].id, "x")
    await reg.refresh()
    assert reg.version == version  # dry runs change nothing
    assert [dict((await reg.get(r.id)).values) for r in rows] == [dict(r.values) for r in rows]
    with pytest.raises(InvalidDefinition, match="dry_run must be True or False"):
        await reg.change_field_type("code", "integer", dry_run="yes")  # type: ignore[arg-type]
    done = await reg.change_field_type("at", "date")
    assert (done.lossy, done.dry_run) == (1, False)


async def test_set_unique_and_required(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    reg = await _items(tenant)
    with pytest.raises(UniqueViolation, match="'kind'"):
        await reg.set_unique("kind")
    assert not reg.field("kind").unique
    await reg.set_unique("name")
    with pytest.raises(UniqueViolation):
        await reg.insert({"name": "bolt"})
    await reg.set_unique("name", False)
    await reg.insert({"name": "bolt", "kind": "c"})
    with pytest.raises(InvalidDefinition, match="have no value for 'price'"):
        await reg.set_required("price")
    await reg.set_required("kind")
    with pytest.raises(InvalidValue, match="required"):
        await reg.insert({"name": "x"})
    await reg.set_required("kind", False)
    await reg.insert({"name": "x"})
    for call in (reg.set_unique, reg.set_required, reg.set_indexed):
        with pytest.raises(InvalidDefinition, match="True or False"):
            await call("name", "yes")  # type: ignore[operator]


async def _explain(engine: AsyncEngine, reg: Register, query: RowQuery) -> str:
    plan = await query.plan()
    sql = select_sql(plan, reg.id, reg.tenant_id, limit=51, offset=0, after=None)
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        rows = await conn.execute(text("EXPLAIN " + sql.text), sql.params)
        return "\n".join(r[0] for r in rows)


async def test_indexed_fields_are_used_by_filters_and_sorts(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    reg = await Register.create(
        "invoices",
        tenant_id=tenant,
        fields=[
            Field("status", "single_select", choices=("draft", "paid"), indexed=True),
            Field("issued_at", "datetime"),
            Field("amount", "integer"),
        ],
    )
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await reg.insert_many(
        [
            {"status": "paid" if i % 3 else "draft", "issued_at": t0 + timedelta(hours=i),
             "amount": i}
            for i in range(3000)
        ]
    )  # fmt: skip
    await reg.set_indexed("issued_at")
    await reg.set_indexed("amount")
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE forktex_data.rows"))
        await conn.commit()
    name = f"fdx_{reg.id.hex}_{reg.field('issued_at').key}"
    sorted_plan = await _explain(engine, reg, RowQuery(reg).order_by("-issued_at"))
    assert name in sorted_plan and "Index Scan Backward" in sorted_plan, sorted_plan
    assert "Sort" not in sorted_plan.split("\n")[1], sorted_plan
    amount_index = f"fdx_{reg.id.hex}_{reg.field('amount').key}"
    range_plan = await _explain(engine, reg, RowQuery(reg).where(amount__between=[10, 20]))
    assert amount_index in range_plan, range_plan
    # a filter on one field plus the sort of an indexed one walks the sort index
    combined = await _explain(
        engine, reg, RowQuery(reg).where(status="paid").order_by("-issued_at")
    )
    assert name in combined and "Sort" not in combined.split("\n")[1], combined
    # the keyset continuation is an index range, not a filter over every row
    page = await RowQuery(reg).where(status="paid").order_by("-issued_at").scroll(page_size=5)
    assert page.next_cursor
    again = (
        await RowQuery(reg)
        .where(status="paid")
        .order_by("-issued_at")
        .scroll(page_size=5, cursor=page.next_cursor)
    )
    assert [r["amount"] for r in again] == [2992, 2990, 2989, 2987, 2986]
    await reg.set_indexed("amount", False)
    assert amount_index not in await _explain(
        engine, reg, RowQuery(reg).where(amount__between=[10, 20])
    )
    with pytest.raises(InvalidDefinition, match="cannot be indexed"):
        await reg.add_field(Field("tags", "json", indexed=True))
    await reg.add_field(Field("tags", "json"))
    with pytest.raises(InvalidDefinition, match="cannot be indexed"):
        await reg.set_indexed("tags")
    # retyping an indexed field rebuilds the index on the new typed expression
    await reg.change_field_type("issued_at", "text")
    retyped = await _explain(engine, reg, RowQuery(reg).order_by("-issued_at"))
    assert f"fdx_{reg.id.hex}_{reg.field('issued_at').key}" in retyped and name not in retyped


def test_conversion_matrix() -> None:
    from forktex_core.data._convert import convert

    text_f, int_f = Field("x", "text"), Field("x", "integer")
    assert convert(int_f, text_f, 5) == "5"
    assert convert(Field("x", "boolean"), int_f, True) == 1
    assert convert(int_f, Field("x", "boolean"), 0) is False
    assert convert(Field("x", "multi_select", choices=("a", "b")), text_f, ("a", "b")) == "a, b"
    multi = Field("x", "multi_select", choices=("a", "b"))
    assert convert(text_f, multi, "a, b") == ("a", "b")
    single = Field("x", "single_select", choices=("a", "b"))
    assert convert(multi, single, ("b",)) == "b"
    with pytest.raises(InvalidValue, match="exactly one"):
        convert(multi, single, ("a", "b"))
    assert convert(Field("x", "decimal"), Field("x", "json"), Decimal("1.5")) == "1.5"
    assert convert(Field("x", "json"), int_f, 3) == 3
    when = datetime(2026, 1, 1, 23, tzinfo=UTC)
    assert convert(Field("x", "datetime"), Field("x", "date"), when) == date(2026, 1, 1)
    assert convert(Field("x", "date"), text_f, date(2026, 1, 1)) == "2026-01-01"
    assert convert(Field("x", "json"), text_f, {"a": 1}) == '{"a":1}'
    json_f = Field("x", "json")
    assert convert(text_f, json_f, ' {"a": [1]} ') == {"a": [1]}
    assert convert(text_f, json_f, "[1, 2") == "[1, 2"  # not JSON: stays text
    assert convert(text_f, json_f, "[" * 100 + "]" * 100) == "[" * 100 + "]" * 100  # too deep
    assert convert(text_f, json_f, "42") == "42"
    assert convert(int_f, Field("x", "decimal"), None) is None
