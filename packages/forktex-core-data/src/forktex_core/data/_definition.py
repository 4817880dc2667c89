# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A register's stored definition (``forktex_data.registers`` + ``fields``), loaded per tenant."""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ._fields import Field, decoder, dumps, encoder, from_json
from ._formulas import FormulaFields
from ._plan import RegisterInfo
from ._search import PLAIN, SearchConfig, search_columns


@dataclass(frozen=True)
class Definition:
    """Everything the Postgres source needs to know about one register of one tenant."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    label: str | None
    date_field: str | None
    version: int
    fields: tuple[Field, ...]
    field_ids: Mapping[str, uuid.UUID]  # by storage key
    targets: Mapping[str, uuid.UUID]  # storage key of a reference field -> target register
    search_config: SearchConfig = PLAIN

    @functools.cached_property
    def info(self) -> RegisterInfo:
        return RegisterInfo(
            self.name, self.fields, self.date_field, self.search_config, register_id=self.id
        )

    @functools.cached_property
    def encoders(self) -> tuple[tuple[str, str, Any], ...]:
        """``(name, key, encode or None)`` per field, for writing rows fast."""
        return tuple((f.name, f.key, encoder(f)) for f in self.fields)

    @functools.cached_property
    def writers(self) -> tuple[tuple[str, str, Any, int], ...]:
        """``(name, key, encode or None, search)`` per field, in field order: ``search`` is
        0 for a field that is no search text, 1 for one string, 2 for a list of strings
        (multi_select): what :func:`._rows.document` builds a row's document and search
        text from in one pass."""
        searched = {key: many for _name, key, many in self.search_columns}
        return tuple(
            (name, key, encode, 0 if key not in searched else 2 if searched[key] else 1)
            for name, key, encode in self.encoders
        )

    @functools.cached_property
    def formulas(self) -> FormulaFields:
        """The register's formula fields, computed before each row is stored."""
        return FormulaFields(self.fields, self.name)

    @functools.cached_property
    def search_columns(self) -> tuple[tuple[str, str, bool], ...]:
        """The fields whose values are search text (see :func:`._search.search_columns`)."""
        return search_columns(self.fields)

    @functools.cached_property
    def decoders(self) -> tuple[tuple[str, str, Any], ...]:
        """``(name, key, decode or None)`` per field, for reading rows fast."""
        return tuple((f.name, f.key, decoder(f)) for f in self.fields)

    @functools.cached_property
    def _by_name(self) -> Mapping[str, Field]:
        return {f.name: f for f in self.fields}

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """The names of the register's fields."""
        return frozenset(self._by_name)

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name) if isinstance(name, str) else None

    def by_key(self, key: str) -> Field | None:
        for f in self.fields:
            if f.key == key:
                return f
        return None


def stored_options(f: Field) -> str:
    """The ``options`` JSON of a field as stored in ``forktex_data.fields`` (what
    :func:`load_definition` reads back)."""
    options: dict[str, Any] = {"choices": list(f.choices), "many": f.many, "label": f.label}
    if f.autonumber:
        options["autonumber"] = True
    if f.formula is not None:
        options["formula"] = f.formula
    return dumps(options)


def _load_json(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


async def load_definition(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    name: str | None = None,
    register_id: uuid.UUID | None = None,
    lock: str = "",
) -> Definition | None:
    """The definition by name or id within ``tenant_id`` (``None`` when there is none).
    ``lock`` may be ``"FOR UPDATE"`` (schema changes) or ``"FOR KEY SHARE"``."""
    where = "name = :name" if register_id is None else "id = :id"
    reg = (
        await conn.execute(
            text(
                # * : the search column arrives with schema migration 3, and migration 2
                # reads definitions before it exists.
                f"SELECT * FROM forktex_data.registers WHERE tenant_id = :tenant AND {where} {lock}"
            ),
            {"tenant": tenant_id, "name": name, "id": register_id},
        )
    ).first()
    if reg is None:
        return None
    rows = await conn.execute(
        text(
            "SELECT f.id, f.name, f.key, f.type, f.required, f.is_unique, f.indexed, "
            "f.default_value::text AS default_value, f.options::text AS options, "
            "f.target_register_id, t.name AS target_name "
            "FROM forktex_data.fields f "
            "LEFT JOIN forktex_data.registers t ON t.id = f.target_register_id "
            "WHERE f.register_id = :rid ORDER BY f.position"
        ),
        {"rid": reg.id},
    )
    fields: list[Field] = []
    field_ids: dict[str, uuid.UUID] = {}
    targets: dict[str, uuid.UUID] = {}
    for row in rows:
        options = _load_json(row.options) or {}
        bare = Field(
            row.name,
            row.type,
            choices=tuple(options.get("choices") or ()),
            target=row.target_name,
            many=bool(options.get("many")),
        )
        default = from_json(bare, _load_json(row.default_value))
        f = Field(
            row.name,
            row.type,
            required=row.required,
            unique=row.is_unique,
            indexed=row.indexed,
            default=default,
            choices=bare.choices,
            target=row.target_name,
            many=bare.many,
            label=options.get("label"),
            autonumber=bool(options.get("autonumber")),
            formula=options.get("formula"),
        ).with_key(row.key)
        fields.append(f)
        field_ids[f.key] = row.id
        if row.target_register_id is not None:
            targets[f.key] = row.target_register_id
    return Definition(
        id=reg.id,
        tenant_id=tenant_id,
        name=reg.name,
        label=reg.label,
        date_field=reg.date_field,
        version=reg.version,
        fields=tuple(fields),
        field_ids=field_ids,
        targets=targets,
        search_config=SearchConfig.from_json(_load_json(getattr(reg, "search", None))),
    )


def pg_error(exc: DBAPIError) -> tuple[str | None, str | None, str]:
    """``(sqlstate, constraint name, detail)`` of a database error raised through asyncpg."""
    cause = exc.orig.__cause__ if exc.orig is not None else None
    sqlstate = getattr(cause, "sqlstate", None) or getattr(exc.orig, "sqlstate", None)
    constraint = getattr(cause, "constraint_name", None)
    detail = getattr(cause, "detail", None) or ""
    return sqlstate, constraint, str(detail)


_DETAIL = re.compile(
    r"^Key \(field_id, value\)=\((?P<field>[0-9a-f-]+), (?P<value>.*)\) already exists"
)


def duplicate_value(detail: str) -> str | None:
    """The duplicated value from a ``uniques_pkey`` violation's detail."""
    match = _DETAIL.match(detail)
    return match["value"] if match else None


def duplicate_field(detail: str) -> uuid.UUID | None:
    """The id of the field whose value is duplicated, from the same detail."""
    match = _DETAIL.match(detail)
    return uuid.UUID(match["field"]) if match else None
