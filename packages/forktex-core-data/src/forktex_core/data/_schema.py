# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The ``forktex_data`` schema: migrations applied through ``forktex_core.db.ensure_schema``."""

from __future__ import annotations

import asyncio
import weakref

from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.db import SchemaState, ensure_schema

from ._errors import InvalidValue

SCHEMA = "forktex_data"

MIGRATIONS: list[str] = [
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
            f"got {engine!r:.80}"
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
