# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The ``forktex_data`` schema: migrations applied through ``forktex_core.db.ensure_schema``."""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from forktex_core.db import Migration, SchemaState, ensure_schema

from ._definition import load_definition
from ._errors import InvalidValue, show
from ._fields import Field
from ._index import choice_index_ddl, counted_choices, index_ddl, quote, stats_ddl
from ._rows import refresh_search

SCHEMA = "forktex_data"


def _json(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


async def _unique_storage_keys(conn: AsyncConnection) -> None:
    """Migration 2: storage keys unique across every register, bounded sort expressions,
    search vectors built by :mod:`._search`.

    Until now each register numbered its fields' keys from ``f1``, so registers of
    different tenants shared keys and a cast in one register's query could be evaluated on
    another register's value (a lossy bitmap heap scan rechecks every row of a page) and
    fail. Every field gets a key from the ``field_keys`` sequence instead, which starts
    above every key ever handed out (so a value left under an old key can never be read as
    a new one); row documents are rewritten, and every index and statistics object is
    rebuilt on the new keys and the current sort expressions, and every row's search vector
    is rebuilt from its values with the library's own word splitting (the same the
    in-memory source uses). All in this transaction: writers wait until it commits."""
    await conn.execute(
        text("CREATE SEQUENCE forktex_data.field_keys MINVALUE 1 MAXVALUE 999999999")
    )
    # Links and unique claims are removed with their row / field, and rows with their
    # register, by the library itself (rows and registers locked first; a write holds its
    # register FOR KEY SHARE, so it cannot exist no more by commit). Only the reference
    # target keeps its foreign key: it is what refuses deleting a referenced row. Five
    # per-row foreign-key checks less on every write.
    await conn.execute(text("ALTER TABLE forktex_data.rows DROP CONSTRAINT rows_register_id_fkey"))
    await conn.execute(
        text(
            "ALTER TABLE forktex_data.links DROP CONSTRAINT links_field_id_fkey, "
            "DROP CONSTRAINT links_source_id_fkey"
        )
    )
    await conn.execute(
        text(
            "ALTER TABLE forktex_data.uniques DROP CONSTRAINT uniques_field_id_fkey, "
            "DROP CONSTRAINT uniques_row_id_fkey"
        )
    )
    # One index less per link and per claim: a row's links are found by the primary key
    # (now led by the source row), its claims by their values.
    await conn.execute(
        text(
            "ALTER TABLE forktex_data.links DROP CONSTRAINT links_pkey, "
            "ADD CONSTRAINT links_pkey PRIMARY KEY (source_id, field_id, target_id)"
        )
    )
    await conn.execute(text("DROP INDEX forktex_data.links_source_idx"))
    await conn.execute(text("DROP INDEX forktex_data.uniques_row_idx"))
    await conn.execute(
        text(
            "SELECT setval('forktex_data.field_keys', "
            "(SELECT coalesce(max(next_key), 1) FROM forktex_data.registers), false)"
        )
    )
    await conn.execute(
        text(
            "CREATE TEMPORARY TABLE _forktex_rekey ON COMMIT DROP AS "
            "SELECT id, register_id, key AS old_key, "
            "'f' || nextval('forktex_data.field_keys') AS new_key FROM forktex_data.fields"
        )
    )
    await conn.execute(
        text(
            "UPDATE forktex_data.rows r SET data = ("
            "SELECT coalesce(jsonb_object_agg(coalesce(k.new_key, e.key), e.value), '{}') "
            "FROM jsonb_each(r.data) e LEFT JOIN _forktex_rekey k "
            "ON k.register_id = r.register_id AND k.old_key = e.key) "
            "WHERE r.data <> '{}'::jsonb"
        )
    )
    await conn.execute(
        text(
            "UPDATE forktex_data.fields f SET key = k.new_key FROM _forktex_rekey k "
            "WHERE k.id = f.id"
        )
    )
    for (index,) in await conn.execute(
        text(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'forktex_data' "
            "AND starts_with(indexname, 'fdx_')"
        )
    ):
        await conn.execute(text(f'DROP INDEX forktex_data."{index}"'))
    for (stats,) in await conn.execute(
        text(
            "SELECT s.stxname FROM pg_statistic_ext s JOIN pg_namespace n "
            "ON n.oid = s.stxnamespace WHERE n.nspname = 'forktex_data' "
            "AND starts_with(s.stxname, 'fds_')"
        )
    ):
        await conn.execute(text(f'DROP STATISTICS forktex_data."{stats}"'))
    registers = (
        await conn.execute(text("SELECT id, tenant_id FROM forktex_data.registers ORDER BY id"))
    ).all()
    for register_id, tenant_id in registers:
        d = await load_definition(conn, tenant_id, register_id=register_id)
        if d is None:  # pragma: no cover - read in this very transaction
            continue
        for f in d.fields:
            if f.indexed:
                await conn.execute(text(index_ddl(d.id, f, concurrently=False)))
                await conn.execute(text(stats_ddl(f)))
        await refresh_search(conn, d.id, d.fields)


async def _count_indexes(conn: AsyncConnection) -> None:
    """Migration 7: the count indexes of indexed single_select fields (see ``_index``),
    built for the fields that exist (in this transaction: writers wait until it commits),
    and a planner hint on the ``data`` column.

    ``data`` as a whole is never grouped by: groupings are of a field's values. A field
    without a statistics object of its own (one not indexed) made Postgres fall back to
    the number of distinct documents — one group per row — so it hashed a field of five
    values serially, expecting a group per row, where a few groups are hashed in parallel
    workers. ``n_distinct = 200`` is what Postgres assumes of a column it knows nothing
    about (filters on ``data`` are estimated from operators and expression statistics,
    never from this number). It takes effect at the table's next ``ANALYZE``."""
    await conn.execute(
        text("ALTER TABLE forktex_data.rows ALTER COLUMN data SET (n_distinct = 200)")
    )
    # Read as stored (not through load_definition: a statement it prepared in an earlier
    # migration of this transaction may be stale after that migration's ALTER TABLE).
    fields = await conn.execute(
        text(
            "SELECT register_id, name, key, options->'choices' AS choices "
            "FROM forktex_data.fields WHERE indexed AND type = 'single_select' "
            "ORDER BY register_id, position"
        )
    )
    for register_id, name, key, choices in fields.all():
        f = Field(name, "single_select", choices=_json(choices), indexed=True).with_key(key)
        for choice in counted_choices(f):
            literal = await quote(conn, choice)
            await conn.execute(
                text(choice_index_ddl(register_id, f, choice, literal, concurrently=False))
            )


MIGRATIONS: list[Migration] = [
    # 1: registers, fields, rows, links, and the IMMUTABLE casts that expression indexes need.
    """
    CREATE TABLE registers (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        name text NOT NULL,
        label text,
        date_field text,
        version integer NOT NULL DEFAULT 1,
        next_key integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT registers_tenant_name_key UNIQUE (tenant_id, name)
    );
    CREATE TABLE fields (
        id uuid PRIMARY KEY,
        register_id uuid NOT NULL REFERENCES registers (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL,
        name text NOT NULL,
        key text NOT NULL,
        type text NOT NULL,
        position integer NOT NULL,
        required boolean NOT NULL DEFAULT false,
        is_unique boolean NOT NULL DEFAULT false,
        indexed boolean NOT NULL DEFAULT false,
        default_value jsonb,
        options jsonb NOT NULL DEFAULT '{}',
        target_register_id uuid REFERENCES registers (id),
        CONSTRAINT fields_register_name_key UNIQUE (register_id, name),
        CONSTRAINT fields_register_key_key UNIQUE (register_id, key)
    );
    CREATE INDEX fields_target_idx ON fields (target_register_id)
        WHERE target_register_id IS NOT NULL;
    CREATE TABLE rows (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        register_id uuid NOT NULL REFERENCES registers (id) ON DELETE CASCADE,
        data jsonb NOT NULL DEFAULT '{}',
        search tsvector,
        archived_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX rows_register_idx ON rows (register_id, id);
    CREATE INDEX rows_search_idx ON rows USING gin (search);
    CREATE TABLE links (
        field_id uuid NOT NULL REFERENCES fields (id) ON DELETE CASCADE,
        source_id uuid NOT NULL REFERENCES rows (id) ON DELETE CASCADE,
        target_id uuid NOT NULL REFERENCES rows (id),
        tenant_id uuid NOT NULL,
        PRIMARY KEY (field_id, source_id, target_id)
    );
    CREATE INDEX links_target_idx ON links (target_id);
    CREATE TABLE uniques (
        field_id uuid NOT NULL REFERENCES fields (id) ON DELETE CASCADE,
        value text NOT NULL,
        row_id uuid NOT NULL REFERENCES rows (id) ON DELETE CASCADE,
        PRIMARY KEY (field_id, value)
    );
    CREATE INDEX uniques_row_idx ON uniques (row_id);
    CREATE INDEX links_source_idx ON links (source_id);
    CREATE FUNCTION iso_date(text) RETURNS date
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT $1::date $$;
    CREATE FUNCTION iso_timestamptz(text) RETURNS timestamptz
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT $1::timestamptz $$;
    """,
    _unique_storage_keys,
    # 3: per-register search configuration (SearchConfig), the defaults for existing ones.
    """
    ALTER TABLE registers ADD COLUMN search jsonb NOT NULL DEFAULT '{}';
    """,
    # 4: who created / last changed a row, as the caller names them (metadata only).
    """
    ALTER TABLE rows ADD COLUMN created_by text, ADD COLUMN updated_by text;
    """,
    # 5: the counters of autonumber fields (a row lock per field numbers rows gaplessly).
    """
    CREATE TABLE autonumbers (
        field_id uuid PRIMARY KEY REFERENCES fields (id) ON DELETE CASCADE,
        last bigint NOT NULL
    );
    """,
    # 6: a register's live rows, deduplicated to a few bytes per row, so count() of a whole
    # register is an index-only scan instead of a read of every row's document.
    """
    CREATE INDEX rows_live_idx ON rows (register_id, tenant_id) WHERE archived_at IS NULL;
    """,
    _count_indexes,
]
"""Append-only: never edit an entry once released (``ensure_schema`` checks checksums)."""

_ready: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Future[SchemaState]] = (
    weakref.WeakKeyDictionary()
)


async def init_schema(engine: AsyncEngine) -> SchemaState:
    """Create or migrate the ``forktex_data`` schema on ``engine`` (idempotent, safe under
    concurrent start-up). Runs automatically the first time an engine is used; call it at
    start-up to fail fast.

    Example::

        from forktex_core.db import get_engine
        await init_schema(get_engine())
    """
    if not isinstance(engine, AsyncEngine):
        raise InvalidValue(
            f"init_schema() needs a SQLAlchemy AsyncEngine (e.g. forktex_core.db.get_engine()), "
            f"got {show(engine, 80)}"
        )
    pending = _ready.get(engine)
    if pending is not None:
        if not pending.done():
            return await asyncio.shield(pending)
        if pending.exception() is None:
            return pending.result()
    future: asyncio.Future[SchemaState] = asyncio.get_running_loop().create_future()
    _ready[engine] = future
    try:
        state = await ensure_schema(engine, SCHEMA, MIGRATIONS)
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # mark retrieved: the next caller retries
        del _ready[engine]
        raise
    future.set_result(state)
    return state
