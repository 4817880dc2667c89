# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Field types, field definitions and per-type coercion (Python value <-> stored JSON)."""

from __future__ import annotations

import enum
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from ._errors import InvalidDefinition, InvalidValue, show
from ._limits import (
    INT_MAX,
    INT_MIN,
    MAX_DECIMAL_EXPONENT,
    MAX_JSON_DEPTH,
    MAX_JSON_INT_DIGITS,
    MAX_NAME,
    MAX_UNIQUE_BYTES,
)

SYSTEM_FIELDS = ("id", "created_at", "updated_at", "archived_at")
_KEY = re.compile(r"^f[0-9]{1,9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_INT_TEXT = re.compile(r"^[+-]?[0-9]+$")
_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}


class FieldType(enum.StrEnum):
    """The type of a field. Strings work wherever a ``FieldType`` is expected.

    Example::

        Field("amount", FieldType.DECIMAL)  # same as Field("amount", "decimal")
    """

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    EMAIL = "email"
    URL = "url"
    SINGLE_SELECT = "single_select"
    MULTI_SELECT = "multi_select"
    JSON = "json"
    REFERENCE = "reference"


TEXTLIKE = frozenset({FieldType.TEXT, FieldType.EMAIL, FieldType.URL})
STRINGS = TEXTLIKE | {FieldType.SINGLE_SELECT}
NUMERIC = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
TEMPORAL = frozenset({FieldType.DATE, FieldType.DATETIME})
SELECTS = frozenset({FieldType.SINGLE_SELECT, FieldType.MULTI_SELECT})
FORMULA_TYPES = (
    FieldType.INTEGER, FieldType.DECIMAL, FieldType.TEXT, FieldType.EMAIL, FieldType.URL,
    FieldType.BOOLEAN, FieldType.DATE, FieldType.DATETIME,
)  # fmt: skip
"""The types a stored formula field can have (what a formula's result converts to)."""

_ORDERED = frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "between", "is_null"})
TEXT_OPS = frozenset({"contains", "icontains", "not_contains", "not_icontains", "starts_with"})
"""Operators that take a piece of text on a text-like field."""
_OPERATORS: dict[FieldType, frozenset[str]] = {
    **{t: _ORDERED | TEXT_OPS for t in TEXTLIKE},
    **{t: _ORDERED for t in NUMERIC},
    **{t: _ORDERED | {"during"} for t in TEMPORAL},
    FieldType.BOOLEAN: frozenset({"eq", "ne", "is_null"}),
    FieldType.SINGLE_SELECT: frozenset({"eq", "ne", "in", "is_null"}),
    FieldType.MULTI_SELECT: frozenset({"eq", "contains", "not_contains", "is_null"}),
    FieldType.JSON: frozenset({"eq", "contains", "not_contains", "is_null"}),
}
_REF_ONE_OPS = frozenset({"eq", "ne", "in", "is_null"})
_REF_MANY_OPS = frozenset({"contains", "not_contains", "is_null"})

OPERATORS = (
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "between", "contains", "icontains",
    "not_contains", "not_icontains", "starts_with", "is_null", "during",
)  # fmt: skip
"""Every operator name ``RowQuery.where`` understands (``field__op=value``)."""


_SIMPLE_LOWER = {"\u0130": "i"}  # the one letter whose full lower case is two characters


def fold(text: str) -> str:
    """``text`` in lower case, letter by letter (Unicode simple case mapping, as Postgres's
    ``lower()`` in a UTF-8 database): what ``icontains`` compares.

    Example::

        fold("ÄRGER Straße")  # 'ärger straße'
    """
    if text.isascii():
        return text.lower()
    return "".join(_SIMPLE_LOWER.get(c) or c.lower() for c in text)


