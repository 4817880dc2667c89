# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Row storage: JSONB documents keyed by field storage keys, the reference ``links`` and
the ``uniques`` side table that makes Postgres enforce unique fields."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ._compile import ROW_COLUMNS, register_literal
from ._definition import Definition, duplicate_value, pg_error
from ._errors import DataError, InvalidValue, ReferenceViolation, UniqueViolation
from ._fields import Field, FieldType, check_key, dumps, to_json
from ._limits import MAX_DOCUMENT_CHARS
from ._results import RowResult
from ._search import vector_of


def document(d: Definition, values: Mapping[str, Any]) -> tuple[str, str]:
    """The stored JSONB text of coerced values (unset fields are left out) and the
    ``tsvector`` text of its searchable values."""
    data = {f.key: to_json(f, values[f.name]) for f in d.fields if values.get(f.name) is not None}
    doc = dumps(data)
    if len(doc) > MAX_DOCUMENT_CHARS:
        raise InvalidValue(
            f"a row of register {d.name!r} takes {len(doc):,} characters as JSON; the limit "
            f"is {MAX_DOCUMENT_CHARS:,}: store large content elsewhere (e.g. object storage) "
            "and keep a link in the row"
        )
    return doc, vector_of(d.fields, data)


def decode_row(d: Definition, record: Any) -> RowResult:
    """A ``RowResult`` from a ``SELECT {ROW_COLUMNS}`` record."""
    row_id, data, created_at, updated_at, archived_at = record  # ROW_COLUMNS order
    if isinstance(data, str):
        data = json.loads(data)
    values = {}
    for name, key, decode in d.decoders:
        raw = data.get(key)
        values[name] = raw if decode is None or raw is None else decode(raw)
    return RowResult(
        id=row_id,
        register=d.name,
        values=MappingProxyType(values),
        created_at=created_at,
        updated_at=updated_at,
        archived_at=archived_at,
    )


async def lock_version(conn: AsyncConnection, d: Definition) -> int | None:
    """The register's current version, share-locked so no schema change runs until this
    transaction ends (``None``: the register was dropped)."""
    result = await conn.execute(
        text(
            "SELECT version FROM forktex_data.registers WHERE id = :id AND tenant_id = :t "
            "FOR KEY SHARE"
        ),
        {"id": d.id, "t": d.tenant_id},
    )
    version = result.scalar_one_or_none()
    return int(version) if version is not None else None


async def insert_rows(
    conn: AsyncConnection, d: Definition, values: Sequence[Mapping[str, Any]]
) -> list[RowResult]:
    """Insert coerced rows (one statement), their links and unique values."""
    ids = [_new_id() for _ in values]
    docs, vectors = zip(*(document(d, v) for v in values), strict=True)
    result = await conn.execute(
        text(
            "INSERT INTO forktex_data.rows (id, tenant_id, register_id, data, search) "
            f"SELECT t.id, :tenant, {register_literal(d.id)}, CAST(t.doc AS jsonb), "
            "CAST(t.vector AS tsvector) FROM unnest(CAST(:ids AS uuid[]), CAST(:docs AS text[]), "
            "CAST(:vectors AS text[])) AS t(id, doc, vector) RETURNING id, created_at, updated_at"
        ),
        {"tenant": d.tenant_id, "ids": ids, "docs": list(docs), "vectors": list(vectors)},
    )
    stamps = {row.id: row for row in result}
    await write_links(conn, d, ids, values, replace=False)
    await write_uniques(conn, d, ids, [f for f in d.fields if f.unique], replace=False)
    return [
        RowResult(
            id=rid,
            register=d.name,
            values=dict(v),
            created_at=stamps[rid].created_at,
            updated_at=stamps[rid].updated_at,
        )
        for rid, v in zip(ids, values, strict=True)
    ]


def _new_id() -> uuid.UUID:
    from forktex_core.db import uuid7

    return uuid7()


async def select_row(
    conn: AsyncConnection, d: Definition, row_id: uuid.UUID, *, for_update: bool = False
) -> RowResult | None:
    record = (
        await conn.execute(
            text(
                f"SELECT {ROW_COLUMNS} FROM forktex_data.rows r WHERE r.id = :id "
                f"AND r.register_id = {register_literal(d.id)} AND r.tenant_id = :t"
                + (" FOR UPDATE" if for_update else "")
            ),
            {"id": row_id, "t": d.tenant_id},
        )
    ).first()
    return decode_row(d, record) if record is not None else None


async def update_row(
    conn: AsyncConnection, d: Definition, current: RowResult, changed: Mapping[str, Any]
) -> RowResult:
    merged = {**current.values, **changed}
    doc, vector = document(d, merged)
    record = (
        await conn.execute(
            text(
                "UPDATE forktex_data.rows AS r SET data = CAST(:doc AS jsonb), "
                "updated_at = now(), search = CAST(:vector AS tsvector) WHERE r.id = :id "
                f"RETURNING {ROW_COLUMNS}"
            ),
            {"doc": doc, "vector": vector, "id": current.id},
        )
    ).one()
    touched = [f for f in d.fields if f.name in changed]
    await write_links(
        conn, d, [current.id], [merged], replace=True, only=[f for f in touched if _is_ref(f)]
    )
    await write_uniques(conn, d, [current.id], [f for f in touched if f.unique], replace=True)
    return decode_row(d, record)


def _is_ref(f: Field) -> bool:
    return f.kind is FieldType.REFERENCE


