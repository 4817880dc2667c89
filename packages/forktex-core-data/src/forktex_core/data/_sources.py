# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Where a register's rows live: the :class:`RegisterSource` protocol every ``RowQuery``
runs on, and :class:`MemoryRegister`, the in-memory / computed implementation (the
Postgres one is :class:`~forktex_core.data.Register`)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from forktex_core.db import uuid7

from . import _search
from ._errors import (
    DataError,
    InvalidDefinition,
    InvalidValue,
    NotFound,
    UniqueViolation,
    show,
)
from ._fields import Field, FieldType, as_row_id, check_actor, check_name, fold
from ._formulas import FormulaFields
from ._plan import (
    ID,
    AllOf,
    AnyOf,
    Condition,
    Filter,
    Not,
    QueryPlan,
    Referenced,
    RegisterInfo,
    Related,
    SortKey,
    field_value,
    key_value,
)
from ._results import FacetCount, RowResult
from ._search import SearchConfig


@runtime_checkable
class RegisterSource(Protocol):
    """What ``RowQuery`` needs from a register, wherever its rows live (Postgres, memory,
    an external API, a computation). Implement these seven methods to plug in a source.

    Semantics every source keeps: ``plan.conditions`` are ANDed, and each is a
    :class:`Condition` or a group (``AnyOf``, ``AllOf``, ``Not``; a row without a value
    does not match a condition, so ``Not`` of it selects the row); ``ne`` and the ``not_``
    operators keep rows without a value;
    ordered comparisons, ``in`` and ``between`` never match a missing value; NULL sorts as
    the largest value; ``after`` (keyset) holds the sort values of the last row seen and
    selects the rows strictly after it in ``plan.sort`` order (a single_select's sort key
    is the rank of its choice). An optional eighth method, ``aggregate_rows(plan, groups,
    aggregates, limit)``, computes ``RowQuery.aggregate`` at the source; another,
    ``describe_target(field)``, returns the ``RegisterInfo`` a reference field points to and
    enables filters on linked rows' fields (``Related`` nodes); without it the
    query aggregates the rows ``fetch_rows`` returns. Another optional method,
    ``update_rows(plan, values)``, makes ``RowQuery.update`` work on the source (changing
    the given fields of every matching row, all or nothing, returning how many). And
    ``facet_counts_together(plan, fields, limit)`` (a dict of field name to
    ``facet_counts`` of that field) lets a source count several fields' facets at once.

    Example::

        class Products:  # a computed register
            async def describe(self) -> RegisterInfo: ...
            async def fetch_rows(self, plan, *, limit=None, offset=0, after=None): ...
            ...

        isinstance(Products(), RegisterSource)  # True
    """

    async def describe(self) -> RegisterInfo:
        """The register's name and fields."""
        ...

    async def fetch_rows(
        self,
        plan: QueryPlan,
        *,
        limit: int | None = None,
        offset: int = 0,
        after: tuple[Any, ...] | None = None,
    ) -> list[RowResult]:
        """The matching rows in ``plan.sort`` order."""
        ...

    async def count_rows(self, plan: QueryPlan) -> int:
        """How many rows match."""
        ...

    async def facet_counts(self, plan: QueryPlan, field: Field, limit: int) -> list[FacetCount]:
        """Value counts of ``field`` over the matching rows."""
        ...

    async def archive_rows(self, plan: QueryPlan, archived: bool) -> int:
        """Archive (or restore) the matching rows; returns how many changed."""
        ...

    async def delete_rows(self, plan: QueryPlan) -> int:
        """Hard-delete the matching rows; returns how many."""
        ...

    async def fetch_targets(
        self, field: Field, ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, RowResult]:
        """The rows a reference field points to, by id (for ``include``)."""
        ...


# -- Python evaluation of a plan (the reference semantics) ---------------------------------


