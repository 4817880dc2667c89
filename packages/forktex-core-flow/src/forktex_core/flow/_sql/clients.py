# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Statements of clients: start, read, signal, control (cancel, retry), the leader's name."""

from __future__ import annotations

from .._schema import SCHEMA
from .common import DONE_CHANNEL, RUN_COLUMNS, WORK_CHANNEL

# Without a conflict target, so a reused idempotency key and a live dedup key both end in
# DO NOTHING (the caller then looks up the run that holds the key). $8 queue, $9 priority,
# $10 partition key, $11 dedup key, $12 delay in seconds, $13 an absolute start time.
START = f"""
WITH ins AS (
    INSERT INTO {SCHEMA}.runs
        (id, workflow, version, status, input, idempotency_key, wake_at, timeout, metadata,
         queue, priority, partition_key, queue_seq, dedup_key)
    VALUES ($1, $2, $3, 'pending', $4::json, $5,
            coalesce($13::timestamptz, now() + make_interval(secs => coalesce($12::float8, 0))),
            $6, $7::jsonb, $8, $9, $10,
            CASE WHEN $8::text IS NULL THEN NULL ELSE nextval('{SCHEMA}.queue_order') END, $11)
    ON CONFLICT DO NOTHING
    RETURNING id, wake_at <= now() AS due
)
SELECT id, CASE WHEN due THEN pg_notify('{WORK_CHANNEL}', '') END FROM ins
"""

IDEMPOTENT_RUN = f"SELECT id FROM {SCHEMA}.runs WHERE workflow = $1 AND idempotency_key = $2"

# Which database a connection is on, however it reached the server (127.0.0.1, ::1, a proxy):
# its name and OID, and when the server started -- two servers (or one, restarted) never
# share a start time. A transactional start compares a caller's session with flow's own.
DATABASE_IDENTITY = """
SELECT current_database(), d.oid::int8, pg_postmaster_start_time()
FROM pg_database d WHERE d.datname = current_database()
"""

# The version a start by name uses when this process has not registered the workflow: the
# newest one any worker (live or recently seen) announces, else the newest one started.
LATEST_VERSION = f"""
SELECT coalesce(
    (SELECT max(split_part(v, ':', 2)::int) FROM {SCHEMA}.workers w,
            jsonb_array_elements_text(w.versions) AS v
     WHERE split_part(v, ':', 1) = $1),
    (SELECT max(version) FROM {SCHEMA}.runs WHERE workflow = $1))
"""

DEDUP_RUN = f"""
SELECT id FROM {SCHEMA}.runs
WHERE workflow = $1 AND dedup_key = $2 AND status IN ('pending', 'running', 'waiting')
"""

# Declare (or redefine: the latest declaration wins) a queue; returns the definition it
# replaced when that differed, so the caller can warn. Workers are told (a new queue may
# need a claim of the queued kind).
_QUEUE_FIELDS = (
    "concurrency, worker_concurrency, rate_limit, rate_period, priorities, partition_concurrency"
)
DECLARE_QUEUE = f"""
WITH old AS (
    SELECT {_QUEUE_FIELDS} FROM {SCHEMA}.queues WHERE name = $1 FOR UPDATE
), up AS (
    INSERT INTO {SCHEMA}.queues (name, {_QUEUE_FIELDS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (name) DO UPDATE
    SET concurrency = EXCLUDED.concurrency, worker_concurrency = EXCLUDED.worker_concurrency,
        rate_limit = EXCLUDED.rate_limit, rate_period = EXCLUDED.rate_period,
        priorities = EXCLUDED.priorities,
        partition_concurrency = EXCLUDED.partition_concurrency, updated_at = now()
    WHERE ({SCHEMA}.queues.concurrency, {SCHEMA}.queues.worker_concurrency,
           {SCHEMA}.queues.rate_limit, {SCHEMA}.queues.rate_period, {SCHEMA}.queues.priorities,
           {SCHEMA}.queues.partition_concurrency)
          IS DISTINCT FROM ($2, $3, $4, $5::float8, $6, $7)
    RETURNING 1
)
SELECT old.*, (SELECT count(*) FROM up) AS changed,
       CASE WHEN EXISTS (SELECT 1 FROM up) THEN pg_notify('{WORK_CHANNEL}', 'queues') END
FROM (SELECT 1) one LEFT JOIN old ON true
"""

