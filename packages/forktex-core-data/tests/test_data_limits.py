# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Input past what Postgres, asyncpg or Python can take gets data's own error naming the
field and the limit — on writes, definitions and queries, over Postgres and in memory —
and input just inside every limit works end to end."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    DataError,
    Field,
    InvalidCursor,
    InvalidDefinition,
    InvalidQuery,
    InvalidValue,
    MemoryRegister,
    Register,
    RowQuery,
)

EAST = timezone(timedelta(hours=5))
WEST = timezone(timedelta(hours=-5))
FIELDS = [
    Field("n", "integer", indexed=True),
    Field("d", "decimal"),
    Field("t", "text", indexed=True),
    Field("u", "text", unique=True),
    Field("at", "datetime", indexed=True),
    Field("day", "date"),
    Field("j", "json"),
]

WRITES: list[tuple[str, Any, str]] = [
    ("n", 2**63, "between -9223372036854775808 and 9223372036854775807"),
    ("n", -(2**63) - 1, "between -9223372036854775808 and 9223372036854775807"),
    ("n", 10**5000, "whole number"),  # past Python's int-to-str digit limit
    ("n", "9" * 5000, "whole number"),
    ("n", Decimal("1e999999999"), "whole number"),
    ("d", 10**5000, "at most 100 digits"),
    ("d", Decimal("1e-1000"), "at most 100 digits"),
    ("t", "a\ud800b", "lone surrogate"),
    ("t", "a\x00b", "NUL"),
    ("j", {"k": 10**5000}, "at most 100 digits"),
    ("j", {"\ud800": 1}, "lone surrogate"),
    ("j", ["ok", "\udfff"], "lone surrogate"),
    ("at", datetime(1, 1, 1, tzinfo=EAST), "years 1-9999"),
    ("at", datetime(9999, 12, 31, 23, tzinfo=WEST), "years 1-9999"),
    ("at", "0001-01-01T00:00:00+05:00", "years 1-9999"),
    ("u", "x" * 2001, "2,000 bytes"),
    ("u", "é" * 1001, "2,000 bytes"),  # 1,001 characters, 2,002 bytes
]


@pytest.fixture
async def regs(engine: AsyncEngine, tenant: uuid.UUID) -> tuple[Register, MemoryRegister]:
    pg = await Register.create("limits", tenant_id=tenant, fields=FIELDS)
    await pg.insert_many([{"n": i, "t": f"row {i}", "u": f"u{i}"} for i in range(3)])
    mem = MemoryRegister("limits", FIELDS, rows=[{"n": i, "t": f"row {i}"} for i in range(3)])
    return pg, mem


@pytest.mark.parametrize(("name", "value", "limit"), WRITES, ids=[w[0] for w in WRITES])
async def test_writes_past_a_limit_name_the_field_and_the_limit(
    regs: tuple[Register, MemoryRegister], name: str, value: Any, limit: str
) -> None:
    pg, mem = regs
    before = await RowQuery(pg).count()
    for source in (pg, mem):
        with pytest.raises(InvalidValue, match=limit) as caught:
            await source.insert({name: value})
        assert caught.value.field == name and f"field {name!r}" in str(caught.value)
    row = await pg.insert({"n": 99})
    with pytest.raises(InvalidValue, match=limit):
        await pg.update(row.id, {name: value})
    assert await RowQuery(pg).count() == before + 1  # nothing half-written


async def test_values_at_the_limits_are_stored_and_found(
    regs: tuple[Register, MemoryRegister],
) -> None:
    pg, _ = regs
    long_text = "y" * 100_000  # far past a btree entry: the index holds a bounded key
    edge = {
        "n": 2**63 - 1,
        "d": Decimal("9" * 101),
        "t": long_text,
        "u": "é" * 1000,  # exactly 2,000 bytes
        "at": datetime(1, 1, 1, 5, tzinfo=EAST),  # 0001-01-01 00:00 UTC
        "day": date.max,
        "j": {"k": -(10**99)},
    }
    row = await pg.insert(edge)
    assert (await pg.get(row.id)).values == {**edge, "at": datetime(1, 1, 1, tzinfo=UTC)}
    assert [r.id for r in await RowQuery(pg).where(t=long_text).all()] == [row.id]
    assert [r.id for r in await RowQuery(pg).where(n=2**63 - 1).all()] == [row.id]
    assert (await RowQuery(pg).order_by("-t").first()) == await pg.get(row.id)
    assert await RowQuery(pg).where(at__lte=datetime.min.replace(tzinfo=UTC)).count() == 1
    assert await RowQuery(pg).until(date.min, field="at").count() == 1
    assert await RowQuery(pg).since(date.max, field="day").count() == 1
    assert await RowQuery(pg).until(date.max, field="at").count() == 1
    assert await RowQuery(pg).until(datetime.max.replace(tzinfo=UTC), field="at").count() == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Field("\ud800", "text"), "lone surrogates"),
        (lambda: Field("s", "single_select", choices=("ok", "\ud800")), "lone surrogates"),
        (lambda: Field("s", "text", label="\udfff"), "lone surrogates"),
        (lambda: Register.load("reg\ud800", tenant_id=uuid.uuid4()), "lone surrogates"),
        (lambda: Field("r", "reference", target="\ud800"), "lone surrogates"),
        (lambda: MemoryRegister("m\ud800", []), "lone surrogates"),
    ],
)
def test_definitions_with_unstorable_text_are_refused(
    make: Callable[[], Any], message: str
) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        make()