def check_actor(actor: Any) -> str | None:
    """The ``actor=`` of a write as stored in ``created_by`` / ``updated_by``: ``None``, a
    UUID (as text) or text of 1-200 characters; InvalidValue otherwise.

    Example::

        check_actor(user_id)  # '3f2c...'
    """
    if actor is None:
        return None
    if isinstance(actor, uuid.UUID):
        return str(actor)
    if isinstance(actor, str) and 0 < len(actor) <= 200 and text_problem(actor) is None:
        return actor
    raise InvalidValue(
        f"actor must be None, a UUID or text of 1-200 characters (a user id or name), got "
        f"{show(actor, 80)}"
    )


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as Postgres text (NUL, lone surrogates), or None.

    Example::

        text_problem("ok")  # None
        text_problem("\ud800")  # 'lone surrogate characters (not valid Unicode)'
    """
    if "\x00" in value:
        return "a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "lone surrogate characters (not valid Unicode)"
    return None


def check_name(name: object, what: str) -> str:
    """``name`` if it is a usable register/field name, else InvalidDefinition.

    Names are shown to users and never reach SQL, so almost any text is fine: 1-63
    characters, no control characters, no leading/trailing spaces, not starting with ``-``.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise InvalidDefinition(
            f"{what} name must be a string of 1-{MAX_NAME} characters, got {show(name, 80)}"
        )
    if (
        name != name.strip()
        or name.startswith("-")
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or text_problem(name) is not None
    ):
        raise InvalidDefinition(
            f"{what} name {name!r} is not allowed: no control characters, no lone "
            "surrogates, no leading or trailing spaces, and no leading '-' (it means "
            "descending in order_by)"
        )
    return name


def check_key(key: str) -> str:
    """A stored field key (``f<number>``), checked before it is quoted into SQL."""
    if not _KEY.match(key):
        raise InvalidDefinition(f"corrupt stored field key {key!r}: expected 'f<number>'")
    return key


