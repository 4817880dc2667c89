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

# Migration 5's text (flow-control queues), named because migration 7 derives from it.
_QUEUES = f"""
    CREATE TABLE {SCHEMA}.queues (
        name                  text PRIMARY KEY,
        concurrency           integer CHECK (concurrency > 0),
        worker_concurrency    integer CHECK (worker_concurrency > 0),
        rate_limit            integer CHECK (rate_limit > 0),
        rate_period           double precision CHECK (rate_period > 0),
        priorities            boolean NOT NULL DEFAULT false,
        partition_concurrency integer CHECK (partition_concurrency > 0),
        updated_at            timestamptz NOT NULL DEFAULT now()
    );
    -- the admission instants of rate-limited queues (the sliding window counts them)
    CREATE TABLE {SCHEMA}.queue_starts (
        queue text NOT NULL,
        at    timestamptz NOT NULL
    );
    CREATE INDEX queue_starts_at ON {SCHEMA}.queue_starts (queue, at);
    CREATE SEQUENCE {SCHEMA}.queue_order;
    ALTER TABLE {SCHEMA}.runs
        ADD COLUMN queue text,
        ADD COLUMN priority integer NOT NULL DEFAULT 0,
        ADD COLUMN partition_key text,
        ADD COLUMN queue_seq bigint,
        ADD COLUMN admitted_at timestamptz,
        ADD COLUMN dedup_key text;
    -- plain claims never scan queued runs
    DROP INDEX {SCHEMA}.runs_claim_version;
    CREATE INDEX runs_claim_version ON {SCHEMA}.runs (workflow, version, wake_at)
        WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL AND queue IS NULL;
    -- queued runs not admitted yet, in admission order
    CREATE INDEX runs_queue_waiting ON {SCHEMA}.runs (queue, priority DESC, queue_seq)
        WHERE status = 'pending' AND admitted_at IS NULL AND queue IS NOT NULL;
    -- runs holding a slot of their queue (admitted, not finished), by partition
    CREATE INDEX runs_queue_held ON {SCHEMA}.runs (queue, partition_key, wake_at)
        WHERE admitted_at IS NOT NULL AND status IN ('pending', 'running', 'waiting');
    CREATE INDEX runs_queue_created ON {SCHEMA}.runs (queue, created_at)
        WHERE queue IS NOT NULL;
    -- one live run per (workflow, dedup key)
    CREATE UNIQUE INDEX runs_dedup ON {SCHEMA}.runs (workflow, dedup_key)
        WHERE dedup_key IS NOT NULL AND status IN ('pending', 'running', 'waiting');

    -- The claim of a worker that serves queues, in one round trip. A function because
    -- admission must be exact: each statement of a VOLATILE plpgsql function takes a fresh
    -- snapshot, so after the queue row's lock is granted the counts see every admission
    -- committed before (a single statement would count on the snapshot it started with).
    CREATE FUNCTION {SCHEMA}.claim_queued(
        p_limit integer, p_worker text, p_names text[], p_versions integer[],
        p_lease double precision, p_exclude uuid[], p_queues text[], p_active integer[],
        p_timeouts double precision[])
    RETURNS TABLE (id uuid, execution uuid, workflow text, version integer, input text,
                   recovery_attempts integer, deadline double precision, metadata text,
                   db_now double precision, queue text, seqs integer[], names text[],
                   kinds text[], statuses text[], attempts integer[], outputs text[],
                   errors text[])
    LANGUAGE plpgsql VOLATILE AS $fn$
    #variable_conflict use_column
    DECLARE
        v_ids uuid[];
        v_got uuid[];
        v_left integer;
        v_room integer;
        v_name text;
        v_q {SCHEMA}.queues%ROWTYPE;
    BEGIN
        -- runs outside queues: the plain claim
        SELECT coalesce(array_agg(c.id), '{{}}') INTO v_ids FROM (
            SELECT r.id FROM unnest(p_names, p_versions) AS k(wf, ver)
            CROSS JOIN LATERAL (
                SELECT x.id, x.wake_at FROM {SCHEMA}.runs x
                WHERE x.workflow = k.wf AND x.version = k.ver AND x.queue IS NULL
                  AND x.status IN ('pending', 'waiting') AND x.wake_at <= now()
                  AND x.id <> ALL (p_exclude)
                ORDER BY x.wake_at LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            ) r
            ORDER BY r.wake_at LIMIT p_limit
        ) c;
        v_left := p_limit - cardinality(v_ids);
        -- queues with runnable runs this worker serves, in name order (no deadlocks)
        FOR v_name IN
            SELECT q.name FROM {SCHEMA}.queues q
            WHERE v_left > 0 AND (
                EXISTS (SELECT 1 FROM {SCHEMA}.runs x
                        JOIN unnest(p_names, p_versions) AS k(wf, ver)
                          ON x.workflow = k.wf AND x.version = k.ver
                        WHERE x.queue = q.name AND x.status = 'pending'
                          AND x.admitted_at IS NULL AND x.wake_at <= now())
                OR EXISTS (SELECT 1 FROM {SCHEMA}.runs x
                        JOIN unnest(p_names, p_versions) AS k(wf, ver)
                          ON x.workflow = k.wf AND x.version = k.ver
                        WHERE x.queue = q.name AND x.admitted_at IS NOT NULL
                          AND x.status IN ('pending', 'waiting') AND x.wake_at <= now()))
            ORDER BY q.name
        LOOP
            EXIT WHEN v_left <= 0;
            -- every admission to this queue waits here: what follows counts exactly
            SELECT * INTO v_q FROM {SCHEMA}.queues WHERE name = v_name FOR UPDATE;
            v_room := v_left;
            IF v_q.worker_concurrency IS NOT NULL THEN
                v_room := least(v_room, v_q.worker_concurrency
                    - coalesce(p_active[array_position(p_queues, v_name)], 0));
            END IF;
            CONTINUE WHEN v_room <= 0;
            -- runs holding a slot already (woken from a wait, or lost by their worker)
            SELECT coalesce(array_agg(c.id), '{{}}') INTO v_got FROM (
                SELECT x.id FROM {SCHEMA}.runs x
                JOIN unnest(p_names, p_versions) AS k(wf, ver)
                  ON x.workflow = k.wf AND x.version = k.ver
                WHERE x.queue = v_name AND x.admitted_at IS NOT NULL
                  AND x.status IN ('pending', 'waiting') AND x.wake_at <= now()
                  AND x.id <> ALL (p_exclude)
                ORDER BY x.wake_at LIMIT v_room
                FOR UPDATE OF x SKIP LOCKED
            ) c;
            v_ids := v_ids || v_got;
            v_left := v_left - cardinality(v_got);
            v_room := v_room - cardinality(v_got);
            CONTINUE WHEN v_room <= 0;
            IF v_q.concurrency IS NOT NULL THEN
                v_room := least(v_room, v_q.concurrency - (
                    SELECT count(*) FROM {SCHEMA}.runs x
                    WHERE x.queue = v_name AND x.admitted_at IS NOT NULL
                      AND x.status IN ('pending', 'running', 'waiting'))::integer);
            END IF;
            IF v_q.rate_limit IS NOT NULL THEN
                v_room := least(v_room, v_q.rate_limit - (
                    SELECT count(*) FROM {SCHEMA}.queue_starts s
                    WHERE s.queue = v_name
                      AND s.at >= now() - make_interval(secs => v_q.rate_period))::integer);
            END IF;
            CONTINUE WHEN v_room <= 0;
            -- admissions in priority, then start order: no SKIP LOCKED here (admissions are
            -- serialised by the queue lock; a row locked for a moment by a signal or a cancel
            -- is waited for, not passed over), the claim's update re-checks each run
            IF v_q.partition_concurrency IS NULL THEN
                SELECT coalesce(array_agg(c.id), '{{}}') INTO v_got FROM (
                    SELECT x.id FROM {SCHEMA}.runs x
                    JOIN unnest(p_names, p_versions) AS k(wf, ver)
                      ON x.workflow = k.wf AND x.version = k.ver
                    WHERE x.queue = v_name AND x.status = 'pending'
                      AND x.admitted_at IS NULL AND x.wake_at <= now()
                      AND x.id <> ALL (p_exclude)
                    ORDER BY x.priority DESC, x.queue_seq LIMIT v_room
                ) c;
            ELSE
                -- per key: the first (partition_concurrency - held) runs in queue order
                SELECT coalesce(array_agg(c.id), '{{}}') INTO v_got FROM (
                    SELECT w.id FROM (
                        SELECT x.id, x.workflow, x.version, x.priority, x.queue_seq,
                               row_number() OVER (PARTITION BY x.partition_key
                                                  ORDER BY x.priority DESC, x.queue_seq)
                                   AS place,
                               coalesce(h.n, 0) AS held
                        FROM {SCHEMA}.runs x
                        LEFT JOIN (
                            SELECT y.partition_key, count(*) AS n FROM {SCHEMA}.runs y
                            WHERE y.queue = v_name AND y.admitted_at IS NOT NULL
                              AND y.status IN ('pending', 'running', 'waiting')
                            GROUP BY y.partition_key
                        ) h ON h.partition_key = x.partition_key
                        WHERE x.queue = v_name AND x.status = 'pending'
                          AND x.admitted_at IS NULL AND x.wake_at <= now()
                    ) w
                    JOIN unnest(p_names, p_versions) AS k(wf, ver)
                      ON w.workflow = k.wf AND w.version = k.ver
                    WHERE w.place <= v_q.partition_concurrency - w.held
                      AND w.id <> ALL (p_exclude)
                    ORDER BY w.priority DESC, w.queue_seq LIMIT v_room
                ) c;
            END IF;
            IF v_q.rate_limit IS NOT NULL AND cardinality(v_got) > 0 THEN
                INSERT INTO {SCHEMA}.queue_starts (queue, at)
                SELECT v_name, now() FROM unnest(v_got);
            END IF;
            v_ids := v_ids || v_got;
            v_left := v_left - cardinality(v_got);
        END LOOP;
        RETURN QUERY
        WITH u AS (
            UPDATE {SCHEMA}.runs r
            SET status = 'running', worker = p_worker, execution = gen_random_uuid(),
                lease_until = now() + make_interval(secs => p_lease),
                started_at = coalesce(r.started_at, now()),
                -- admitted: the run holds a slot of its queue from here until it ends
                admitted_at = CASE WHEN r.queue IS NULL THEN NULL
                                   ELSE coalesce(r.admitted_at, now()) END,
                timeout = coalesce(r.timeout, t.timeout),
                deadline = CASE WHEN r.deadline IS NULL
                                     AND coalesce(r.timeout, t.timeout) IS NOT NULL
                                THEN now() + make_interval(secs => coalesce(r.timeout, t.timeout))
                                ELSE r.deadline END,
                updated_at = now()
            FROM unnest(p_names, p_versions, p_timeouts) AS t(wf, ver, timeout)
            WHERE r.id = ANY (v_ids) AND r.status IN ('pending', 'waiting')
              AND t.wf = r.workflow AND t.ver = r.version
            RETURNING r.id, r.execution, r.workflow, r.version, r.input::text AS input,
                      r.recovery_attempts, extract(epoch FROM r.deadline)::float8 AS deadline,
                      r.metadata::text AS metadata,
                      extract(epoch FROM now())::float8 AS db_now, r.queue
        )
        SELECT u.id, u.execution, u.workflow, u.version, u.input, u.recovery_attempts,
               u.deadline, u.metadata, u.db_now, u.queue,
               l.seqs, l.names, l.kinds, l.statuses, l.attempts, l.outputs, l.errors
        FROM u LEFT JOIN LATERAL (
            SELECT array_agg(s.seq ORDER BY s.seq) AS seqs,
                   array_agg(s.name ORDER BY s.seq) AS names,
                   array_agg(s.kind ORDER BY s.seq) AS kinds,
                   array_agg(s.status ORDER BY s.seq) AS statuses,
                   array_agg(s.attempt ORDER BY s.seq) AS attempts,
                   array_agg(s.output::text ORDER BY s.seq) AS outputs,
                   array_agg(s.error::text ORDER BY s.seq) AS errors
            FROM {SCHEMA}.steps s WHERE s.run_id = u.id
        ) l ON true;
    END
    $fn$;
    """


