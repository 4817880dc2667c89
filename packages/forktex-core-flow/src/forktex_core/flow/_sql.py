# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every statement flow runs against its tables (the tables themselves are in ``_schema``).

Only the :class:`~forktex_core.flow._store.Store` runs them, on its own connections
(:func:`._claim.claim` and :mod:`._signals` run on the pools it passes). Grouped by who
asks: clients (start, read, signal, control), the worker (claim, heartbeat, lease checks),
executions (checkpoints, signals, completion, failure, suspension, hand-back), the leader.

Fencing: every write of an execution names its execution id (``runs.execution``) and
touches the run only while that execution holds it (``status = 'running'``), so a zombie
execution (reaped, cancelled, claimed again) can never write again.
"""

from __future__ import annotations

import uuid

from ._schema import SCHEMA

WORK_CHANNEL = "forktex_flow_work"  # new or woken runs; "cancel:<run id>" stops an execution
DONE_CHANNEL = "forktex_flow_done"  # the id of a run that has finished

# -- clients -----------------------------------------------------------------------------------

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

_RUN_COLUMNS = (
    "id, workflow, version, status, input::text AS input, output::text AS output, "
    "queue, priority, partition_key, dedup_key, "
    "error::text AS error, idempotency_key, worker, lease_until, recovery_attempts, wake_at, "
    "deadline, metadata::text AS metadata, created_at, updated_at, started_at, finished_at, "
    # runnable, but no live worker has this (workflow, version) registered
    f"(status = 'pending' OR (status = 'waiting' AND wake_at <= now())) AND NOT EXISTS ("
    f"SELECT 1 FROM {SCHEMA}.workers w WHERE w.versions ? ({SCHEMA}.runs.workflow || ':' || "
    f"{SCHEMA}.runs.version) AND w.heartbeat > now() - make_interval(secs => {{stale}})"
    ") AS waiting_for_worker"
)


def get_run(stale: float) -> str:
    """One run by id; a worker whose heartbeat is older than ``stale`` s counts as dead."""
    columns = _RUN_COLUMNS.replace("{stale}", repr(float(stale)))
    return f"SELECT {columns} FROM {SCHEMA}.runs WHERE id = $1"


def list_runs(stale: float, *, by_metadata: bool) -> str:
    """Runs filtered by workflow, statuses, creation time, queue (``$7``) and (``$8``)
    metadata, newest first.

    The metadata clause is there only with a filter, so the planner can use the GIN index
    (no ``$7 IS NULL OR``).
    """
    columns = _RUN_COLUMNS.replace("{stale}", repr(float(stale)))
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

# -- the worker --------------------------------------------------------------------------------

REGISTER_WORKER = f"""
INSERT INTO {SCHEMA}.workers (id, hostname, pid, versions) VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (id) DO UPDATE SET heartbeat = now(), versions = EXCLUDED.versions
RETURNING extract(epoch FROM now())::float8
"""

FORGET_WORKER = f"DELETE FROM {SCHEMA}.workers WHERE id = $1"

# Claim up to $1 runs: one FOR UPDATE SKIP LOCKED probe of the (workflow, version, wake_at)
# index per registered pair (so runs of versions this worker lacks are never scanned),
# start one execution per run (a fresh id in runs.execution), set its lease and, on the
# first pickup, its deadline (the run's timeout, else the worker's for that version ($7):
# runs started by name from a client store none); return each run with its whole
# checkpoint log, so replay needs no further reads.
CLAIM = f"""
WITH c AS (
    SELECT r.id FROM unnest($3::text[], $5::int[]) AS k(workflow, version)
    CROSS JOIN LATERAL (
        SELECT id, wake_at FROM {SCHEMA}.runs
        WHERE workflow = k.workflow AND version = k.version AND queue IS NULL
          AND status IN ('pending', 'waiting') AND wake_at <= now()
          AND id <> ALL ($6::uuid[])
        ORDER BY wake_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    ) r
    ORDER BY r.wake_at
    LIMIT $1
), u AS (
    UPDATE {SCHEMA}.runs r
    SET status = 'running', worker = $2, execution = gen_random_uuid(),
        lease_until = now() + make_interval(secs => $4),
        started_at = coalesce(r.started_at, now()),
        timeout = coalesce(r.timeout, t.timeout),
        deadline = CASE WHEN r.deadline IS NULL AND coalesce(r.timeout, t.timeout) IS NOT NULL
                        THEN now() + make_interval(secs => coalesce(r.timeout, t.timeout))
                        ELSE r.deadline END,
        updated_at = now()
    FROM unnest($3::text[], $5::int[], $7::float8[]) AS t(workflow, version, timeout)
    WHERE r.id = ANY (ARRAY(SELECT id FROM c))
      AND t.workflow = r.workflow AND t.version = r.version
    RETURNING r.id, r.execution, r.workflow, r.version, r.input::text AS input,
              r.recovery_attempts, extract(epoch FROM r.deadline)::float8 AS deadline,
              r.metadata::text AS metadata, extract(epoch FROM now())::float8 AS db_now,
              r.queue
)
SELECT u.*, l.seqs, l.names, l.kinds, l.statuses, l.attempts, l.outputs, l.errors
FROM u LEFT JOIN LATERAL (
    SELECT array_agg(s.seq ORDER BY s.seq) AS seqs, array_agg(s.name ORDER BY s.seq) AS names,
           array_agg(s.kind ORDER BY s.seq) AS kinds,
           array_agg(s.status ORDER BY s.seq) AS statuses,
           array_agg(s.attempt ORDER BY s.seq) AS attempts,
           array_agg(s.output::text ORDER BY s.seq) AS outputs,
           array_agg(s.error::text ORDER BY s.seq) AS errors
    FROM {SCHEMA}.steps s WHERE s.run_id = u.id
) l ON true
"""


# The claim of a worker once queues exist: runs outside queues as above, then admissions to
# each queue under its row lock (the function ``claim_queued`` of migration 5). $8 and $9
# are this worker's running runs per queue (its worker_concurrency is enforced on them).
CLAIM_QUEUED = f"SELECT * FROM {SCHEMA}.claim_queued($1, $2, $3, $5, $4, $6, $8, $9, $7)"


def claim_args(
    limit: int,
    worker: str,
    keys: list[str],
    lease: float,
    exclude: list[uuid.UUID],
    timeouts: list[float | None] | None = None,
) -> tuple[object, ...]:
    """The parameters of :data:`CLAIM` for the registered ``keys`` (``name:version``) and
    their workflow ``timeouts`` (seconds or None, in the order of ``keys``)."""
    names: list[str] = []
    versions: list[int] = []
    for key in keys:
        name, _, version = key.rpartition(":")
        names.append(name)
        versions.append(int(version))
    return (limit, worker, names, lease, versions, exclude, timeouts or [None] * len(keys))


# The worker's row (its versions ride along, so late registrations reach it) and the leases
# of exactly the executions it is driving; returns the database time and the renewed runs.
HEARTBEAT = f"""
WITH w AS (
    INSERT INTO {SCHEMA}.workers (id, hostname, pid, versions) VALUES ($1, $5, $6, $7::jsonb)
    ON CONFLICT (id) DO UPDATE SET heartbeat = now(), versions = EXCLUDED.versions
), r AS (
    UPDATE {SCHEMA}.runs SET lease_until = now() + make_interval(secs => $2)
    FROM unnest($3::uuid[], $4::uuid[]) AS e(id, execution)
    WHERE {SCHEMA}.runs.id = e.id AND {SCHEMA}.runs.execution = e.execution
      AND {SCHEMA}.runs.status = 'running'
    RETURNING {SCHEMA}.runs.id
)
SELECT extract(epoch FROM now())::float8 AS db_now, ARRAY(SELECT id FROM r) AS renewed
"""

# "Is this run still my execution's?" for many executions at once.
HELD = f"""
SELECT r.id FROM {SCHEMA}.runs r
JOIN unnest($1::uuid[], $2::uuid[]) AS e(id, execution)
  ON r.id = e.id AND r.execution = e.execution