@dataclass(frozen=True)
class Field:
    """A field (logical column) of a register.

    ``choices`` are required for ``single_select`` / ``multi_select``; ``target`` (the
    target register's name) for ``reference``, with ``many=True`` for many-to-many.
    ``default`` fills the field on insert when it is omitted (and back-fills existing rows
    when the field is added). ``unique`` is enforced by a Postgres unique index;
    ``indexed`` builds an expression index the query layer uses. ``formula`` makes a
    stored formula field (see :class:`Formula` for the language).

    Example::

        Field("status", "single_select", choices=("draft", "paid"), default="draft",
              required=True, indexed=True)
        Field("customer", "reference", target="customers")
        Field("tags", "multi_select", choices=("vip", "late"))
        Field("gross", "decimal", formula="round({net} * 1.19, 2)", indexed=True)
    """

    name: str
    type: FieldType | str
    required: bool = False
    unique: bool = False
    indexed: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    target: str | None = None
    many: bool = False
    label: str | None = None
    key: str = field(default="", compare=False, repr=False)
    autonumber: bool = False
    """An integer field the register numbers itself: 1, 2, 3, ... in insert order, never
    given by writes."""
    formula: str | None = None
    """A stored formula field: its value is computed from the row's other fields on every
    write (never given by writes), so it filters, sorts and indexes like any field."""

    def __post_init__(self) -> None:
        check_name(self.name, "field")
        if self.name in SYSTEM_FIELDS:
            raise InvalidDefinition(
                f"field name {self.name!r} is reserved for the system columns "
                f"{', '.join(SYSTEM_FIELDS)}; pick another name"
            )
        try:
            kind = FieldType(self.type)
        except ValueError:
            raise InvalidDefinition(
                f"field {self.name!r} has unknown type {self.type!r}; allowed types: "
                f"{', '.join(t.value for t in FieldType)}"
            ) from None
        object.__setattr__(self, "type", kind)
        for flag in ("required", "unique", "indexed", "many", "autonumber"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidDefinition(
                    f"field {self.name!r}: {flag} must be True or False, "
                    f"got {show(getattr(self, flag))}"
                )
        if self.label is not None and (
            not isinstance(self.label, str) or text_problem(self.label) is not None
        ):
            raise InvalidDefinition(
                f"field {self.name!r}: label must be a string (without NUL or lone "
                f"surrogates) or None, got {show(self.label)}"
            )
        self._check_choices(kind)
        self._check_reference(kind)
        if self.autonumber and (
            kind is not FieldType.INTEGER or self.default is not None or self.required
        ):
            raise InvalidDefinition(
                f"field {self.name!r}: autonumber=True needs an integer field without a "
                "default and not required (the register fills it)"
            )
        self._check_formula(kind)
        if self.unique and not self.uniqueable:
            raise InvalidDefinition(
                f"field {self.name!r} ({kind.value}) cannot be unique; unique works for "
                "text, integer, decimal, date, datetime, email, url, single_select and "
                "single references"
            )
        if self.indexed and not self.sortable:
            raise InvalidDefinition(
                f"field {self.name!r} ({kind.value}) cannot be indexed; indexes work for "
                "text, integer, decimal, boolean, date, datetime, email, url, single_select "
                "and single references"
            )
        if self.default is not None:
            if self.unique:
                raise InvalidDefinition(
                    f"field {self.name!r} is unique and cannot have a default: every row "
                    "would share it"
                )
            if kind is FieldType.REFERENCE:
                raise InvalidDefinition(f"reference field {self.name!r} cannot have a default")
            object.__setattr__(self, "default", coerce(self, self.default))

    def _check_formula(self, kind: FieldType) -> None:
        """The combinations a formula field allows (its formula is checked against the
        register's other fields when the register is defined)."""
        if self.formula is None:
            return
        if not isinstance(self.formula, str) or not self.formula.strip():
            raise InvalidDefinition(
                f"field {self.name!r}: formula must be non-empty text like "
                f"'round({{net}} * 1.19, 2)', got {show(self.formula, 80)}"
            )
        if kind not in FORMULA_TYPES:
            raise InvalidDefinition(
                f"field {self.name!r} ({kind.value}) cannot have a formula; formula fields "
                f"are {', '.join(t.value for t in FORMULA_TYPES)}"
            )
        for flag, why in (
            ("required", "its value comes from the formula"),
            ("unique", "make the fields it reads unique instead"),
            ("autonumber", "a field is numbered or computed, not both"),
        ):
            if getattr(self, flag):
                raise InvalidDefinition(f"formula field {self.name!r} cannot be {flag}: {why}")
        if self.default is not None:
            raise InvalidDefinition(
                f"formula field {self.name!r} cannot have a default: its formula gives "
                "every row its value"
            )

    def _check_choices(self, kind: FieldType) -> None:
        if kind in SELECTS:
            choices = self.choices
            if isinstance(choices, str) or not isinstance(choices, Iterable):
                raise InvalidDefinition(
                    f"field {self.name!r} ({kind.value}) needs choices=('a', 'b', ...), "
                    f"got {show(choices, 80)}"
                )
            items = tuple(choices)
            if not items:
                raise InvalidDefinition(f"field {self.name!r} ({kind.value}) needs choices")
            for item in items:
                if not isinstance(item, str) or not item or text_problem(item) is not None:
                    raise InvalidDefinition(
                        f"field {self.name!r}: every choice must be a non-empty string "
                        f"without NUL or lone surrogates, got {show(item, 80)}"
                    )
            if len(set(items)) != len(items):
                raise InvalidDefinition(f"field {self.name!r}: choices must not repeat")
            object.__setattr__(self, "choices", items)
        elif self.choices:
            raise InvalidDefinition(
                f"field {self.name!r} ({kind.value}) takes no choices; only single_select "
                "and multi_select do"
            )

    def _check_reference(self, kind: FieldType) -> None:
        if kind is FieldType.REFERENCE:
            if self.target is None:
                raise InvalidDefinition(
                    f"reference field {self.name!r} needs target='<register name>'"
                )
            check_name(self.target, "target register")
        else:
            if self.target is not None:
                raise InvalidDefinition(
                    f"field {self.name!r} ({kind.value}) takes no target; only reference does"
                )
            if self.many:
                raise InvalidDefinition(
                    f"field {self.name!r} ({kind.value}) takes no many=True; only reference does"
                )

    @property
    def kind(self) -> FieldType:
        """The field's type as a :class:`FieldType`."""
        return self.type  # type: ignore[return-value]  # __post_init__ made it a FieldType

    @property
    def operators(self) -> frozenset[str]:
        """The operator names ``where`` accepts for this field."""
        if self.kind is FieldType.REFERENCE:
            return _REF_MANY_OPS if self.many else _REF_ONE_OPS
        return _OPERATORS[self.kind]

    @property
    def sortable(self) -> bool:
        """Whether the field can be used in ``order_by`` (and be indexed)."""
        if self.kind is FieldType.REFERENCE:
            return not self.many
        return self.kind not in (FieldType.MULTI_SELECT, FieldType.JSON)

    @property
    def uniqueable(self) -> bool:
        return self.sortable and self.kind is not FieldType.BOOLEAN

    @property
    def facetable(self) -> bool:
        """Whether ``facets()`` can count this field's values."""
        return self.kind is not FieldType.JSON and not (
            self.kind is FieldType.REFERENCE and self.many
        )

    @property
    def multi(self) -> bool:
        """Whether a value is a tuple of items (multi_select, many references)."""
        return self.kind is FieldType.MULTI_SELECT or (
            self.kind is FieldType.REFERENCE and self.many
        )

    def describe(self) -> dict[str, Any]:
        """The definition as plain JSON-able data (stored in ``forktex_data.fields``)."""
        return {
            "choices": list(self.choices),
            "target": self.target,
            "many": self.many,
            "label": self.label,
        }

    def with_key(self, key: str) -> Field:
        return replace(self, key=check_key(key))


def _fail(f: Field, value: Any, expected: str) -> InvalidValue:
    return InvalidValue(
        f"field {f.name!r} ({f.kind.value}) cannot take {show(value, 100)}: expected {expected}",
        field=f.name,
        value=value,
    )


def _text(f: Field, value: Any, expected: str) -> str:
    if not isinstance(value, str):
        raise _fail(f, value, expected)
    problem = text_problem(value)
    if problem is not None:
        raise _fail(f, value, f"{expected} without {problem}")
    return value


def check_unique_size(f: Field, value: Any) -> None:
    """InvalidValue when a value of a unique field is too long to be a unique key
    (``MAX_UNIQUE_BYTES`` of UTF-8).

    Example::

        check_unique_size(Field("code", "text", unique=True), "x" * 5000)  # InvalidValue
    """
    if f.kind in STRINGS and isinstance(value, str):
        size = len(value) if value.isascii() else len(value.encode())
        if size > MAX_UNIQUE_BYTES:
            raise _fail(
                f,
                value,
                f"at most {MAX_UNIQUE_BYTES:,} bytes of UTF-8 text because the field is "
                f"unique (got {size:,} bytes)",
            )


def coerce(f: Field, value: Any) -> Any:
    """Convert ``value`` to the field's Python value (None stays None), or InvalidValue.

    Example::

        coerce(Field("n", "integer"), "42")  # 42
    """
    if value is None:
        return None
    return _COERCERS[f.kind](f, value)


def _c_text(f: Field, value: Any) -> str:
    if type(value) is str and value.isascii() and "\x00" not in value:
        return value
    return _text(f, value, "a string")


def _c_integer(f: Field, value: Any) -> int:
    if type(value) is int and INT_MIN <= value <= INT_MAX:
        return value
    if type(value) is str and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)  # the common text form (a CSV cell): at most 18 digits fit
    expected = f"a whole number between {INT_MIN} and {INT_MAX} (e.g. 42 or '42')"
    result: int
    if isinstance(value, bool):
        raise _fail(f, value, expected)
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _fail(f, value, expected)
        result = int(value)
    elif isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 19 or value != value.to_integral_value():
            raise _fail(f, value, expected)
        result = int(value)
    elif isinstance(value, str) and len(value) <= 100 and _INT_TEXT.match(value.strip()):
        result = int(value.strip())
    else:
        raise _fail(f, value, expected)
    if not INT_MIN <= result <= INT_MAX:
        raise _fail(f, value, expected)
    return result


