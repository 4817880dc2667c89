# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Stored formula fields: checked when the register is defined, computed on every write
(Postgres and MemoryRegister alike), refused as input, queried and indexed like any field,
recomputed when a formula changes or a formula field is added, and protected from changes
to the fields they read."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    Field,
    InvalidDefinition,
    InvalidValue,
    MemoryRegister,
    Register,
    RowQuery,
    Sum,
)

FIELDS = [
    Field("no", "integer", autonumber=True),
    Field("code", "text", unique=True),
    Field("net", "decimal"),
    Field("qty", "integer"),
    Field("gross", "decimal", formula="round({net} * 1.19, 2)", indexed=True),
    Field("total", "decimal", formula="{gross} * {qty}"),
    Field("label", "text", formula="concat({code}, '#', {no})"),
    Field("big", "boolean", formula="{total} > 100"),
]


def _plain(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("code", "gross", "total", "label", "big")}


def _expected(code: str, no: int, net: str | None, qty: int | None) -> dict[str, Any]:
    gross = None if net is None else round(Decimal(net) * Decimal("1.19"), 2)
    total = None if gross is None or qty is None else gross * qty
    return {
        "code": code,
        "gross": gross,
        "total": total,
        "label": f"{code}#{no}",
        "big": None if total is None else total > 100,
    }


BAD_FORMULAS = [
    ([Field("g", "decimal", formula="{nope} * 2")], "{nope} is no field usable"),
    ([Field("a", "text"), Field("g", "decimal", formula="{a} * 2")], "'\\*' takes numbers"),
    ([Field("a", "text"), Field("g", "decimal", formula="concat({a})")], "gives a text"),
    ([Field("a", "integer"), Field("g", "integer", formula="{a} > 1")], "gives a boolean"),
    (
        [Field("a", "integer"), Field("g", "date", formula="{a} + 1")],
        "needs a formula giving a date",
    ),
    ([Field("g", "decimal", formula="{g} + 1")], "depends on itself \\('g' -> 'g'\\)"),
    (
        [Field("a", "integer", formula="{b} + 1"), Field("b", "integer", formula="{a} + 1")],
        "depends on itself",
    ),
    ([Field("t", "json"), Field("g", "text", formula="concat({t})")], "{t} is no field usable"),
    (
        [Field("t", "multi_select", choices=("x",)), Field("g", "text", formula="concat({t})")],
        "{t} is no field usable",
    ),
    ([Field("a", "integer"), Field("g", "integer", formula="{a} *")], "ends too early"),
    ([Field("g", "integer", formula="null")], "gives no value"),
    ([Field("g", "integer", formula="nope(1)")], "unknown function"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_FORMULAS)
async def test_formulas_are_checked_when_the_register_is_defined(
    engine: AsyncEngine, tenant: uuid.UUID, fields: list[Field], message: str
) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        await Register.create("bad", tenant_id=tenant, fields=fields)
    with pytest.raises(InvalidDefinition, match=message):
        MemoryRegister("bad", fields)
    assert await Register.catalog(tenant_id=tenant) == []  # nothing was stored
    if any(f.formula is not None for f in fields[:-1]):
        return  # a cycle: its first field alone is no register
    good = await Register.create("bad", tenant_id=tenant, fields=fields[:-1])
    with pytest.raises(InvalidDefinition, match=message):  # the same check on add_field
        await good.add_field(fields[-1])
    assert [f.name for f in (await good.refresh()).fields] == [f.name for f in fields[:-1]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "single_select", "choices": ("a",)}, "cannot have a formula; formula fields"),
        ({"type": "json"}, "cannot have a formula"),
        ({"type": "reference", "target": "x"}, "cannot have a formula"),
        ({"required": True}, "cannot be required"),
        ({"unique": True}, "cannot be unique"),
        ({"default": 3}, "cannot have a default"),
        ({"autonumber": True}, "cannot be autonumber"),
        ({"formula": ""}, "formula must be non-empty text"),
        ({"formula": 42}, "formula must be non-empty text"),
    ],
)
def test_formula_field_options_that_make_no_sense_are_refused(
    kwargs: dict[str, Any], message: str
) -> None:
    options: dict[str, Any] = {"type": "integer", "formula": "1 + 1"} | kwargs
    kind = options.pop("type")
    with pytest.raises(InvalidDefinition, match=message):
        Field("g", kind, **options)


