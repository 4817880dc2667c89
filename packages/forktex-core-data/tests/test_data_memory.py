# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The in-memory / computed source and the RegisterSource protocol (no database)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from forktex_core.data import (
    DataError,
    Field,
    InvalidDefinition,
    InvalidValue,
    MemoryRegister,
    NotFound,
    RegisterSource,
    RowQuery,
    UniqueViolation,
)


async def test_memory_register_writes_and_coerces() -> None:
    reg = MemoryRegister(
        "rates",
        [Field("code", "text", required=True, unique=True), Field("rate", "decimal")],
        rows=[{"code": "EUR", "rate": "1.0"}],
    )
    assert reg.name == "rates" and [f.name for f in reg.fields] == ["code", "rate"]
    usd = await reg.insert({"code": "USD", "rate": 1.08})
    assert str(usd["rate"]) == "1.08"
    with pytest.raises(UniqueViolation, match="'code'"):
        await reg.insert({"code": "USD"})
    with pytest.raises(InvalidValue, match="required"):
        await reg.insert({"rate": 1})
    with pytest.raises(InvalidValue, match="no field 'x'"):
        await reg.insert({"code": "GBP", "x": 1})
    updated = await reg.update(usd.id, {"rate": "1.10"})
    assert str(updated["rate"]) == "1.1" and (await reg.get(str(usd.id)))["rate"] == updated["rate"]
    with pytest.raises(UniqueViolation):
        await reg.update(usd.id, {"code": "EUR"})
    with pytest.raises(NotFound):
        await reg.get(uuid.uuid4())
    with pytest.raises(UniqueViolation, match="already exists"):
        MemoryRegister("r", [], rows=[{"id": usd.id}, {"id": usd.id}])
    with pytest.raises(InvalidValue, match="row id must be a UUID"):
        MemoryRegister("r", [], rows=[{"id": "nope"}])
    with pytest.raises(InvalidValue, match="must be a mapping"):
        MemoryRegister("r", [], rows=["nope"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("",), {"fields": []}, "1-63"),
        (("r",), {"fields": "name"}, "list of Field"),
        (("r",), {"fields": [Field("a", "text"), Field("a", "text")]}, "twice"),
        (("r",), {"fields": [], "compute": 5}, "async callable"),
        (("r",), {"fields": [Field("a", "text")], "date_field": "b"}, "no field 'b'"),
    ],
)
def test_memory_register_bad_definitions(args: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(DataError, match=message):
        MemoryRegister(*args, **kwargs)


async def test_computed_register_is_read_only_and_recomputed() -> None:
    calls = []

    async def compute() -> list[dict[str, Any]]:
        calls.append(1)
        return [{"n": i, "even": i % 2 == 0} for i in range(10)]

    reg = MemoryRegister(
        "numbers", [Field("n", "integer"), Field("even", "boolean")], compute=compute
    )
    assert await RowQuery(reg).where(even=True, n__gt=3).count() == 3
    page = await RowQuery(reg).order_by("-n").paginate(page=1, size=4)
    assert [r["n"] for r in page] == [9, 8, 7, 6] and page.total == 10
    assert len(calls) == 3
    with pytest.raises(DataError, match="computed and read-only"):
        await reg.insert({"n": 1})
    with pytest.raises(DataError, match="read-only"):
        await RowQuery(reg).archive()
    with pytest.raises(DataError, match="read-only"):
        await RowQuery(reg).delete()


async def test_include_across_memory_sources() -> None:
    customers = MemoryRegister("customers", [Field("name", "text")], rows=[{"name": "Acme"}])
    acme = (await RowQuery(customers).all())[0]
    invoices = MemoryRegister(
        "invoices",
        [Field("customer", "reference", target="customers"),
         Field("cc", "reference", target="customers", many=True)],
        rows=[{"customer": acme.id, "cc": [acme.id]}, {"customer": None}],
        targets={"customers": customers},
    )  # fmt: skip
    rows = await RowQuery(invoices).include("customer", "cc").all()
    assert rows[0].included["customer"]["name"] == "Acme"
    assert [c.id for c in rows[0].included["cc"]] == [acme.id]
    assert rows[1].included["customer"] is None and rows[1].included["cc"] == ()
    orphan = MemoryRegister(
        "orphans", [Field("c", "reference", target="customers")], rows=[{"c": acme.id}]
    )
    with pytest.raises(DataError, match="targets="):
        await RowQuery(orphan).include("c").all()


async def test_a_custom_source_plugs_into_row_query() -> None:
    class Wrapped:
        """A source that delegates to a MemoryRegister (e.g. a cache in front of an API)."""

        def __init__(self) -> None:
            self.inner = MemoryRegister(
                "w", [Field("x", "integer")], rows=[{"x": i} for i in range(5)]
            )
            self.calls = 0

        def __getattr__(self, name: str) -> Any:
            self.calls += 1
            return getattr(self.inner, name)

        async def describe(self) -> Any:
            return await self.inner.describe()

        async def fetch_rows(self, plan: Any, **kw: Any) -> Any:
            self.calls += 1
            return await self.inner.fetch_rows(plan, **kw)

        async def count_rows(self, plan: Any) -> int:
            return await self.inner.count_rows(plan)

        async def facet_counts(self, plan: Any, field: Any, limit: int) -> Any:
            return await self.inner.facet_counts(plan, field, limit)

        async def archive_rows(self, plan: Any, archived: bool) -> int:
            return await self.inner.archive_rows(plan, archived)

        async def delete_rows(self, plan: Any) -> int:
            return await self.inner.delete_rows(plan)

        async def fetch_targets(self, field: Any, ids: Any) -> Any:
            return await self.inner.fetch_targets(field, ids)

    source = Wrapped()
    assert isinstance(source, RegisterSource)
    page = await RowQuery(source).where(x__gte=2).order_by("-x").scroll(page_size=2)
    assert [r["x"] for r in page] == [4, 3] and source.calls == 1
    with pytest.raises(InvalidDefinition):
        Field("x", "nope")