# Decimal text already in the canonical form (no exponent, no trailing zeros after the
# point, no -0), short enough to be within the digit limits: read as it is.
_CANONICAL_DECIMAL = re.compile(r"(?:0|-?[1-9][0-9]*)(?:\.[0-9]*[1-9])?|-?0\.[0-9]*[1-9]")


def _c_decimal(f: Field, value: Any) -> Decimal:
    if type(value) is str and len(value) <= 80 and _CANONICAL_DECIMAL.fullmatch(value):
        return Decimal(value)
    expected = "a finite decimal number (e.g. Decimal('12.50'), 12.5 or '12.50')"
    if isinstance(value, bool):
        raise _fail(f, value, expected)
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, int):
            result = Decimal(value)
        elif isinstance(value, float):
            result = Decimal(repr(value))
        elif isinstance(value, str):
            result = Decimal(value.strip())
        else:
            raise _fail(f, value, expected)
    except InvalidOperation:
        raise _fail(f, value, expected) from None
    if not result.is_finite() or abs(result.adjusted()) > MAX_DECIMAL_EXPONENT:
        raise _fail(
            f,
            value,
            f"{expected} with at most {MAX_DECIMAL_EXPONENT} digits before the point "
            f"(or zeros after it)",
        )
    return canonical_decimal(result)


