# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Formulas: the expression language (types checked at parse time, exact decimals, missing
values), its refusals (never eval, bounded recursion), and RowQuery.formula on Postgres
and MemoryRegister."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import Field, Formula, InvalidQuery, MemoryRegister, Register, RowQuery

FIELDS = [
    Field("total", "decimal"),
    Field("qty", "integer"),
    Field("name", "text"),
    Field("paid", "boolean"),
    Field("due", "date"),
    Field("meta", "json"),
]


@pytest.mark.parametrize(
    ("source", "values", "type_", "expected"),
    [
        ("{total} * 1.2", {"total": Decimal("10")}, "number", Decimal("12")),
        ("round({total} / 3, 2)", {"total": Decimal("10")}, "number", Decimal("3.33")),
        ("{qty} / 0", {"qty": 5}, "number", None),
        ("-{qty} + 2 * (3 - 1)", {"qty": 5}, "number", -1),
        ("{qty} + 1", {}, "number", None),  # a missing operand
        ("if({total} > 100, 'big', \"small\")", {"total": Decimal("150")}, "text", "big"),
        ("if({total} > 100, 'big', null)", {"total": Decimal("5")}, "text", None),
        (
            "concat({name}, ' x', {qty}, ' ', {paid})",
            {"name": "A", "qty": 3, "paid": True},
            "text",
            "A x3 true",
        ),
        ("not {paid} or {qty} >= 2", {"paid": True, "qty": 1}, "boolean", False),
        ("not {paid}", {}, "boolean", None),
        ("{name} = 'it\\'s'", {"name": "it's"}, "boolean", True),
        ("coalesce({name}, 'none')", {}, "text", "none"),
        ("len(upper({name}))", {"name": "abc"}, "number", 3),
        ("lower({name}) != 'x'", {"name": "X"}, "boolean", False),
        ("{due} < {due}", {}, "boolean", None),
        ("TRUE and {paid}", {"paid": True}, "boolean", True),
    ],
)
def test_formulas_evaluate_with_their_types(
    source: str, values: dict[str, Any], type_: str, expected: Any
) -> None:
    formula = Formula.parse(source, FIELDS)
    assert formula.type == type_
    result = formula.evaluate(values)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{total} + 'x'", "'+' takes numbers, got text; join texts with concat"),
        ("{nope} * 2", "{nope} is no field usable in a formula"),
        ("{meta}", "{meta} is no field usable"),  # json has no formula type
        ("eval('1')", "unknown function 'eval'"),
        ("__import__('os')", "unknown function '__import__'"),
        ("import os", "unknown name 'import'"),
        ("{total} *", "ends too early"),
        ("1 +* 2", "unexpected '*' at character 4"),
        ("1 2", "unexpected '2'"),
        ("if({qty}, 1, 2)", "true/false condition first, got number"),
        ("if({paid}, 1, 'a')", "branches must have one type"),
        ("round({total})", "round() takes 2 argument"),
        ("{name} < 3", "cannot compare text with number"),
        ("1 ; 2", "unexpected '; 2' at character 3"),
        ("(" * 40 + "1" + ")" * 40, "deeper than 32 levels"),
        ("1" + " + 1" * 150, "the limit is 200"),
        ("", "non-empty text"),
        ("x" * 2001, "at most 2,000 characters"),
    ],
)
def test_bad_formulas_are_refused_at_parse_time(source: str, message: str) -> None:
    with pytest.raises(InvalidQuery, match=re.escape(message)):
        Formula.parse(source, FIELDS)


def test_long_formulas_within_the_limits_evaluate() -> None:
    chain = Formula.parse("1" + " + 1" * 99, FIELDS)  # 199 parts
    assert chain.evaluate({}) == 100
    negated = Formula.parse("-" * 199 + "1", FIELDS)
    assert negated.evaluate({}) == -1


async def test_row_query_formula_on_both_sources(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    rows = [{"total": "10", "qty": 2, "name": "a"}, {"total": "250", "qty": 1, "name": "b"}]
    stored = await Register.create("orders", tenant_id=tenant, fields=FIELDS)
    await stored.insert_many(rows)
    memory = MemoryRegister("orders", FIELDS, rows=rows)
    for source in (stored, memory):
        query = (
            RowQuery(source)
            .formula("gross", "round({total} * {qty} * 1.19, 2)")
            .formula("size", "if({total} >= 100, 'large', 'small')")
            .order_by("name")
        )
        got = [(r.included["gross"], r.included["size"]) for r in await query.all()]
        assert got == [(Decimal("23.8"), "small"), (Decimal("297.5"), "large")]
        page = await query.scroll(page_size=1)
        assert page.items[0].included["size"] == "small"
        with pytest.raises(InvalidQuery, match="no field usable"):
            await RowQuery(source).formula("x", "{colour}").all()  # checked when planned
        with pytest.raises(InvalidQuery, match="already used"):
            RowQuery(source).formula("x", "1").formula("x", "2")
        with pytest.raises(InvalidQuery, match="formula as text"):
            RowQuery(source).formula("x", 1)  # type: ignore[arg-type]
