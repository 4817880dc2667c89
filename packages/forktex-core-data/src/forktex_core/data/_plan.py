# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The validated :class:`QueryPlan` a ``RowQuery`` hands to its source, its parts, the
system columns, and the two ways of reading a field from a row: its whole value (what
filters compare) and its sort key (what ordering, indexes and cursors use)."""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import InvalidQuery, show
from ._fields import STRINGS, TEXT_OPS, TEXTLIKE, Field, FieldType, RowCoercer, dumps, to_json
from ._limits import SORT_CHARS
from ._results import RowResult
from ._search import PLAIN, SearchConfig, search_columns

ArchivedMode = Literal["active", "archived", "all"]


def _system(name: str, kind: FieldType) -> Field:
    f = object.__new__(Field)
    values = {
        "name": name, "type": kind, "required": False, "unique": False, "indexed": False,
        "default": None, "choices": (), "target": None, "many": False, "label": None,
        "key": "$" + name,
    }  # fmt: skip
    for attr, value in values.items():
        object.__setattr__(f, attr, value)
    return f


ID = _system("id", FieldType.REFERENCE)
SYSTEM = {
    "id": ID,
    "created_at": _system("created_at", FieldType.DATETIME),
    "updated_at": _system("updated_at", FieldType.DATETIME),
    "archived_at": _system("archived_at", FieldType.DATETIME),
}
NULLABLE_SYSTEM = frozenset({"archived_at"})


def is_system(f: Field) -> bool:
    """Whether ``f`` is a system column (``id``, ``created_at``, ...), not a stored field."""
    return f.key.startswith("$")


def nullable(f: Field) -> bool:
    """Whether ``f`` can be NULL (every stored field, and ``archived_at``)."""
    return not is_system(f) or f.name in NULLABLE_SYSTEM


@dataclass(frozen=True)
class RegisterInfo:
    """What a source tells the query layer about its register: name, fields, date field.

    Example::

        async def describe(self) -> RegisterInfo:  # a RegisterSource's description
            return RegisterInfo("products", (Field("name", "text"), Field("price", "decimal")))
    """

    name: str
    fields: tuple[Field, ...]
    date_field: str | None = None
    search_config: SearchConfig = PLAIN
    """How its text is split into searchable words."""
    register_id: uuid.UUID | None = None
    """The stored register's id (``None`` for sources that are not stored registers)."""

    @functools.cached_property
    def search_columns(self) -> tuple[tuple[str, str, bool], ...]:
        """The fields whose values are search text, in field order."""
        return search_columns(self.fields)

    @functools.cached_property
    def coercer(self) -> RowCoercer:
        """Coerces rows written to this register."""
        return RowCoercer(self.fields)

    def field(self, name: str) -> Field:
        """The field (or system column ``id`` / ``created_at`` / ``updated_at`` /
        ``archived_at``) by name."""
        for f in self.fields:
            if f.name == name:
                return f
        if name in SYSTEM:
            return SYSTEM[name]
        raise InvalidQuery(
            f"register {self.name!r} has no field {show(name)}; fields: "
            f"{', '.join(repr(f.name) for f in self.fields) or '(none)'} "
            f"and the system columns {', '.join(SYSTEM)}"
        )


@dataclass(frozen=True)
class Condition:
    """One validated filter: ``field op value`` with ``value`` already coerced.

    Example::

        plan = await RowQuery(orders).where(total__gte=100).plan()
        (cond,) = plan.conditions  # Condition(field=<total>, op="gte", value=Decimal("100"))
    """

    field: Field
    op: str
    value: Any


@dataclass(frozen=True)
class AllOf:
    """A group of filters that must all hold (an empty group always holds).

    Example::

        AllOf((Condition(total, "gte", 100), Condition(total, "lt", 200)))
    """

    items: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    """A group of filters of which one must hold (an empty group never holds).

    Example::

        AnyOf((Condition(status, "eq", "paid"), Condition(total, "gte", 100)))
    """

    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """The rows the inner filter does not select (a missing value counts as not matching
    the inner filter, so ``Not`` selects those rows).

    Example::

        Not(Condition(total, "gte", 100))  # also rows without a total
    """

    inner: Filter


@dataclass(frozen=True)
class Related:
    """The rows whose reference field ``via`` points to a row of ``target`` (for a many
    reference: to at least one) that ``inner`` selects; a row without a reference does not
    match. ``matched`` is filled by sources that evaluate in Python: the ids of the
    selected target rows.

    Example::

        Related(customer, customers_info, Condition(country, "eq", "DE"))
    """

    via: Field
    target: RegisterInfo
    inner: Filter
    matched: frozenset[uuid.UUID] | None = None


@dataclass(frozen=True)
class Referenced:
    """The rows that rows selected by ``by`` (of another stored register) point to through
    their reference field ``via``: the reverse of a link. Planned only when both registers
    are stored ones (other sources get the selected ids as an ``id in`` condition).

    Example::

        Referenced(customer_field_of_invoices, plan_of_paid_invoices)
    """

    via: Field
    by: QueryPlan


Filter = Condition | AllOf | AnyOf | Not | Related | Referenced
"""One node of a plan's filter tree."""


