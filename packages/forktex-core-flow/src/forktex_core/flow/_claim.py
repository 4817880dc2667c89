# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Leases: claiming runnable runs, renewing and handing back the leases of executions.

One statement claims up to ``n`` runs with ``FOR UPDATE SKIP LOCKED``, starts one
*execution* per run (a fresh id in ``runs.execution``), sets its lease and returns each run
together with its whole checkpoint log (so replay needs no further reads). Every later
write of that execution is fenced on its execution id: a zombie execution (reaped, cancelled,
or re-claimed) can never checkpoint again, even on the same worker. Heartbeats renew the
leases of the executions a worker is really driving, by (run id, execution id), and nothing
else. A worker only claims runs whose (workflow, version) it has registered: the claim probes
the ``(workflow, version, wake_at)`` index once per registered pair, so runs of versions this
worker lacks are never scanned, however many pile up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from ._context import LogEntry
from ._schema import SCHEMA

WORK_CHANNEL = "forktex_flow_work"
DONE_CHANNEL = "forktex_flow_done"

CLAIM = f"""
WITH c AS (
    SELECT r.id FROM unnest($3::text[], $5::int[]) AS k(workflow, version)
    CROSS JOIN LATERAL (
        SELECT id, wake_at FROM {SCHEMA}.runs
        WHERE workflow = k.workflow AND version = k.version
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
        deadline = CASE WHEN r.deadline IS NULL AND r.timeout IS NOT NULL
                        THEN now() + make_interval(secs => r.timeout) ELSE r.deadline END,
        updated_at = now()
    WHERE r.id = ANY (ARRAY(SELECT id FROM c))
    RETURNING r.id, r.execution, r.workflow, r.version, r.input::text AS input,
              r.recovery_attempts, extract(epoch FROM r.deadline)::float8 AS deadline,
              r.metadata::text AS metadata, extract(epoch FROM now())::float8 AS db_now
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

# Markers (graph states, patches) pending in the context ride along with the next write.
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


@dataclass(slots=True)
class ClaimedRun:
    """A run this worker now holds through a new execution, with its preloaded log."""

    id: uuid.UUID
    execution: uuid.UUID
    workflow: str
    version: int
    input: str | None
    recovery_attempts: int
    deadline: float | None
    log: dict[int, LogEntry]
    metadata: str | None = None
    db_now: float = 0.0


def claim_args(
    limit: int, worker: str, keys: list[str], lease: float, exclude: list[uuid.UUID]
) -> tuple[object, ...]:
    """The parameters of :data:`CLAIM` for the registered ``keys`` (``name:version``)."""
    names: list[str] = []
    versions: list[int] = []
    for key in keys:
        name, _, version = key.rpartition(":")
        names.append(name)
        versions.append(int(version))
    return (limit, worker, names, lease, versions, exclude)


async def claim(
    conn: asyncpg.Connection | asyncpg.Pool,
    limit: int,
    worker: str,
    keys: list[str],
    lease: float,
    exclude: list[uuid.UUID],
) -> list[ClaimedRun]:
    """Claim up to ``limit`` runnable runs of ``keys``, except the runs in ``exclude``."""
    rows = await conn.fetch(CLAIM, *claim_args(limit, worker, keys, lease, exclude))
    claimed: list[ClaimedRun] = []
    for row in rows:
        log: dict[int, LogEntry] = {}
        seqs = row["seqs"]
        if seqs:
            names, kinds, statuses = row["names"], row["kinds"], row["statuses"]
            attempts, outputs, errors = row["attempts"], row["outputs"], row["errors"]
            for i, seq in enumerate(seqs):
                log[seq] = LogEntry(
                    names[i], kinds[i], statuses[i], attempts[i], outputs[i], errors[i]
                )
        claimed.append(
            ClaimedRun(
                row["id"],
                row["execution"],
                row["workflow"],
                row["version"],
                row["input"],
                row["recovery_attempts"],
                row["deadline"],
                log,
                row["metadata"],
                row["db_now"],
            )
        )
    return claimed
