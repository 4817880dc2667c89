# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Stored formula fields of a register: their formulas checked against the register's
fields when it is defined (unknown fields, types, cycles), and their values computed in
dependency order from a row's values before the row is stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._errors import InvalidDefinition, InvalidQuery, InvalidValue, show
from ._fields import NUMERIC, TEXTLIKE, Field, FieldType, coerce
from ._formula import Formula, compile_formula, formula_fields
from ._plan import RegisterInfo

#: The result type (see :class:`Formula`) each formula field type takes.
_RESULT = {
    **{t: "number" for t in NUMERIC},
    **{t: "text" for t in TEXTLIKE},
    FieldType.BOOLEAN: "boolean",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime",
}


class FormulaFields:
    """The formula fields of a list of fields, compiled, in the order they are computed
    (a formula reading another formula field comes after it). Building one checks every
    formula; :class:`InvalidDefinition` names the field and what is wrong.

    Example::

        plan = FormulaFields([Field("net", "decimal"),
                              Field("gross", "decimal", formula="{net} * 1.19")], "items")
        values = {"net": Decimal("10"), "gross": None}
        plan.fill(values, "items")  # values["gross"] == Decimal("11.9")
    """

    def __init__(self, fields: Sequence[Field], register: str) -> None:
        info = RegisterInfo(register, tuple(fields))
        self.register = register
        self.reads: dict[str, tuple[str, ...]] = {}
        compiled: dict[str, tuple[Field, Formula]] = {}
        for f in fields:
            if f.formula is not None:
                compiled[f.name] = (f, _compile(f, info))
                self.reads[f.name] = formula_fields(f.formula)
        self.order: tuple[tuple[Field, Formula], ...] = tuple(
            compiled[name] for name in self._sorted(compiled)
        )

    def __bool__(self) -> bool:
        return bool(self.order)

    def _sorted(self, compiled: dict[str, Any]) -> list[str]:
        """Formula field names, each after the formula fields it reads; InvalidDefinition
        on a cycle (a formula reading itself, directly or through others)."""
        done: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "open":
                cycle = " -> ".join(map(repr, (*path[path.index(name) :], name)))
                raise InvalidDefinition(
                    f"formula field {name!r} of register {self.register!r} depends on itself "
                    f"({cycle}); a formula may read only fields that do not read it back"
                )
            state[name] = "open"
            for read in self.reads[name]:
                if read in compiled:
                    visit(read, (*path, name))
            state[name] = "done"
            done.append(name)

        for name in compiled:
            visit(name, ())
        return done

    def dependents(self, name: str) -> list[str]:
        """The formula fields reading field ``name``.

        Example::

            plan.dependents("net")  # ['gross']
        """
        return [f.name for f, _formula in self.order if name in self.reads[f.name]]

    def fill(self, values: dict[str, Any], register: str) -> None:
        """Compute the formula fields of a row's coerced ``values`` (in place), coerced to
        their field types; :class:`InvalidValue` when a result does not fit the field
        (a fraction for an integer field, say).

        Example::

            plan.fill(row_values, "items")
        """
        for f, formula in self.order:
            result = formula.evaluate(values)
            if result is None:
                values[f.name] = None
                continue
            try:
                values[f.name] = coerce(f, result)
            except InvalidValue as exc:
                hint = "; round(..., 0) makes a whole number" if f.kind is FieldType.INTEGER else ""
                raise InvalidValue(
                    f"the formula {show(f.formula, 80)} of field {f.name!r} of register "
                    f"{register!r} gives a value the field cannot hold: {exc}{hint}",
                    field=f.name,
                    value=result,
                ) from None


def _compile(f: Field, info: RegisterInfo) -> Formula:
    """``f``'s formula, type-checked against ``info``'s fields and ``f``'s type."""
    try:
        formula = compile_formula(f.formula, info)
    except InvalidQuery as exc:
        raise InvalidDefinition(f"field {f.name!r} of register {info.name!r}: {exc}") from None
    expected = _RESULT[f.kind]
    if formula.type != expected:
        fits = sorted(k.value for k, v in _RESULT.items() if v == formula.type)
        raise InvalidDefinition(
            f"field {f.name!r} of register {info.name!r} is {f.kind.value} but its formula "
            f"{show(f.formula, 80)} gives "
            + ("no value (null)" if formula.type == "null" else f"a {formula.type}")
            + f"; a {f.kind.value} field needs a formula giving a {expected}"
            + (f" (a {formula.type} fits a field of type {', '.join(fits)})" if fits else "")
        )
    return formula