WHERE r.status = 'running'
"""

# -- executions --------------------------------------------------------------------------------


def recover_set(penalise: str, limit: str) -> str:
    """The SET list that takes a run from an execution: back to ``pending``, or ``dead``.

    ``penalise`` is a SQL condition: when true the loss counts as a recovery attempt, and
    past ``limit`` attempts the run is parked as ``dead`` with a ``PoisonRun`` error.
    """
    over = f"({penalise}) AND recovery_attempts + 1 > {limit}"
    return f"""
    recovery_attempts = recovery_attempts + CASE WHEN {penalise} THEN 1 ELSE 0 END,
    status = CASE WHEN {over} THEN 'dead' ELSE 'pending' END,
    wake_at = CASE WHEN {over} THEN NULL ELSE now() END,
    finished_at = CASE WHEN {over} THEN now() ELSE NULL END,
    error = CASE WHEN {over} THEN jsonb_build_object(
        'type', 'PoisonRun',
        'message', format('the run lost its worker %s times (limit %s); parked as dead. '
                          'Fix the cause, then flow.retry() it.', recovery_attempts + 1, {limit}))
        ELSE error END,
    worker = NULL, execution = NULL, lease_until = NULL, updated_at = now()
    """


# An execution gives its run back (worker stopping, execution given up or killed by its
# own run): fenced on the execution, so a run already settled is left alone.
HAND_BACK = f"""
UPDATE {SCHEMA}.runs SET {recover_set("$3", "$4")}
WHERE id = $1 AND execution = $2 AND status = 'running'
RETURNING status,
          pg_notify(CASE WHEN status = 'dead' THEN '{DONE_CHANNEL}' ELSE '{WORK_CHANNEL}' END,
                    CASE WHEN status = 'dead' THEN id::text ELSE '' END)
