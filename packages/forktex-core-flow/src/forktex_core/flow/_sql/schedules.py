# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Statements of schedules: their definitions, pause/resume, and the ticks the leader fires."""

from __future__ import annotations

from .._schema import SCHEMA
from .common import WORK_CHANNEL

SCHEDULE_COLUMNS = (
    "name, workflow, version, cron, tz, input::text AS input, queue, catch_up, max_catch_up, "
    "grace, paused, next_at, last_tick, declared, created_at"
)
_DEFINITION = "workflow, version, cron, tz, input, queue, catch_up, max_catch_up, grace"

NOW = "SELECT now()"

# A schedule declared in code: the latest declaration wins; its state (paused, the next
# tick) is kept unless its timing changed, then the next tick is the given one ($11).
DECLARE_SCHEDULE = f"""
INSERT INTO {SCHEMA}.schedules (name, {_DEFINITION}, next_at, declared)
VALUES ($1, $2, $3, $4, $5, $6::json, $7, $8, $9, $10, $11, true)
ON CONFLICT (name) DO UPDATE
SET workflow = EXCLUDED.workflow, version = EXCLUDED.version, cron = EXCLUDED.cron,
    tz = EXCLUDED.tz, input = EXCLUDED.input, queue = EXCLUDED.queue,
    catch_up = EXCLUDED.catch_up, max_catch_up = EXCLUDED.max_catch_up, grace = EXCLUDED.grace,
    declared = true, updated_at = now(),
    next_at = CASE WHEN ({SCHEMA}.schedules.cron, {SCHEMA}.schedules.tz)
                        IS DISTINCT FROM (EXCLUDED.cron, EXCLUDED.tz)
                   THEN EXCLUDED.next_at ELSE {SCHEMA}.schedules.next_at END
WHERE ({SCHEMA}.schedules.workflow, {SCHEMA}.schedules.version, {SCHEMA}.schedules.cron,
       {SCHEMA}.schedules.tz, {SCHEMA}.schedules.input::text, {SCHEMA}.schedules.queue,
       {SCHEMA}.schedules.catch_up, {SCHEMA}.schedules.max_catch_up,
       {SCHEMA}.schedules.grace, {SCHEMA}.schedules.declared)
      IS DISTINCT FROM (EXCLUDED.workflow, EXCLUDED.version, EXCLUDED.cron, EXCLUDED.tz,
                        EXCLUDED.input::text, EXCLUDED.queue, EXCLUDED.catch_up,
                        EXCLUDED.max_catch_up, EXCLUDED.grace, true)
"""

# A schedule created at runtime: never replaces one of the same name (the caller compares).
CREATE_SCHEDULE = f"""
INSERT INTO {SCHEMA}.schedules (name, {_DEFINITION}, next_at, declared)
VALUES ($1, $2, $3, $4, $5, $6::json, $7, $8, $9, $10, $11, false)
ON CONFLICT (name) DO NOTHING
RETURNING name
"""

SCHEDULE = f"SELECT {SCHEDULE_COLUMNS} FROM {SCHEMA}.schedules WHERE name = $1"

SCHEDULES = f"SELECT {SCHEDULE_COLUMNS} FROM {SCHEMA}.schedules ORDER BY name"

PAUSE_SCHEDULE = f"""
UPDATE {SCHEMA}.schedules SET paused = true, updated_at = now() WHERE name = $1 RETURNING name
"""

# Ticks that passed while paused never run: a resumed schedule waits for its next tick ($2).
RESUME_SCHEDULE = f"""
UPDATE {SCHEMA}.schedules
SET next_at = CASE WHEN paused THEN $2 ELSE next_at END, paused = false, updated_at = now()
WHERE name = $1 RETURNING name
"""

DELETE_SCHEDULE = f"DELETE FROM {SCHEMA}.schedules WHERE name = $1 RETURNING name"

# The leader's due schedules, locked until its transaction moves them on (SKIP LOCKED: a
# second leader, were there one, takes others or none).
DUE_SCHEDULES = f"""
SELECT {SCHEDULE_COLUMNS}, now() AS now FROM {SCHEMA}.schedules
WHERE NOT paused AND next_at <= now()
ORDER BY next_at LIMIT $1
FOR UPDATE SKIP LOCKED
"""

ADVANCE_SCHEDULE = f"""
UPDATE {SCHEMA}.schedules
SET next_at = $2, last_tick = coalesce($3, last_tick), updated_at = now()
WHERE name = $1
"""

# Seconds until the earliest tick of any running schedule (None: there is none).
NEXT_TICK_IN = f"""
SELECT extract(epoch FROM min(next_at) - now())::float8 FROM {SCHEMA}.schedules WHERE NOT paused
"""

# One run per tick of schedule $1: $2 the idempotency keys, $3 the ticks (UTC text) they
# are keyed by. A key already used (the tick ran) starts nothing. The version is the
# schedule's, else the newest a worker announces or a run has, else 1; the ids of the runs
# started now are returned and the workers are woken.
START_TICKS = f"""
WITH ins AS (
    INSERT INTO {SCHEMA}.runs
        (id, workflow, version, status, input, idempotency_key, wake_at, metadata,
         queue, queue_seq)
    SELECT gen_random_uuid(), s.workflow,
           coalesce(s.version,
                    (SELECT max(split_part(v, ':', 2)::int) FROM {SCHEMA}.workers w,
                            jsonb_array_elements_text(w.versions) AS v
                     WHERE split_part(v, ':', 1) = s.workflow),
                    (SELECT max(r.version) FROM {SCHEMA}.runs r WHERE r.workflow = s.workflow),
                    1),
           'pending', s.input, t.key, now(),
           jsonb_build_object('schedule', s.name, 'scheduled_at', t.at),
           s.queue,
           CASE WHEN s.queue IS NULL THEN NULL ELSE nextval('{SCHEMA}.queue_order') END
    FROM {SCHEMA}.schedules s, unnest($2::text[], $3::text[]) AS t(key, at)
    WHERE s.name = $1
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT ids, CASE WHEN cardinality(ids) > 0 THEN pg_notify('{WORK_CHANNEL}', '') END AS woke
FROM (SELECT coalesce(array_agg(id), '{{}}') AS ids FROM ins) started
"""