def _json_contains(haystack: Any, needle: Any) -> bool:
    """Postgres ``jsonb @> jsonb``."""
    if isinstance(needle, dict):
        return isinstance(haystack, dict) and all(
            k in haystack and _json_contains(haystack[k], v) for k, v in needle.items()
        )
    if isinstance(needle, list):
        if not isinstance(haystack, list):
            return False
        return all(
            any(_json_contains(h, n) if isinstance(n, (dict, list)) else _json_eq(h, n)
                for h in haystack)
            for n in needle
        )  # fmt: skip
    if isinstance(haystack, list):  # a scalar is contained in an array holding it
        return any(_json_eq(h, needle) for h in haystack)
    return _json_eq(haystack, needle)


def _json_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b) and (a is None) == (b is None)


def matches(plan: QueryPlan, row: RowResult) -> bool:
    """Whether ``row`` satisfies every condition, the search and the archive mode."""
    if plan.archived == "active" and row.archived:
        return False
    if plan.archived == "archived" and not row.archived:
        return False
    for node in plan.conditions:
        if not holds(node, row):
            return False
    if plan.search is not None:
        parts = _search.searchable_parts(plan.info.search_columns, row.values, by_key=False)
        config = plan.info.search_config
        return _search.matches(_search.parse(plan.search, config), _search.index(parts, config))
    return True


def holds(node: Filter, row: RowResult) -> bool:
    """Whether one filter (a condition or a group) selects ``row``."""
    if isinstance(node, Condition):
        return _check(node.field, node.op, node.value, field_value(row, node.field))
    if isinstance(node, Not):
        return not holds(node.inner, row)
    if isinstance(node, Related):
        if node.matched is None:  # pragma: no cover - resolved by the source first
            raise DataError("a linked filter must be resolved before it is evaluated")
        value = row.values.get(node.via.name)
        if node.via.many:
            return any(v in node.matched for v in value or ())
        return value is not None and value in node.matched
    if isinstance(node, Referenced):  # pragma: no cover - only planned for stored registers
        raise DataError("a reverse link between stored registers is evaluated by Postgres")
    if isinstance(node, AnyOf):
        return any(holds(item, row) for item in node.items)
    return all(holds(item, row) for item in node.items)


def _check(f: Field, op: str, expected: Any, value: Any) -> bool:
    if op == "is_null":
        return (value is None) is expected
    if op.startswith("not_"):
        return not _check(f, op[4:], expected, value)
    if op == "ne":
        return value is None or value != expected
    if value is None:
        return False
    if op == "eq":
        if f.kind is FieldType.JSON:
            return _json_contains(value, expected) and _json_contains(expected, value)
        return bool(value == expected)
    if op == "lt":
        return bool(value < expected)
    if op == "lte":
        return bool(value <= expected)
    if op == "gt":
        return bool(value > expected)
    if op == "gte":
        return bool(value >= expected)
    if op == "in":
        return value in expected
    if op == "between":
        return bool(expected[0] <= value <= expected[1])
    if op == "starts_with":
        return bool(value.startswith(expected))
    if op == "icontains":
        return fold(expected) in fold(value)
    if op == "contains":
        if f.kind is FieldType.JSON:
            return _json_contains(value, expected)
        if f.multi:
            return set(expected) <= set(value)
        return expected in value
    raise InvalidDefinition(f"unknown operator {op!r}")  # pragma: no cover - plan validated


def _compare(a: Any, b: Any) -> int:
    if a is None or b is None:
        return (a is None) - (b is None)  # NULL is the largest value
    return int(a > b) - int(a < b)


def order_key(sort: Sequence[SortKey]) -> Callable[[RowResult], Any]:
    """A ``sorted(key=...)`` function for ``plan.sort``."""

    def cmp(x: RowResult, y: RowResult) -> int:
        for key in sort:
            result = _compare(key_value(x, key), key_value(y, key))
            if result:
                return -result if key.descending else result
        return 0

    return functools.cmp_to_key(cmp)