"""

RECORD_STEP = f"""
INSERT INTO {SCHEMA}.steps
    (run_id, seq, name, kind, status, attempt, output, error, started_at, finished_at)
SELECT $1, $2, $3, $4, $5, $6, $7::json, $8::json,
       now() - make_interval(secs => $9), now()
WHERE EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE id = $1 AND execution = $10
              AND status = 'running')
ON CONFLICT (run_id, seq) DO UPDATE
SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, output = EXCLUDED.output,
    error = EXCLUDED.error, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
WHERE {SCHEMA}.steps.status IN ('retrying', 'waiting') AND {SCHEMA}.steps.name = EXCLUDED.name
"""

# Markers (graph states, patches) pending in the execution ride along with the next write.
MARKS_CTE = f"""
WITH marks AS (
    INSERT INTO {SCHEMA}.steps (run_id, seq, name, kind, status, attempt, started_at,
                                 finished_at)
    SELECT $1, m.seq, m.name, m.kind, 'completed', 1, now(), now()
    FROM unnest(${{seqs}}::int[], ${{names}}::text[], ${{kinds}}::text[]) AS m(seq, name, kind)
    WHERE EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE id = $1 AND execution = ${{execution}}
                  AND status = 'running')
    ON CONFLICT (run_id, seq) DO NOTHING
)
"""


# The common case, one marker (the state just entered), with scalar parameters: no arrays
# to encode and no unnest.
MARK_CTE = f"""
WITH marks AS (
    INSERT INTO {SCHEMA}.steps (run_id, seq, name, kind, status, attempt, started_at,
                                 finished_at)
    SELECT $1, ${{seq}}::int, ${{name}}::text, ${{kind}}::text, 'completed', 1, now(), now()
    WHERE EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE id = $1 AND execution = ${{execution}}
                  AND status = 'running')
    ON CONFLICT (run_id, seq) DO NOTHING
)
"""


def _with_mark(statement: str, first: int, execution: int) -> str:
    cte = MARK_CTE.replace("${seq}", f"${first}").replace("${name}", f"${first + 1}")
    cte = cte.replace("${kind}", f"${first + 2}").replace("${execution}", f"${execution}")
    return cte + statement


def _with_marks(statement: str, first: int, execution: int) -> str:
    cte = MARKS_CTE.replace("${seqs}", f"${first}").replace("${names}", f"${first + 1}")
    cte = cte.replace("${kinds}", f"${first + 2}").replace("${execution}", f"${execution}")
    return cte + statement


RECORDED = f"""
SELECT s.status, s.output::text,
       (r.execution = $3 AND r.status = 'running') AS held
