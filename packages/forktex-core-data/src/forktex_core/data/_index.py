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
only ever sees that field's values and evaluating it on any row cannot fail.

An indexed single_select field also gets a *count index* per choice: the live rows of the
register holding that choice, keyed by tenant only (deduplicated to a few bytes per row).
Its predicate is the very condition ``where(field=choice)`` compiles to, so Postgres
counts such rows with an index-only scan instead of visiting each one (an expression index
cannot give index-only scans). A storage key's choices never change (a change of choices
is a change of type, which moves the field to a new key), so these indexes are built and
dropped with the field's own index and never need maintenance in between."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._compile import register_literal, sort_expr
from ._definition import pg_error
from ._errors import IndexBuildFailed
from ._fields import Field, FieldType, check_key
from ._limits import SORT_CHARS

MAX_COUNTED_CHOICES = 64
"""A single_select field with more choices gets no count indexes (each is an index of the
shared rows table the planner looks at for every query)."""


def index_name(register_id: uuid.UUID, key: str) -> str:
    """``fdx_<register hex>_<key>``: unique per register and field storage key."""
    return f"fdx_{register_id.hex}_{check_key(key)}"


def choice_index_prefix(register_id: uuid.UUID, key: str) -> str:
    """``fdc_<register hex>_<key>_``: what the names of a field's count indexes start with."""
    return f"fdc_{register_id.hex}_{check_key(key)}_"


def choice_index_name(register_id: uuid.UUID, key: str, choice: str) -> str:
    """The count index of one choice (named by a hash of it: at most 60 characters)."""
    digest = hashlib.sha256(choice.encode()).hexdigest()[:12]
    return choice_index_prefix(register_id, key) + digest


def counted_choices(f: Field) -> tuple[str, ...]:
    """The choices of single_select ``f`` that get a count index: every one, when each is
    shorter than the sort key (``where(field=choice)`` then compiles to the sort key alone,
    the predicate of the index) and there are at most ``MAX_COUNTED_CHOICES``; else none."""
    if f.kind is not FieldType.SINGLE_SELECT or f.key.startswith("$"):
        return ()
    if len(f.choices) > MAX_COUNTED_CHOICES or any(len(c) >= SORT_CHARS for c in f.choices):
        return ()
    return f.choices


def choice_index_ddl(
    register_id: uuid.UUID, f: Field, choice: str, literal: str, *, concurrently: bool
) -> str:
    """``CREATE INDEX`` of the count index of ``choice`` (``IF NOT EXISTS``); ``literal`` is
    the choice quoted by the server (:func:`quote`), the only tenant text in any DDL."""
    how = "CONCURRENTLY " if concurrently else ""
    return (
        f'CREATE INDEX {how}IF NOT EXISTS "{choice_index_name(register_id, f.key, choice)}" '
        f"ON forktex_data.rows (tenant_id) WHERE register_id = {register_literal(register_id)} "
        f"AND archived_at IS NULL AND {sort_expr(f, alias='')} = {literal}"
    )


async def quote(conn: AsyncConnection, value: str) -> str:
    """``value`` as a SQL string literal, quoted by the server itself (so by its own rules
    for backslashes and quotes, whatever ``standard_conforming_strings`` says)."""
    literal = (
        await conn.execute(text("SELECT quote_literal(CAST(:v AS text))"), {"v": value})
    ).scalar_one()
    return str(literal)


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


async def _build(conn: AsyncConnection, name: str, ddl: str, started: list[str]) -> None:
    """Build one index unless a valid one exists (an invalid leftover of an interrupted
    build is dropped first); ``started`` collects what this call began to build."""
    state = await _valid(conn, name)
    if state is True:
        return
    started.append(name)
    if state is False:
        await conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS forktex_data."{name}"'))
    await conn.execute(text(ddl))


