# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What PostgreSQL (through asyncpg) accepts for a column, checked before anything is sent.

A :class:`ColumnLimits` is derived once per column from its SQLAlchemy type and indexes;
:meth:`ColumnLimits.check` raises :class:`Rejected` naming the limit a value breaks, which
the repository turns into :class:`InvalidFilter` (filters, cursors) or
:class:`InvalidValue` (writes). Covered: integer width, ``numeric(p, s)`` and PostgreSQL's
numeric digits, ``real`` range, text that PostgreSQL cannot store (NUL, lone surrogates),
``varchar(n)`` length and the B-tree index row size for writes, timezone-aware datetimes
whose UTC conversion leaves Python's years 1..9999, and enum members.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import functools
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Enum, Float, Integer, Numeric, SmallInteger, String
from sqlalchemy.sql.schema import Column

# PostgreSQL's B-tree index tuples hold at most 2704 bytes (8 kB pages); stay under it.
INDEX_TEXT_BYTES = 2700
# asyncpg / the PostgreSQL protocol allow 32767 bound parameters per statement.
MAX_BOUND_VALUES = 30_000
_PG_NUMERIC_DIGITS = 131_072
_PG_NUMERIC_SCALE = 16_383
_REAL_MAX = 3.4028234663852886e38

_INT_RANGES: tuple[tuple[type[Any], str, int], ...] = (
    (SmallInteger, "smallint", 15),
    (BigInteger, "bigint", 63),
    (Integer, "integer", 31),
)


class Rejected(Exception):
    """A value that does not fit its column (the message says which limit)."""


@dataclass(frozen=True)
class ColumnLimits:
    """The limits PostgreSQL puts on one column's values."""

    name: str
    int_bits: int | None = None
    int_type: str = ""
    integer_digits: int | None = None
    scale: int | None = None
    real: bool = False
    max_length: int | None = None
    indexed: bool = False
    enum_values: tuple[Any, ...] | None = None

    def check(self, value: Any, *, write: bool) -> None:
        """Raise :class:`Rejected` if ``value`` cannot be sent for this column.

        ``write``: the value will be stored (length and index-size limits apply), not only
        compared.
        """
        if value is None:
            return
        if self.enum_values is not None:
            if not any(
                value is v or (type(value) is type(v) and value == v) for v in self.enum_values
            ):
                shown = ", ".join(v for v in self.enum_values if isinstance(v, str))
                raise Rejected(f"{_short(value)} is not one of the allowed values ({shown})")
            return
        if isinstance(value, str) and not isinstance(value, enum.Enum):
            self._check_text(value, write=write)
        elif isinstance(value, bool):
            return
        elif isinstance(value, int):
            self._check_int(value)
        elif isinstance(value, float):
            if self.real and value == value and abs(value) > _REAL_MAX:
                raise Rejected(f"{value!r} is outside the range of real (float4, ±3.4e38)")
        elif isinstance(value, decimal.Decimal):
            self._check_decimal(value)
        elif isinstance(value, dt.datetime):
            _check_datetime(value)

    def _check_text(self, value: str, *, write: bool) -> None:
        if "\x00" in value:
            raise Rejected("text contains a NUL character (\\x00), which PostgreSQL cannot store")
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(
                "text contains a lone surrogate (U+D800..U+DFFF), which is not valid UTF-8"
            ) from None
        if not write:
            return
        if self.max_length is not None and len(value) > self.max_length:
            raise Rejected(
                f"text of {len(value)} characters is longer than the column allows "
                f"(varchar({self.max_length}))"
            )
        if self.indexed and len(encoded) > INDEX_TEXT_BYTES:
            raise Rejected(
                f"text of {len(encoded)} bytes is too long for an indexed column (at most "
                f"{INDEX_TEXT_BYTES} bytes: PostgreSQL's B-tree index row limit)"
            )

    def _check_int(self, value: int) -> None:
        if self.int_bits is not None:
            low, high = -(1 << self.int_bits), (1 << self.int_bits) - 1
            if not low <= value <= high:
                raise Rejected(
                    f"{_short(value)} is out of range for {self.int_type} ({low}..{high})"
                )
            return
        python_digits = sys.get_int_max_str_digits()
        if python_digits and abs(value) >= _pow10(python_digits):
            # asyncpg cannot encode it (nor even describe it in its error message).
            raise Rejected(
                f"{_short(value)} has more than {python_digits} digits, more than Python "
                "converts to text (sys.get_int_max_str_digits()), so it cannot be sent"
            )
        limit = self._integer_digit_limit()
        if abs(value) >= _pow10(limit):
            raise Rejected(f"{_short(value)} has more than {limit} integer digits; {self._where()}")

    def _integer_digit_limit(self) -> int:
        return self.integer_digits if self.integer_digits is not None else _PG_NUMERIC_DIGITS

    def _where(self) -> str:
        if self.integer_digits is not None:
            return f"the column allows {self.integer_digits} (numeric precision - scale)"
        return f"PostgreSQL numeric allows {_PG_NUMERIC_DIGITS}"

    def _check_decimal(self, value: decimal.Decimal) -> None:
        if not value.is_finite():
            raise Rejected(f"{value} is not a finite number")
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        integer_digits = max(len(digits) + exponent, 0)
        limit = self._integer_digit_limit()
        if integer_digits > limit:
            raise Rejected(f"{_short(value)} has {integer_digits} integer digits; {self._where()}")
        if self.scale is None and -exponent > _PG_NUMERIC_SCALE:
            raise Rejected(
                f"{_short(value)} has {-exponent} decimal places; PostgreSQL numeric allows "
                f"{_PG_NUMERIC_SCALE}"
            )


