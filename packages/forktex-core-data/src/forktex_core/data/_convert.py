# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Converting a field's values to another type (``change_field_type``), and telling which
conversions lose information.

A conversion of a value *loses* information when converting the result back to the old
type does not give the original value (a datetime that becomes a date drops its time of
day; ``"042"`` that becomes the integer 42 comes back as ``"42"``), or when the change
cannot be undone at all (a reference that becomes text no longer links to its row).
Round trips are lossless wherever the types allow: JSON objects and arrays become their
JSON text and that text becomes the same objects and arrays again."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from ._errors import InvalidValue, show
from ._fields import (
    NUMERIC,
    SELECTS,
    STRINGS,
    TEXTLIKE,
    Field,
    FieldType,
    check_unique_size,
    coerce,
    dumps,
    from_json,
    to_json,
)

MAX_REPORTED = 100
"""Rows listed per kind of problem in a report (the counts are complete)."""


def _as_text(f: Field, value: Any) -> str:
    kind = f.kind
    if kind in STRINGS:
        return str(value)
    if kind is FieldType.MULTI_SELECT or (kind is FieldType.REFERENCE and f.many):
        return ", ".join(str(v) for v in value)
    if kind is FieldType.BOOLEAN:
        return "true" if value else "false"
    if kind is FieldType.JSON:
        return value if isinstance(value, str) else dumps(value)
    raw = to_json(f, value)
    return raw if isinstance(raw, str) else str(raw)


def _json_from_text(f: Field, value: str) -> Any:
    """Text that holds a JSON object or array becomes that object or array (the inverse of
    how JSON becomes text); any other text stays a JSON string."""
    stripped = value.strip()
    if stripped[:1] in ("{", "["):
        try:
            parsed = json.loads(stripped)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, (dict, list)):
            try:
                return coerce(f, parsed)
            except InvalidValue:
                pass  # e.g. nested too deeply: keep the text
    return coerce(f, value)


def convert(old: Field, new: Field, value: Any) -> Any:
    """``value`` (of field ``old``) converted to field ``new``'s type, or InvalidValue."""
    ok, nk = old.kind, new.kind
    if value is None:
        return None
    if nk in TEXTLIKE or nk is FieldType.SINGLE_SELECT:
        if nk is FieldType.SINGLE_SELECT and ok is FieldType.MULTI_SELECT:
            if len(value) != 1:
                raise InvalidValue(
                    f"field {new.name!r}: {show(list(value))} has {len(value)} choices, a "
                    "single_select takes exactly one",
                    field=new.name,
                    value=value,
                )
            return coerce(new, value[0])
        return coerce(new, _as_text(old, value))
    if nk is FieldType.JSON:
        if ok in STRINGS:
            return _json_from_text(new, value)
        return coerce(new, to_json(old, value))
    if nk is FieldType.MULTI_SELECT:
        if ok in SELECTS:
            return coerce(new, list(value) if ok is FieldType.MULTI_SELECT else [value])
        if ok in TEXTLIKE:
            return coerce(new, [p.strip() for p in value.split(",") if p.strip()])
        return coerce(new, value)
    if nk is FieldType.DATETIME and ok is FieldType.DATE:
        return datetime.combine(value, time(), tzinfo=UTC)
    if nk is FieldType.DATE and ok is FieldType.DATETIME:
        return value.astimezone(UTC).date()
    if nk in NUMERIC and ok is FieldType.BOOLEAN:
        return coerce(new, int(value))
    if nk is FieldType.BOOLEAN and ok in NUMERIC:
        return coerce(new, int(value) if value in (0, 1) else str(value))
    if ok in SELECTS or ok in TEXTLIKE or ok is FieldType.JSON:
        return coerce(new, value)
    if isinstance(value, (int, Decimal, date, datetime)):
        return coerce(new, value)
    raise InvalidValue(  # pragma: no cover - every pair is handled above
        f"field {new.name!r}: cannot convert {show(value, 80)}", field=new.name, value=value
    )


def irreversible(old: Field, new: Field) -> str | None:
    """Why changing ``old`` into ``new`` cannot be undone at all, or None."""
    if old.kind is FieldType.REFERENCE and new.kind is not FieldType.REFERENCE:
        return (
            f"the link to register {old.target!r} is dropped: a {new.kind.value} field "
            "cannot become a reference again"
        )
    return None


def loss(old: Field, new: Field, value: Any, result: Any) -> str | None:
    """What converting ``value`` to ``result`` loses (None: converting back restores it)."""
    reason = irreversible(old, new)
    if reason is not None:
        return reason
    try:
        back = convert(new, old, result)
    except InvalidValue as exc:
        return f"becomes {show(result)}, which does not convert back ({exc})"
    if back is None or dumps(to_json(old, back)) != dumps(to_json(old, value)):
        return f"becomes {show(result)}, which converts back to {show(back)}"
    return None


@dataclass
class Conversion:
    """The outcome of converting every value of one field: what to write, what fails and
    what loses information."""

    old: Field
    new: Field
    total: int = 0
    ids: list[uuid.UUID] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)  # stored JSON of each converted value
    emptied: list[uuid.UUID] = field(default_factory=list)  # converted to no value
    failures: list[tuple[Any, Any, str]] = field(default_factory=list)
    failed: int = 0
    losses: list[tuple[Any, Any, Any, str]] = field(default_factory=list)
    lossy: int = 0
    _seen: dict[str, uuid.UUID] = field(default_factory=dict)

    def _fail(self, row_id: uuid.UUID, value: Any, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_REPORTED:
            self.failures.append((row_id, value, reason))

    def add(self, row_id: uuid.UUID, raw: Any) -> None:
        """Convert one row's stored value (JSON, not None)."""
        self.total += 1
        old, new = self.old, self.new
        value = from_json(old, raw)
        try:
            result = convert(old, new, value)
            if new.unique:
                check_unique_size(new, result)
        except InvalidValue as exc:
            self._fail(row_id, value, str(exc))
            return
        if result is not None and new.unique:
            marker = dumps(to_json(new, result))
            if marker in self._seen:
                self._fail(
                    row_id,
                    value,
                    f"converts to {show(result)}, the same value as row {self._seen[marker]}, "
                    f"but {new.name!r} is unique",
                )
                return
            self._seen[marker] = row_id
        if result is None and new.required:
            self._fail(row_id, value, f"field {new.name!r} is required")
            return
        reason = loss(old, new, value, result)
        if reason is not None:
            self.lossy += 1
            if len(self.losses) < MAX_REPORTED:
                self.losses.append((row_id, value, result, reason))
        if result is None:
            self.emptied.append(row_id)
        else:
            self.ids.append(row_id)
            self.docs.append(dumps(to_json(new, result)))