async def test_register_label_with_unstorable_text_is_refused(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    with pytest.raises(InvalidDefinition, match="lone surrogates"):
        await Register.create("labelled", tenant_id=tenant, label="bad \ud800")
    assert await Register.catalog(tenant_id=tenant) == []


def _deep_cursor(depth: int) -> str:
    raw = '{"f":"0","k":' + "[" * depth + "]" * depth + "}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


MANY = list(range(32_768))
QUERIES: list[tuple[str, Callable[[RowQuery], Any], type[DataError], str]] = [
    ("int past bigint", lambda q: q.where(n__gt=2**63).count(), InvalidValue, "between"),
    ("int in list", lambda q: q.where(n__in=[1, -(2**64)]).count(), InvalidValue, "between"),
    ("huge int", lambda q: q.where(n=10**5000).count(), InvalidValue, "whole number"),
    ("in over limit", lambda q: q.where(n__in=MANY).count(), InvalidQuery, "32,767"),
    (
        "too many conditions",
        lambda q: _conditions(q, 1001).count(),
        InvalidQuery,
        "at most 1,000 conditions",
    ),
    ("order_by over limit", lambda q: q.order_by(*["n", "t"] * 5).count(), InvalidQuery, "8"),
    ("surrogate eq", lambda q: q.where(t="\ud800").count(), InvalidValue, "lone surrogate"),
    (
        "surrogate contains",
        lambda q: q.where(t__contains="\ud800").count(),
        InvalidQuery,
        "lone surrogates",
    ),
    ("surrogate search", lambda q: q.search("a \ud800").count(), InvalidQuery, "lone surrogate"),
    ("search too long", lambda q: q.search("word " * 2001).count(), InvalidQuery, "10,000"),
    (
        "since overflow",
        lambda q: q.since(datetime(1, 1, 1, tzinfo=EAST), field="at").count(),
        InvalidValue,
        "years 1-9999",
    ),
    (
        "until overflow",
        lambda q: q.until(datetime(9999, 12, 31, 22, tzinfo=WEST), field="at").count(),
        InvalidValue,
        "years 1-9999",
    ),
    (
        "filter datetime overflow",
        lambda q: q.where(at__gte=datetime(9999, 12, 31, 22, tzinfo=WEST)).count(),
        InvalidValue,
        "years 1-9999",
    ),
    ("page past bigint", lambda q: q.paginate(page=2**62, size=50), InvalidQuery, "page"),
    ("limit past bigint", lambda q: q.all(limit=2**63), InvalidQuery, "limit"),
    ("deep cursor", lambda q: q.scroll(cursor=_deep_cursor(3000)), InvalidCursor, "cursor"),
    ("long cursor", lambda q: q.scroll(cursor="A" * 100_000), InvalidCursor, "at most"),
    ("surrogate cursor", lambda q: _edited_cursor(q, '"\\ud800"'), InvalidCursor, "cursor"),
    ("huge int cursor", lambda q: _edited_cursor(q, "9" * 5000), InvalidCursor, "cursor"),
    ("deep json cursor", lambda q: _edited_cursor(q, "[" * 5000), InvalidCursor, "cursor"),
]


async def _edited_cursor(q: RowQuery, raw_json: str) -> Any:
    """Scroll with a genuine cursor whose first sort value was replaced by ``raw_json``."""
    q = q.order_by("t")
    cursor = (await q.scroll(page_size=1)).next_cursor
    assert cursor is not None
    doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    doc["k"][0] = "<value>"
    raw = json.dumps(doc).replace('"<value>"', raw_json).encode()
    return await q.scroll(page_size=1, cursor=base64.urlsafe_b64encode(raw).decode())


def _conditions(q: RowQuery, n: int) -> RowQuery:
    for i in range(n):
        q = q.filter("n", "ne", i)
    return q


@pytest.mark.parametrize(("label", "run", "error", "limit"), QUERIES, ids=[q[0] for q in QUERIES])
async def test_queries_past_a_limit_raise_datas_error(
    regs: tuple[Register, MemoryRegister],
    label: str,
    run: Callable[[RowQuery], Any],
    error: type[DataError],
    limit: str,
) -> None:
    for source in regs:
        with pytest.raises(error, match=limit):
            await run(RowQuery(source))


async def test_queries_at_the_limits_work(regs: tuple[Register, MemoryRegister]) -> None:
    for source in regs:
        q = RowQuery(source)
        assert await q.where(n__in=list(range(32_767))).count() == 3
        assert await _conditions(q, 1000).count() == 0  # n != 0 ... n != 999
        assert await _conditions(q, 2).count() == 1
        assert await q.search(("row " + "xy " * 3332)[:10_000]).count() == 0
        assert await q.order_by("-n", "t", "d", "at", "day", "u", "created_at", "id").count() == 3
        assert await q.until(date.max, field="at").since(date.min, field="at").count() == 0
        assert await q.paginate(page=10**9, size=1000) is not None
        assert len(await q.all(limit=2**63 - 1)) == 3