def leaves(filters: tuple[Filter, ...] | Filter) -> list[Condition]:
    """Every :class:`Condition` in a filter tree, in order."""
    stack: list[Filter] = list(filters) if isinstance(filters, tuple) else [filters]
    found: list[Condition] = []
    while stack:
        node = stack.pop(0)
        if isinstance(node, Condition):
            found.append(node)
        elif isinstance(node, (Related, Referenced)):
            continue  # its conditions are on another register's fields
        elif isinstance(node, Not):
            stack.insert(0, node.inner)
        else:
            stack[0:0] = node.items
    return found


@dataclass(frozen=True)
class SortKey:
    """One ``ORDER BY`` key. NULL sorts as the largest value (last ascending, first
    descending), as Postgres does, so one index serves both directions. Text-like fields
    sort by their first ``SORT_CHARS`` characters (see :func:`sort_value`).

    Example::

        plan = await RowQuery(orders).order_by("-placed_at").plan()
        (key,) = plan.sort  # SortKey(field=<placed_at>, descending=True)
    """

    field: Field
    descending: bool
    via: Field | None = None
    """For a sort on a linked row's field (``customer.name``): the reference field, and
    ``field`` is the linked register's; a row without a link sorts as NULL."""
    target: RegisterInfo | None = None
    """The linked register (with ``via``)."""

    @property
    def label(self) -> str:
        """``name`` or ``reference.name``."""
        return self.field.name if self.via is None else f"{self.via.name}.{self.field.name}"


@dataclass(frozen=True)
class QueryPlan:
    """A validated query: what a :class:`RegisterSource` executes.

    Example::

        plan = await RowQuery(orders).where(status="paid").order_by("-total").plan()
        rows = await source.fetch_rows(plan, limit=50)
    """

    info: RegisterInfo
    conditions: tuple[Filter, ...]
    """ANDed filters: :class:`Condition` leaves, or :class:`AnyOf` / :class:`AllOf` /
    :class:`Not` groups of them."""
    sort: tuple[SortKey, ...]
    search: str | None
    archived: ArchivedMode
    includes: tuple[Field, ...]

    @functools.cached_property
    def _fingerprint(self) -> str:
        parts = [
            self.info.name,
            [_encode_filter(c) for c in self.conditions],
            [[k.label, k.descending] for k in self.sort],
            self.search,
            self.archived,
        ]
        return hashlib.sha256(dumps(parts).encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """A short hash of what selects rows (filters, search, archive mode, sort)."""
        return self._fingerprint


def _encode_filter(node: Filter) -> Any:
    if isinstance(node, Condition):
        return [node.field.name, node.op, _encode_value(node.field, node.op, node.value)]
    if isinstance(node, Not):
        return ["not", _encode_filter(node.inner)]
    if isinstance(node, Related):
        return ["via", node.via.name, _encode_filter(node.inner)]
    if isinstance(node, Referenced):
        return ["by", node.by.info.name, node.via.name, node.by.fingerprint()]
    kind = "any" if isinstance(node, AnyOf) else "all"
    return [kind, [_encode_filter(item) for item in node.items]]


def _encode_value(f: Field, op: str, value: Any) -> Any:
    if op == "is_null":
        return value
    if op in ("in", "between"):
        return [to_json(f, v) for v in value]
    if op in ("contains", "not_contains") and f.kind is FieldType.JSON:
        return value
    if op in TEXT_OPS and f.kind in TEXTLIKE:
        return value
    return to_json(f, value)


def field_value(row: RowResult, f: Field) -> Any:
    """The whole value of ``f`` on a row (system columns included): what filters compare."""
    if f is ID:
        return row.id
    if is_system(f):
        return getattr(row, f.name)
    return row.values.get(f.name)


def bounded(f: Field, value: Any) -> Any:
    """The sort key of a value of ``f``: text-like values cut to ``SORT_CHARS``
    characters (so sort keys, index entries and cursors stay small), others unchanged."""
    if f.kind in STRINGS and isinstance(value, str) and len(value) > SORT_CHARS:
        return value[:SORT_CHARS]
    return value


def sort_value(row: RowResult, f: Field) -> Any:
    """The sort key of ``f`` on a row (what ordering compares and cursors hold):
    :func:`field_value`, text-like values cut to ``SORT_CHARS`` characters, a
    single_select value as its :func:`rank`."""
    value = field_value(row, f)
    return rank(f, value) if ranked(f) else bounded(f, value)


def key_value(row: RowResult, key: SortKey) -> Any:
    """The sort key of ``key`` on a row (:func:`sort_value`); for a linked key, of the
    linked row the query included (``row.included[via]``), NULL without one."""
    if key.via is None:
        return sort_value(row, key.field)
    linked = row.included.get(key.via.name)
    if linked is None:
        return None
    return sort_value(linked, key.field)


def ranked(f: Field) -> bool:
    """Whether ``f`` sorts by the rank of its value rather than the value: a single_select
    sorts in the order of its choices."""
    return f.kind is FieldType.SINGLE_SELECT and not is_system(f)


@functools.lru_cache(maxsize=256)
def _ranks(choices: tuple[str, ...]) -> dict[str, int]:
    return {choice: i + 1 for i, choice in enumerate(choices)}


def rank(f: Field, value: Any) -> Any:
    """What ordering compares for a sort key ``value`` of ``f``: the 1-based position of a
    single_select value among the choices (as Postgres's ``array_position``), the value
    itself for other fields; None stays None (the largest)."""
    if value is None or not ranked(f):
        return value
    return _ranks(f.choices).get(value)
