# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Statements of the leader: the lock, reaping lapsed leases, waking timers, pruning."""

from __future__ import annotations

from .._schema import SCHEMA
from .common import DONE_CHANNEL, WORK_CHANNEL, recover_set

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
