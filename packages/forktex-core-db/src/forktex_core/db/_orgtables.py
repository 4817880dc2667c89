# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The registry of org-scoped tables: every table mapped by an ``OrgScopedMixin`` model.

Tables are recognised by name (case-insensitive) and schema, not by object identity, so a
``Table`` from other metadata, a reflected table or a lightweight ``table("invoice")`` that
names an org-scoped table is treated as that table. A reference without a schema matches an
org-scoped table in any schema (the search path may resolve it there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.selectable import TableClause

from ._mixins import OrgScopedMixin

ORG_COLUMN = "org_id"


@dataclass(frozen=True)
class OrgTable:
    """One org-scoped table. ``parent`` is set for a joined-inheritance table without its own
    ``org_id``: its rows belong to the org of the parent row with the same primary key."""

    name: str
    schema: str | None
    table: Table
    parent: Table | None = None
    key_pairs: tuple[tuple[str, str], ...] = ()


_by_name: dict[str, list[OrgTable]] = {}
_mention: list[re.Pattern[str] | None] = [None]
_UNICODE_IDENTIFIER = re.compile(r"u&[\"']", re.IGNORECASE)


def _register(entry: OrgTable) -> None:
    entries = _by_name.setdefault(entry.name.lower(), [])
    if any(e.table is entry.table for e in entries):
        return
    entries.append(entry)
    names = sorted(_by_name, key=len, reverse=True)
    _mention[0] = re.compile(
        r"(?<![\w$])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w$])",
        re.IGNORECASE,
    )


@event.listens_for(OrgScopedMixin, "after_mapper_constructed", propagate=True)
def _on_mapper(mapper: Mapper[Any], class_: type[Any]) -> None:
    table = mapper.local_table
    if not isinstance(table, Table):
        return
    if ORG_COLUMN in table.c:
        _register(OrgTable(table.name, table.schema, table))
        return
    parent = mapper.inherits
    while parent is not None and ORG_COLUMN not in parent.local_table.c:
        parent = parent.inherits
    if parent is None or not isinstance(parent.local_table, Table):
        return
    base = parent.local_table
    pairs = tuple(
        (own.name, theirs.name)
        for own, theirs in zip(table.primary_key.columns, base.primary_key.columns, strict=False)
    )
    _register(OrgTable(table.name, table.schema, table, parent=base, key_pairs=pairs))


def org_table(element: Any) -> OrgTable | None:
    """The registry entry for ``element`` (a ``Table`` / ``TableClause``), or ``None``."""
    if not isinstance(element, TableClause):
        return None
    entries = _by_name.get(str(element.name).lower())
    if not entries:
        return None
    schema = getattr(element, "schema", None)
    for entry in entries:
        if schema is None or entry.schema is None or entry.schema == schema:
            return entry
    return None


def mentions_org_table(sql: str) -> bool:
    """Whether raw SQL text may refer to an org-scoped table: it names one as a word
    (case-insensitive), or uses Unicode-escaped identifiers (``U&"..."``) that could."""
    pattern = _mention[0]
    if pattern is None:
        return False
    return bool(pattern.search(sql)) or bool(_UNICODE_IDENTIFIER.search(sql))


def org_table_names() -> list[str]:
    """The names of the registered org-scoped tables (for error messages)."""
    return sorted({e.name for entries in _by_name.values() for e in entries})