def canonical_decimal(value: Decimal) -> Decimal:
    """The one representation of a finite decimal the library stores and returns: no
    trailing zeros after the point, no exponent (``Decimal('1.50')`` -> ``1.5``,
    ``Decimal('1E+2')`` -> ``100``)."""
    if value == 0:
        return Decimal(0)
    normal = value.normalize(_DECIMALS)
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normal.quantize(_ONE, context=_DECIMALS)
    return normal


_DECIMALS = Context(prec=250)
_ONE = Decimal(1)


def _c_boolean(f: Field, value: Any) -> bool:
    expected = "True or False (or 'true'/'false', 'yes'/'no', 1/0)"
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise _fail(f, value, expected)


def _c_date(f: Field, value: Any) -> date:
    expected = "a date (datetime.date or 'YYYY-MM-DD')"
    if isinstance(value, datetime):
        raise _fail(f, value, expected + "; pass value.date() for a datetime")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail(f, value, expected)


def _c_datetime(f: Field, value: Any) -> datetime:
    if type(value) is datetime and value.tzinfo is UTC:
        return value
    expected = "a timezone-aware datetime (or ISO text with an offset like '2026-01-31T09:00:00Z')"
    result: datetime | None = None
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value.strip())
        except ValueError:
            result = None
        if result is not None and result.tzinfo is UTC:  # ISO text in UTC: the common case
            return result
    if result is None or result.tzinfo is None or result.utcoffset() is None:
        raise _fail(f, value, expected)
    try:
        return result.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _fail(f, value, expected + " that falls within the years 1-9999 in UTC") from None


def _c_email(f: Field, value: Any) -> str:
    expected = "an email address like 'ada@example.com'"
    if type(value) is str and value.isascii() and "\x00" not in value:
        text = value.strip().lower()  # ASCII text has no problem _text could find
    else:
        text = _text(f, value, expected).strip().lower()
    if len(text) > 254 or not _EMAIL.match(text):
        raise _fail(f, value, expected)
    return text