# 7: partitioned queues admit by walking the queue in admission order and stopping once the
# claim has its runs, instead of ranking the whole backlog of the queue per partition key at
# every claim: a claim costs what it admits (plus the runs of full keys ahead of them), not
# the length of the queue. Same admissions as migration 5 (except that runs without a key,
# left from before the queue was partitioned, now share one key's limit instead of none):
# a key's runs take their places in queue order whether or not this worker serves their
# version (so a key's first run, waiting for a worker that has its version, still blocks
# the key's next one).
# Where migration 5's ranking of partitioned queues starts and ends in its function.
_RANKED_FROM = (
    "            ELSE\n                -- per key: the first (partition_concurrency - held)"
)
_RANKED_TO = "            END IF;\n            IF v_q.rate_limit IS NOT NULL AND cardinality(v_got)"
_WALKED_PARTITIONS = f"""            ELSE
                -- per key: the first (partition_concurrency - held) runs in queue order
                -- (runs without a key, started before the queue was partitioned, count as
                -- one key of their own: v_none)
                SELECT coalesce(jsonb_object_agg(h.partition_key, h.n)
                                    FILTER (WHERE h.partition_key IS NOT NULL), '{{}}'),
                       coalesce(sum(h.n) FILTER (WHERE h.partition_key IS NULL), 0)
                INTO v_held, v_none
                FROM (
                    SELECT y.partition_key, count(*) AS n FROM {SCHEMA}.runs y
                    WHERE y.queue = v_name AND y.admitted_at IS NOT NULL
                      AND y.status IN ('pending', 'running', 'waiting')
                    GROUP BY y.partition_key
                ) h;
                v_got := '{{}}';
                FOR v_run IN
                    SELECT x.id, x.partition_key,
                           EXISTS (SELECT 1 FROM unnest(p_names, p_versions) AS k(wf, ver)
                                   WHERE k.wf = x.workflow AND k.ver = x.version)
                           AND x.id <> ALL (p_exclude) AS mine
                    FROM {SCHEMA}.runs x
                    WHERE x.queue = v_name AND x.status = 'pending'
                      AND x.admitted_at IS NULL AND x.wake_at <= now()
                    ORDER BY x.priority DESC, x.queue_seq
                LOOP
                    IF v_run.partition_key IS NULL THEN
                        CONTINUE WHEN v_none >= v_q.partition_concurrency;
                        v_none := v_none + 1;
                    ELSE
                        v_n := coalesce((v_held ->> v_run.partition_key)::integer, 0);
                        CONTINUE WHEN v_n >= v_q.partition_concurrency;
                        v_held := v_held || jsonb_build_object(v_run.partition_key, v_n + 1);
                    END IF;
                    IF v_run.mine THEN
                        v_got := v_got || v_run.id;
                        EXIT WHEN cardinality(v_got) >= v_room;
                    END IF;
                END LOOP;
"""
_DECLARED = f"        v_q {SCHEMA}.queues%ROWTYPE;\n"
_WALK_VARIABLES = (
    "        v_held jsonb;\n        v_none integer;\n        v_run record;\n        v_n integer;\n"
)


