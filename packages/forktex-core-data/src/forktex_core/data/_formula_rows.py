# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Schema changes around stored formula fields, in the change's transaction: recomputing
the existing rows (a formula field added, a formula changed), keeping formulas valid when
a field they read is renamed, and refusing changes that would break them."""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ._compile import ROW_COLUMNS, register_literal
from ._definition import Definition, stored_options
from ._errors import InvalidDefinition, InvalidValue
from ._fields import Field
from ._formula import rename_in_formula
from ._rows import decode_row, document

#: Rows read and rewritten per statement.
RECOMPUTE_CHUNK = 1000


async def recompute_formulas(conn: AsyncConnection, d: Definition) -> int:
    """Store the formula values of every row of the register, computed with ``d`` (its
    definition as it is about to be), in chunks of :data:`RECOMPUTE_CHUNK` rows; returns
    how many rows were rewritten. A value a formula field cannot hold raises
    :class:`InvalidDefinition` naming the row: the caller's transaction then rolls back
    and nothing is half-written. ``updated_at`` stays: a schema change edits no row."""
    last = uuid.UUID(int=0)
    done = 0
    while True:
        records = (
            await conn.execute(
                text(
                    f"SELECT {ROW_COLUMNS} FROM forktex_data.rows r "
                    f"WHERE r.register_id = {register_literal(d.id)} AND r.id > :last "
                    f"ORDER BY r.id LIMIT {RECOMPUTE_CHUNK}"
                ),
                {"last": last},
            )
        ).all()
        if not records:
            return done
        ids, docs, vectors = [], [], []
        for record in records:
            row = decode_row(d, record)
            try:
                doc, vector = document(d, dict(row.values))
            except InvalidValue as exc:
                raise InvalidDefinition(
                    f"row {row.id} of register {d.name!r}: {exc}; nothing was changed"
                ) from None
            ids.append(row.id)
            docs.append(doc)
            vectors.append(vector)
        await conn.execute(
            text(
                "UPDATE forktex_data.rows AS r SET data = CAST(u.doc AS jsonb), "
                "search = CAST(u.vector AS tsvector) FROM unnest(CAST(:ids AS uuid[]), "
                "CAST(:docs AS text[]), CAST(:vectors AS text[])) AS u(id, doc, vector) "
                f"WHERE r.id = u.id AND r.register_id = {register_literal(d.id)}"
            ),
            {"ids": ids, "docs": docs, "vectors": vectors},
        )
        done += len(ids)
        last = ids[-1]


def check_unread(d: Definition, f: Field, change: str, why: str = "") -> None:
    """InvalidDefinition naming the formula fields that read ``f`` (``change`` would
    break their formulas); returns when none does."""
    readers = d.formulas.dependents(f.name)
    if readers:
        raise InvalidDefinition(
            f"cannot {change} field {f.name!r} of register {d.name!r}{why}: the formula of "
            f"field(s) {', '.join(map(repr, readers))} reads it; change those formulas "
            "(set_formula) or remove those fields first"
        )


async def _store_formula(conn: AsyncConnection, d: Definition, f: Field) -> None:
    await conn.execute(
        text("UPDATE forktex_data.fields SET options = CAST(:o AS jsonb) WHERE id = :id"),
        {"o": stored_options(f), "id": d.field_ids[f.key]},
    )


async def rename_readers(conn: AsyncConnection, d: Definition, old: str, new: str) -> None:
    """Rewrite the formulas reading field ``old`` to read ``new`` (it is being renamed)."""
    for f in d.fields:
        if f.formula is not None and old in d.formulas.reads[f.name]:
            await _store_formula(
                conn, d, replace(f, formula=rename_in_formula(f.formula, old, new))
            )


async def change_formula(conn: AsyncConnection, d: Definition, f: Field, source: str) -> int:
    """Give formula field ``f`` the formula ``source`` (checked against the register's
    fields first) and recompute every row; returns how many rows were rewritten."""
    if f.formula is None:
        formulas = [x.name for x in d.fields if x.formula is not None]
        raise InvalidDefinition(
            f"field {f.name!r} of register {d.name!r} has no formula; formula fields: "
            f"{', '.join(map(repr, formulas)) or '(none)'} (add one with "
            "add_field(Field(..., formula=...)))"
        )
    changed = replace(f, formula=source)  # InvalidDefinition: not a formula's text
    after = replace(d, fields=tuple(changed if x.key == f.key else x for x in d.fields))
    _ = after.formulas  # InvalidDefinition: unknown fields, types, cycles
    await _store_formula(conn, d, changed)
    return await recompute_formulas(conn, after)
