# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Lookups and rollups of ``RowQuery``: read-only values computed with each page from the
rows a reference links to (a lookup) or from the rows of another query that link to each
row (a rollup). They work on every source: lookups through ``fetch_targets``, rollups
through the other query's ``aggregate``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ._aggregates import Aggregate
from ._errors import InvalidQuery, show
from ._fields import FieldType
from ._limits import MAX_PAGE
from ._plan import RegisterInfo, is_system
from ._results import RowResult
from ._sources import RegisterSource


async def lookup_values(
    source: RegisterSource, info: RegisterInfo, path: str, rows: Sequence[RowResult]
) -> dict[uuid.UUID, Any]:
    """Per row, the value of ``reference.field`` on the linked row (a tuple through a many
    reference, ``None`` without a link)."""
    head, _, name = path.partition(".")
    via = next((f for f in info.fields if f.name == head), None)
    if via is None or via.kind is not FieldType.REFERENCE or is_system(via):
        refs = [f.name for f in info.fields if f.kind is FieldType.REFERENCE]
        raise InvalidQuery(
            f"lookup() path {show(path)} must start with a reference field of "
            f"{info.name!r}; reference fields: {', '.join(map(repr, refs)) or '(none)'}"
        )
    describe = getattr(source, "describe_target", None)
    if describe is not None:
        (await describe(via)).field(name)  # InvalidQuery naming the linked fields
    ids: dict[uuid.UUID, None] = {}
    for row in rows:
        value = row.values.get(via.name)
        for target in (value or ()) if via.many else ((value,) if value is not None else ()):
            ids[target] = None
    linked = await source.fetch_targets(via, list(ids))
    result: dict[uuid.UUID, Any] = {}
    for row in rows:
        value = row.values.get(via.name)
        if via.many:
            result[row.id] = tuple(linked[t][name] for t in value or () if t in linked)
        else:
            target = linked.get(value) if value is not None else None
            result[row.id] = target[name] if target is not None else None
    return result


async def rollup_values(
    info: RegisterInfo, aggregate: Aggregate, query: Any, via: str, rows: Sequence[RowResult]
) -> dict[uuid.UUID, Any]:
    """Per row, ``aggregate`` of the rows of ``query`` whose reference ``via`` points to
    it (one grouped aggregate query per 1,000 rows)."""
    other = await query.plan()
    f = other.info.field(via)
    if f.kind is not FieldType.REFERENCE or f.many or f.target != info.name or is_system(f):
        refs = [
            x.name
            for x in other.info.fields
            if x.kind is FieldType.REFERENCE and not x.many and x.target == info.name
        ]
        raise InvalidQuery(
            f"rollup(via=...) needs a reference field (to one row) of {other.info.name!r} "
            f"pointing to {info.name!r}; {via!r} is not one; such fields: "
            f"{', '.join(map(repr, refs)) or '(none)'}"
        )
    empty = 0 if aggregate.function == "count" else None
    result: dict[uuid.UUID, Any] = {row.id: empty for row in rows}
    ids = list(result)
    for start in range(0, len(ids), MAX_PAGE):
        chunk = ids[start : start + MAX_PAGE]
        groups = await (
            query.where({f"{via}__in": chunk})
            .group_by(via)
            .aggregate({"v": aggregate}, limit=MAX_PAGE)
        )
        for group in groups:
            result[group[via]] = group["v"]
    return result