async def test_values_are_computed_on_every_write_path(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    stored = await Register.create("items", tenant_id=tenant, fields=FIELDS)
    memory = MemoryRegister("items", FIELDS)
    for source in (stored, memory):
        a = await source.insert({"code": "a", "net": "10", "qty": 3})
        assert _plain(a) == _expected("a", 1, "10", 3)
        if isinstance(source, Register):
            rows = await source.insert_many(
                [{"code": "b", "net": "100", "qty": 2}, {"code": "c", "qty": 5}]
            )
            report = await source.import_csv(["code,net,qty\nd,1.5,4\n"])
            assert report.written == 1, report.errors
            report = await source.import_jsonl(['{"code": "e", "net": "2", "qty": 1}\n'])
            assert report.written == 1, report.errors
        else:
            rows = [
                await source.insert({"code": "b", "net": "100", "qty": 2}),
                await source.insert({"code": "c", "qty": 5}),
                await source.insert({"code": "d", "net": "1.5", "qty": 4}),
                await source.insert({"code": "e", "net": "2", "qty": 1}),
            ][:2]
        assert [_plain(r) for r in rows] == [
            _expected("b", 2, "100", 2),
            _expected("c", 3, None, 5),
        ]
        updated = await source.update(a.id, {"qty": 100})
        assert _plain(updated) == _expected("a", 1, "10", 100)
        upserted = await source.upsert(
            [{"code": "b", "net": "1"}, {"code": "f", "net": "3", "qty": 1}], on="code"
        )
        assert [_plain(r) for r in upserted] == [
            _expected("b", 2, "1", 2),
            _expected("f", 6, "3", 1),
        ]
        assert await RowQuery(source).where(code__in=["c", "d"]).update({"net": "50"}) == 2
        expected = {
            "a": _expected("a", 1, "10", 100),
            "b": _expected("b", 2, "1", 2),
            "c": _expected("c", 3, "50", 5),
            "d": _expected("d", 4, "50", 4),
            "e": _expected("e", 5, "2", 1),
            "f": _expected("f", 6, "3", 1),
        }
        got = {r["code"]: _plain(r) for r in await RowQuery(source).all()}
        assert got == expected, source
        assert _plain(await source.get(a.id)) == expected["a"]


async def test_writes_that_give_a_formula_value_are_refused(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    stored = await Register.create("items", tenant_id=tenant, fields=FIELDS)
    memory = MemoryRegister("items", FIELDS)
    for source in (stored, memory):
        row = await source.insert({"code": "a", "net": "1", "gross": None})  # None is no value
        computed = "is computed by its formula 'round"
        with pytest.raises(InvalidValue, match=computed):
            await source.insert({"code": "b", "gross": 5})
        with pytest.raises(InvalidValue, match=computed):
            await source.update(row.id, {"gross": 5})
        with pytest.raises(InvalidValue, match=computed):
            await RowQuery(source).update({"gross": 5})
        with pytest.raises(InvalidValue, match=computed):
            await source.upsert([{"code": "a", "gross": 5}], on="code")
    report = await stored.import_csv(["code,gross\nz,5\ny,\n"])
    assert report.written == 1 and "computed by its formula" in report.errors[0].reason
    with pytest.raises(InvalidValue, match="computed by its formula"):
        MemoryRegister("items", FIELDS, rows=[{"code": "x", "label": "forged"}])


async def test_a_result_the_field_cannot_hold_fails_the_write(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    fields = [Field("a", "integer"), Field("half", "integer", formula="{a} / 2")]
    stored = await Register.create("halves", tenant_id=tenant, fields=fields)
    memory = MemoryRegister("halves", fields)
    for source in (stored, memory):
        assert (await source.insert({"a": 4}))["half"] == 2
        with pytest.raises(InvalidValue, match="round\\(\\.\\.\\., 0\\) makes a whole number"):
            await source.insert({"a": 3})
        assert await RowQuery(source).count() == 1
    report = await stored.import_csv(["a\n6\n7\n"])
    assert report.written == 1 and "cannot hold" in report.errors[0].reason


async def test_an_import_into_a_numbered_register_reports_a_result_the_field_cannot_hold(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    """Rows are numbered before their formulas are computed (a formula may read the
    number): a row whose result does not fit is reported and the others keep gapless
    numbers."""
    fields = [
        Field("no", "integer", autonumber=True),
        Field("a", "integer"),
        Field("half", "integer", formula="{a} / 2"),
        Field("tag", "text", formula="concat('#', {no})"),
    ]
    stored = await Register.create("numbered", tenant_id=tenant, fields=fields)
    report = await stored.import_csv(["a\n4\n3\n6\n5\n8\n"], batch_size=3)
    assert report.written == 3, report.errors
    assert [(e.line, "cannot hold" in e.reason) for e in report.errors] == [(3, True), (5, True)]
    rows = await RowQuery(stored).order_by("no").all()
    assert [(r["no"], r["a"], r["half"], r["tag"]) for r in rows] == [
        (1, 4, 2, "#1"),
        (2, 6, 3, "#2"),
        (3, 8, 4, "#3"),
    ]
    assert (await stored.insert({"a": 10}))["no"] == 4


async def test_formula_fields_filter_sort_group_and_use_their_index(
    engine: AsyncEngine,
    tenant: uuid.UUID,
    plan_nodes: Any,
) -> None:
    items = await Register.create("items", tenant_id=tenant, fields=FIELDS)
    await items.insert_many(
        [{"code": f"c{i}", "net": str(i), "qty": i % 7} for i in range(1, 3001)]
    )
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE forktex_data.rows"))
        await conn.commit()
    query = RowQuery(items).where(gross__between=["119", "130"]).order_by("-gross")
    assert [r["code"] for r in await query.all()] == [f"c{i}" for i in range(109, 99, -1)]
    index = f"fdx_{items.id.hex}_{items.field('gross').key}"
    assert any(n.get("Index Name") == index for n in await plan_nodes(items, query))
    assert await RowQuery(items).where(big=True, qty=0).count() == 0
    assert await RowQuery(items).where(label__starts_with="c30#").count() == 1
    facets = {f.value: f.count for f in (await RowQuery(items).facets("big"))["big"]}
    big = await RowQuery(items).where(total__gt=100).count()
    assert facets == {True: big, False: 3000 - big}
    groups = await RowQuery(items).group_by("qty").aggregate({"sum": Sum("total")})
    zero = next(g for g in groups if g["qty"] == 0)
    assert zero["sum"] == 0
    # A changed formula is recomputed for every row (in chunks), and the index follows.
    assert await items.set_formula("gross", "round({net} * 1.07, 2)") == 3000
    moved = RowQuery(items).where(gross__between=["107", "107.5"])
    assert [r["code"] for r in await moved.all()] == ["c100"]
    assert any(n.get("Index Name") == index for n in await plan_nodes(items, moved))
    row = (await RowQuery(items).where(code="c3").all())[0]
    assert (row["gross"], row["total"], row["label"]) == (Decimal("3.21"), Decimal("9.63"), "c3#3")


async def test_adding_a_formula_field_computes_it_for_existing_rows(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    items = await Register.create(
        "items", tenant_id=tenant, fields=[Field("net", "decimal"), Field("qty", "integer")]
    )
    before = await items.insert_many([{"net": "2.5", "qty": 2}, {"net": "3", "qty": 3}])
    with pytest.raises(InvalidDefinition, match=f"row {before[0].id}.*cannot hold"):
        await items.add_field(Field("whole", "integer", formula="{net} * 1"))
    assert [f.name for f in items.fields] == ["net", "qty"]  # nothing was changed
    await items.add_field(Field("total", "decimal", formula="{net} * {qty}", indexed=True))
    await items.add_field(Field("loud", "text", formula="concat('n=', {total})"))
    rows = await RowQuery(items).order_by("total").all()
    assert [(r["total"], r["loud"]) for r in rows] == [(5, "n=5"), (9, "n=9")]
    assert [r.updated_at for r in rows] == [r.updated_at for r in before]  # no row edit
    assert await RowQuery(items).search("n=9").count() == 1  # search words follow
    reloaded = await Register.load("items", tenant_id=tenant)
    assert reloaded.field("total").formula == "{net} * {qty}"


async def test_a_recompute_failing_in_a_later_chunk_changes_nothing(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    fields = [Field("n", "integer"), Field("mail", "email", formula="concat('u', {n}, '@x.io')")]
    users = await Register.create("users", tenant_id=tenant, fields=fields)
    await users.insert_many([{"n": i} for i in range(2500)])  # three chunks of 1,000
    with pytest.raises(InvalidDefinition, match=r"row .*: .*gives a value the field cannot hold"):
        await users.set_formula("mail", "if({n} < 2400, concat('v', {n}, '@x.io'), 'no mail')")
    assert await RowQuery(users).where(mail__starts_with="v").count() == 0
    assert await RowQuery(users).where(mail="u0@x.io").count() == 1
    assert users.field("mail").formula == "concat('u', {n}, '@x.io')"


async def test_set_formula_refuses_bad_changes_and_leaves_rows_alone(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    items = await Register.create("items", tenant_id=tenant, fields=FIELDS)
    await items.insert_many([{"code": "a", "net": "1.5", "qty": 1}])
    with pytest.raises(
        InvalidDefinition,
        match="'net' of register 'items' has no formula; formula fields: 'gross', 'total'",
    ):
        await items.set_formula("net", "1")
    with pytest.raises(InvalidDefinition, match="depends on itself"):
        await items.set_formula("gross", "{total} + 1")
    with pytest.raises(InvalidDefinition, match="formula must be non-empty text"):
        await items.set_formula("gross", " ")
    with pytest.raises(InvalidDefinition, match="has no field 'nope'"):
        await items.set_formula("nope", "1")
    items2 = await Register.create(
        "halves",
        tenant_id=tenant,
        fields=[Field("a", "decimal"), Field("b", "integer", formula="round({a}, 0)")],
    )
    await items2.insert({"a": "1.5"})
    with pytest.raises(InvalidDefinition, match="cannot hold"):
        await items2.set_formula("b", "{a}")
    assert (await RowQuery(items2).first())["b"] == 2  # type: ignore[index]
    assert items2.field("b").formula == "round({a}, 0)"


async def test_fields_a_formula_reads_are_protected(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    items = await Register.create("items", tenant_id=tenant, fields=FIELDS)
    await items.insert({"code": "a", "net": "10", "qty": 2})
    reads = "the formula of field\\(s\\) 'gross' reads it"
    with pytest.raises(InvalidDefinition, match=f"cannot remove field 'net'.*{reads}"):
        await items.remove_field("net")
    with pytest.raises(InvalidDefinition, match=f"cannot change the type of field 'net'.*{reads}"):
        await items.change_field_type("net", "integer")
    with pytest.raises(InvalidDefinition, match="computed by its formula"):
        await items.change_field_type("big", "text")
    with pytest.raises(InvalidDefinition, match="cannot be unique"):
        await items.set_unique("gross")
    with pytest.raises(InvalidDefinition, match="cannot be required"):
        await items.set_required("gross")
    renamed = re.escape("cannot rename field 'net' of register 'items' to 'n{1}' (a formula")
    with pytest.raises(InvalidDefinition, match=renamed):
        await items.rename_field("net", "n{1}")
    # A rename rewrites the formulas that read the field.
    await items.rename_field("net", "amount")
    assert items.field("gross").formula == "round({amount} * 1.19, 2)"
    row = await items.insert({"code": "b", "amount": "100", "qty": 1})
    assert row["gross"] == Decimal("119")
    await items.rename_field("code", "sku")
    assert items.field("label").formula == "concat({sku}, '#', {no})"
    # Without its readers a field can go; the formula field itself can always go.
    await items.remove_field("label")
    await items.remove_field("big")
    await items.remove_field("total")
    await items.remove_field("gross")
    await items.remove_field("amount")
    assert [f.name for f in items.fields] == ["no", "sku", "qty"]


async def test_a_handle_loaded_before_a_formula_change_writes_the_new_formula(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    fields = [Field("n", "integer"), Field("f", "integer", formula="{n} * 2")]
    admin = await Register.create("items", tenant_id=tenant, fields=fields)
    writer = await Register.load("items", tenant_id=tenant)  # its definition is cached
    await admin.set_formula("f", "{n} * 10")
    assert writer.field("f").formula == "{n} * 2"  # stale, until its next write
    assert (await writer.insert({"n": 3}))["f"] == 30
    assert await RowQuery(writer).where(n=3).update({"n": 4}) == 1
    assert [r["f"] for r in await RowQuery(writer).all()] == [40]


async def test_tenants_keep_their_own_formulas(engine: AsyncEngine) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    ra = await Register.create(
        "items",
        tenant_id=a,
        fields=[Field("n", "integer"), Field("f", "integer", formula="{n} * 2", indexed=True)],
    )
    rb = await Register.create(
        "items",
        tenant_id=b,
        fields=[Field("n", "integer"), Field("f", "text", formula="concat('b', {n})")],
    )
    await ra.insert_many([{"n": i} for i in range(5)])
    await rb.insert_many([{"n": i} for i in range(3)])
    await ra.set_formula("f", "{n} * 3")
    assert sorted(r["f"] for r in await RowQuery(ra).all()) == [0, 3, 6, 9, 12]
    assert sorted(r["f"] for r in await RowQuery(rb).all()) == ["b0", "b1", "b2"]
    assert await RowQuery(ra).where(f__gte=6).count() == 3
    assert await RowQuery(rb).where(f="b2").count() == 1
