# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Bulk data on real Postgres: streaming CSV / JSON Lines import with per-row errors,
export of any RowQuery, upsert by a unique field (also under concurrency) and
update-where, on Register and MemoryRegister."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    Field,
    ImportReport,
    InvalidQuery,
    InvalidValue,
    MemoryRegister,
    ReferenceViolation,
    Register,
    RowQuery,
    SchemaConflict,
    UniqueViolation,
    export_csv,
    export_jsonl,
)


def _fields() -> list[Field]:
    return [
        Field("number", "text", required=True, unique=True),
        Field("status", "single_select", choices=("draft", "paid"), default="draft"),
        Field("total", "decimal"),
        Field("qty", "integer"),
        Field("paid", "boolean"),
        Field("due", "date"),
        Field("at", "datetime"),
        Field("email", "email"),
        Field("tags", "multi_select", choices=("vip", "late, very")),
        Field("meta", "json"),
        Field("customer", "reference", target="customers"),
        Field("note", "text"),
    ]


async def _setup(tenant: uuid.UUID, name: str = "invoices") -> tuple[Register, Register]:
    customers = await Register.create("customers", tenant_id=tenant, fields=[Field("name", "text")])
    invoices = await Register.create(name, tenant_id=tenant, fields=_fields())
    return customers, invoices


async def _chunks(text: str, size: int) -> AsyncIterator[bytes]:
    data = text.encode()
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _text(chunks: AsyncIterator[str]) -> str:
    return "".join([chunk async for chunk in chunks])


async def test_export_then_import_round_trips_every_type(
    engine: AsyncEngine, tenant: uuid.UUID, tmp_path: Path
) -> None:
    customers, invoices = await _setup(tenant)
    acme = await customers.insert({"name": "Acme"})
    rows = [
        {
            "number": f"N-{i}",
            "status": "paid" if i % 2 else "draft",
            "total": Decimal(f"{i}.50"),
            "qty": -i,
            "paid": i % 2 == 1,
            "due": date(2026, 1, 1 + i),
            "at": datetime(2026, 1, 1, 12, i, tzinfo=UTC),
            "email": f"ada{i}@example.com",
            "tags": ["vip", "late, very"] if i % 2 else [],
            "meta": {"k": [1, "two", None], "quote": 'say "hi"'},
            "customer": acme.id,
            "note": f'line one\nline "two", {i}' if i % 3 else "Crème ✓",
        }
        for i in range(7)
    ]
    await invoices.insert_many(rows)
    csv_text = await _text(export_csv(RowQuery(invoices).order_by("number"), page_size=3))
    jsonl_text = await _text(export_jsonl(RowQuery(invoices).order_by("number"), page_size=3))
    path = tmp_path / "invoices.csv"
    path.write_text(csv_text, encoding="utf-8")

    copy = await Register.create("copy", tenant_id=tenant, fields=_fields())
    report = await copy.import_csv(path, batch_size=4)
    assert report == ImportReport(read=7, written=7, failed=0, errors=(), batches=2)
    again = await Register.create("again", tenant_id=tenant, fields=_fields())
    # chunks of 5 bytes split multi-byte characters and quoted line breaks
    report = await again.import_jsonl(_chunks(jsonl_text, 5), batch_size=3)
    assert (report.written, report.failed, report.batches) == (7, 0, 3)

    original = [r.values for r in await RowQuery(invoices).order_by("number").all()]
    for target in (copy, again):
        loaded = [r.values for r in await RowQuery(target).order_by("number").all()]
        assert loaded == original