FROM {SCHEMA}.runs r LEFT JOIN {SCHEMA}.steps s ON s.run_id = r.id AND s.seq = $2
WHERE r.id = $1
"""

COMPLETE = f"""
UPDATE {SCHEMA}.runs
SET status = 'succeeded', output = $2::json, finished_at = now(), updated_at = now(),
    worker = NULL, execution = NULL, lease_until = NULL, wake_at = NULL
WHERE id = $1 AND execution = $3 AND status = 'running'
RETURNING pg_notify('{DONE_CHANNEL}', id::text)
"""

FAIL = f"""
UPDATE {SCHEMA}.runs
SET status = 'failed', error = $2::jsonb, finished_at = now(), updated_at = now(),
    worker = NULL, execution = NULL, lease_until = NULL, wake_at = NULL
WHERE id = $1 AND execution = $3 AND status = 'running'
RETURNING pg_notify('{DONE_CHANNEL}', id::text)
"""

RECORD_STEP_MARKED = _with_marks(RECORD_STEP, 11, 10)
COMPLETE_MARKED = _with_marks(COMPLETE, 4, 3)
RECORD_STEP_MARK1 = _with_mark(RECORD_STEP, 11, 10)
COMPLETE_MARK1 = _with_mark(COMPLETE, 4, 3)
FLUSH_MARKS = _with_marks("SELECT 1", 3, 2)

SUSPEND = f"""
UPDATE {SCHEMA}.runs
SET status = 'waiting', wake_at = to_timestamp($2), worker = NULL, execution = NULL,
    lease_until = NULL, updated_at = now()
WHERE id = $1 AND execution = $3 AND status = 'running'
RETURNING 1
"""

SIGNAL_PENDING = f"""
SELECT EXISTS (SELECT 1 FROM {SCHEMA}.signals
               WHERE run_id = $1 AND consumed_at IS NULL AND name = ANY($2::text[]))
"""

WAKE_NOW = f"""
UPDATE {SCHEMA}.runs SET wake_at = now() WHERE id = $1
RETURNING pg_notify('{WORK_CHANNEL}', '')
"""

# Consume the oldest unconsumed signal of a name into checkpoint $3, exactly once and in
# send order. Idempotent per (run, position): when the checkpoint at $3 already holds a
# consumed signal, consuming again returns it instead of taking the next one (what a retry
# does after the reply of a committed consume was lost).
CONSUME = f"""
WITH held AS (
    SELECT 1 FROM {SCHEMA}.runs WHERE id = $1 AND execution = $5 AND status = 'running'
), cur AS (
    SELECT status, name, output::text AS output FROM {SCHEMA}.steps
    WHERE run_id = $1 AND seq = $3 AND EXISTS (SELECT 1 FROM held)
), sig AS (
    UPDATE {SCHEMA}.signals SET consumed_at = now(), consumed_seq = $3
    WHERE id = (
        SELECT id FROM {SCHEMA}.signals
        WHERE run_id = $1 AND name = $2 AND consumed_at IS NULL
          AND EXISTS (SELECT 1 FROM held)
          AND NOT EXISTS (SELECT 1 FROM cur WHERE status <> 'waiting')
        ORDER BY id LIMIT 1
        FOR UPDATE
    )
    RETURNING payload
), ins AS (
    INSERT INTO {SCHEMA}.steps (run_id, seq, name, kind, status, attempt, output,
                                 started_at, finished_at)
    SELECT $1, $3, $4, 'signal', 'completed', 1, sig.payload, now(), now() FROM sig
    ON CONFLICT (run_id, seq) DO UPDATE
    SET status = 'completed', output = EXCLUDED.output, finished_at = now()
    WHERE {SCHEMA}.steps.status = 'waiting'
    RETURNING output::text
)
SELECT output FROM ins
UNION ALL
SELECT output FROM cur WHERE status = 'completed' AND name = $4
"""

# ctx.send_signal: what the checkpoint at the position says, and whether the run is held.
SENT = f"""
SELECT s.status, s.output::text AS output, s.error::text AS error,
       (r.execution = $3 AND r.status = 'running') AS held
