# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Per-(register, field) expression indexes, built and dropped ``CONCURRENTLY`` so writers
are never blocked, and the statistics object that goes with each.

The indexed expression is :func:`sort_expr` — the very expression the query compiler
emits for sorts and filters — plus the row id (the keyset tie-break), restricted to one
register by a partial-index predicate. Postgres ignores the statistics of partial indexes,
so each indexed field also gets an expression statistics object on the same expression:
without it a filter on the field is guessed at 0.5% of the rows and the planner may walk
the index of the sort field past most of the register instead of fetching the few
matching rows. Storage keys belong to one field for their whole life, so the expression
only ever sees that field's values and evaluating it on any row cannot fail."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._compile import register_literal, sort_expr
from ._definition import pg_error
from ._errors import IndexBuildFailed
from ._fields import Field, check_key


def index_name(register_id: uuid.UUID, key: str) -> str:
    """``fdx_<register hex>_<key>``: unique per register and field storage key."""
    return f"fdx_{register_id.hex}_{check_key(key)}"


def _stats_name(key: str) -> str:
    return f"fds_{check_key(key)}"


def index_ddl(register_id: uuid.UUID, f: Field, *, concurrently: bool) -> str:
    """``CREATE INDEX`` for the field (``IF NOT EXISTS``)."""
    how = "CONCURRENTLY " if concurrently else ""
    return (
        f'CREATE INDEX {how}IF NOT EXISTS "{index_name(register_id, f.key)}" ON '
        f"forktex_data.rows ({sort_expr(f, alias='')}, id) "
        f"WHERE register_id = {register_literal(register_id)}"
    )


def stats_ddl(f: Field) -> str:
    """``CREATE STATISTICS`` on the field's sort expression (``IF NOT EXISTS``)."""
    return (
        f'CREATE STATISTICS IF NOT EXISTS forktex_data."{_stats_name(f.key)}" '
        f"ON ({sort_expr(f, alias='')}) FROM forktex_data.rows"
    )


async def _valid(conn: AsyncConnection, name: str) -> bool | None:
    """Whether the index exists and is valid (``None``: it does not exist)."""
    found = (
        await conn.execute(
            text(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'forktex_data' AND c.relname = :name"
            ),
            {"name": name},
        )
    ).scalar_one_or_none()
    return None if found is None else bool(found)


_cleanups: set[asyncio.Task[None]] = set()


async def create_index(engine: AsyncEngine, register_id: uuid.UUID, f: Field) -> str:
    """Build the index of ``f`` concurrently, with its statistics object (idempotent; an
    invalid leftover of an interrupted build is dropped and rebuilt). Returns its name.

    When the build fails, the index it started (Postgres leaves an INVALID one behind) is
    dropped again before :class:`IndexBuildFailed` is raised. When the caller is
    cancelled, the drop runs in the background and the cancellation propagates at once."""
    name = index_name(register_id, f.key)
    building = False
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            state = await _valid(conn, name)
            if state is not True:
                building = True
                if state is False:
                    await conn.execute(
                        text(f'DROP INDEX CONCURRENTLY IF EXISTS forktex_data."{name}"')
                    )
                await conn.execute(text(index_ddl(register_id, f, concurrently=True)))
            await conn.execute(text(stats_ddl(f)))
    except BaseException as exc:
        if building:
            cleanup = asyncio.ensure_future(discard_index(engine, register_id, f.key))
            _cleanups.add(cleanup)  # keep a reference until it is done
            cleanup.add_done_callback(_cleanups.discard)
            if not isinstance(exc, asyncio.CancelledError):
                await asyncio.shield(cleanup)
        if isinstance(exc, DBAPIError):
            sqlstate, _constraint, _detail = pg_error(exc)
            cause = exc.orig.__cause__ if exc.orig is not None else None
            first_line = (str(cause or exc.orig or "").splitlines() or [""])[0]
            raise IndexBuildFailed(
                f"building the index of field {f.name!r} failed ({sqlstate or 'no SQLSTATE'}: "
                f"{first_line}); the half-built index was removed and nothing changed: retry",
                field=f.name,
            ) from None
        raise
    return name


async def discard_index(engine: AsyncEngine, register_id: uuid.UUID, key: str) -> None:
    """:func:`drop_index` for cleaning up after a failure: not bound by the session's
    ``statement_timeout`` (the drop waits for transactions still using the table), and
    never raising a database error (the original failure is what the caller reports)."""
    with contextlib.suppress(SQLAlchemyError, OSError):
        await drop_index(engine, register_id, key, unbounded=True)


async def drop_index(
    engine: AsyncEngine, register_id: uuid.UUID, key: str, *, unbounded: bool = False
) -> None:
    """Drop a field's index concurrently, and its statistics (no-op when absent);
    ``unbounded`` lifts the session's ``statement_timeout`` meanwhile."""
    name = index_name(register_id, key)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        if unbounded:
            await conn.execute(text("SET statement_timeout = 0"))
        try:
            await conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS forktex_data."{name}"'))
            await conn.execute(text(f'DROP STATISTICS IF EXISTS forktex_data."{_stats_name(key)}"'))
        finally:
            if unbounded:
                await conn.execute(text("RESET statement_timeout"))


async def register_index_keys(engine: AsyncEngine, register_id: uuid.UUID) -> list[str]:
    """Storage keys of the fields of a register that have an index (valid or not)."""
    prefix = f"fdx_{register_id.hex}_"
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'forktex_data' "
                "AND starts_with(indexname, :prefix)"
            ),
            {"prefix": prefix},
        )
        return [check_key(row[0].removeprefix(prefix)) for row in rows]


async def analyze(engine: AsyncEngine) -> None:
    """``ANALYZE forktex_data.rows``: fills the statistics of newly indexed fields now
    rather than at the next automatic analyze."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE forktex_data.rows"))