QUEUE = f"SELECT name, {_QUEUE_FIELDS} FROM {SCHEMA}.queues WHERE name = $1"

HAS_QUEUES = f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.queues)"

# flow.queues(): each queue's definition, depth (runs not admitted yet, and how many of
# them are due), runs holding a slot (and of those, running now), starts in the current
# rate window, and the slots held per partition key.
QUEUES = f"""
SELECT q.name, q.concurrency, q.worker_concurrency, q.rate_limit, q.rate_period, q.priorities,
       q.partition_concurrency,
       (SELECT count(*) FROM {SCHEMA}.runs x WHERE x.queue = q.name AND x.status = 'pending'
          AND x.admitted_at IS NULL) AS depth,
       (SELECT count(*) FROM {SCHEMA}.runs x WHERE x.queue = q.name AND x.status = 'pending'
          AND x.admitted_at IS NULL AND x.wake_at > now()) AS delayed,
       (SELECT count(*) FROM {SCHEMA}.runs x WHERE x.queue = q.name
          AND x.admitted_at IS NOT NULL AND x.status IN ('pending', 'running', 'waiting'))
          AS active,
       (SELECT count(*) FROM {SCHEMA}.runs x WHERE x.queue = q.name
          AND x.admitted_at IS NOT NULL AND x.status = 'running') AS running,
       CASE WHEN q.rate_limit IS NULL THEN NULL ELSE
           (SELECT count(*) FROM {SCHEMA}.queue_starts s WHERE s.queue = q.name
              AND s.at >= now() - make_interval(secs => q.rate_period)) END AS window_starts,
       (SELECT coalesce(jsonb_object_agg(p.partition_key, p.n), '{{}}'::jsonb)::text FROM (
            SELECT x.partition_key, count(*) AS n FROM {SCHEMA}.runs x
            WHERE x.queue = q.name AND x.partition_key IS NOT NULL
              AND x.admitted_at IS NOT NULL AND x.status IN ('pending', 'running', 'waiting')
            GROUP BY x.partition_key) p) AS partitions
FROM {SCHEMA}.queues q
WHERE ($1::text IS NULL OR q.name = $1)
ORDER BY q.name
"""


def get_run(stale: float) -> str:
    """One run by id; a worker whose heartbeat is older than ``stale`` s counts as dead."""
    columns = RUN_COLUMNS.replace("{stale}", repr(float(stale)))
    return f"SELECT {columns} FROM {SCHEMA}.runs WHERE id = $1"


def list_runs(stale: float, *, by_metadata: bool) -> str:
    """Runs filtered by workflow, statuses, creation time, queue (``$7``) and (``$8``)
    metadata, newest first.

    The metadata clause is there only with a filter, so the planner can use the GIN index
    (no ``$7 IS NULL OR``).
    """
    columns = RUN_COLUMNS.replace("{stale}", repr(float(stale)))
    meta_clause = "AND metadata @> $8::jsonb" if by_metadata else ""
    return f"""SELECT {columns} FROM {SCHEMA}.runs
            WHERE ($1::text IS NULL OR workflow = $1)
              AND ($2::text[] IS NULL OR status = ANY($2::text[]))
              AND ($3::timestamptz IS NULL OR created_at >= $3)
              AND ($4::timestamptz IS NULL OR created_at < $4)
              AND ($7::text IS NULL OR queue = $7)
              {meta_clause}
            ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"""


RUN_EXISTS = f"SELECT 1 FROM {SCHEMA}.runs WHERE id = $1"

HISTORY = f"""SELECT seq, name, kind, status, attempt, output::text AS output,
                        error::text AS error, started_at, finished_at
                    FROM {SCHEMA}.steps WHERE run_id = $1 ORDER BY seq"""

OUTCOME = f"SELECT status, output::text, error::text FROM {SCHEMA}.runs WHERE id = $1"