FROM {SCHEMA}.runs r LEFT JOIN {SCHEMA}.steps s ON s.run_id = r.id AND s.seq = $2
WHERE r.id = $1
"""

RECORD_SENT = f"""
INSERT INTO {SCHEMA}.steps
    (run_id, seq, name, kind, status, attempt, output, error, started_at, finished_at)
SELECT $1, $2, $3, 'send', $4, 1, $5::json, $6::json, now(), now()
WHERE EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE id = $1 AND execution = $7
              AND status = 'running')
ON CONFLICT (run_id, seq) DO NOTHING
"""

# A transactional step's checkpoint, inside the step's own transaction (SQLAlchemy, named
# parameters): the step's writes and the checkpoint commit together or not at all.
RECORD_TRANSACTION = f"""
INSERT INTO {SCHEMA}.steps
    (run_id, seq, name, kind, status, attempt, output, started_at, finished_at)
SELECT :run, :seq, :name, 'transaction', 'completed', :attempt, CAST(:output AS json),
       now() - make_interval(secs => :dur), now()
WHERE EXISTS (SELECT 1 FROM {SCHEMA}.runs
              WHERE id = :run AND execution = :execution AND status = 'running')
ON CONFLICT (run_id, seq) DO UPDATE
SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, output = EXCLUDED.output,
    error = NULL, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
WHERE {SCHEMA}.steps.status IN ('retrying', 'waiting')
"""

# -- the leader --------------------------------------------------------------------------------

TRY_LEAD = "SELECT pg_try_advisory_lock($1, $2)"

MARK_LEADER = f"UPDATE {SCHEMA}.workers SET leader_pid = pg_backend_pid() WHERE id = $1"

# A lapsed lease: its execution is gone (worker killed, frozen, cut off). The loss counts
# as a recovery attempt; past max_recovery_attempts the run is parked as dead.
REAP = f"""
UPDATE {SCHEMA}.runs SET {recover_set("true", "$1")}
WHERE status = 'running' AND lease_until < now()
RETURNING status,
          CASE WHEN status = 'dead' THEN pg_notify('{DONE_CHANNEL}', id::text)
               ELSE pg_notify('{WORK_CHANNEL}', '') END AS notified
"""

DUE = f"""
SELECT EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE status = 'waiting' AND wake_at <= now())
    OR EXISTS (SELECT 1 FROM {SCHEMA}.runs WHERE status = 'pending' AND wake_at <= now())
"""

WAKE_WORKERS = f"NOTIFY {WORK_CHANNEL}"

PRUNE = f"""
DELETE FROM {SCHEMA}.runs WHERE id IN (
    SELECT id FROM {SCHEMA}.runs
    WHERE status IN ('succeeded', 'failed', 'cancelled', 'dead')
      AND finished_at < now() - make_interval(secs => $1)
    ORDER BY finished_at LIMIT $2
)
"""

# Admission instants older than their queue's window count for nothing any more.
PRUNE_STARTS = f"""
DELETE FROM {SCHEMA}.queue_starts s
WHERE s.at < now() - make_interval(secs => coalesce(
    (SELECT q.rate_period FROM {SCHEMA}.queues q WHERE q.name = s.queue), 0))