def after_cursor(sort: Sequence[SortKey], row: RowResult, after: Sequence[Any]) -> bool:
    """Whether ``row`` comes strictly after the keyset ``after`` in ``sort`` order."""
    for key, mark in zip(sort, after, strict=True):
        result = _compare(key_value(row, key), mark)
        if result:
            return (-result if key.descending else result) > 0
    return False


def evaluate(
    plan: QueryPlan,
    rows: Iterable[RowResult],
    *,
    limit: int | None = None,
    offset: int = 0,
    after: Sequence[Any] | None = None,
) -> list[RowResult]:
    """Apply ``plan`` to rows in Python: filter, sort, keyset, offset, limit."""
    selected = [r for r in rows if matches(plan, r)]
    if after is not None:
        selected = [r for r in selected if after_cursor(plan.sort, r, after)]
    selected.sort(key=order_key(plan.sort))
    end = None if limit is None else offset + limit
    return selected[offset:end]


def facet(plan: QueryPlan, rows: Iterable[RowResult], f: Field, limit: int) -> list[FacetCount]:
    """``facet_counts`` in Python: most frequent first, ties by value (None last)."""
    counts: dict[Any, int] = {}
    for row in rows:
        if not matches(plan, row):
            continue
        value = row.values.get(f.name)
        for item in (value or (None,)) if f.multi else (value,):
            counts[item] = counts.get(item, 0) + 1

    def cmp(a: tuple[Any, int], b: tuple[Any, int]) -> int:
        return (b[1] - a[1]) or _compare(a[0], b[0])

    ordered = sorted(counts.items(), key=functools.cmp_to_key(cmp))
    return [FacetCount(value, count) for value, count in ordered[:limit]]


async def resolve_related(plan: QueryPlan, targets: Callable[[Field], RegisterSource]) -> QueryPlan:
    """``plan`` with each :class:`Related` filter holding the ids of the target rows its
    inner filter selects (asked of the target source, archived rows included, as Postgres
    does), so :func:`holds` can evaluate it row by row."""

    async def walk(node: Filter) -> Filter:
        if isinstance(node, Related):
            target = targets(node.via)
            info = await target.describe()
            inner = QueryPlan(info, (node.inner,), (SortKey(ID, False),), None, "all", ())
            rows = await target.fetch_rows(inner)
            return replace(node, matched=frozenset(row.id for row in rows))
        if isinstance(node, Not):
            return Not(await walk(node.inner))
        if isinstance(node, (AnyOf, AllOf)):
            return type(node)(tuple([await walk(item) for item in node.items]))
        return node

    if not any(_has_related(c) for c in plan.conditions):
        return plan
    return replace(plan, conditions=tuple([await walk(c) for c in plan.conditions]))


def _has_related(node: Filter) -> bool:
    if isinstance(node, Related):
        return True
    if isinstance(node, Not):
        return _has_related(node.inner)
    if isinstance(node, (AnyOf, AllOf)):
        return any(_has_related(item) for item in node.items)
    return False


# -- the in-memory / computed source -----------------------------------------------------


