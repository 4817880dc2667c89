# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Aggregations for ``RowQuery.group_by(...).aggregate(...)``: :class:`Count`, :class:`Sum`,
:class:`Avg`, :class:`Min`, :class:`Max`, their validation against a register's fields,
and their evaluation — in Python here (any source), in SQL by the Postgres register; both
finish raw sums and counts with :func:`finish`, so the results are the same values."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Any, Literal

from ._errors import InvalidQuery, show
from ._fields import NUMERIC, TEMPORAL, TEXTLIKE, Field, FieldType, canonical_decimal
from ._plan import QueryPlan, RegisterInfo, field_value, is_system, rank
from ._results import AggregateRow, RowResult

Function = Literal["count", "sum", "avg", "min", "max"]

_SUMMABLE = NUMERIC
_ORDERABLE = NUMERIC | TEMPORAL | TEXTLIKE
_EXACT = Context(prec=1_000, Emax=10_000, Emin=-10_000)  # sums of 100-digit values stay exact
_AVG = Context(prec=34)


@dataclass(frozen=True)
class Aggregate:
    """One aggregate over the rows of a group: ``function`` of ``field`` (``None``:
    ``Count()`` counts rows). Build with :class:`Count`, :class:`Sum`, :class:`Avg`,
    :class:`Min` or :class:`Max`.

    Example::

        Sum("total")  # Aggregate("sum", "total")
    """

    function: Function
    field: str | None

    def __repr__(self) -> str:
        return f"{self.function.capitalize()}({'' if self.field is None else repr(self.field)})"


def _named(function: Function, field: Any) -> Aggregate:
    if not isinstance(field, str):
        raise InvalidQuery(f"{function.capitalize()}() takes a field name, got {show(field, 80)}")
    return Aggregate(function, field)


def Count(field: str | None = None) -> Aggregate:
    """The number of rows in the group, or of rows with a value for ``field``.

    Example::

        await RowQuery(invoices).group_by("status").aggregate(n=Count())
    """
    return Aggregate("count", None) if field is None else _named("count", field)


def Sum(field: str) -> Aggregate:
    """The sum of an integer or decimal field (``None`` when no row has a value):
    ``int`` for integers, ``Decimal`` for decimals.

    Example::

        await RowQuery(invoices).group_by("status").aggregate(total=Sum("total"))
    """
    return _named("sum", field)


def Avg(field: str) -> Aggregate:
    """The mean of an integer or decimal field as a ``Decimal`` (34 significant digits),
    over the rows that have a value; ``None`` when none has.

    Example::

        await RowQuery(invoices).aggregate(mean=Avg("total"))
    """
    return _named("avg", field)


def Min(field: str) -> Aggregate:
    """The smallest value of a number, date, datetime or text field (texts by code
    point), ignoring rows without one.

    Example::

        await RowQuery(invoices).group_by("customer").aggregate(first=Min("issued_at"))
    """
    return _named("min", field)


def Max(field: str) -> Aggregate:
    """The largest value of a number, date, datetime or text field (see :func:`Min`).

    Example::

        await RowQuery(invoices).group_by("customer").aggregate(last=Max("issued_at"))
    """
    return _named("max", field)


@dataclass(frozen=True)
class AggregateSpec:
    """A validated aggregate: the result name, the function and its field (or None)."""

    name: str
    function: Function
    field: Field | None


def groupable(f: Field) -> bool:
    """Whether rows can be grouped by ``f`` (what ``facets`` counts: not JSON, not many
    references, not a system column); multi_select puts a row in the group of each choice."""
    return f.facetable and not is_system(f)


def check_groups(info: RegisterInfo, names: Sequence[str]) -> tuple[Field, ...]:
    fields: list[Field] = []
    for name in names:
        f = info.field(name)
        if not groupable(f):
            allowed = ", ".join(repr(x.name) for x in info.fields if groupable(x))
            raise InvalidQuery(
                f"cannot group by {name!r} ({f.kind.value}); groupable fields: "
                f"{allowed or '(none)'}"
            )
        if f in fields:
            raise InvalidQuery(f"group_by() names {name!r} twice")
        fields.append(f)
    return tuple(fields)


