# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The ``forktex_flow`` schema: idempotent, advisory-locked migrations.

Every process calls :func:`ensure_schema` on first use. The fast path is one read of the
version table; otherwise the migration runs in one transaction under
``pg_advisory_xact_lock`` so processes starting together never race.
"""

from __future__ import annotations

import asyncpg

SCHEMA = "forktex_flow"
# Advisory lock keys (two int4 form): class "Flow" and an id per purpose.
LOCK_CLASS = 0x466C6F77
LOCK_MIGRATE = 1
LOCK_LEADER = 2

MIGRATIONS: list[str] = [
    # 1: initial schema
    f"""
    CREATE TABLE {SCHEMA}.runs (
        id                uuid PRIMARY KEY,
        workflow          text NOT NULL,
        version           integer NOT NULL,
        status            text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending','running','waiting','succeeded','failed',
                              'cancelled','dead')),
        input             jsonb,
        output            jsonb,
        error             jsonb,
        idempotency_key   text,
        worker            text,
        lease_until       timestamptz,
        recovery_attempts integer NOT NULL DEFAULT 0,
        wake_at           timestamptz,
        deadline          timestamptz,
        metadata          jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        created_at        timestamptz NOT NULL DEFAULT now(),
        updated_at        timestamptz NOT NULL DEFAULT now(),
        started_at        timestamptz,
        finished_at       timestamptz,
        CONSTRAINT runs_idempotency UNIQUE (workflow, idempotency_key)
    );
    -- claim: runnable runs in wake order
    CREATE INDEX runs_claim ON {SCHEMA}.runs (wake_at)
        WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL;
    -- heartbeat (by worker) and reaper (by lease)
    CREATE INDEX runs_worker ON {SCHEMA}.runs (worker) WHERE status = 'running';
    CREATE INDEX runs_lease ON {SCHEMA}.runs (lease_until) WHERE status = 'running';
    -- retention and listings
    CREATE INDEX runs_finished ON {SCHEMA}.runs (finished_at)
        WHERE status IN ('succeeded', 'failed', 'cancelled', 'dead');
    CREATE INDEX runs_created ON {SCHEMA}.runs (created_at, id);
    CREATE INDEX runs_workflow_created ON {SCHEMA}.runs (workflow, created_at);

    CREATE TABLE {SCHEMA}.steps (
        run_id      uuid NOT NULL REFERENCES {SCHEMA}.runs (id) ON DELETE CASCADE,
        seq         integer NOT NULL,
        name        text NOT NULL,
        kind        text NOT NULL DEFAULT 'step',
        status      text NOT NULL
            CHECK (status IN ('completed', 'failed', 'retrying', 'waiting')),
        attempt     integer NOT NULL DEFAULT 1,
        output      json,
        error       json,
        started_at  timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        PRIMARY KEY (run_id, seq)
    );

    CREATE TABLE {SCHEMA}.signals (
        id           bigserial PRIMARY KEY,
        run_id       uuid NOT NULL REFERENCES {SCHEMA}.runs (id) ON DELETE CASCADE,
        name         text NOT NULL,
        payload      jsonb,
        created_at   timestamptz NOT NULL DEFAULT now(),
        consumed_at  timestamptz,
        consumed_seq integer
    );
    CREATE INDEX signals_unconsumed ON {SCHEMA}.signals (run_id, name, id)
        WHERE consumed_at IS NULL;
    CREATE INDEX signals_run ON {SCHEMA}.signals (run_id);

    CREATE TABLE {SCHEMA}.workers (
        id          text PRIMARY KEY,
        hostname    text NOT NULL,
        pid         integer NOT NULL,
        started_at  timestamptz NOT NULL DEFAULT now(),
        heartbeat   timestamptz NOT NULL DEFAULT now(),
        versions    jsonb NOT NULL DEFAULT '[]'::jsonb,
        leader_pid  integer
    );
    """,
    # 2: version-aware claims and metadata filtering (graphs, versioning gate, hooks)
    f"""
    -- claim: one index probe per (workflow, version) a worker has registered
    CREATE INDEX runs_claim_version ON {SCHEMA}.runs (workflow, version, wake_at)
        WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL;
    -- list_runs(metadata={{...}}): containment over the hooks' metadata (e.g. org_id)
    CREATE INDEX runs_metadata ON {SCHEMA}.runs USING gin (metadata jsonb_path_ops);
    """,
]

LATEST = len(MIGRATIONS)


async def current_version(conn: asyncpg.Connection) -> int:
    """The applied schema version (0 when the schema does not exist yet)."""
    exists = await conn.fetchval(f"SELECT to_regclass('{SCHEMA}.schema_version') IS NOT NULL")
    if not exists:
        return 0
    value = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_version")
    return int(value)


async def ensure_schema(conn: asyncpg.Connection) -> int:
    """Create or migrate the ``forktex_flow`` schema; safe under concurrent start-up.

    Returns the schema version now in force.
    """
    if await current_version(conn) >= LATEST:
        return LATEST
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, LOCK_MIGRATE)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        version = int(
            await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_version")
        )
        for number in range(version + 1, LATEST + 1):
            await conn.execute(MIGRATIONS[number - 1])
            await conn.execute(f"INSERT INTO {SCHEMA}.schema_version (version) VALUES ($1)", number)
    return LATEST
