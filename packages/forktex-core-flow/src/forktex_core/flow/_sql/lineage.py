# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Statements of run events (``ctx.set_event`` / ``flow.get_event``), forks and
continue-as-new."""

from __future__ import annotations

from .._schema import SCHEMA
from .common import WORK_CHANNEL

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

# The children the fork's copied log started and has not awaited yet: their outcome goes to
# the original parent (the trigger of migration 9), never to the fork. Those still live
# (refused: the fork would wait forever), and those finished, whose outcome the fork gets
# as the signal the trigger sent the original ($2: the signal's name prefix).
_COPIED_CHILDREN = f"""
FROM {SCHEMA}.steps s
JOIN {SCHEMA}.runs c ON c.id = (s.output::jsonb ->> 'id')::uuid
WHERE s.run_id = $1 AND s.kind = 'child' AND s.status = 'completed'
  AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.steps r
                  WHERE r.run_id = $1 AND r.name = 'signal:' || $2 || c.id::text)
"""
FORK_LIVE_CHILDREN = f"""
SELECT s.seq, c.id, c.status {_COPIED_CHILDREN}
  AND c.status NOT IN ('succeeded', 'failed', 'cancelled', 'dead')
ORDER BY s.seq
"""
FORK_CHILD_OUTCOMES = f"""
INSERT INTO {SCHEMA}.signals (run_id, name, payload)
SELECT $1, $2 || c.id::text,
       json_build_object('status', c.status, 'output', c.output, 'error', c.error)
{_COPIED_CHILDREN}
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