class MemoryRegister:
    """A register held in memory (or computed on every query by ``compute``). The same
    ``RowQuery`` runs on it as on a Postgres :class:`Register`; values are coerced by the
    same field types.

    ``rows`` are mappings of field name to value, optionally with ``id``, ``created_at``,
    ``updated_at``, ``archived_at``. ``compute`` (an async callable returning such
    mappings) makes it read-only and recomputed per query. ``targets`` maps target register
    names to sources for ``include()``.

    Example::

        rates = MemoryRegister("rates", [Field("code", "text"), Field("rate", "decimal")],
                               rows=[{"code": "EUR", "rate": "1.0"}])
        page = await RowQuery(rates).where(code__starts_with="E").scroll()
    """

    def __init__(
        self,
        name: str,
        fields: Sequence[Field],
        rows: Iterable[Mapping[str, Any]] = (),
        *,
        compute: Callable[[], Awaitable[Iterable[Mapping[str, Any]]]] | None = None,
        targets: Mapping[str, RegisterSource] | None = None,
        date_field: str | None = None,
        search: SearchConfig | None = None,
    ) -> None:
        check_name(name, "register")
        if search is not None and not isinstance(search, SearchConfig):
            raise InvalidDefinition(
                f"search takes a SearchConfig(fold_accents=...), got {show(search, 80)}"
            )
        if isinstance(fields, (str, Field)) or not all(isinstance(f, Field) for f in fields):
            raise InvalidDefinition(
                f"fields must be a list of Field(...) definitions, got {show(fields, 80)}"
            )
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise InvalidDefinition(f"register {name!r} names a field twice: {names}")
        if compute is not None and not callable(compute):
            raise InvalidDefinition(f"compute must be an async callable, got {show(compute, 80)}")
        self._info = RegisterInfo(name, tuple(fields), date_field, search or SearchConfig())
        self._formulas = FormulaFields(fields, name)
        if date_field is not None:
            self._info.field(date_field)
        self._compute = compute
        self._targets = dict(targets or {})
        self._rows: dict[uuid.UUID, RowResult] = {}
        self._numbers = {f.name: 0 for f in fields if f.autonumber}
        for row in rows:
            self._add(row)

    def __repr__(self) -> str:
        return f"MemoryRegister({self._info.name!r})"

    @property
    def name(self) -> str:
        """The register's name."""
        return self._info.name

    @property
    def fields(self) -> tuple[Field, ...]:
        """The field definitions."""
        return self._info.fields

    def _make(self, data: Mapping[str, Any]) -> RowResult:
        if not isinstance(data, Mapping):
            raise InvalidValue(f"a row must be a mapping, got {show(data, 80)}")
        values = dict(data)
        raw_id = values.pop("id", None)
        row_id = uuid7() if raw_id is None else as_row_id(raw_id)
        if row_id is None:
            raise InvalidValue(f"row id must be a UUID, got {show(raw_id, 80)}", field="id")
        stamps = {k: values.pop(k, None) for k in ("created_at", "updated_at", "archived_at")}
        now = datetime.now(UTC)
        return RowResult(
            id=row_id,
            register=self._info.name,
            values=self._computed(self._info.coercer.build(values, register=self._info.name)),
            created_at=stamps["created_at"] or now,
            updated_at=stamps["updated_at"] or now,
            archived_at=stamps["archived_at"],
        )

    def _add(self, data: Mapping[str, Any], actor: str | None = None) -> RowResult:
        row = self._make(data)
        if self._numbers:
            numbers = {name: self._numbers[name] + 1 for name in self._numbers}
            row = replace(row, values=self._computed({**row.values, **numbers}))
        if actor is not None:
            row = replace(row, created_by=actor, updated_by=actor)
        if row.id in self._rows:
            raise UniqueViolation(f"row id {row.id} already exists", field="id", value=row.id)
        self._check_unique(row)
        self._rows[row.id] = row
        for name in self._numbers:  # taken only once the row is in
            self._numbers[name] += 1
        return row

    def _computed(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with the formula fields computed (what every write stores)."""
        if self._formulas:
            self._formulas.fill(values, self._info.name)
        return values

    def _check_unique(self, row: RowResult) -> None:
        for f in self._info.fields:
            value = row.values.get(f.name)
            if not f.unique or value is None:
                continue
            for other in self._rows.values():
                if other.id != row.id and other.values.get(f.name) == value:
                    raise UniqueViolation(
                        f"field {f.name!r} of register {self._info.name!r} is unique and "
                        f"{show(value, 80)} is taken",
                        field=f.name,
                        value=value,
                    )

    def _writable(self) -> None:
        if self._compute is not None:
            raise DataError(f"register {self._info.name!r} is computed and read-only")

    async def insert(self, values: Mapping[str, Any], *, actor: Any = None) -> RowResult:
        """Add a row (coerced like a Postgres register's); returns it.

        Example::

            row = await rates.insert({"code": "USD", "rate": "1.08"})
        """
        self._writable()
        return self._add(values, check_actor(actor))

    async def update(
        self, row_id: Any, values: Mapping[str, Any], *, actor: Any = None
    ) -> RowResult:
        """Change some fields of a row; returns the new row."""
        self._writable()
        who = check_actor(actor)
        current = await self.get(row_id)
        changed = self._info.coercer.build(values, register=self.name, partial=True)
        row = replace(
            current,
            values=self._computed({**current.values, **changed}),
            updated_at=datetime.now(UTC),
            updated_by=who,
        )
        self._check_unique(row)
        self._rows[row.id] = row
        return row

    async def upsert(
        self, rows: Sequence[Mapping[str, Any]], *, on: str, actor: Any = None
    ) -> list[RowResult]:
        """Insert rows, or update the row whose unique field ``on`` holds the row's value
        (only the given fields change); all or nothing, like ``Register.upsert``.

        Example::

            await rates.upsert([{"code": "USD", "rate": "1.09"}], on="code")
        """
        self._writable()
        who = check_actor(actor)
        if isinstance(rows, Mapping) or not isinstance(rows, (list, tuple)):
            raise InvalidValue(f"upsert() takes a list of mappings, got {show(rows, 80)}")
        f = next((x for x in self._info.fields if x.name == on), None)
        if f is None or not f.unique:
            unique = [x.name for x in self._info.fields if x.unique]
            raise InvalidValue(
                f"upsert(on=...) takes the name of a unique field of register "
                f"{self.name!r}, got {show(on, 80)}; unique fields: "
                f"{', '.join(map(repr, unique)) or '(none)'}",
                value=on,
            )
        changes = [self._info.coercer.build(r, register=self.name, partial=True) for r in rows]
        seen: dict[Any, int] = {}
        for i, c in enumerate(changes):
            value = c.get(f.name)
            if value is None:
                raise InvalidValue(
                    f"upsert row {i} has no value for {f.name!r}, the field rows are matched by",
                    field=f.name,
                )
            if value in seen:
                raise InvalidValue(
                    f"upsert rows {seen[value]} and {i} both have {f.name!r} = "
                    f"{show(value, 80)}; merge them first",
                    field=f.name,
                    value=value,
                )
            seen[value] = i
        holders = {r.values.get(f.name): r for r in self._rows.values()}
        before, numbers = dict(self._rows), dict(self._numbers)
        result: list[RowResult] = []
        try:
            for raw, c in zip(rows, changes, strict=True):
                current = holders.get(c[f.name])
                if current is None:
                    result.append(self._add(raw, who))
                else:
                    row = replace(
                        current,
                        values=self._computed({**current.values, **c}),
                        updated_at=datetime.now(UTC),
                        updated_by=who,
                    )
                    self._check_unique(row)
                    self._rows[row.id] = row
                    result.append(row)
        except DataError:
            self._rows, self._numbers = before, numbers  # all or nothing
            raise
        return result

    async def get(self, row_id: Any) -> RowResult:
        """The row with this id (archived or not); NotFound otherwise."""
        rid = as_row_id(row_id)
        rows = await self._all_rows()
        for row in rows:
            if row.id == rid:
                return row
        raise NotFound(f"register {self.name!r} has no row {show(row_id, 80)}")

    async def _all_rows(self) -> list[RowResult]:
        if self._compute is None:
            return list(self._rows.values())
        return [self._make(data) for data in await self._compute()]

    # -- RegisterSource --------------------------------------------------------------------

    async def describe(self) -> RegisterInfo:
        return self._info

    async def fetch_rows(
        self,
        plan: QueryPlan,
        *,
        limit: int | None = None,
        offset: int = 0,
        after: tuple[Any, ...] | None = None,
    ) -> list[RowResult]:
        plan = await resolve_related(plan, self._target)
        rows = await self._all_rows()
        vias = list(dict.fromkeys(k.via for k in plan.sort if k.via is not None))
        if vias:  # a linked sort key is read from the linked row: attach it
            rows = [row for row in rows if matches(plan, row)]
            for via in vias:
                ids = list({row.values[via.name] for row in rows} - {None})
                targets = await self.fetch_targets(via, ids)
                rows = [
                    replace(row, included={**row.included, via.name: targets.get(row[via.name])})
                    for row in rows
                ]
        return evaluate(plan, rows, limit=limit, offset=offset, after=after)

    async def count_rows(self, plan: QueryPlan) -> int:
        plan = await resolve_related(plan, self._target)
        return sum(1 for row in await self._all_rows() if matches(plan, row))

    async def facet_counts(self, plan: QueryPlan, field: Field, limit: int) -> list[FacetCount]:
        plan = await resolve_related(plan, self._target)
        return facet(plan, await self._all_rows(), field, limit)

    async def describe_target(self, field: Field) -> RegisterInfo:
        """The register a reference field points to (for filters on its fields)."""
        return await self._target(field).describe()

    def _target(self, field: Field) -> RegisterSource:
        target = self._targets.get(field.target or "")
        if target is None:
            raise DataError(
                f"field {field.name!r} needs the target register {field.target!r}: pass "
                f"targets={{{field.target!r}: <source>}} to MemoryRegister"
            )
        return target

    async def archive_rows(self, plan: QueryPlan, archived: bool) -> int:
        self._writable()
        plan = await resolve_related(plan, self._target)
        now = datetime.now(UTC) if archived else None
        hits = [row for row in self._rows.values() if matches(plan, row)]
        for row in hits:
            self._rows[row.id] = replace(row, archived_at=now)
        return len(hits)

    async def update_rows(
        self, plan: QueryPlan, values: Mapping[str, Any], *, actor: Any = None
    ) -> int:
        """Change the given fields of every matching row; all or nothing."""
        self._writable()
        who = check_actor(actor)
        plan = await resolve_related(plan, self._target)
        changed = self._info.coercer.build(values, register=self.name, partial=True)
        now = datetime.now(UTC)
        hits = {
            row.id: replace(
                row,
                values=self._computed({**row.values, **changed}),
                updated_at=now,
                updated_by=who,
            )
            for row in self._rows.values()
            if matches(plan, row)
        }
        after = {**self._rows, **hits}
        for f in self._info.fields:
            if not f.unique or f.name not in changed or changed[f.name] is None:
                continue
            holders = [r.id for r in after.values() if r.values.get(f.name) == changed[f.name]]
            if len(holders) > 1:
                raise UniqueViolation(
                    f"field {f.name!r} of register {self._info.name!r} is unique and "
                    f"{show(changed[f.name], 80)} would be held by {len(holders)} rows",
                    field=f.name,
                    value=changed[f.name],
                )
        self._rows = after
        return len(hits)

    async def delete_rows(self, plan: QueryPlan) -> int:
        self._writable()
        plan = await resolve_related(plan, self._target)
        hits = [row.id for row in self._rows.values() if matches(plan, row)]
        for rid in hits:
            del self._rows[rid]
        return len(hits)

    async def fetch_targets(
        self, field: Field, ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, RowResult]:
        target = self._targets.get(field.target or "")
        if target is None:
            raise DataError(
                f"include({field.name!r}) needs the target register {field.target!r}: pass "
                f"targets={{{field.target!r}: <source>}} to MemoryRegister"
            )
        if not ids:
            return {}
        info = await target.describe()
        wanted = Condition(ID, "in", tuple(ids))
        plan = QueryPlan(info, (wanted,), (SortKey(ID, False),), None, "all", ())
        return {row.id: row for row in await target.fetch_rows(plan)}


__all__ = ["ID", "MemoryRegister", "RegisterSource"]
