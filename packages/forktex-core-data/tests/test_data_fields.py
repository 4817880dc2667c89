# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Field definitions and per-type coercion: accepted forms, canonical values, rejections,
and a round trip of every type through Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from forktex_core.data import (
    DataError,
    Field,
    FieldType,
    InvalidDefinition,
    InvalidValue,
    Register,
    RowQuery,
)
from forktex_core.data._fields import coerce

RID = uuid.UUID("01900000-0000-7000-8000-000000000001")

ACCEPT: list[tuple[Field, Any, Any]] = [
    (Field("t", "text"), "héllo 'x'", "héllo 'x'"),
    (Field("i", "integer"), 42, 42),
    (Field("i", "integer"), " -7 ", -7),
    (Field("i", "integer"), 3.0, 3),
    (Field("i", "integer"), Decimal("12"), 12),
    (Field("i", "integer"), 2**63 - 1, 2**63 - 1),
    (Field("d", "decimal"), "12.50", Decimal("12.5")),
    (Field("d", "decimal"), 12.25, Decimal("12.25")),
    (Field("d", "decimal"), 100, Decimal("100")),
    (Field("d", "decimal"), Decimal("1E+2"), Decimal("100")),
    (Field("d", "decimal"), "0.000", Decimal("0")),
    (Field("b", "boolean"), True, True),
    (Field("b", "boolean"), "yes", True),
    (Field("b", "boolean"), "FALSE", False),
    (Field("b", "boolean"), 0, False),
    (Field("dt", "date"), "2026-02-28", date(2026, 2, 28)),
    (Field("dt", "date"), date(2026, 1, 1), date(2026, 1, 1)),
    (
        Field("ts", "datetime"),
        "2026-01-31T10:00:00+02:00",
        datetime(2026, 1, 31, 8, tzinfo=UTC),
    ),
    (Field("ts", "datetime"), "2026-01-31T10:00:00Z", datetime(2026, 1, 31, 10, tzinfo=UTC)),
    (Field("e", "email"), " Ada@Example.COM ", "ada@example.com"),
    (Field("u", "url"), "https://example.com/a?b=c", "https://example.com/a?b=c"),
    (Field("s", "single_select", choices=("a", "b")), "b", "b"),
    (Field("m", "multi_select", choices=("a", "b", "c")), ["c", "a", "c"], ("a", "c")),
    (Field("m", "multi_select", choices=("a", "b")), "b", ("b",)),
    (Field("m", "multi_select", choices=("a", "b")), [], None),
    (Field("j", "json"), {"a": [1, 2.5, None, True, "x"]}, {"a": [1, 2.5, None, True, "x"]}),
    (Field("r", "reference", target="x"), str(RID), RID),
    (Field("r", "reference", target="x", many=True), [RID, str(RID)], (RID,)),
]

REJECT: list[tuple[Field, Any]] = [
    (Field("t", "text"), 5),
    (Field("t", "text"), "a\x00b"),
    (Field("i", "integer"), "12.5"),
    (Field("i", "integer"), 1.5),
    (Field("i", "integer"), True),
    (Field("i", "integer"), 2**63),
    (Field("i", "integer"), "abc"),
    (Field("d", "decimal"), "NaN"),
    (Field("d", "decimal"), float("inf")),
    (Field("d", "decimal"), "twelve"),
    (Field("d", "decimal"), False),
    (Field("b", "boolean"), "maybe"),
    (Field("b", "boolean"), 2),
    (Field("dt", "date"), "2026-02-30"),
    (Field("dt", "date"), datetime(2026, 1, 1, tzinfo=UTC)),
    (Field("ts", "datetime"), datetime(2026, 1, 1)),
    (Field("ts", "datetime"), "2026-01-01T00:00:00"),
    (Field("ts", "datetime"), date(2026, 1, 1)),
    (Field("e", "email"), "not-an-email"),
    (Field("e", "email"), "a@b"),
    (Field("u", "url"), "ftp://example.com"),
    (Field("u", "url"), "https:///nohost"),
    (Field("u", "url"), "https://exa mple.com"),
    (Field("s", "single_select", choices=("a", "b")), "c"),
    (Field("m", "multi_select", choices=("a", "b")), ["a", "z"]),
    (Field("m", "multi_select", choices=("a", "b")), 3),
    (Field("j", "json"), {"a": float("nan")}),
    (Field("j", "json"), {1: "non-str key"}),
    (Field("j", "json"), {"a": object()}),
    (Field("r", "reference", target="x"), "not-a-uuid"),
    (Field("r", "reference", target="x", many=True), ["nope"]),
]


@pytest.mark.parametrize(("field", "value", "expected"), ACCEPT)
def test_coercion_accepts_and_canonicalises(field: Field, value: Any, expected: Any) -> None:
    assert coerce(field, value) == expected
    assert coerce(field, None) is None