def _walking_partitions(queues: str) -> str:
    """Migration 7: ``claim_queued`` of migration 5 (``queues``), replaced with the one
    that walks partitioned queues (:data:`_WALKED_PARTITIONS`)."""
    function = queues[queues.index(f"CREATE FUNCTION {SCHEMA}.claim_queued(") :]
    if any(function.count(part) != 1 for part in (_RANKED_FROM, _RANKED_TO, _DECLARED)):
        raise RuntimeError("migration 5's claim_queued is not what migration 7 replaces")
    ranked = function[function.index(_RANKED_FROM) : function.index(_RANKED_TO)]
    return (
        function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
        .replace(ranked, _WALKED_PARTITIONS)
        .replace(_DECLARED, _DECLARED + _WALK_VARIABLES)
    )


# 10: "does this queue have a waiting run this worker serves?" was an EXISTS, which the
# planner may answer with a scan of the whole runs table (a first match looks cheap to reach
# that way), and every claim asks it of every queue: a queue with nothing waiting (the
# common case) read every run, at every claim. Asked for the queue's first waiting run in
# admission order instead, it is one probe of runs_queue_waiting, whatever the plan.
_EXISTS_WAITING = f"""                EXISTS (SELECT 1 FROM {SCHEMA}.runs x
                        JOIN unnest(p_names, p_versions) AS k(wf, ver)
                          ON x.workflow = k.wf AND x.version = k.ver
                        WHERE x.queue = q.name AND x.status = 'pending'
                          AND x.admitted_at IS NULL AND x.wake_at <= now())"""