# Plain ASCII http(s) URLs with a host name: accepted without parsing (the general check
# below accepts every one of them).
_PLAIN_URL = re.compile(r"(?i:https?)://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][!-~]*)?")


def _c_url(f: Field, value: Any) -> str:
    if type(value) is str and len(value) <= 2048 and _PLAIN_URL.fullmatch(value):
        return value
    expected = "an http(s) URL like 'https://example.com/page'"
    text = _text(f, value, expected).strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise _fail(f, value, expected) from None
    if (
        len(text) > 2048
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in text)
    ):
        raise _fail(f, value, expected)
    return text


def _c_single(f: Field, value: Any) -> str:
    if not isinstance(value, str) or value not in f.choices:
        raise _fail(f, value, f"one of {', '.join(map(repr, f.choices))}")
    return value


def _c_multi(f: Field, value: Any) -> tuple[str, ...] | None:
    if type(value) is list:  # the common case: a list of choices
        try:
            chosen: set[Any] | None = set(value)
        except TypeError:  # an unhashable item, which no choice is
            chosen = None
        if chosen is not None and chosen.issubset(f.choices):
            return tuple(filter(chosen.__contains__, f.choices)) or None
    expected = f"a list of choices from {', '.join(map(repr, f.choices))}"
    items: list[Any]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        raise _fail(f, value, expected)
    for item in items:
        if not isinstance(item, str) or item not in f.choices:
            raise _fail(f, item, expected)
    chosen = set(items)
    result = tuple(c for c in f.choices if c in chosen)
    return result or None


_JSON_INT_LIMIT = 10**MAX_JSON_INT_DIGITS


_JSON_EXPECTED = "JSON data (dict with str keys, list, str, int, float, bool or None)"


