# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Autonumber fields: numbered 1, 2, 3, ... by every kind of insert, without gaps under
concurrent writers and failed writes, back-filled when added, refused as input; the same
on MemoryRegister."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    Field,
    InvalidDefinition,
    InvalidValue,
    MemoryRegister,
    Register,
    RowQuery,
    UniqueViolation,
)

FIELDS = [Field("no", "integer", autonumber=True), Field("code", "text", unique=True)]


async def _numbers(source: object) -> list[int]:
    return sorted(r["no"] for r in await RowQuery(source).all())  # type: ignore[arg-type]


async def test_every_insert_numbers_rows(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    stored = await Register.create("tickets", tenant_id=tenant, fields=FIELDS)
    memory = MemoryRegister("tickets", FIELDS)
    for source in (stored, memory):
        first = await source.insert({"code": "a"})
        assert first["no"] == 1
        if isinstance(source, Register):
            rows = await source.insert_many([{"code": "b"}, {"code": "c"}])
            assert [r["no"] for r in rows] == [2, 3]
            report = await source.import_csv(["code\nd\ne\nd\n"])
            assert report.written == 2 and report.failed == 1
        else:
            for code in "bcde":
                await source.insert({"code": code})
        upserted = await source.upsert([{"code": "a"}, {"code": "f"}], on="code")
        assert [r["no"] for r in upserted] == [1, 6]
        await source.upsert([{"code": "g"}, {"code": "h"}], on="code")
        with pytest.raises(UniqueViolation):  # a failed write takes no number
            await source.insert({"code": "a"})
        await source.insert({"code": "i"})
        assert await _numbers(source) == list(range(1, 10))


async def test_numbers_are_input_free_and_read_only(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    stored = await Register.create("tickets", tenant_id=tenant, fields=FIELDS)
    memory = MemoryRegister("tickets", FIELDS)
    for source in (stored, memory):
        row = await source.insert({"code": "a"})
        with pytest.raises(InvalidValue, match="numbered by the register"):
            await source.insert({"code": "b", "no": 7})
        with pytest.raises(InvalidValue, match="numbered by the register"):
            await source.update(row.id, {"no": 7})
        with pytest.raises(InvalidValue, match="numbered by the register"):
            await RowQuery(source).update({"no": 7})
        assert await RowQuery(source).where(no__gte=1).order_by("-no").count() == 1
    report = await stored.import_csv(["code,no\nz,5\n"])
    assert report.written == 0 and "numbered by the register" in report.errors[0].reason


async def test_concurrent_writers_get_distinct_numbers_without_gaps(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    await Register.create("tickets", tenant_id=tenant, fields=FIELDS)

    async def writer(prefix: str) -> None:
        handle = Register.load("tickets", tenant_id=tenant)
        for i in range(5):
            await handle.insert_many([{"code": f"{prefix}{i}-{j}"} for j in range(3)])

    await asyncio.gather(*(writer(p) for p in "abcd"))
    stored = Register.load("tickets", tenant_id=tenant)
    assert await _numbers(stored) == list(range(1, 61))


async def test_adding_an_autonumber_field_numbers_existing_rows(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    stored = await Register.create("tickets", tenant_id=tenant, fields=[Field("code", "text")])
    for code in "xyz":
        await stored.insert({"code": code})
    await stored.add_field(Field("no", "integer", autonumber=True))
    assert stored.field("no").autonumber
    rows = await RowQuery(stored).order_by("no").all()
    assert [(r["code"], r["no"]) for r in rows] == [("x", 1), ("y", 2), ("z", 3)]
    assert (await stored.insert({"code": "w"}))["no"] == 4
    again = await Register.load("tickets", tenant_id=tenant)  # the flag is stored
    assert again.field("no").autonumber


def test_bad_autonumber_definitions() -> None:
    for kwargs in ({"type": "text"}, {"default": 1}, {"required": True}):
        spec = {"name": "no", "type": "integer", "autonumber": True, **kwargs}
        with pytest.raises(InvalidDefinition, match="autonumber=True needs an integer"):
            Field(**spec)  # type: ignore[arg-type]
    with pytest.raises(InvalidDefinition, match="autonumber must be True or False"):
        Field("no", "integer", autonumber="yes")  # type: ignore[arg-type]