"""

FORGET_WORKERS = f"""
DELETE FROM {SCHEMA}.workers WHERE heartbeat < now() - make_interval(secs => $1)
"""

# -- operators' views (the console): keyset pages, counts, workers, signals ------------------

# The filters a page of runs can have, in the order of their parameters after the fixed ones
# (limit, cursor time, cursor id). Each present filter adds one clause, so every combination
# is a statement of its own whose plan uses the index for exactly those filters (no
# "$1 IS NULL OR ..." that a generic plan cannot use).
PAGE_FILTERS: dict[str, str] = {
    "workflow": "workflow = ${n}",
    "version": "version = ${n}",
    "created_after": "created_at >= ${n}",
    "created_before": "created_at < ${n}",
    "metadata": "metadata @> ${n}::jsonb",
    "queue": "queue = ${n}",
}


def page_runs(stale: float, filters: tuple[str, ...], by_status: bool) -> str:
    """A keyset page of runs, newest first: ``$1`` limit, ``$2``/``$3`` the cursor (created
    at, id of the last run of the previous page, or NULLs), then one parameter per name in
    ``filters`` (keys of :data:`PAGE_FILTERS`, in that order), then (``by_status``) the
    statuses as ``text[]``.

    With statuses, each one is probed on its own through ``runs_status_created`` (a
    ``LATERAL`` per status, each stopping after ``limit`` rows) and the probes are merged,
    so a rare status among millions of runs costs a few index reads.
    """
    columns = _RUN_COLUMNS.replace("{stale}", repr(float(stale)))
    clauses = [
        "($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid))",
        # the same bound again as a plain range: usable by (workflow, created_at) and friends
        "($2::timestamptz IS NULL OR created_at <= $2::timestamptz)",
    ]
    for i, name in enumerate(filters):
        clauses.append(PAGE_FILTERS[name].replace("{n}", str(4 + i)))
    where = " AND ".join(clauses)
    if by_status:
        status_param = 4 + len(filters)
        ids = f"""
        SELECT r.id, r.created_at FROM unnest(${status_param}::text[]) AS s(status)
        CROSS JOIN LATERAL (
            SELECT id, created_at FROM {SCHEMA}.runs
            WHERE status = s.status AND {where}
            ORDER BY created_at DESC, id DESC LIMIT $1
        ) r
        ORDER BY r.created_at DESC, r.id DESC LIMIT $1"""
    else:
        ids = f"""
        SELECT id, created_at FROM {SCHEMA}.runs WHERE {where}
        ORDER BY created_at DESC, id DESC LIMIT $1"""
    return f"""WITH page AS ({ids})
    SELECT {columns} FROM {SCHEMA}.runs WHERE id = ANY (ARRAY(SELECT id FROM page))
    ORDER BY created_at DESC, id DESC"""


# Exact counts by status (what small tables and the statuses of live runs use).
COUNT_BY_STATUS = f"SELECT status, count(*) AS n FROM {SCHEMA}.runs GROUP BY status"

COUNT_STATUSES = f"""
SELECT s.status, (SELECT count(*) FROM {SCHEMA}.runs r WHERE r.status = s.status) AS n
FROM unnest($1::text[]) AS s(status)
"""

# The planner's statistics of the runs table: its estimated row count and the frequency of
# each status (what large tables use for finished runs instead of counting them).
RUN_STATISTICS = f"""
SELECT c.reltuples::float8 AS reltuples,
       s.most_common_vals::text::text[] AS statuses,
       s.most_common_freqs::float8[] AS freqs
FROM pg_class c
LEFT JOIN pg_stats s ON s.schemaname = '{SCHEMA}' AND s.tablename = 'runs'
                    AND s.attname = 'status'
WHERE c.oid = '{SCHEMA}.runs'::regclass
"""

WORKERS = f"""
SELECT id, hostname, pid, started_at, heartbeat, versions::text AS versions,
       heartbeat > now() - make_interval(secs => $1) AS alive
