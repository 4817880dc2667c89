# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The ``filters=`` / ``sort=`` syntax of ``Repository``, compiled once per model and key.

``{"field": v}`` means equality; ``{"field__op": v}`` applies an operator. Values only ever
reach SQL as bound parameters.
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

from ._errors import InvalidArgument, InvalidFilter, InvalidSort

OPERATORS: tuple[str, ...] = (
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in",
    "like", "ilike", "is_null", "between",
)  # fmt: skip
_OPS_TEXT = ", ".join(OPERATORS)


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
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _Bad("a number")


def _coerce_decimal(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            result = decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            pass
        else:
            if result.is_finite():
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


def _coercer_for(python_type: type | None) -> Callable[[Any], Any]:
    if python_type is None:
        return _passthrough
    if issubclass(python_type, enum.Enum):
        return _passthrough
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

    def value(self, raw: Any, what: str) -> Any:
        try:
            return self.coerce(raw)
        except _Bad as exc:
            raise InvalidFilter(
                f"{what}: {raw!r} is not {exc.args[0]} (column {self.name!r})"
            ) from None


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
    def _parse_key(self, key: str) -> tuple[Field, str]:
        cached = self._parsed.get(key)
        if cached is not None:
            return cached
        if not isinstance(key, str):
            raise InvalidFilter(f"filter keys must be strings like 'amount__gte', got {key!r}")
        name, op = key, "eq"
        if "__" in key and key not in self.fields:
            name, _, op = key.rpartition("__")
            if op not in OPERATORS:
                if name in self.fields:
                    raise InvalidFilter(
                        f"unknown filter operator {op!r} in {key!r}; allowed operators: {_OPS_TEXT}"
                    )
                name, op = key, "eq"
        if name not in self.filterable:
            raise InvalidFilter(
                f"unknown filter field {name!r} in {key!r} for {self.model.__name__}; allowed "
                f"fields: {', '.join(sorted(self.filterable))} (operators as 'field__op': "
                f"{_OPS_TEXT})"
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
        return [self._criterion(key, value) for key, value in filters.items()]

    def _criterion(self, key: str, value: Any) -> ColumnElement[bool]:
        fld, op = self._parse_key(key)
        col = fld.attr
        what = f"filter {key!r}"
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
                    f"{what}: expects a list, tuple or set of values, got {value!r}"
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
                    f"{what}: expects a pattern string ('%' any run, '_' one char), got {value!r}"
                )
            result = col.like(value) if op == "like" else col.ilike(value)
        elif op == "is_null":
            if not isinstance(value, bool):
                raise InvalidFilter(f"{what}: expects True or False, got {value!r}")
            result = col.is_(None) if value else col.is_not(None)
        else:  # between
            if (
                isinstance(value, (str, bytes, Mapping))
                or not isinstance(value, Sequence)
                or len(value) != 2
            ):
                raise InvalidFilter(
                    f"{what}: expects a [low, high] pair (inclusive), got {value!r}"
                )
            if value[0] is None or value[1] is None:
                raise InvalidFilter(f"{what}: bounds cannot be None, got {value!r}")
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
            sort = tuple(s.strip() for s in sort.split(",") if s.strip())
        elif not isinstance(sort, Sequence) or not all(isinstance(s, str) for s in sort):
            raise InvalidSort(
                f"sort must be a list of field names like ['-created_at', 'name'], got {sort!r}"
            )
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
                    f"cannot sort {self.model.__name__} on {spec!r}; sortable fields: "
                    f"{', '.join(sorted(self.sortable))} (prefix '-' for descending)"
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


_cache: dict[tuple[type[Any], frozenset[str] | None, frozenset[str] | None], ModelInfo] = {}


def model_info(
    model: Any,
    filter_fields: Collection[str] | None = None,
    sort_fields: Collection[str] | None = None,
) -> ModelInfo:
    """The (cached) :class:`ModelInfo` of a mapped class, or InvalidArgument."""
    ff = None if filter_fields is None else frozenset(filter_fields)
    sf = None if sort_fields is None else frozenset(sort_fields)
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
            f"__tablename__), got {model!r}"
        )
    fields: dict[str, Field] = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        try:
            python_type: type | None = column.type.python_type
        except NotImplementedError:
            python_type = None
        fields[prop.key] = Field(
            prop.key, getattr(model, prop.key), _coercer_for(python_type), bool(column.nullable)
        )
    if len(mapper.primary_key) != 1:
        raise InvalidArgument(
            f"Repository needs a single-column primary key; {model.__name__} has "
            f"{len(mapper.primary_key)} primary key columns"
        )
    pk_prop = mapper.get_property_by_column(mapper.primary_key[0])
    for label, chosen in (("filter_fields", ff), ("sort_fields", sf)):
        unknown = sorted((chosen or frozenset()) - fields.keys())
        if unknown:
            raise InvalidArgument(
                f"{label} names unknown columns {unknown} of {model.__name__}; columns: "
                f"{', '.join(sorted(fields))}"
            )
    info = ModelInfo(
        model=model,
        mapper=mapper,
        fields=fields,
        pk=fields[pk_prop.key],
        attribute_names=frozenset(mapper.attrs.keys()),
        filterable=ff if ff is not None else frozenset(fields),
        sortable=sf if sf is not None else frozenset(fields),
    )
    _cache[(model, ff, sf)] = info
    return info