async def write_links(
    conn: AsyncConnection,
    d: Definition,
    ids: Sequence[uuid.UUID],
    values: Sequence[Mapping[str, Any]],
    *,
    replace: bool,
    only: Sequence[Field] | None = None,
) -> None:
    """Record reference values in ``links`` (foreign keys make Postgres refuse dangling
    ones), after checking each target is a row of the target register of this tenant."""
    fields = [f for f in (d.fields if only is None else only) if _is_ref(f)]
    for f in fields:
        field_id = d.field_ids[f.key]
        sources: list[uuid.UUID] = []
        targets: list[uuid.UUID] = []
        for rid, v in zip(ids, values, strict=True):
            value = v.get(f.name)
            for target in (value or ()) if f.many else ((value,) if value else ()):
                sources.append(rid)
                targets.append(target)
        if replace:
            await conn.execute(
                text("DELETE FROM forktex_data.links WHERE field_id = :f AND source_id = ANY(:s)"),
                {"f": field_id, "s": list(ids)},
            )
        if not targets:
            continue
        wanted = set(targets)
        found = {
            row[0]
            for row in await conn.execute(
                text(
                    "SELECT id FROM forktex_data.rows WHERE id = ANY(:ids) AND tenant_id = :t "
                    f"AND register_id = {register_literal(d.targets[f.key])} FOR KEY SHARE"
                ),
                {"ids": list(wanted), "t": d.tenant_id},
            )
        }
        missing = sorted(str(t) for t in wanted - found)
        if missing:
            raise ReferenceViolation(
                f"field {f.name!r} of register {d.name!r} references row(s) "
                f"{', '.join(missing[:5])} that do not exist in register {f.target!r}"
            )
        await conn.execute(
            text(
                "INSERT INTO forktex_data.links (field_id, source_id, target_id, tenant_id) "
                "SELECT :f, s, t, :tenant FROM unnest(CAST(:s AS uuid[]), CAST(:ts AS uuid[])) "
                "AS u(s, t) ON CONFLICT DO NOTHING"
            ),
            {"f": field_id, "s": sources, "ts": targets, "tenant": d.tenant_id},
        )


async def write_uniques(
    conn: AsyncConnection,
    d: Definition,
    ids: Sequence[uuid.UUID],
    fields: Sequence[Field],
    *,
    replace: bool,
) -> None:
    """Claim the rows' values of unique fields in ``uniques`` (primary key: field, value).
    A taken value fails here, atomically, whoever wrote it first."""
    for f in fields:
        field_id = d.field_ids[f.key]
        if replace:
            await conn.execute(
                text("DELETE FROM forktex_data.uniques WHERE field_id = :f AND row_id = ANY(:ids)"),
                {"f": field_id, "ids": list(ids)},
            )
        key = check_key(f.key)
        try:
            await conn.execute(
                text(
                    "INSERT INTO forktex_data.uniques (field_id, value, row_id) "
                    f"SELECT :f, r.data->>'{key}', r.id FROM forktex_data.rows r "
                    f"WHERE r.id = ANY(:ids) AND r.data->>'{key}' IS NOT NULL"
                ),
                {"f": field_id, "ids": list(ids)},
            )
        except DBAPIError as exc:
            raise unique_error(exc, d, f) from None


def unique_error(exc: DBAPIError, d: Definition, f: Field) -> DataError | DBAPIError:
    sqlstate, _constraint, detail = pg_error(exc)
    if sqlstate != "23505":
        return exc
    value = duplicate_value(detail)
    return UniqueViolation(
        f"field {f.name!r} of register {d.name!r} is unique and the value "
        f"{value if value is not None else '(given)'} is already taken by another row",
        field=f.name,
        value=value,
    )


async def refresh_search(
    conn: AsyncConnection, register_id: uuid.UUID, fields: Sequence[Field]
) -> None:
    """Rewrite the search vector of every row of a register from its stored values (after
    the set of searchable fields changed), in batches."""
    last = uuid.UUID(int=0)
    while True:
        batch = (
            await conn.execute(
                text(
                    "SELECT id, data FROM forktex_data.rows "
                    f"WHERE register_id = {register_literal(register_id)} AND id > :last "
                    "ORDER BY id LIMIT 2000"
                ),
                {"last": last},
            )
        ).all()
        if not batch:
            return
        ids = [row.id for row in batch]
        vectors = [
            vector_of(fields, json.loads(row.data) if isinstance(row.data, str) else row.data)
            for row in batch
        ]
        await conn.execute(
            text(
                "UPDATE forktex_data.rows AS r SET search = CAST(u.vector AS tsvector) FROM "
                "unnest(CAST(:ids AS uuid[]), CAST(:vectors AS text[])) AS u(id, vector) "
                "WHERE r.id = u.id"
            ),
            {"ids": ids, "vectors": vectors},
        )
        last = ids[-1]


async def referencing(conn: AsyncConnection, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> str:
    """``"'invoices'.'customer'"``-style list of what references any of ``ids``."""
    rows = await conn.execute(
        text(
            "SELECT DISTINCT g.name AS register, f.name AS field FROM forktex_data.links l "
            "JOIN forktex_data.fields f ON f.id = l.field_id "
            "JOIN forktex_data.registers g ON g.id = f.register_id "
            "WHERE l.target_id = ANY(:ids) AND l.tenant_id = :t ORDER BY 1, 2"
        ),
        {"ids": list(ids), "t": tenant_id},
    )
    return ", ".join(f"{r.register!r}.{r.field!r}" for r in rows) or "(another row)"