def check_json(f: Field, value: Any, depth: int = 0) -> Any:
    kind = type(value)
    if kind is str and value.isascii() and "\x00" not in value:
        return value
    if kind is int and -_JSON_INT_LIMIT < value < _JSON_INT_LIMIT:
        return value
    expected = _JSON_EXPECTED
    if depth > MAX_JSON_DEPTH:
        raise _fail(f, value, f"{expected} nested at most {MAX_JSON_DEPTH} levels")
    if kind is dict:  # the common container first (the Mapping check below is slow)
        return _json_object(f, value, depth)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_JSON_INT_LIMIT < value < _JSON_INT_LIMIT:
            raise _fail(
                f, value, f"{expected} with integers of at most {MAX_JSON_INT_DIGITS} digits"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(f, value, expected + " (no NaN or infinity)")
        return value
    if isinstance(value, str):
        return _text(f, value, expected)
    if isinstance(value, (list, tuple)):
        return [check_json(f, v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        return _json_object(f, value, depth)
    raise _fail(f, value, expected)


def _json_object(f: Field, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if not (type(k) is str and k.isascii() and "\x00" not in k) and (
            not isinstance(k, str) or text_problem(k) is not None
        ):
            raise _fail(f, k, _JSON_EXPECTED + " (keys without NUL or lone surrogates)")
        out[k] = check_json(f, v, depth + 1)
    return out


def _c_json(f: Field, value: Any) -> Any:
    return check_json(f, value)


def as_row_id(value: Any) -> uuid.UUID | None:
    """A row id from a UUID, its string form or anything with a UUID ``id`` attribute."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    inner = getattr(value, "id", None)
    return inner if isinstance(inner, uuid.UUID) else None


def _c_reference(f: Field, value: Any) -> uuid.UUID | tuple[uuid.UUID, ...] | None:
    expected = f"a row id of register {f.target!r} (UUID, its string form, or a RowResult)"
    if f.many:
        if not isinstance(value, (list, tuple, set, frozenset)):
            one = as_row_id(value)
            if one is None:
                raise _fail(f, value, "a list of " + expected.removeprefix("a "))
            return (one,)
        ids: list[uuid.UUID] = []
        for item in value:
            rid = as_row_id(item)
            if rid is None:
                raise _fail(f, item, expected)
            if rid not in ids:
                ids.append(rid)
        return tuple(ids) or None
    rid = as_row_id(value)
    if rid is None:
        raise _fail(f, value, expected)
    return rid


_COERCERS: dict[FieldType, Any] = {
    FieldType.TEXT: _c_text,
    FieldType.INTEGER: _c_integer,
    FieldType.DECIMAL: _c_decimal,
    FieldType.BOOLEAN: _c_boolean,
    FieldType.DATE: _c_date,
    FieldType.DATETIME: _c_datetime,
    FieldType.EMAIL: _c_email,
    FieldType.URL: _c_url,
    FieldType.SINGLE_SELECT: _c_single,
    FieldType.MULTI_SELECT: _c_multi,
    FieldType.JSON: _c_json,
    FieldType.REFERENCE: _c_reference,
}


def to_json(f: Field, value: Any) -> Any:
    """The stored JSON form of an already coerced Python value."""
    if value is None:
        return None
    kind = f.kind
    if kind is FieldType.DECIMAL:
        return format(value, "f")
    if kind is FieldType.DATETIME:
        # Fixed width, UTC: text order is time order, so the stored text is the sort key.
        return str(value.astimezone(UTC).isoformat(timespec="microseconds"))
    if kind is FieldType.DATE:
        return str(value.isoformat())
    if kind is FieldType.MULTI_SELECT:
        return list(value)
    if kind is FieldType.REFERENCE:
        return [str(v) for v in value] if f.many else str(value)
    return value


def encoder(f: Field) -> Any:
    """A function turning a coerced value of ``f`` (not None) into its stored JSON form,
    like :func:`to_json` (None: the value is its own JSON form)."""
    kind = f.kind
    if kind is FieldType.DECIMAL:
        return lambda value: format(value, "f")
    if kind is FieldType.DATETIME:
        return _stored_datetime
    if kind is FieldType.DATE:
        return date.isoformat
    if kind is FieldType.MULTI_SELECT:
        return list
    if kind is FieldType.REFERENCE:
        return (lambda value: [str(v) for v in value]) if f.many else str
    return None


def _stored_datetime(value: datetime) -> str:
    if value.tzinfo is not UTC:  # coerced values are in UTC already
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


class RowCoercer:
    """Coerces whole rows for one list of fields (what every write does), with each
    field's coercion looked up once.

    Example::

        RowCoercer(fields).build({"n": "42"}, register="items")  # {"n": 42, ...}
    """

    def __init__(self, fields: Sequence[Field]) -> None:
        self.fields = tuple(fields)
        # Per field: whether its value comes from the register (a formula, a number), and
        # whether a coerced value needs a check (size of a unique string, required): the
        # common field takes neither branch.
        self._plan = tuple(
            (
                f,
                f.name,
                _COERCERS[f.kind],
                f.formula is not None or f.autonumber,
                f.unique and f.kind in STRINGS,
                f.required,
            )
            for f in self.fields
        )
        self._names = frozenset(f.name for f in self.fields)

    def build(
        self, values: Mapping[str, Any], *, register: str, partial: bool = False
    ) -> dict[str, Any]:
        """Coerce a write (field name -> value): unknown names, bad values and missing
        required fields raise InvalidValue. ``partial`` (updates) skips defaults and leaves
        unspecified fields alone."""
        if type(values) is not dict and not isinstance(values, Mapping):
            raise InvalidValue(
                f"row values must be a mapping of field name to value, got {show(values, 80)}"
            )
        if not self._names.issuperset(values):
            unknown = [k for k in values if k not in self._names]
            raise InvalidValue(
                f"register {register!r} has no field {show(unknown[0])}; fields: "
                f"{', '.join(repr(f.name) for f in self.fields) or '(none)'}",
                field=show(unknown[0]),
                value=values[unknown[0]],
            )
        out: dict[str, Any] = {}
        for f, name, coercer, computed, bounded_unique, required in self._plan:
            if computed:
                self._computed(f, values, out, register=register, partial=partial)
                continue
            if name in values:
                raw = values[name]
                value = None if raw is None else coercer(f, raw)
            elif not partial:
                value = f.default
            else:
                continue
            if bounded_unique and value is not None:
                check_unique_size(f, value)
            if required and value is None:
                raise InvalidValue(
                    f"field {name!r} of register {register!r} is required"
                    + ("" if partial else "; give it a value"),
                    field=name,
                    value=None,
                )
            out[name] = value
        return out

    @staticmethod
    def _computed(
        f: Field, values: Mapping[str, Any], out: dict[str, Any], *, register: str, partial: bool
    ) -> None:
        """A formula or autonumber field of a write: refused when given a value, else left
        empty in a whole row (computed / numbered when the row is stored)."""
        name = f.name
        if values.get(name) is not None:
            how = (
                f"computed by its formula {show(f.formula, 80)}"
                if f.formula is not None
                else "numbered by the register (autonumber)"
            )
            raise InvalidValue(
                f"field {name!r} of register {register!r} is {how}; leave it out",
                field=name,
                value=values[name],
            )
        if not partial:
            out[name] = None  # computed or numbered when the row is stored


_PLAIN = frozenset(
    {
        FieldType.TEXT, FieldType.INTEGER, FieldType.BOOLEAN, FieldType.EMAIL, FieldType.URL,
        FieldType.SINGLE_SELECT, FieldType.JSON,
    }
)  # fmt: skip


def decoder(f: Field) -> Any:
    """A function turning the stored JSON of ``f`` into its Python value (None: identity)."""
    kind = f.kind
    if kind in _PLAIN:
        return None
    if kind is FieldType.DATETIME:
        return datetime.fromisoformat
    if kind is FieldType.DATE:
        return date.fromisoformat
    if kind is FieldType.DECIMAL:
        return Decimal
    return lambda raw: from_json(f, raw)


def from_json(f: Field, raw: Any) -> Any:
    """The Python value of a stored JSON value."""
    if raw is None:
        return None
    kind = f.kind
    if kind is FieldType.DECIMAL:
        return Decimal(raw)
    if kind is FieldType.DATE:
        return date.fromisoformat(raw)
    if kind is FieldType.DATETIME:
        return datetime.fromisoformat(raw)
    if kind is FieldType.MULTI_SELECT:
        return tuple(raw)
    if kind is FieldType.REFERENCE:
        return tuple(uuid.UUID(v) for v in raw) if f.many else uuid.UUID(raw)
    return raw


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _c_encoder() -> Callable[[Any, int], Any] | None:
    """The C encoder ``_JSON.encode`` builds on every call, built once (values are validated
    JSON data: no cycles to watch for), or None where this Python's private constructor is
    missing or takes other arguments — then every document goes through ``_JSON.encode``.
    Every write encodes its rows through here."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - Pythons without the C accelerator
        return None
    try:
        encode = make(None, _JSON.default, json.encoder.encode_basestring, None, ":", ",",
                      False, False, False)  # fmt: skip
        sample = {"a": [1, 2.5, "é", None, True], "b": {}}
        if "".join(encode(sample, 0)) != _JSON.encode(sample):  # pragma: no cover
            return None
    except Exception:  # pragma: no cover - another Python's signature
        return None
    return encode  # type: ignore[no-any-return]


_ENCODE = _c_encoder()


def dumps(value: Any) -> str:
    """Compact JSON text for a stored document."""
    if _ENCODE is None:  # pragma: no cover - Pythons without the C accelerator
        return _JSON.encode(value)
    return "".join(_ENCODE(value, 0))
