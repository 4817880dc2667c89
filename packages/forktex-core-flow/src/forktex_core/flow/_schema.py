# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The ``forktex_flow`` schema and its migrations, applied by ``forktex_core.db.ensure_schema``.

Every process calls :func:`ensure_schema` once, on first use: one transaction under a
transaction-level advisory lock keyed on the schema name, so processes starting together
never race; applied versions live in ``forktex_flow._forktex_schema_version``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

SCHEMA = "forktex_flow"
# The leader's session advisory lock (two-int4 form: class "Flow", id 2). Migrations lock
# on forktex_core.db.advisory_lock_key("forktex_flow"), a bigint key: no overlap.
LOCK_CLASS = 0x466C6F77
LOCK_LEADER = 2

# Append only: forktex_core.db.ensure_schema checksums applied migrations.
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
    # 3: leases held by executions, values keep their key order, timeouts from first pickup
    f"""
    -- the execution (one claim of a run) holding its lease; checkpoints are fenced on it
    ALTER TABLE {SCHEMA}.runs ADD COLUMN execution uuid;
    -- the workflow timeout in seconds; the deadline is set when a worker first picks it up
    ALTER TABLE {SCHEMA}.runs ADD COLUMN timeout double precision;
    -- json keeps the text as written (jsonb reorders keys), like steps.output
    ALTER TABLE {SCHEMA}.runs
        ALTER COLUMN input TYPE json USING input::json,
        ALTER COLUMN output TYPE json USING output::json;
    ALTER TABLE {SCHEMA}.signals ALTER COLUMN payload TYPE json USING payload::json;
    -- a claim must only ever use runs_claim_version: with a plain (wake_at) index the
    -- planner scanned every runnable run of versions the worker lacks
    DROP INDEX {SCHEMA}.runs_claim;
    -- heartbeats renew leases by run id and execution now, not by worker
    DROP INDEX {SCHEMA}.runs_worker;
    -- the leader's "anything due?" checks
    CREATE INDEX runs_pending ON {SCHEMA}.runs (wake_at) WHERE status = 'pending';
    CREATE INDEX runs_timers ON {SCHEMA}.runs (wake_at)
        WHERE status = 'waiting' AND wake_at IS NOT NULL;
    """,
    # 4: operators' views: keyset pages of runs by status, newest first, and exact counts of
    # the statuses of live runs (index-only scans of their few entries)
    f"""
    CREATE INDEX runs_status_created ON {SCHEMA}.runs (status, created_at, id);
    """,
    # 5: run events (ctx.set_event): an event checkpoint wakes flow.get_event's waiters on the
    # channel of finished runs, in the transaction that records it (also when fork copies it)
    f"""
    CREATE FUNCTION {SCHEMA}.notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('forktex_flow_done', NEW.run_id::text);
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER steps_event_notify AFTER INSERT ON {SCHEMA}.steps
        FOR EACH ROW WHEN (NEW.kind = 'event') EXECUTE FUNCTION {SCHEMA}.notify_event();
    """,
]

LATEST = len(MIGRATIONS)


async def ensure_schema(engine: AsyncEngine) -> int:
    """Create or migrate the ``forktex_flow`` schema; safe under concurrent start-up.

    ``engine`` is a SQLAlchemy async engine on the database (disposed here). Returns the
    schema version now in force. (forktex_core.db is imported here, not at module import.)
    """
    from forktex_core.db import ensure_schema as ensure_db_schema

    try:
        state = await ensure_db_schema(engine, SCHEMA, MIGRATIONS)
    finally:
        await engine.dispose()
    return state.version