_INDEXED_WAITING = f"""                (SELECT x.id FROM {SCHEMA}.runs x
                        JOIN unnest(p_names, p_versions) AS k(wf, ver)
                          ON x.workflow = k.wf AND x.version = k.ver
                        WHERE x.queue = q.name AND x.status = 'pending'
                          AND x.admitted_at IS NULL AND x.wake_at <= now()
                        ORDER BY x.priority DESC, x.queue_seq LIMIT 1) IS NOT NULL"""


def _indexed_waiting(walking: str) -> str:
    """Migration 10: migration 7's ``claim_queued`` (``walking``) with its queues with work
    found through the waiting runs' index (:data:`_INDEXED_WAITING`)."""
    if walking.count(_EXISTS_WAITING) != 1:
        raise RuntimeError("migration 7's claim_queued is not what migration 10 replaces")
    return walking.replace(_EXISTS_WAITING, _INDEXED_WAITING)


# 11: the same for "does this queue have admitted runs to resume?": the EXISTS read every
# run of the table once finished runs of admitted queues made it look likely to match (they
# keep their admitted_at); asked for the first such run in runs_queue_held's order, it is one
# probe of that index. With a 40,000-run backlog, one claim of 10 runs took 11-12 ms (a
# sequential scan per queue), 2.8 ms after.
_EXISTS_HELD = f"""                OR EXISTS (SELECT 1 FROM {SCHEMA}.runs x
                        JOIN unnest(p_names, p_versions) AS k(wf, ver)
                          ON x.workflow = k.wf AND x.version = k.ver
                        WHERE x.queue = q.name AND x.admitted_at IS NOT NULL
                          AND x.status IN ('pending', 'waiting') AND x.wake_at <= now()))"""