def check_aggregates(
    info: RegisterInfo, aggregates: Iterable[tuple[str, Any]], groups: Sequence[Field]
) -> tuple[AggregateSpec, ...]:
    specs: list[AggregateSpec] = []
    for name, agg in aggregates:
        if not isinstance(name, str) or not name:
            raise InvalidQuery(f"aggregate() names must be non-empty strings, got {show(name)}")
        if any(g.name == name for g in groups):
            raise InvalidQuery(f"aggregate() name {name!r} is also a group_by() field")
        if not isinstance(agg, Aggregate):
            raise InvalidQuery(
                f"aggregate({name}=...) takes Count(), Sum(field), Avg(field), Min(field) or "
                f"Max(field), got {show(agg, 80)}"
            )
        if agg.field is None:
            specs.append(AggregateSpec(name, agg.function, None))
            continue
        f = info.field(agg.field)
        if agg.function in ("sum", "avg"):
            allowed = _SUMMABLE
        elif agg.function in ("min", "max"):
            allowed = _ORDERABLE
        else:
            allowed = frozenset(FieldType) - {FieldType.JSON, FieldType.MULTI_SELECT}
        if f.kind not in allowed or f.many:
            fit = [repr(x.name) for x in info.fields if x.kind in allowed and not x.many]
            raise InvalidQuery(
                f"{agg!r} does not apply to field {f.name!r} ({f.kind.value}); it takes "
                f"{', '.join(sorted(k.value for k in allowed))} fields: "
                f"{', '.join(fit) or '(none)'}"
            )
        specs.append(AggregateSpec(name, agg.function, f))
    if not specs:
        raise InvalidQuery("aggregate() needs at least one aggregate, e.g. n=Count()")
    return tuple(specs)


def finish(spec: AggregateSpec, raw: Any, count: int | None) -> Any:
    """The result value of an aggregate from its raw value: ``count`` for counts; for
    ``sum``/``avg`` the exact sum (``None`` over no values) and for ``avg`` ``count`` the
    number of values summed (a sum, a minimum and a maximum need no count: ``None``); for
    ``min``/``max`` the value itself (already typed)."""
    if spec.function == "count":
        return count or 0
    if spec.function in ("min", "max"):
        return raw
    if raw is None or count == 0:
        return None
    assert spec.field is not None
    if spec.function == "sum":
        if spec.field.kind is FieldType.INTEGER:
            return int(raw)
        return canonical_decimal(Decimal(raw))
    assert count is not None  # an average's count is always read
    with localcontext(_AVG):
        return canonical_decimal(Decimal(raw) / count)


def compare(a: Any, b: Any) -> int:
    """Ascending, None (no value) last."""
    if a is None or b is None:
        return (a is None) - (b is None)
    return int(a > b) - int(a < b)


def group_order(groups: Sequence[Field]) -> Callable[[AggregateRow], Any]:
    """A ``sorted(key=...)`` function: groups ascending by value (single_select by choice
    order), None last."""

    def cmp(a: AggregateRow, b: AggregateRow) -> int:
        for f in groups:
            result = compare(rank(f, a.group[f.name]), rank(f, b.group[f.name]))
            if result:
                return result
        return 0

    return functools.cmp_to_key(cmp)


def evaluate(
    plan: QueryPlan,
    rows: Iterable[RowResult],
    groups: Sequence[Field],
    specs: Sequence[AggregateSpec],
    limit: int,
) -> list[AggregateRow]:
    """Aggregate already filtered ``rows`` in Python."""
    buckets: dict[tuple[Any, ...], list[RowResult]] = {}
    for row in rows:
        keys = []
        for f in groups:
            value = field_value(row, f)
            keys.append((value or (None,)) if f.multi else (value,))
        for key in itertools.product(*keys):
            buckets.setdefault(key, []).append(row)
    if not groups and not buckets:
        buckets[()] = []  # no groups: one result row, even over no rows
    result = []
    for key, members in buckets.items():
        values: dict[str, Any] = {}
        for spec in specs:
            if spec.field is None:
                values[spec.name] = finish(spec, None, len(members))
                continue
            present = [v for v in (field_value(r, spec.field) for r in members) if v is not None]
            raw: Any = None
            if spec.function in ("sum", "avg") and present:
                with localcontext(_EXACT):
                    raw = sum(Decimal(v) for v in present)
            elif spec.function == "min" and present:
                raw = min(present)
            elif spec.function == "max" and present:
                raw = max(present)
            values[spec.name] = finish(spec, raw, len(present))
        group = {f.name: k for f, k in zip(groups, key, strict=True)}
        result.append(AggregateRow(group=group, values=values))
    result.sort(key=group_order(groups))
    return result[:limit]