@functools.lru_cache(maxsize=64)
def _pow10(digits: int) -> int:
    power: int = 10**digits
    return power


def _short(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _check_datetime(value: dt.datetime) -> None:
    if value.tzinfo is None:
        return
    try:
        value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise Rejected(
            f"{value.isoformat()} is outside years 1..9999 once converted to UTC (timestamps "
            "are sent in UTC)"
        ) from None


def limits_for(column: Column[Any], indexed: bool) -> ColumnLimits:
    """The :class:`ColumnLimits` of a table column."""
    kind = column.type
    name = column.key or column.name
    for base, label, bits in _INT_RANGES:
        if isinstance(kind, base):
            return ColumnLimits(name, int_bits=bits, int_type=label)
    if isinstance(kind, Float):
        precision = getattr(kind, "precision", None)
        return ColumnLimits(name, real=precision is not None and precision <= 24)
    if isinstance(kind, Numeric):
        precision, scale = kind.precision, kind.scale
        if precision is not None:
            return ColumnLimits(name, integer_digits=precision - (scale or 0), scale=scale or 0)
        return ColumnLimits(name)
    if isinstance(kind, Enum):
        members: list[Any] = list(kind.enums)
        if kind.enum_class is not None:
            members.extend(kind.enum_class)
        return ColumnLimits(name, enum_values=tuple(members))
    if isinstance(kind, String):
        return ColumnLimits(name, max_length=kind.length, indexed=indexed)
    return ColumnLimits(name, indexed=indexed)


def indexed_columns(table: Any) -> set[str]:
    """Names of the columns of ``table`` that are part of an index or unique constraint."""
    names: set[str] = set()
    for index in getattr(table, "indexes", ()):
        names.update(c.name for c in index.columns)
    for constraint in getattr(table, "constraints", ()):
        columns = getattr(constraint, "columns", None)
        if columns is not None and type(constraint).__name__ in (
            "UniqueConstraint",
            "PrimaryKeyConstraint",
        ):
            names.update(c.name for c in columns)
    for col in getattr(table, "columns", ()):
        if col.index or col.unique or col.primary_key:
            names.add(col.name)
    return names