async def create_index(engine: AsyncEngine, register_id: uuid.UUID, f: Field) -> str:
    """Build the index of ``f`` concurrently, with its count indexes (single_select) and
    its statistics object (idempotent; an invalid leftover of an interrupted build is
    dropped and rebuilt). Returns its name.

    When a build fails, every index this call started (Postgres leaves an INVALID one
    behind) is dropped again before :class:`IndexBuildFailed` is raised. When the caller
    is cancelled, the drops run in the background and the cancellation propagates at once."""
    name = index_name(register_id, f.key)
    started: list[str] = []
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await _build(conn, name, index_ddl(register_id, f, concurrently=True), started)
            for choice in counted_choices(f):
                literal = await quote(conn, choice)
                ddl = choice_index_ddl(register_id, f, choice, literal, concurrently=True)
                await _build(conn, choice_index_name(register_id, f.key, choice), ddl, started)
            await conn.execute(text(stats_ddl(f)))
    except BaseException as exc:
        if started:
            cleanup = asyncio.ensure_future(_discard(engine, started))
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


async def _discard(engine: AsyncEngine, names: list[str]) -> None:
    """Drop the named indexes concurrently after a failure, unbounded by the session's
    ``statement_timeout`` and never raising a database error (the original failure is
    what the caller reports)."""
    with contextlib.suppress(SQLAlchemyError, OSError):
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("SET statement_timeout = 0"))
            try:
                for name in names:
                    await conn.execute(
                        text(f'DROP INDEX CONCURRENTLY IF EXISTS forktex_data."{name}"')
                    )
            finally:
                await conn.execute(text("RESET statement_timeout"))


async def discard_index(engine: AsyncEngine, register_id: uuid.UUID, key: str) -> None:
    """:func:`drop_index` for cleaning up after a failure: not bound by the session's
    ``statement_timeout`` (the drop waits for transactions still using the table), and
    never raising a database error (the original failure is what the caller reports)."""
    with contextlib.suppress(SQLAlchemyError, OSError):
        await drop_index(engine, register_id, key, unbounded=True)


async def drop_index(
    engine: AsyncEngine, register_id: uuid.UUID, key: str, *, unbounded: bool = False
) -> None:
    """Drop a field's index and its count indexes concurrently, and its statistics (no-op
    when absent); ``unbounded`` lifts the session's ``statement_timeout`` meanwhile."""
    name = index_name(register_id, key)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        if unbounded:
            await conn.execute(text("SET statement_timeout = 0"))
        try:
            counters = await _named_like(conn, choice_index_prefix(register_id, key))
            for index in [name, *counters]:
                await conn.execute(
                    text(f'DROP INDEX CONCURRENTLY IF EXISTS forktex_data."{index}"')
                )
            await conn.execute(text(f'DROP STATISTICS IF EXISTS forktex_data."{_stats_name(key)}"'))
        finally:
            if unbounded:
                await conn.execute(text("RESET statement_timeout"))


async def _named_like(conn: AsyncConnection, prefix: str) -> list[str]:
    """Names of the indexes of ``forktex_data`` that start with ``prefix``."""
    rows = await conn.execute(
        text(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'forktex_data' "
            "AND starts_with(indexname, :prefix) ORDER BY 1"
        ),
        {"prefix": prefix},
    )
    return [row[0] for row in rows]


async def register_index_keys(engine: AsyncEngine, register_id: uuid.UUID) -> list[str]:
    """Storage keys of the fields of a register that have an index or count indexes
    (valid or not)."""
    own, counters = f"fdx_{register_id.hex}_", f"fdc_{register_id.hex}_"
    async with engine.connect() as conn:
        keys = [name.removeprefix(own) for name in await _named_like(conn, own)]
        keys += [
            name.removeprefix(counters).rsplit("_", 1)[0]
            for name in await _named_like(conn, counters)
        ]
    return [check_key(key) for key in dict.fromkeys(keys)]


async def analyze(engine: AsyncEngine) -> None:
    """``ANALYZE forktex_data.rows``: fills the statistics of newly indexed fields now
    rather than at the next automatic analyze."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE forktex_data.rows"))
