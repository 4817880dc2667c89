# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Statements of the worker: registration, claims, heartbeats and lease checks."""

from __future__ import annotations

import uuid

from .._schema import SCHEMA

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

# An eager start: insert a due run without keys and, when its queue admits it at once, claim
# it for this process's worker in the same call (schema migration 11); else it notifies the
# workers itself.
START_CLAIMED = (
    f"SELECT * FROM {SCHEMA}.start_claimed($1, $2, $3, $4, $5, $6::text, $7, $8, $9, $10, $11, "
    "$12, $13)"
)


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
