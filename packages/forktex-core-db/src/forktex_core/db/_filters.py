# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The ``filters=`` / ``sort=`` syntax of ``Repository``, compiled once per model and key.

``{"field": v}`` means equality; ``{"field__op": v}`` applies an operator. Values only ever
reach SQL as bound parameters, and are checked against the column's limits first
(``_values``). Only allow-listed fields can be filtered and sorted on (see
:func:`model_info`); an error never tells a field that exists but is not allowed apart from
one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, false, inspect, or_
from sqlalchemy.exc import NoInspectionAvailable
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ColumnElement

from ._errors import InvalidArgument, InvalidFilter, InvalidSort, InvalidValue
from ._values import MAX_BOUND_VALUES, ColumnLimits, Rejected, indexed_columns, limits_for

OPERATORS: tuple[str, ...] = (
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in",
    "like", "ilike", "is_null", "between",
)  # fmt: skip
_OPS_TEXT = ", ".join(OPERATORS)
ALL_FIELDS = "__all__"
MAX_CONDITIONS = 200
MAX_SORT_KEYS = 16


def shown(value: Any) -> str:
    """``repr(value)``, cut short (error messages must stay readable)."""
    try:
        text = repr(value) if not isinstance(value, int) or value.bit_length() < 256 else "<int>"
    except (ValueError, RecursionError):  # a huge int inside, or deep nesting
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


class _Bad(Exception):
    """A value that does not fit a column (turned into InvalidFilter / InvalidCursor)."""