_INDEXED_HELD = f"""                OR (SELECT x.id FROM {SCHEMA}.runs x
                        JOIN unnest(p_names, p_versions) AS k(wf, ver)
                          ON x.workflow = k.wf AND x.version = k.ver
                        WHERE x.queue = q.name AND x.admitted_at IS NOT NULL
                          AND x.status IN ('pending', 'waiting') AND x.wake_at <= now()
                        ORDER BY x.queue, x.partition_key, x.wake_at LIMIT 1) IS NOT NULL)"""


def _indexed_held(indexed: str) -> str:
    """Migration 11: migration 10's ``claim_queued`` (``indexed``) with its queues with
    admitted runs to resume found through runs_queue_held (:data:`_INDEXED_HELD`)."""
    if indexed.count(_EXISTS_HELD) != 1:
        raise RuntimeError("migration 10's claim_queued is not what migration 11 replaces")
    return indexed.replace(_EXISTS_HELD, _INDEXED_HELD)


def _claim_result(queues: str) -> str:
    """The ``RETURNS TABLE (...)`` clause of migration 5's ``claim_queued`` (``queues``):
    what a claim returns, whoever calls it."""
    start = queues.index("RETURNS TABLE (id uuid")
    return queues[start : queues.index("\n    LANGUAGE plpgsql", start)]


