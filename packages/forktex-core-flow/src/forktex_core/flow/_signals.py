# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Signals: durable delivery to a run, exactly-once consumption in send order.

Lost wake-ups are impossible because both sides lock the run row first: ``send_signal``
locks it before inserting, and a suspending worker updates it before checking for
unconsumed signals in a later statement of the same transaction.
"""

from __future__ import annotations

import uuid

import asyncpg

from ._claim import WORK_CHANNEL
from ._errors import RunFinished, RunNotFound
from ._records import FINISHED_VALUES
from ._schema import SCHEMA

SEND = f"""
WITH r AS (
    SELECT id, status FROM {SCHEMA}.runs WHERE id = $1 FOR UPDATE
), ins AS (
    INSERT INTO {SCHEMA}.signals (run_id, name, payload)
    SELECT r.id, $2, $3::jsonb FROM r
    WHERE r.status NOT IN ('succeeded', 'failed', 'cancelled', 'dead')
    RETURNING id
), up AS (
    UPDATE {SCHEMA}.runs SET wake_at = now()
    FROM r WHERE {SCHEMA}.runs.id = r.id AND r.status = 'waiting'
    RETURNING 1
)
SELECT r.status, (SELECT id FROM ins) AS signal_id,
       CASE WHEN r.status = 'waiting' THEN pg_notify('{WORK_CHANNEL}', '') END AS notified
FROM r
"""

CONSUME = f"""
WITH sig AS (
    UPDATE {SCHEMA}.signals SET consumed_at = now(), consumed_seq = $3
    WHERE id = (
        SELECT id FROM {SCHEMA}.signals
        WHERE run_id = $1 AND name = $2 AND consumed_at IS NULL
          AND EXISTS (SELECT 1 FROM {SCHEMA}.runs
                      WHERE id = $1 AND worker = $5 AND status = 'running')
        ORDER BY id LIMIT 1
        FOR UPDATE
    )
    RETURNING payload
)
INSERT INTO {SCHEMA}.steps (run_id, seq, name, kind, status, attempt, output,
                             started_at, finished_at)
SELECT $1, $3, $4, 'signal', 'completed', 1, sig.payload::json, now(), now() FROM sig
ON CONFLICT (run_id, seq) DO UPDATE
SET status = 'completed', output = EXCLUDED.output, finished_at = now()
WHERE {SCHEMA}.steps.status = 'waiting'
RETURNING output::text
"""


async def send(
    conn: asyncpg.Connection | asyncpg.Pool, run_id: uuid.UUID, name: str, payload: str
) -> int:
    """Store a signal for ``run_id`` and wake the run if it waits; return the signal id."""
    row = await conn.fetchrow(SEND, run_id, name, payload)
    if row is None:
        raise RunNotFound(run_id)
    if row["status"] in FINISHED_VALUES:
        raise RunFinished(run_id, row["status"], f"receive signal {name!r}")
    return int(row["signal_id"])


async def consume(
    conn: asyncpg.Connection | asyncpg.Pool,
    run_id: uuid.UUID,
    name: str,
    seq: int,
    step_name: str,
    worker: str,
) -> tuple[bool, str | None]:
    """Consume the oldest unconsumed ``name`` signal and checkpoint it at ``seq``."""
    row = await conn.fetchrow(CONSUME, run_id, name, seq, step_name, worker)
    if row is None:
        return False, None
    return True, row[0]
