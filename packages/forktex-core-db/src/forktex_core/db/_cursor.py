# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Opaque keyset cursors for ``Repository.scroll()``: URL-safe base64 of a small JSON document.

The cursor holds the sort spec, a fingerprint of the filters and the sort values of the last
row returned. It is opaque, not secret: do not sort on columns the client may not see.
Tampering can at most move the position (values are re-validated against the column types
and only ever bound as parameters); any malformed cursor raises ``InvalidCursor``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import InvalidCursor, InvalidFilter
from ._filters import SortKey

_VERSION = 1


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "value"):  # enum members
        return _jsonable(value.value)
    raise InvalidCursor(
        f"cannot build a cursor from a sort value of type {type(value).__name__}; sort on "
        "scalar columns (numbers, strings, dates, UUIDs, booleans)"
    )


def fingerprint(
    model: type[Any], keys: Sequence[SortKey], filters: Mapping[str, Any] | None
) -> str:
    """A short digest tying a cursor to one model, sort and filter set."""
    items = sorted((str(k), repr(v)) for k, v in (filters or {}).items())
    text = repr((model.__module__, model.__qualname__, [k.spec for k in keys], items))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def encode(keys: Sequence[SortKey], values: Sequence[Any], fp: str) -> str:
    """The cursor pointing just after the row whose sort values are ``values``."""
    doc = {"v": _VERSION, "s": [k.spec for k in keys], "f": fp, "k": [_jsonable(v) for v in values]}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(cursor: str, keys: Sequence[SortKey], fp: str) -> list[Any]:
    """The sort values inside ``cursor``, validated against ``keys``; InvalidCursor otherwise."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > 8192:
        raise InvalidCursor(
            f"cursor must be the non-empty string returned as next_cursor by scroll(), "
            f"got {cursor!r:.80}"
        )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: deeply nested JSON arrays (a cursor of "[[[[..." decodes to one).
        raise InvalidCursor(
            f"cursor {cursor!r:.80} is malformed (not a scroll() cursor, or truncated/edited); "
            "pass next_cursor back unchanged, or start again without a cursor"
        ) from None
    if (
        not isinstance(doc, dict)
        or doc.get("v") != _VERSION
        or not isinstance(doc.get("s"), list)
        or not isinstance(doc.get("k"), list)
        or not isinstance(doc.get("f"), str)
    ):
        raise InvalidCursor(
            f"cursor {cursor!r:.80} is not a valid scroll() cursor (wrong shape or version); "
            "start again without a cursor"
        )
    specs = [k.spec for k in keys]
    if doc["s"] != specs or doc["f"] != fp:
        raise InvalidCursor(
            f"cursor was made for another query (sort {doc['s']!r}, other filters); this call "
            f"sorts by {specs!r}: keep sort and filters unchanged while scrolling, or start "
            "again without a cursor"
        )
    if len(doc["k"]) != len(keys):
        raise InvalidCursor("cursor holds the wrong number of sort values; start again")
    values: list[Any] = []
    for key, raw_value in zip(keys, doc["k"], strict=True):
        if raw_value is None:
            if not key.field.nullable:
                raise InvalidCursor(f"cursor holds NULL for non-nullable {key.field.name!r}")
            values.append(None)
            continue
        try:
            values.append(key.field.value(raw_value, "cursor"))
        except InvalidFilter as exc:
            raise InvalidCursor(f"cursor value for {key.field.name!r} is invalid: {exc}") from None
    return values