@pytest.mark.parametrize(("field", "value"), REJECT)
def test_coercion_rejects_with_field_and_value(field: Field, value: Any) -> None:
    with pytest.raises(InvalidValue) as info:
        coerce(field, value)
    assert info.value.field == field.name
    assert repr(field.name) in str(info.value) and field.kind.value in str(info.value)
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)


def test_select_rejection_lists_choices() -> None:
    with pytest.raises(InvalidValue, match=r"one of 'draft', 'paid'"):
        coerce(Field("status", "single_select", choices=("draft", "paid")), "void")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x", "type": "money"}, "allowed types: text, integer"),
        ({"name": "", "type": "text"}, "1-63 characters"),
        ({"name": "x" * 64, "type": "text"}, "1-63 characters"),
        ({"name": " x", "type": "text"}, "leading or trailing spaces"),
        ({"name": "-x", "type": "text"}, "leading '-'"),
        ({"name": "a\nb", "type": "text"}, "control characters"),
        ({"name": "id", "type": "text"}, "reserved"),
        ({"name": "created_at", "type": "text"}, "reserved"),
        ({"name": "s", "type": "single_select"}, "needs choices"),
        ({"name": "s", "type": "single_select", "choices": "ab"}, "needs choices="),
        ({"name": "s", "type": "single_select", "choices": ("a", "a")}, "must not repeat"),
        ({"name": "s", "type": "single_select", "choices": ("a", "")}, "non-empty string"),
        ({"name": "t", "type": "text", "choices": ("a",)}, "takes no choices"),
        ({"name": "r", "type": "reference"}, "needs target="),
        ({"name": "t", "type": "text", "target": "x"}, "takes no target"),
        ({"name": "t", "type": "text", "many": True}, "takes no many"),
        ({"name": "j", "type": "json", "unique": True}, "cannot be unique"),
        ({"name": "b", "type": "boolean", "unique": True}, "cannot be unique"),
        ({"name": "m", "type": "multi_select", "choices": ("a",), "indexed": True}, "indexed"),
        ({"name": "t", "type": "text", "unique": True, "default": "x"}, "cannot have a default"),
        ({"name": "t", "type": "text", "required": "yes"}, "True or False"),
        ({"name": "r", "type": "reference", "target": "x", "default": str(RID)}, "default"),
        ({"name": "t", "type": "text", "label": 5}, "label"),
    ],
)
def test_field_definition_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        Field(**kwargs)


def test_field_default_is_coerced_and_invalid_default_rejected() -> None:
    assert Field("n", "integer", default="5").default == 5
    with pytest.raises(InvalidValue, match="'n'"):
        Field("n", "integer", default="five")
    assert Field("n", FieldType.TEXT).kind is FieldType.TEXT


async def test_every_type_round_trips_through_postgres(engine: Any, tenant: uuid.UUID) -> None:
    target = await Register.create("targets", tenant_id=tenant, fields=[Field("n", "text")])
    t1 = await target.insert({"n": "one"})
    t2 = await target.insert({"n": "two"})
    fields = [
        Field("t", "text"),
        Field("i", "integer"),
        Field("d", "decimal"),
        Field("b", "boolean"),
        Field("dt", "date"),
        Field("ts", "datetime"),
        Field("e", "email"),
        Field("u", "url"),
        Field("s", "single_select", choices=("a", "b")),
        Field("m", "multi_select", choices=("a", "b", "c")),
        Field("j", "json"),
        Field("r", "reference", target="targets"),
        Field("rs", "reference", target="targets", many=True),
    ]
    reg = await Register.create("all_types", tenant_id=tenant, fields=fields)
    plus2 = timezone(timedelta(hours=2))
    values = {
        "t": "x'); DROP TABLE forktex_data.rows; --",
        "i": "-9223372036854775808",
        "d": "123456789012345678901234567890.000000000000000000001",
        "b": "no",
        "dt": "2026-03-01",
        "ts": datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=plus2),
        "e": "Ada@Example.com",
        "u": "http://example.com/x",
        "s": "a",
        "m": ["c", "b"],
        "j": {"nested": {"list": [1, "two", None]}, "n": 1.5},
        "r": t1,
        "rs": [t2.id, str(t1.id)],
    }
    row = await reg.insert(values)
    fetched = await reg.get(row.id)
    expected = {
        "t": values["t"],
        "i": -(2**63),
        "d": Decimal("123456789012345678901234567890.000000000000000000001"),
        "b": False,
        "dt": date(2026, 3, 1),
        "ts": datetime(2026, 3, 1, 10, 30, 15, 123456, tzinfo=UTC),
        "e": "ada@example.com",
        "u": "http://example.com/x",
        "s": "a",
        "m": ("b", "c"),
        "j": {"nested": {"list": [1, "two", None]}, "n": 1.5},
        "r": t1.id,
        "rs": (t2.id, t1.id),
    }
    assert dict(fetched.values) == expected
    assert dict(row.values) == expected
    assert fetched.created_at is not None and not fetched.archived
    with pytest.raises(InvalidValue, match=r"field 'i' \(integer\)"):
        await reg.insert({"i": "1.5"})
    assert await RowQuery(reg).count() == 1