FROM {SCHEMA}.workers ORDER BY id
"""

SIGNALS_OF = f"""
SELECT id, name, payload::text AS payload, created_at, consumed_at, consumed_seq
FROM {SCHEMA}.signals WHERE run_id = $1 ORDER BY id LIMIT $2
"""

# -- run events (ctx.set_event / flow.get_event) and forks ---------------------------------------

# The run's status and the latest value of one event (the highest position wins); an event
# checkpoint NOTIFYs DONE_CHANNEL with the run id (trigger of migration 6).
EVENT_OF = f"""
SELECT r.status, e.seq IS NOT NULL AS found, e.output::text AS value
FROM {SCHEMA}.runs r
LEFT JOIN LATERAL (
    SELECT s.seq, s.output FROM {SCHEMA}.steps s
    WHERE s.run_id = r.id AND s.kind = 'event' AND s.name = $2 AND s.status = 'completed'
    ORDER BY s.seq DESC LIMIT 1
) e ON true
WHERE r.id = $1
"""

# The run a fork copies, locked against a concurrent retry, with its next position.
FORK_SOURCE = f"""
SELECT r.workflow, r.version, r.status, r.input::text AS input, r.metadata::text AS metadata,
       r.timeout, r.queue, r.priority, r.partition_key,
       (SELECT coalesce(max(s.seq) + 1, 0) FROM {SCHEMA}.steps s WHERE s.run_id = r.id)
           AS positions
FROM {SCHEMA}.runs r WHERE r.id = $1 FOR SHARE
"""

# A fork goes through its source's queue (in start order from now: a new queue position),
# so the queue's limits hold for it too; not under the source's dedup key.
FORK_RUN = f"""
INSERT INTO {SCHEMA}.runs (id, workflow, version, status, input, wake_at, timeout, metadata,
                           queue, priority, partition_key, queue_seq)
VALUES ($1, $2, $3, 'pending', $4::json, now(), $5, $6::jsonb, $7, $8, $9,
        CASE WHEN $7::text IS NULL THEN NULL ELSE nextval('{SCHEMA}.queue_order') END)
RETURNING pg_notify('{WORK_CHANNEL}', '')
"""

# The final checkpoints before position $3 (the rest runs again in the fork).
FORK_STEPS = f"""
INSERT INTO {SCHEMA}.steps
    (run_id, seq, name, kind, status, attempt, output, error, started_at, finished_at)
SELECT $1, seq, name, kind, status, attempt, output, error, started_at, finished_at
FROM {SCHEMA}.steps
WHERE run_id = $2 AND seq < $3 AND status IN ('completed', 'failed')
"""

# -- continue-as-new: the run keeps its id and unconsumed signals; its log so far becomes a
# finished run of its own (the archived generation), pruned by retention like any other --------

CONTINUE_LOCK = f"""
SELECT workflow, version, input::text AS input, metadata::text AS metadata, created_at,
       started_at
FROM {SCHEMA}.runs WHERE id = $1 AND execution = $2 AND status = 'running' FOR UPDATE
"""

CONTINUE_ARCHIVE = f"""
INSERT INTO {SCHEMA}.runs (id, workflow, version, status, input, output, metadata,
                           created_at, started_at, finished_at)
VALUES ($1, $2, $3, 'succeeded', $4::json, $5::json, $6::jsonb, $7, $8, now())
"""

CONTINUE_STEPS = f"UPDATE {SCHEMA}.steps SET run_id = $1 WHERE run_id = $2"

CONTINUE_SIGNALS = f"""
UPDATE {SCHEMA}.signals SET run_id = $1 WHERE run_id = $2 AND consumed_at IS NOT NULL
"""

CONTINUE_RUN = f"""
UPDATE {SCHEMA}.runs
SET input = $2::json, status = 'pending', wake_at = now(), worker = NULL, execution = NULL,
    lease_until = NULL, deadline = NULL, recovery_attempts = 0, metadata = $3::jsonb,
    updated_at = now()
WHERE id = $1
RETURNING pg_notify('{WORK_CHANNEL}', '')
"""
