# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Statements of executions: checkpoints, markers, signals, completion, failure,
suspension and hand-back, each fenced on the execution id."""

from __future__ import annotations

from .._schema import SCHEMA
from .common import DONE_CHANNEL, WORK_CHANNEL, recover_set

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
