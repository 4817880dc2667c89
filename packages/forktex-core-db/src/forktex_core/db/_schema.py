# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``ensure_schema()``: create and migrate a library-owned Postgres schema, safely under
concurrent start-up (transaction-level advisory lock), idempotently (version table)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._connectivity import raw_statement_failure
from ._errors import DatabaseUnavailable, InvalidArgument, SchemaMigrationError

Migration = str | Callable[[AsyncConnection], Awaitable[Any]]
"""One migration step: SQL text (may hold several statements) or an async callable."""

VERSION_TABLE = "_forktex_schema_version"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class SchemaState:
    """What :func:`ensure_schema` found and did.

    Example::

        state = await ensure_schema(engine, "forktex_flow", migrations=MIGRATIONS)
        log.info("schema %s at v%d (applied %s)", state.schema, state.version, state.applied)
    """

    schema: str
    version: int
    applied: tuple[int, ...]


def advisory_lock_key(schema: str) -> int:
    """The signed 64-bit advisory-lock key ``ensure_schema`` uses for ``schema``.

    Example::

        await conn.execute(text("select pg_advisory_xact_lock(:k)"),
                           {"k": advisory_lock_key("forktex_flow")})
    """
    if not isinstance(schema, str) or not _NAME.match(schema):
        raise InvalidArgument(
            f"schema name {schema!r} is not allowed: use 1-63 lowercase letters, digits and "
            "underscores, starting with a letter or underscore (e.g. 'forktex_flow')"
        )
    digest = hashlib.blake2b(f"forktex_core.db.ensure_schema:{schema}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _checksum(migration: Migration) -> str | None:
    if isinstance(migration, str):
        return hashlib.sha256(migration.strip().encode()).hexdigest()
    return None


def _describe(migration: Migration) -> str:
    if isinstance(migration, str):
        first = migration.strip().splitlines()[0] if migration.strip() else ""
        return first[:200]
    return getattr(migration, "__qualname__", repr(migration))[:200]


def _validate(schema: Any, migrations: Any) -> list[Migration]:
    advisory_lock_key(schema)  # validates the name
    if schema.startswith("pg_") or schema in ("information_schema", "public"):
        raise InvalidArgument(
            f"schema name {schema!r} is reserved; pick a schema of your own like 'forktex_flow'"
        )
    if isinstance(migrations, (str, bytes)) or not isinstance(migrations, Sequence):
        raise InvalidArgument(
            "migrations must be an ordered list of SQL strings or async callables "
            f"(conn) -> None, got {migrations!r:.80}"
        )
    for index, step in enumerate(migrations, start=1):
        if isinstance(step, str):
            if not step.strip():
                raise InvalidArgument(f"migration {index} of {schema!r} is an empty SQL string")
        elif not callable(step):
            raise InvalidArgument(
                f"migration {index} of {schema!r} must be SQL text or an async callable "
                f"taking the connection, got {step!r:.80}"
            )
    return list(migrations)


async def ensure_schema(
    bind: AsyncEngine | AsyncConnection,
    schema: str,
    migrations: Sequence[Migration],
) -> SchemaState:
    """Create ``schema`` if needed and apply the migrations it has not seen yet, in order.

    Migration *n* (1-based position in ``migrations``) is recorded in
    ``<schema>._forktex_schema_version`` once applied; only append to the list, never edit
    or reorder applied entries (an edited SQL migration is detected by checksum and raises).
    Everything runs in one transaction under ``pg_advisory_xact_lock`` keyed on the schema
    name, so any number of processes may call it at start-up: one migrates, the others wait
    and then find nothing to do. While migrations run, ``search_path`` is ``<schema>, public``
    so unqualified names land in the schema. SQL strings may hold several statements; a
    callable receives the ``AsyncConnection``.

    ``bind`` is an engine (a connection is taken and committed) or a connection (used as is;
    if it has a transaction open, the caller commits it).

    Raises :class:`SchemaMigrationError` (nothing applied) when a migration fails, when the
    database is ahead of ``migrations``, or on a checksum mismatch;
    :class:`DatabaseUnavailable` (nothing applied) when the server cannot be reached, stops
    answering within the command timeout, or the connection is lost. Migrations run under
    the engine's command timeout: for a long one, pass a connection with a raised limit
    (``async with engine.connect() as conn, command_timeout(conn, None):``).

    Example::

        MIGRATIONS = [
            "CREATE TABLE runs (id uuid PRIMARY KEY, status text NOT NULL)",
            "ALTER TABLE runs ADD COLUMN started_at timestamptz",
        ]
        await ensure_schema(engine, "forktex_flow", migrations=MIGRATIONS)
    """
    steps = _validate(schema, migrations)
    if isinstance(bind, AsyncEngine):
        async with bind.begin() as conn:
            return await _ensure(conn, schema, steps)
    if isinstance(bind, AsyncConnection):
        if bind.in_transaction():
            return await _ensure(bind, schema, steps)
        async with bind.begin():
            return await _ensure(bind, schema, steps)
    raise InvalidArgument(
        f"ensure_schema() needs an AsyncEngine or AsyncConnection, got {bind!r:.80}"
    )


async def _run_sql(conn: AsyncConnection, sql: str) -> None:
    raw = await conn.get_raw_connection()
    try:
        # Simple-query protocol: a migration may hold several statements.
        await raw.driver_connection.execute(sql)  # type: ignore[union-attr]
    except Exception as exc:
        unavailable = await raw_statement_failure(conn, exc)
        if unavailable is None:
            raise
        raise unavailable from exc


async def _ensure(conn: AsyncConnection, schema: str, steps: list[Migration]) -> SchemaState:
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_lock_key(schema)}
    )
    quoted = f'"{schema}"'  # validated against _NAME: safe to quote literally
    table = f'{quoted}."{VERSION_TABLE}"'
    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
    await conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {table} ("
            "version integer PRIMARY KEY, "
            "description text NOT NULL, "
            "checksum text, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
    )
    done = {
        row.version: row.checksum
        for row in await conn.execute(text(f"SELECT version, checksum FROM {table}"))
    }
    if done and max(done) > len(steps):
        raise SchemaMigrationError(
            f"schema {schema!r} is at version {max(done)} but this code knows only "
            f"{len(steps)} migration(s): the database was migrated by newer code; upgrade "
            "this service instead of running it against a newer schema"
        )
    for version, checksum in done.items():
        expected = _checksum(steps[version - 1])
        if checksum is not None and expected is not None and checksum != expected:
            raise SchemaMigrationError(
                f"migration {version} of schema {schema!r} was edited after it was applied "
                "(checksum differs); never change applied migrations: append a new one"
            )
    pending = [v for v in range(1, len(steps) + 1) if v not in done]
    if not pending:
        return SchemaState(schema, len(steps), ())
    old_path = (await conn.execute(text("SELECT current_setting('search_path')"))).scalar_one()
    await conn.execute(
        text("SELECT set_config('search_path', :path, true)"), {"path": f"{quoted}, public"}
    )
    for version in pending:
        step = steps[version - 1]
        try:
            if isinstance(step, str):
                await _run_sql(conn, step)
            else:
                await step(conn)
        except DatabaseUnavailable:
            raise  # not the migration's fault: the server went away or stopped answering
        except Exception as exc:
            raise SchemaMigrationError(
                f"migration {version} of schema {schema!r} ({_describe(step)!r}) failed: "
                f"{type(exc).__name__}: {exc}; nothing was applied (the transaction rolls back)"
            ) from exc
        await conn.execute(
            text(f"INSERT INTO {table} (version, description, checksum) VALUES (:v, :d, :c)"),
            {"v": version, "d": _describe(step), "c": _checksum(step)},
        )
    await conn.execute(text("SELECT set_config('search_path', :path, true)"), {"path": old_path})
    return SchemaState(schema, len(steps), tuple(pending))