# 11: an eager start -- a run started in a process whose worker has a free slot for it is
# inserted and, when its queue admits it at once, claimed for that worker in the same call
# (see _claim.EagerSlot). Admission is decided as claim_queued decides it (the same counts,
# after the queue row's lock, each statement on a fresh snapshot), but conservatively: only
# a run that is first in its queue's admission order is admitted here, so the claim stays a
# handful of statements on indexes, cheap to plan. Anything else -- a run ahead of it, a
# full queue, partition key or rate window, this worker's share used up -- leaves the run
# pending and notifies the workers, as any start does.
_EAGER_START = f"""
    CREATE FUNCTION {SCHEMA}.start_claimed(
        p_id uuid, p_workflow text, p_version integer, p_input text,
        p_timeout double precision, p_metadata text, p_queue text, p_priority integer,
        p_partition_key text, p_worker text, p_lease double precision, p_queues text[],
        p_active integer[])
    {_claim_result(_QUEUES)}
    LANGUAGE plpgsql VOLATILE AS $fn$
    #variable_conflict use_column
    DECLARE
        v_q {SCHEMA}.queues%ROWTYPE;
        v_ok boolean := true;
    BEGIN
        INSERT INTO {SCHEMA}.runs (id, workflow, version, status, input, wake_at, timeout,
                                   metadata, queue, priority, partition_key, queue_seq)
        VALUES (p_id, p_workflow, p_version, 'pending', p_input::json, now(), p_timeout,
                p_metadata::jsonb, p_queue, p_priority, p_partition_key,
                CASE WHEN p_queue IS NULL THEN NULL
                     ELSE nextval('{SCHEMA}.queue_order') END);
        IF p_queue IS NOT NULL THEN
            -- every admission to this queue waits here: what follows counts exactly
            SELECT * INTO v_q FROM {SCHEMA}.queues q WHERE q.name = p_queue FOR UPDATE;
            v_ok := (SELECT x.id FROM {SCHEMA}.runs x
                     WHERE x.queue = p_queue AND x.status = 'pending'
                       AND x.admitted_at IS NULL AND x.wake_at <= now()
                     ORDER BY x.priority DESC, x.queue_seq LIMIT 1) = p_id;
            IF v_ok AND v_q.worker_concurrency IS NOT NULL THEN
                v_ok := coalesce(p_active[array_position(p_queues, p_queue)], 0)
                        < v_q.worker_concurrency;
            END IF;
            IF v_ok AND v_q.concurrency IS NOT NULL THEN
                v_ok := (SELECT count(*) FROM {SCHEMA}.runs x
                         WHERE x.queue = p_queue AND x.admitted_at IS NOT NULL
                           AND x.status IN ('pending', 'running', 'waiting'))
                        < v_q.concurrency;
            END IF;
            IF v_ok AND v_q.partition_concurrency IS NOT NULL THEN
                -- runs without a key count as one key of their own, as in claim_queued
                v_ok := (SELECT count(*) FROM {SCHEMA}.runs x
                         WHERE x.queue = p_queue AND x.admitted_at IS NOT NULL
                           AND x.status IN ('pending', 'running', 'waiting')
                           AND x.partition_key IS NOT DISTINCT FROM p_partition_key)
                        < v_q.partition_concurrency;
            END IF;
            IF v_ok AND v_q.rate_limit IS NOT NULL THEN
                v_ok := (SELECT count(*) FROM {SCHEMA}.queue_starts s
                         WHERE s.queue = p_queue
                           AND s.at >= now() - make_interval(secs => v_q.rate_period))
                        < v_q.rate_limit;
                IF v_ok THEN
                    INSERT INTO {SCHEMA}.queue_starts (queue, at) VALUES (p_queue, now());
                END IF;
            END IF;
        END IF;
        IF NOT v_ok THEN
            PERFORM pg_notify('forktex_flow_work', '');
            RETURN;
        END IF;
        -- as claim_queued's update, for a run with no checkpoint yet
        RETURN QUERY
        UPDATE {SCHEMA}.runs r
        SET status = 'running', worker = p_worker, execution = gen_random_uuid(),
            lease_until = now() + make_interval(secs => p_lease), started_at = now(),
            admitted_at = CASE WHEN p_queue IS NULL THEN NULL ELSE now() END,
            deadline = now() + make_interval(secs => p_timeout), updated_at = now()
        WHERE r.id = p_id
        RETURNING r.id, r.execution, r.workflow, r.version, r.input::text,
                  r.recovery_attempts, extract(epoch FROM r.deadline)::float8,
                  r.metadata::text, extract(epoch FROM now())::float8, r.queue,
                  NULL::integer[], NULL::text[], NULL::text[], NULL::text[], NULL::integer[],
                  NULL::text[], NULL::text[];
    END
    $fn$;
    """


