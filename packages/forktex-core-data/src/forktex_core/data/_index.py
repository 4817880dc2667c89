# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Per-(register, field) expression indexes, built and dropped ``CONCURRENTLY`` so writers
are never blocked. The indexed expression is :func:`typed_expr` — the very expression the
query compiler emits — plus the row id (the keyset tie-break), restricted to one register
by a partial-index predicate."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ._compile import register_literal, typed_expr
from ._fields import STRINGS, Field, check_key


def index_name(register_id: uuid.UUID, key: str) -> str:
    """``fdx_<register hex>_<key>``: unique per register and field storage key."""
    return f"fdx_{register_id.hex}_{check_key(key)}"


def index_prefix(register_id: uuid.UUID) -> str:
    return f"fdx_{register_id.hex}_"


async def create_index(engine: AsyncEngine, register_id: uuid.UUID, f: Field) -> str:
    """Build the index of ``f`` concurrently (idempotent; an invalid leftover from an
    interrupted build is dropped and rebuilt). Returns its name."""
    name = index_name(register_id, f.key)
    ddl = (
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON forktex_data.rows '
        f"({typed_expr(f, alias='')}, id) WHERE register_id = {register_literal(register_id)}"
    )
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        valid = (
            await conn.execute(
                text(
                    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'forktex_data' AND c.relname = :name"
                ),
                {"name": name},
            )
        ).scalar_one_or_none()
        if valid is False:
            await conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS forktex_data."{name}"'))
        await conn.execute(text(ddl))
        if f.kind in STRINGS:
            # Postgres ignores the statistics of partial indexes, so without this a filter on
            # the field is guessed at 0.5% of rows and the planner may sort a large share of
            # the register instead of walking the index of the sort field. Text expressions
            # never fail to evaluate, so one statistics object per storage key can safely
            # cover every register using that key (values of a key rarely repeat across
            # registers, and the register_id condition scales the estimate down).
            key = check_key(f.key)
            await conn.execute(
                text(
                    f'CREATE STATISTICS IF NOT EXISTS forktex_data."fds_{key}" '
                    f"ON ({typed_expr(f, alias='')}) FROM forktex_data.rows"
                )
            )
    return name


async def drop_index(engine: AsyncEngine, name: str) -> None:
    """Drop one of our indexes concurrently (no-op when it does not exist)."""
    if not name.startswith("fdx_") or not name.replace("_", "").isalnum():
        raise ValueError(f"not a forktex_data index name: {name!r}")
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS forktex_data."{name}"'))


async def register_indexes(engine: AsyncEngine, register_id: uuid.UUID) -> list[str]:
    """Names of the indexes that belong to a register."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'forktex_data' "
                "AND starts_with(indexname, :prefix)"
            ),
            {"prefix": index_prefix(register_id)},
        )
        return [row[0] for row in rows]