RUN_STATUS = f"SELECT status FROM {SCHEMA}.runs WHERE id = $1"

# Signals. Lost wake-ups are impossible because both sides lock the run row first: SEND
# locks it before inserting, and a suspending execution updates it before checking for
# unconsumed signals in a later statement of the same transaction. (The lock is FOR NO KEY
# UPDATE: it conflicts with the suspension's update but not with the key-share locks that
# checkpoint inserts take on their own run, so two runs signalling each other never deadlock.)
# A pending run is notified too: a claim that ran while SEND held the row passed over it
# (SKIP LOCKED), e.g. right after continue-as-new put it back, and nothing else wakes a worker.
SEND = f"""
WITH r AS (
    SELECT id, status FROM {SCHEMA}.runs WHERE id = $1 FOR NO KEY UPDATE
), ins AS (
    INSERT INTO {SCHEMA}.signals (run_id, name, payload)
    SELECT r.id, $2, $3::json FROM r
    WHERE r.status NOT IN ('succeeded', 'failed', 'cancelled', 'dead')
    RETURNING id
), up AS (
    UPDATE {SCHEMA}.runs SET wake_at = now()
    FROM r WHERE {SCHEMA}.runs.id = r.id AND r.status = 'waiting'
    RETURNING 1
)
SELECT r.status, (SELECT id FROM ins) AS signal_id,
       CASE WHEN r.status IN ('pending', 'waiting') THEN pg_notify('{WORK_CHANNEL}', '') END
           AS notified
FROM r
"""

# Cancel ends a run at once: its execution is fenced out (no checkpoint of it is accepted
# any more, and it confirms the run is still its own before every step), and its worker is
# notified to stop it now.
CANCEL = f"""
UPDATE {SCHEMA}.runs
SET status = 'cancelled', finished_at = now(), updated_at = now(), worker = NULL,
    execution = NULL, lease_until = NULL, wake_at = NULL,
    error = jsonb_build_object('type', 'Cancelled', 'message', 'cancelled by flow.cancel()')
WHERE id = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled', 'dead')
RETURNING pg_notify('{WORK_CHANNEL}', 'cancel:' || id::text),
          pg_notify('{DONE_CHANNEL}', id::text)
"""

LOCK_FOR_RETRY = f"SELECT status, error::text AS error FROM {SCHEMA}.runs WHERE id = $1 FOR UPDATE"

# Retry re-runs only the failure that ended the run: the positions its error names ("seqs"),
# plus attempts that were in progress, so failures the workflow caught and handled replay
# exactly as they happened. Runs that failed before errors named positions fall back to the
# last failure of the step the error names.
FORGET_ENDING_FAILURE = f"""
DELETE FROM {SCHEMA}.steps s
WHERE s.run_id = $1 AND (
    s.status = 'retrying'
    OR (s.status = 'failed' AND $2::jsonb ? 'seqs'
        AND s.seq IN (SELECT jsonb_array_elements_text($2::jsonb -> 'seqs')::int))
    OR (s.status = 'failed' AND NOT $2::jsonb ? 'seqs' AND $2::jsonb ? 'step'
        AND s.seq = (SELECT max(f.seq) FROM {SCHEMA}.steps f
                     WHERE f.run_id = $1 AND f.status = 'failed'
                       AND f.name = $2::jsonb ->> 'step'))
)
"""

# The workflow timeout starts again at the next pickup (deadline NULL, timeout kept).
RETRY = f"""
UPDATE {SCHEMA}.runs
SET status = 'pending', error = NULL, output = NULL, finished_at = NULL, worker = NULL,
    execution = NULL, lease_until = NULL, recovery_attempts = 0, wake_at = now(),
    updated_at = now(), deadline = NULL, admitted_at = NULL
WHERE id = $1
RETURNING pg_notify('{WORK_CHANNEL}', '')
"""

LEADER_OF = f"""
SELECT w.id FROM pg_locks l JOIN {SCHEMA}.workers w ON w.leader_pid = l.pid
WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2
  AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LIMIT 1
"""