def _coerce_uuid(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise _Bad("a UUID")


def _coerce_int(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _Bad("an integer")


def _coerce_float(value: Any) -> Any:
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            return float(value)
    except (ValueError, OverflowError):
        pass
    raise _Bad("a number (within float range)")


def _coerce_decimal(value: Any) -> Any:
    result: decimal.Decimal | None = None
    if isinstance(value, decimal.Decimal):
        result = value
    elif isinstance(value, bool):
        result = None
    elif isinstance(value, int):
        result = decimal.Decimal(value)
    elif isinstance(value, (float, str)):
        try:
            result = decimal.Decimal(repr(value) if isinstance(value, float) else value)
        except (decimal.InvalidOperation, ValueError):
            result = None
    if result is not None and result.is_finite():
        return result
    raise _Bad("a decimal number")


def _coerce_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _Bad("true or false")


def _coerce_datetime(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    raise _Bad("a datetime (datetime or ISO 8601 string)")


def _coerce_date(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _Bad("a date (date or 'YYYY-MM-DD')")


def _coerce_str(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, enum.Enum):
        return value
    raise _Bad("a string")


def _passthrough(value: Any) -> Any:
    return value


def _enum_coercer(enum_class: type[enum.Enum]) -> Callable[[Any], Any]:
    def coerce(value: Any) -> Any:
        if isinstance(value, enum_class):
            return value
        if isinstance(value, str):
            member = enum_class.__members__.get(value)
            if member is not None:
                return member
        raise _Bad(f"one of {', '.join(enum_class.__members__)}")

    return coerce


def _coercer_for(python_type: type | None) -> Callable[[Any], Any]:
    if python_type is None:
        return _passthrough
    if issubclass(python_type, enum.Enum):
        return _enum_coercer(python_type)
    for base, fn in (
        (bool, _coerce_bool),
        (uuid.UUID, _coerce_uuid),
        (dt.datetime, _coerce_datetime),
        (dt.date, _coerce_date),
        (decimal.Decimal, _coerce_decimal),
        (int, _coerce_int),
        (float, _coerce_float),
        (str, _coerce_str),
    ):
        if issubclass(python_type, base):
            return fn
    return _passthrough


@dataclass(frozen=True)
class Field:
    """One column of a model as the repository sees it."""

    name: str
    attr: Any  # InstrumentedAttribute
    coerce: Callable[[Any], Any]
    nullable: bool
    limits: ColumnLimits

    @property
    def queryable(self) -> bool:
        """Whether filters / sorts on it make sense (a scalar type we can check)."""
        return self.coerce is not _passthrough

    def value(self, raw: Any, what: str) -> Any:
        """``raw`` (a filter or cursor value) converted for this column, or InvalidFilter."""
        try:
            value = self.coerce(raw)
            self.limits.check(value, write=False)
        except _Bad as exc:
            raise InvalidFilter(
                f"{what}: {shown(raw)} is not {exc.args[0]} (field {self.name!r})"
            ) from None
        except Rejected as exc:
            raise InvalidFilter(f"{what}: {exc} (field {self.name!r})") from None
        return value

    def check_write(self, value: Any, what: str) -> None:
        """Raise InvalidValue if ``value`` cannot be stored in this column."""
        try:
            self.limits.check(value, write=True)
        except Rejected as exc:
            raise InvalidValue(f"{what}: field {self.name!r}: {exc}") from None


@dataclass(frozen=True)
class SortKey:
    field: Field
    desc: bool

    def order_by(self) -> Any:
        column = self.field.attr
        if self.desc:
            return column.desc().nulls_last() if self.field.nullable else column.desc()
        return column.asc().nulls_last() if self.field.nullable else column.asc()

    @property
    def spec(self) -> str:
        return ("-" if self.desc else "") + self.field.name


@dataclass
class ModelInfo:
    """What a Repository needs to know about a model, computed once per model."""

    model: type[Any]
    mapper: Mapper[Any]
    fields: dict[str, Field]
    pk: Field
    attribute_names: frozenset[str]
    filterable: frozenset[str]
    sortable: frozenset[str]
    _parsed: dict[str, tuple[Field, str]] = field(default_factory=dict)
    _sorts: dict[tuple[str, ...], tuple[SortKey, ...]] = field(default_factory=dict)

    # -- filters -----------------------------------------------------------------------
    def _unknown_field(self, key: str) -> InvalidFilter:
        allowed = ", ".join(sorted(self.filterable)) or "none"
        return InvalidFilter(
            f"unknown filter field in {shown(key)} for {self.model.__name__}; filterable "
            f"fields: {allowed} (operators as 'field__op': {_OPS_TEXT}). Fields are filterable "
            "only when declared: filter_fields on the repository or __filter_fields__ on the "
            "model"
        )

    def _parse_key(self, key: str) -> tuple[Field, str]:
        if not isinstance(key, str):
            raise InvalidFilter(f"filter keys must be strings like 'amount__gte', got {shown(key)}")
        cached = self._parsed.get(key)
        if cached is not None:
            return cached
        name, op = key, "eq"
        if key not in self.filterable:
            name, sep, op = key.rpartition("__")
            if not sep or name not in self.filterable:
                # Same answer whether or not such a column exists: no oracle on hidden columns.
                raise self._unknown_field(key)
            if op not in OPERATORS:
                raise InvalidFilter(
                    f"unknown filter operator {shown(op)} in {shown(key)}; allowed operators: "
                    f"{_OPS_TEXT}"
                )
        parsed = (self.fields[name], op)
        if len(self._parsed) < 4096:
            self._parsed[key] = parsed
        return parsed

    def where(self, filters: Mapping[str, Any] | None) -> list[ColumnElement[bool]]:
        """Compile ``filters`` into WHERE criteria (bound parameters only)."""
        if filters is None:
            return []
        if not isinstance(filters, Mapping):
            raise InvalidFilter(
                f"filters must be a mapping like {{'status': 'paid', 'amount__gte': 100}}, "
                f"got {type(filters).__name__}"
            )
        if len(filters) > MAX_CONDITIONS:
            raise InvalidFilter(
                f"filters hold {len(filters)} conditions; at most {MAX_CONDITIONS} are allowed"
            )
        bound = 0
        criteria: list[ColumnElement[bool]] = []
        for key, value in filters.items():
            criteria.append(self._criterion(key, value))
            bound += (
                len(value) if isinstance(value, Collection) and not isinstance(value, str) else 1
            )
            if bound > MAX_BOUND_VALUES:
                raise InvalidFilter(
                    f"filter {shown(key)}: the filters hold more than {MAX_BOUND_VALUES} values "
                    f"(PostgreSQL takes at most 32767 parameters per statement); use fewer or "
                    "shorter 'in' lists"
                )
        return criteria

    def _criterion(self, key: str, value: Any) -> ColumnElement[bool]:
        fld, op = self._parse_key(key)
        col = fld.attr
        what = f"filter {shown(key)}"
        result: Any
        if op == "eq":
            result = col.is_(None) if value is None else col == fld.value(value, what)
        elif op == "ne":
            if value is None:
                result = col.is_not(None)
            elif fld.nullable:
                result = col.is_distinct_from(fld.value(value, what))
            else:
                result = col != fld.value(value, what)
        elif op in ("lt", "lte", "gt", "gte"):
            if value is None:
                raise InvalidFilter(f"{what}: None cannot be compared; use '{fld.name}__is_null'")
            v = fld.value(value, what)
            result = {"lt": col < v, "lte": col <= v, "gt": col > v, "gte": col >= v}[op]
        elif op in ("in", "not_in"):
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Collection):
                raise InvalidFilter(
                    f"{what}: expects a list, tuple or set of values, got {shown(value)}"
                )
            if len(value) > MAX_BOUND_VALUES:
                raise InvalidFilter(
                    f"{what}: {len(value)} values; an 'in' list holds at most "
                    f"{MAX_BOUND_VALUES} (PostgreSQL takes at most 32767 parameters per statement)"
                )
            values = [fld.value(v, what) for v in value]
            if op == "in":
                result = col.in_(values)
            else:
                result = col.not_in(values)
                if fld.nullable:
                    result = or_(result, col.is_(None))
        elif op in ("like", "ilike"):
            if not isinstance(value, str):
                raise InvalidFilter(
                    f"{what}: expects a pattern string ('%' any run, '_' one char), got "
                    f"{shown(value)}"
                )
            if fld.coerce is not _coerce_str or fld.limits.enum_values is not None:
                raise InvalidFilter(f"{what}: '{op}' applies to text fields only")
            value = fld.value(value, what)
            result = col.like(value) if op == "like" else col.ilike(value)
        elif op == "is_null":
            if not isinstance(value, bool):
                raise InvalidFilter(f"{what}: expects True or False, got {shown(value)}")
            result = col.is_(None) if value else col.is_not(None)
        else:  # between
            if (
                isinstance(value, (str, bytes, Mapping))
                or not isinstance(value, Sequence)
                or len(value) != 2
            ):
                raise InvalidFilter(
                    f"{what}: expects a [low, high] pair (inclusive), got {shown(value)}"
                )
            if value[0] is None or value[1] is None:
                raise InvalidFilter(f"{what}: bounds cannot be None, got {shown(value)}")
            low, high = (fld.value(v, what) for v in value)
            result = col.between(low, high)
        criterion: ColumnElement[bool] = result
        return criterion

    # -- sort --------------------------------------------------------------------------
    def sort_keys(self, sort: Sequence[str] | str | None) -> tuple[SortKey, ...]:
        """Parse ``sort`` ("-field" descending) and append the primary key as tie-break."""
        if sort is None:
            sort = ()
        if isinstance(sort, str):
            sort = tuple(s.strip() for s in sort.split(",", MAX_SORT_KEYS + 1) if s.strip())
        elif not isinstance(sort, Sequence) or not all(isinstance(s, str) for s in sort):
            raise InvalidSort(
                "sort must be a list of field names like ['-created_at', 'name'], got "
                f"{shown(sort)}"
            )
        if len(sort) > MAX_SORT_KEYS:
            raise InvalidSort(f"sort names {len(sort)} fields; at most {MAX_SORT_KEYS}")
        key = tuple(sort)
        cached = self._sorts.get(key)
        if cached is not None:
            return cached
        keys: list[SortKey] = []
        seen: set[str] = set()
        for spec in key:
            desc = spec.startswith("-")
            name = spec[1:] if spec[:1] in "-+" and spec else spec
            if name not in self.sortable:
                raise InvalidSort(
                    f"cannot sort {self.model.__name__} on {shown(spec)}; sortable fields: "
                    f"{', '.join(sorted(self.sortable)) or 'none'} (prefix '-' for "
                    "descending). Fields are sortable only when declared: sort_fields on the "
                    "repository or __sort_fields__ on the model"
                )
            if name in seen:
                raise InvalidSort(f"field {name!r} appears twice in sort {list(key)!r}")
            seen.add(name)
            keys.append(SortKey(self.fields[name], desc))
        if self.pk.name not in seen:
            keys.append(SortKey(self.pk, keys[-1].desc if keys else False))
        result = tuple(keys)
        if len(self._sorts) < 1024:
            self._sorts[key] = result
        return result


def keyset_after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys`` (NULLs sort last)."""
    if all(not k.field.nullable for k in keys) and len({k.desc for k in keys}) == 1:
        from sqlalchemy import tuple_

        left = tuple_(*(k.field.attr for k in keys))
        right = tuple_(*values)
        single: ColumnElement[bool] = left < right if keys[0].desc else left > right
        return single
    branches: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        col = key.field.attr
        if value is None:
            after: ColumnElement[bool] = false()
            same: ColumnElement[bool] = col.is_(None)
        else:
            after = col < value if key.desc else col > value
            if key.field.nullable:
                after = or_(after, col.is_(None))
            same = col == value
        branches.append(and_(*equal, after) if equal else after)
        equal.append(same)
    return or_(*branches)


FieldSpec = Collection[str] | str | None
_cache: dict[tuple[type[Any], Any, Any], ModelInfo] = {}


def _frozen(spec: Any, label: str) -> frozenset[str] | str | None:
    if spec is None or spec == ALL_FIELDS:
        return spec  # type: ignore[no-any-return]
    if isinstance(spec, str) or not isinstance(spec, Collection):
        raise InvalidArgument(
            f"{label} must be a tuple of field names or {ALL_FIELDS!r}, got {shown(spec)}"
        )
    if not all(isinstance(name, str) for name in spec):
        raise InvalidArgument(f"{label} must hold field names (strings), got {shown(spec)}")
    return frozenset(spec)


def _allowed(
    model: type[Any],
    fields: dict[str, Field],
    pk: str,
    spec: frozenset[str] | str | None,
    label: str,
) -> frozenset[str]:
    """The fields callers may name: the declared ones; every queryable column for
    ``"__all__"``; only the primary key when nothing is declared."""
    dunder = f"__{label}__"
    if spec is None:
        spec = _frozen(getattr(model, dunder, None), f"{model.__name__}.{dunder}")
    if spec is None:
        return frozenset({pk})
    if spec == ALL_FIELDS:
        return frozenset(name for name, f in fields.items() if f.queryable)
    assert isinstance(spec, frozenset)
    unknown = sorted(spec - fields.keys())
    if unknown:
        raise InvalidArgument(
            f"{label} names unknown columns {unknown} of {model.__name__}; columns: "
            f"{', '.join(sorted(fields))}"
        )
    opaque = sorted(name for name in spec if not fields[name].queryable)
    if opaque:
        raise InvalidArgument(
            f"{label}: {opaque} of {model.__name__} have a type that cannot be filtered or "
            "sorted on safely (JSON, arrays, binary, custom types)"
        )
    return spec


def model_info(
    model: Any, filter_fields: FieldSpec = None, sort_fields: FieldSpec = None
) -> ModelInfo:
    """The (cached) :class:`ModelInfo` of a mapped class, or InvalidArgument.

    ``filter_fields`` / ``sort_fields``: field names, ``"__all__"``, or ``None`` (use the
    model's ``__filter_fields__`` / ``__sort_fields__``; without those only the primary key).
    """
    ff = _frozen(filter_fields, "filter_fields")
    sf = _frozen(sort_fields, "sort_fields")
    try:
        return _cache[(model, ff, sf)]
    except (KeyError, TypeError):
        pass
    try:
        mapper = inspect(model) if isinstance(model, type) else None
    except NoInspectionAvailable:
        mapper = None
    if not isinstance(mapper, Mapper):
        raise InvalidArgument(
            f"model must be a mapped SQLAlchemy class (e.g. a BaseDBModel subclass with a "
            f"__tablename__), got {shown(model)}"
        )
    indexed: set[str] = set()
    for table in mapper.tables:
        indexed |= indexed_columns(table)
    fields: dict[str, Field] = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        try:
            python_type: type | None = column.type.python_type
        except NotImplementedError:
            python_type = None
        fields[prop.key] = Field(
            prop.key,
            getattr(model, prop.key),
            _coercer_for(python_type),
            bool(column.nullable),
            limits_for(column, column.name in indexed),
        )
    if len(mapper.primary_key) != 1:
        raise InvalidArgument(
            f"Repository needs a single-column primary key; {model.__name__} has "
            f"{len(mapper.primary_key)} primary key columns"
        )
    pk_name = mapper.get_property_by_column(mapper.primary_key[0]).key
    info = ModelInfo(
        model=model,
        mapper=mapper,
        fields=fields,
        pk=fields[pk_name],
        attribute_names=frozenset(mapper.attrs.keys()),
        filterable=_allowed(model, fields, pk_name, ff, "filter_fields"),
        sortable=_allowed(model, fields, pk_name, sf, "sort_fields"),
    )
    _cache[(model, ff, sf)] = info
    return info