# Append only: forktex_core.db.ensure_schema checksums applied migrations; an entry's number
# is its position.
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
    # 5: flow-control queues (global, per-worker and per-partition concurrency, a sliding
    # rate limit, priorities), deduplication while live, delayed starts
    _QUEUES,
    # 6: run events (ctx.set_event): an event checkpoint wakes flow.get_event's waiters on the
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
    # 7: partitioned queues admit by walking the queue (see _WALKED_PARTITIONS)
    _walking_partitions(_QUEUES),
    # 8: schedules (cron, declared in code or created at runtime). next_at is the first tick
    # not handled yet; the leader fires due ones (each tick a run keyed by the tick) and moves
    # next_at on in the same transaction
    f"""
    CREATE TABLE {SCHEMA}.schedules (
        name         text PRIMARY KEY,
        workflow     text NOT NULL,
        version      integer,
        cron         text NOT NULL,
        tz           text NOT NULL,
        input        json NOT NULL,
        queue        text,
        catch_up     text NOT NULL CHECK (catch_up IN ('skip', 'latest', 'all')),
        max_catch_up integer NOT NULL CHECK (max_catch_up > 0),
        grace        double precision NOT NULL CHECK (grace >= 0),
        paused       boolean NOT NULL DEFAULT false,
        next_at      timestamptz NOT NULL,
        last_tick    timestamptz,
        declared     boolean NOT NULL DEFAULT false,
        created_at   timestamptz NOT NULL DEFAULT now(),
        updated_at   timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX schedules_due ON {SCHEMA}.schedules (next_at) WHERE NOT paused;
    """,
    # 9: child workflows. A child knows its parent; however a child ends (completed, failed,
    # cancelled, reaped as dead) its outcome reaches the parent as the signal
    # 'flow.child:<child id>' in the transaction that ends it, and wakes a waiting parent.
    # No lost wake-up against the parent's suspension: both take the parent's child lock
    # (a transaction advisory lock, class 0x4368696C) before they look at the other's write.
    # Never the parent's row lock while the child's is held: a heartbeat renewing parent and
    # child in one statement locks them in any order.
    f"""
    ALTER TABLE {SCHEMA}.runs ADD COLUMN parent_id uuid,
        ADD COLUMN cancel_with_parent boolean NOT NULL DEFAULT false;
    CREATE INDEX runs_parent ON {SCHEMA}.runs (parent_id) WHERE parent_id IS NOT NULL;
    CREATE FUNCTION {SCHEMA}.child_finished() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE id = NEW.parent_id
                       AND status IN ('pending', 'running', 'waiting')) THEN
            RETURN NULL;
        END IF;
        PERFORM pg_advisory_xact_lock(1130916204, hashtext(NEW.parent_id::text));
        INSERT INTO {SCHEMA}.signals (run_id, name, payload)
        VALUES (NEW.parent_id, 'flow.child:' || NEW.id::text,
                json_build_object('status', NEW.status, 'output', NEW.output,
                                  'error', NEW.error));
        -- Wake a waiting parent without ever waiting for its row (this transaction holds
        -- the child's row: waiting here closes a cycle with a heartbeat or another child).
        -- Whoever holds a waiting parent's row mostly wakes it or takes it anyway (a claim,
        -- a signal's SEND, another child's end, a cancel); in case it rolls back, the
        -- workers are asked to wake the parent themselves ('wake:<id>', at commit).
        PERFORM 1 FROM {SCHEMA}.runs WHERE id = NEW.parent_id AND status = 'waiting'
            FOR NO KEY UPDATE SKIP LOCKED;
        IF FOUND THEN
            UPDATE {SCHEMA}.runs SET wake_at = now() WHERE id = NEW.parent_id;
        ELSIF EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE id = NEW.parent_id
                      AND status = 'waiting') THEN
            PERFORM pg_notify('forktex_flow_work', 'wake:' || NEW.parent_id::text);
        END IF;
        PERFORM pg_notify('forktex_flow_work', '');
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER runs_child_finished AFTER UPDATE OF status ON {SCHEMA}.runs
        FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL
                           AND NEW.status IN ('succeeded', 'failed', 'cancelled', 'dead')
                           AND OLD.status NOT IN ('succeeded', 'failed', 'cancelled', 'dead'))
        EXECUTE FUNCTION {SCHEMA}.child_finished();
    """,
    # 10: the queued claim finds the queues with waiting runs through their index (see
    # _INDEXED_WAITING)
    _indexed_waiting(_walking_partitions(_QUEUES)),
    # 11: the queued claim finds the queues with admitted runs to resume through their index
    # (see _INDEXED_HELD); eager starts (see _EAGER_START)
    _indexed_held(_indexed_waiting(_walking_partitions(_QUEUES))) + _EAGER_START,
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