async def test_bad_rows_are_reported_and_the_good_rows_of_their_batch_written(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    _, invoices = await _setup(tenant)
    ghost = uuid.uuid4()
    csv_text = (
        "number,total,qty,due,customer,status\n"  # line 1
        "A-1,1.5,1,2026-01-01,,paid\n"  # 2: good
        "A-2,abc,2,,,\n"  # 3: bad decimal
        "A-3,3,x,,,\n"  # 4: bad integer
        "A-4,4,4,2026-02-30,,\n"  # 5: no such date
        f"A-5,5,5,,{ghost},\n"  # 6: missing reference target
        "A-6,6,6,,,void\n"  # 7: not a choice
        ",7,7,,,\n"  # 8: required field empty
        "A-8,8,8,,,draft\n"  # 9: good
    )
    report = await invoices.import_csv([csv_text], batch_size=100)
    assert (report.read, report.written, report.failed, report.batches) == (8, 2, 6, 1)
    assert [(e.line, e.field) for e in report.errors] == [
        (3, "total"),
        (4, "qty"),
        (5, "due"),
        (6, "customer"),
        (7, "status"),
        (8, "number"),
    ]
    assert "'abc'" in report.errors[0].reason and str(ghost) in report.errors[3].reason
    numbers = [r["number"] for r in await RowQuery(invoices).order_by("number").all()]
    assert numbers == ["A-1", "A-8"]


async def test_malformed_csv(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    _, invoices = await _setup(tenant)
    csv_text = (
        "number,note\n"
        'M-1,"quoted ""fine"""\n'  # 2
        'M-2,"bad"quote\n'  # 3: text after a closing quote
        "M-3,one,two\n"  # 4: too many cells
        "M-4\n"  # 5: too few
        "\n"  # blank lines are skipped
        'M-5,"spans\nthree\nlines"\n'  # 7-9
        'M-6,"never closed\n'  # 10: runs to the end of the file
        "M-7,x\n"
    )
    report = await invoices.import_csv(_chunks(csv_text, 3))
    assert report.written == 2
    assert [e.line for e in report.errors] == [3, 4, 5, 10]
    assert "malformed CSV" in report.errors[0].reason
    assert "3 cells, the header has 2" in report.errors[1].reason
    assert "quote is not closed" in report.errors[3].reason
    rows = await RowQuery(invoices).order_by("number").all()
    assert [r["note"] for r in rows] == ['quoted "fine"', "spans\nthree\nlines"]


async def test_header_problems_write_nothing(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    _, invoices = await _setup(tenant)
    with pytest.raises(InvalidValue, match=r"CSV column 'colour' is not a field.*'number'"):
        await invoices.import_csv(["number,colour\nA,red\n"])
    with pytest.raises(InvalidValue, match="names column 'number' twice"):
        await invoices.import_csv(["number,number\nA,B\n"])
    with pytest.raises(InvalidValue, match=r"header \(line 1\) cannot be read"):
        await invoices.import_csv(['"number\n'])
    assert await RowQuery(invoices).count() == 0


async def test_duplicate_unique_values_inside_one_file(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    _, invoices = await _setup(tenant)
    await invoices.insert({"number": "OLD"})
    lines = ["number,qty", "D-1,1", "D-2,2", "D-1,3", "OLD,4", "D-3,5", "D-2,6"]
    report = await invoices.import_csv(["\n".join(lines) + "\n"], batch_size=2)
    # batches: [D-1, D-2] [D-1 dup of an earlier batch, OLD] [D-3, D-2 dup]
    assert report.written == 3 and report.batches == 3
    assert [(e.line, e.field) for e in report.errors] == [
        (4, "number"),
        (5, "number"),
        (7, "number"),
    ]
    same_batch = await invoices.import_csv(["number\nS-1\nS-1\n"])
    assert same_batch.written == 1
    assert "line 2 has the same value 'S-1'" in same_batch.errors[0].reason
    assert await RowQuery(invoices).count() == 5


async def test_huge_fields_are_row_errors_and_memory_stays_bounded(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    _, invoices = await _setup(tenant)

    async def stream() -> AsyncIterator[str]:
        yield "number,note\nH-1,small\nH-2,"
        for _ in range(50):  # a 5,000,000-character cell, arriving in pieces
            yield "x" * 100_000
        yield '\nH-3,"'
        yield "y" * 300_000 + '"\nH-4,after\n'

    report = await invoices.import_csv(stream(), max_record_chars=1_000_000)
    assert [e.line for e in report.errors] == [3, 4]
    assert "longer than 1,000,000 characters" in report.errors[0].reason
    assert "field larger than field limit" in report.errors[1].reason
    numbers = [r["number"] for r in await RowQuery(invoices).order_by("number").all()]
    assert numbers == ["H-1", "H-4"]


async def test_jsonl_bad_lines(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    _, invoices = await _setup(tenant)
    jsonl = (
        '{"number": "J-1", "qty": 1}\n'
        "not json\n"
        "[1, 2]\n"
        '{"number": "J-4", "colour": "red"}\n'
        '{"number": "J-5", "qty": "many"}\n'
        "\n"
        '{"number": "J-7", "tags": ["vip"]}'  # no final line break
    )
    report = await invoices.import_jsonl(io.BytesIO(jsonl.encode()))
    assert report.written == 2
    assert [(e.line, e.field) for e in report.errors] == [
        (2, None),
        (3, None),
        (4, "colour"),
        (5, "qty"),
    ]
    assert "not JSON" in report.errors[0].reason
    assert "JSON object" in report.errors[1].reason


async def test_import_bad_input(engine: AsyncEngine, tenant: uuid.UUID, tmp_path: Path) -> None:
    _, invoices = await _setup(tenant)
    with pytest.raises(InvalidValue, match="batch_size must be an int from 1"):
        await invoices.import_csv(["number\n"], batch_size=0)
    with pytest.raises(InvalidValue, match="max_errors"):
        await invoices.import_csv(["number\n"], max_errors=-1)
    with pytest.raises(InvalidValue, match="import takes a file path"):
        await invoices.import_csv(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="str or bytes chunks, got 7"):
        await invoices.import_csv([7])  # type: ignore[list-item]
    with pytest.raises(InvalidValue, match="not UTF-8"):
        await invoices.import_csv([b"number\n\xff\xfe\n"])
    with pytest.raises(InvalidValue, match="cannot open the import file"):
        await invoices.import_csv(tmp_path / "missing.csv")
    many = "number,qty\n" + "".join(f"E-{i},bad\n" for i in range(30))
    report = await invoices.import_csv([many], max_errors=5)
    assert report.failed == 30 and len(report.errors) == 5 and report.written == 0
    assert await RowQuery(invoices).count() == 0


async def test_export_streams_pages_and_checks_columns(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    _, invoices = await _setup(tenant)
    await invoices.insert_many([{"number": f"P-{i:02}", "qty": i} for i in range(10)])
    query = RowQuery(invoices).where(qty__gte=3).order_by("-qty")
    chunks = [c async for c in export_csv(query, columns=["id", "number", "qty"], page_size=3)]
    assert len(chunks) == 1 + 3  # the header, then one chunk per page of 3 (7 rows)
    assert chunks[0] == "id,number,qty\r\n"
    lines = "".join(chunks[1:]).splitlines()
    assert [line.split(",")[1:] for line in lines[:2]] == [["P-09", "9"], ["P-08", "8"]]
    lines_json = [json.loads(x) for x in (await _text(export_jsonl(query))).splitlines()]
    assert [x["qty"] for x in lines_json] == [9, 8, 7, 6, 5, 4, 3]
    with pytest.raises(InvalidQuery, match="no field 'colour'"):
        await _text(export_csv(query, columns=["colour"]))
    with pytest.raises(InvalidQuery, match="columns takes a list of field names"):
        await _text(export_jsonl(query, columns="number"))
    with pytest.raises(InvalidQuery, match="export takes a RowQuery"):
        await _text(export_csv(invoices))  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="page_size must be an int"):
        await _text(export_csv(query, page_size=0))


async def test_upsert_updates_or_inserts(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    _, invoices = await _setup(tenant)
    first = await invoices.insert({"number": "U-1", "qty": 1, "note": "keep"})
    rows = await invoices.upsert(
        [{"number": "U-2", "qty": "2"}, {"number": "U-1", "qty": 10}], on="number"
    )
    assert [r["number"] for r in rows] == ["U-2", "U-1"]
    assert rows[1].id == first.id and rows[1]["qty"] == 10 and rows[1]["note"] == "keep"
    assert rows[0]["qty"] == 2 and rows[0]["status"] == "draft"  # inserted with defaults
    assert await RowQuery(invoices).count() == 2
    assert await invoices.upsert([], on="number") == []


async def test_upsert_bad_input(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    _, invoices = await _setup(tenant)
    with pytest.raises(InvalidValue, match=r"unique field.*got 'qty'.*'number'"):
        await invoices.upsert([{"number": "X", "qty": 1}], on="qty")
    with pytest.raises(InvalidValue, match="has no value for 'number'"):
        await invoices.upsert([{"qty": 1}], on="number")
    with pytest.raises(InvalidValue, match="rows 0 and 1 both have 'number'"):
        await invoices.upsert([{"number": "X"}, {"number": "X", "qty": 2}], on="number")
    with pytest.raises(InvalidValue, match="'qty'"):
        await invoices.upsert([{"number": "X", "qty": "many"}], on="number")
    with pytest.raises(InvalidValue, match="takes a list of mappings"):
        await invoices.upsert({"number": "X"}, on="number")  # type: ignore[arg-type]
    assert await RowQuery(invoices).count() == 0


async def test_concurrent_upserts_of_one_key_make_one_row(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    _, invoices = await _setup(tenant)
    for round_ in range(10):
        key = f"C-{round_}"
        # two handles, two connections, two transactions racing for the same value
        a = Register.load("invoices", tenant_id=tenant)
        b = Register.load("invoices", tenant_id=tenant)
        results = await asyncio.gather(
            a.upsert([{"number": key, "qty": 1}], on="number"),
            b.upsert([{"number": key, "note": "b"}], on="number"),
        )
        assert results[0][0].id == results[1][0].id
        [row] = await RowQuery(invoices).where(number=key).all()
        assert row["qty"] == 1 and row["note"] == "b"
    assert await RowQuery(invoices).count() == 10


async def test_update_where(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    customers, invoices = await _setup(tenant)
    acme = await customers.insert({"name": "Acme"})
    await invoices.insert_many([{"number": f"W-{i}", "qty": i} for i in range(6)])
    archived = await invoices.insert({"number": "W-archived", "qty": 1})
    await invoices.archive(archived.id)
    query = RowQuery(invoices).where(qty__lte=2)
    changed = await query.update({"status": "paid", "total": "9.50", "customer": acme.id})
    assert changed == 3  # the archived row is skipped like in any query
    rows = await RowQuery(invoices).where(status="paid").order_by("number").all()
    assert [(r["number"], r["total"], r["customer"]) for r in rows] == [
        (f"W-{i}", Decimal("9.5"), acme.id) for i in range(3)
    ]
    assert (await invoices.get(archived.id))["status"] == "draft"
    with pytest.raises(ReferenceViolation):  # the update recorded its links
        await customers.delete(acme.id)
    assert await RowQuery(invoices).search("paid").count() == 3  # search words rewritten


async def test_update_where_validates_and_is_all_or_nothing(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    _, invoices = await _setup(tenant)
    _, theirs = await _setup(uuid.uuid4())  # another tenant, same names
    await invoices.insert_many([{"number": f"V-{i}", "qty": i} for i in range(3)])
    await theirs.insert_many([{"number": f"V-{i}", "qty": i} for i in range(3)])
    query = RowQuery(invoices)
    with pytest.raises(InvalidValue, match="'qty'"):
        await query.update({"qty": "lots"})
    with pytest.raises(InvalidValue, match="'number' of register 'invoices' is required"):
        await query.update({"number": None})
    with pytest.raises(InvalidValue, match="no field 'colour'"):
        await query.update({"colour": "red"})
    with pytest.raises(InvalidValue, match="non-empty mapping"):
        await query.update({})
    with pytest.raises(UniqueViolation):
        await query.update({"number": "same"})
    assert [r["number"] for r in await query.order_by("number").all()] == ["V-0", "V-1", "V-2"]
    assert await query.where(qty__gte=1).update({"note": "mine"}) == 2
    assert await RowQuery(theirs).where(note="mine").count() == 0


async def test_update_where_on_memory_register() -> None:
    orders = MemoryRegister(
        "orders",
        [Field("code", "text", unique=True), Field("n", "integer")],
        rows=[{"code": "a", "n": 1}, {"code": "b", "n": 2}, {"code": "c", "n": 3}],
    )
    assert await RowQuery(orders).where(n__gte=2).update({"n": "7"}) == 2
    assert [r["n"] for r in await RowQuery(orders).order_by("code").all()] == [1, 7, 7]
    with pytest.raises(UniqueViolation):
        await RowQuery(orders).update({"code": "z"})
    with pytest.raises(InvalidValue):
        await RowQuery(orders).update({"n": "x"})
    assert [r["code"] for r in await RowQuery(orders).order_by("code").all()] == ["a", "b", "c"]


async def test_schema_change_during_an_import_stops_it_cleanly(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    _, invoices = await _setup(tenant)
    admin = Register.load("invoices", tenant_id=tenant)

    async def upload() -> AsyncIterator[str]:
        yield "number,qty\nS-1,1\nS-2,2\n"
        await admin.add_field(Field("extra", "text"))  # another process changes the fields
        yield "S-3,3\nS-4,4\n"

    with pytest.raises(SchemaConflict, match="changed during the import"):
        await invoices.import_csv(upload(), batch_size=2)
    assert [r["number"] for r in await RowQuery(admin).order_by("number").all()] == ["S-1", "S-2"]


async def test_upsert_on_memory_register_matches_postgres(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    fields = [
        Field("code", "text", unique=True, required=True),
        Field("rate", "decimal"),
        Field("note", "text", unique=True),
    ]
    stored = await Register.create("rates", tenant_id=tenant, fields=fields)
    memory = MemoryRegister("rates", fields)
    for source in (stored, memory):
        await source.upsert([{"code": "EUR", "rate": "1", "note": "base"}], on="code")
        rows = await source.upsert(
            [{"code": "USD", "rate": "1.08"}, {"code": "EUR", "rate": "1.00"}], on="code"
        )
        assert [(r["code"], r["rate"], r["note"]) for r in rows] == [
            ("USD", Decimal("1.08"), None),
            ("EUR", Decimal("1"), "base"),
        ]
        with pytest.raises(UniqueViolation):  # all or nothing: USD's change is undone too
            await source.upsert(
                [{"code": "USD", "rate": "2"}, {"code": "GBP", "note": "base"}], on="code"
            )
        with pytest.raises(InvalidValue, match=r"unique field.*'code', 'note'"):
            await source.upsert([{"code": "X"}], on="rate")
        with pytest.raises(InvalidValue, match="has no value for 'code'"):
            await source.upsert([{"rate": 1}], on="code")
        with pytest.raises(InvalidValue, match="rows 0 and 1 both have 'code'"):
            await source.upsert([{"code": "A"}, {"code": "A"}], on="code")
        got = sorted((r["code"], r["rate"]) for r in await RowQuery(source).all())
        assert got == [("EUR", Decimal("1")), ("USD", Decimal("1.08"))]


async def test_writes_record_their_actor(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    ada, bob = uuid.uuid4(), "bob@example.com"
    fields = [Field("code", "text", unique=True), Field("n", "integer")]
    stored = await Register.create("items", tenant_id=tenant, fields=fields)
    memory = MemoryRegister("items", fields)
    for source in (stored, memory):
        row = await source.insert({"code": "a", "n": 1}, actor=ada)
        assert (row.created_by, row.updated_by) == (str(ada), str(ada))
        row = await source.update(row.id, {"n": 2}, actor=bob)
        assert (row.created_by, row.updated_by) == (str(ada), bob)
        await source.upsert([{"code": "a", "n": 3}, {"code": "b"}], on="code", actor="carol")
        assert await RowQuery(source).update({"n": 4}, actor=None) == 2
        rows = {r["code"]: r for r in await RowQuery(source).all()}
        assert (rows["a"].created_by, rows["a"].updated_by) == (str(ada), None)
        assert (rows["b"].created_by, rows["b"].updated_by) == ("carol", None)
        for bad in ("", "x" * 201, 42, "a\x00b"):
            with pytest.raises(InvalidValue, match="actor must be None, a UUID or text"):
                await source.insert({"code": "z"}, actor=bad)
    imported = await stored.import_csv(["code,n\nc,1\n"], actor="importer")
    assert imported.written == 1
    by_code = {r["code"]: r for r in await RowQuery(stored).all()}  # read back from Postgres
    assert by_code["c"].created_by == "importer" and by_code["a"].created_by == str(ada)


@pytest.mark.parametrize("numbered", [True, False])
async def test_concurrent_imports_claim_each_unique_value_once(
    engine: AsyncEngine, tenant: uuid.UUID, numbered: bool
) -> None:
    customers = await Register.create("customers", tenant_id=tenant, fields=[Field("name", "text")])
    acme = await customers.insert({"name": "Acme"})
    orders = await Register.create(
        "orders",
        tenant_id=tenant,
        fields=[
            Field("number", "text", required=True, unique=True),
            Field("no", "integer", autonumber=numbered),
            Field("customer", "reference", target="customers"),
        ],
    )

    def upload(first: int, last: int) -> str:
        return "number,customer\n" + "".join(f"N-{i:04},{acme.id}\n" for i in range(first, last))

    # Batches of both imports take the same values at the same time: each value is
    # written once; the import that loses reports the row; numbers have no gaps. Without
    # numbering, batches are written unchecked first: those that lose a race are written
    # again, every row checked.
    reports = await asyncio.gather(
        orders.import_csv([upload(0, 600)], batch_size=50),
        orders.import_csv([upload(300, 900)], batch_size=50),
        orders.import_csv([upload(0, 900)], batch_size=70),
    )
    assert sum(r.written for r in reports) == 900
    assert sum(r.failed for r in reports) == 1200
    assert all(
        "is already taken" in e.reason and e.field == "number" for r in reports for e in r.errors
    )
    rows = await RowQuery(orders).all()
    assert sorted(r["number"] for r in rows) == [f"N-{i:04}" for i in range(900)]
    if numbered:
        assert sorted(r["no"] for r in rows) == list(range(1, 901))
    with pytest.raises(UniqueViolation):  # the claims were written with the rows
        await orders.insert({"number": "N-0123"})
    with pytest.raises(ReferenceViolation):  # and the links
        await customers.delete(acme.id)


async def test_import_refuses_references_to_other_tenants_and_registers(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    customers, invoices = await _setup(tenant)
    mine = await customers.insert({"name": "Mine"})
    other_tenant, _ = await _setup(uuid.uuid4())
    theirs = await other_tenant.insert({"name": "Theirs"})
    an_invoice = await invoices.insert({"number": "I-0"})
    csv_text = (
        "number,customer\n"
        f"I-1,{mine.id}\n"
        f"I-2,{theirs.id}\n"  # a customer of another tenant
        f"I-3,{an_invoice.id}\n"  # a row of this tenant, of another register
        "I-0,\n"  # taken, and the first check reported
    )
    report = await invoices.import_csv([csv_text])
    assert report.written == 1
    assert [(e.line, e.field) for e in report.errors] == [
        (3, "customer"),
        (4, "customer"),
        (5, "number"),
    ]
    assert str(theirs.id) in report.errors[0].reason and "does not exist" in report.errors[0].reason
    linked = await RowQuery(invoices).where(customer=mine.id).all()
    assert [r["number"] for r in linked] == ["I-1"]


async def test_import_many_references_checks_every_target(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    people = await Register.create("people", tenant_id=tenant, fields=[Field("name", "text")])
    ada, bob = [r.id for r in await people.insert_many([{"name": "Ada"}, {"name": "Bob"}])]
    ghost = uuid.uuid4()
    tasks = await Register.create(
        "tasks",
        tenant_id=tenant,
        fields=[
            Field("title", "text", unique=True),
            Field("owners", "reference", target="people", many=True),
        ],
    )
    jsonl = (
        json.dumps({"title": "both", "owners": [str(ada), str(bob)]})
        + "\n"
        + json.dumps({"title": "ghost", "owners": [str(bob), str(ghost), str(uuid.uuid4())]})
        + "\n"
    )
    report = await tasks.import_jsonl([jsonl])
    assert (report.written, report.failed) == (1, 1)
    assert report.errors[0].line == 2 and report.errors[0].field == "owners"
    assert f"references row {ghost}," in report.errors[0].reason  # the first missing one
    [row] = await RowQuery(tasks).all()
    assert row["title"] == "both" and set(row["owners"]) == {ada, bob}
    assert await RowQuery(tasks).where(owners__contains=bob).count() == 1
    with pytest.raises(ReferenceViolation):  # both links were written
        await people.delete(ada)


def _statements(engine: AsyncEngine) -> list[str]:
    """The SQL statements ``engine`` runs from now on (until the test ends)."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return seen


async def test_a_good_batch_is_written_without_row_checks_and_a_bad_one_with_them(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    customers, invoices = await _setup(tenant)
    acme = await customers.insert({"name": "Acme"})
    seen = _statements(engine)
    good = "number,customer,qty\n" + "".join(f"G-{i},{acme.id},{i}\n" for i in range(5))
    report = await invoices.import_csv([good])
    assert (report.written, report.failed) == (5, 0)
    assert not any("bad AS MATERIALIZED" in s for s in seen)  # no per-row checks
    seen.clear()
    bad = f"number,customer\nB-1,{acme.id}\nG-3,{acme.id}\nB-2,{uuid.uuid4()}\nB-3,\n"
    report = await invoices.import_csv([bad])
    assert (report.written, report.failed) == (2, 2)
    assert [(e.line, e.field) for e in report.errors] == [(3, "number"), (4, "customer")]
    assert any("bad AS MATERIALIZED" in s for s in seen)  # written again, rows checked
    numbers = {r["number"] for r in await RowQuery(invoices).all()}
    assert numbers == {"G-0", "G-1", "G-2", "G-3", "G-4", "B-1", "B-3"}
    linked = await RowQuery(invoices).where(customer=acme.id).count()
    assert linked == 6  # the links of the first try were rolled back with it


async def test_csv_cells_in_their_common_and_other_forms(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    _, invoices = await _setup(tenant)
    csv_text = (
        "number,qty,tags,meta\n"
        'C-1,0042,"[""late, very"", ""vip""]","{""a"": {""b"": [1, null]}}"\n'
        'C-2, 7 ," [""vip""] "," {""k"": ""v""} "\n'  # spaces around the values
        "C-3,\u0661\u0662,,\n"  # digits, but not ASCII ones
        f"C-4,{'9' * 19},,\n"  # past the largest integer
        'C-5,1,"[""vip"", ""gold""]",\n'  # not a choice
        'C-6,1,,"{""k"": 1} x"\n'  # not one JSON value
    )
    report = await invoices.import_csv([csv_text])
    assert [(e.line, e.field) for e in report.errors] == [
        (4, "qty"),
        (5, "qty"),
        (6, "tags"),
        (7, "meta"),
    ]
    rows = {r["number"]: r for r in await RowQuery(invoices).all()}
    assert rows["C-1"]["qty"] == 42 and rows["C-1"]["tags"] == ("vip", "late, very")
    assert rows["C-1"]["meta"] == {"a": {"b": [1, None]}}
    assert rows["C-2"]["qty"] == 7 and rows["C-2"]["tags"] == ("vip",)
    assert rows["C-2"]["meta"] == {"k": "v"}
