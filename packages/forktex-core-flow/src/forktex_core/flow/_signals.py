# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Signals: durable delivery to a run, exactly-once consumption in send order.

Lost wake-ups are impossible because both sides lock the run row first: ``send_signal``
locks it before inserting, and a suspending worker updates it before checking for
unconsumed signals in a later statement of the same transaction. (The lock is ``FOR NO KEY
UPDATE``: it conflicts with the suspension's update but not with the key-share locks that
checkpoint inserts take on their own run, so two runs signalling each other never deadlock.)

Consumption is idempotent per (run, position): when the checkpoint at that position already
holds a consumed signal, consuming again returns it instead of taking the next one (what a
retry does after the reply of a committed consume was lost). A workflow's own
``ctx.send_signal`` inserts the signal and its checkpoint in one transaction, so it is sent
exactly once however often the body replays.
"""

from __future__ import annotations

import json
import uuid

import asyncpg

from ._claim import WORK_CHANNEL
from ._errors import RunFinished, RunNotFound
from ._records import FINISHED_VALUES
from ._schema import SCHEMA

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
       CASE WHEN r.status = 'waiting' THEN pg_notify('{WORK_CHANNEL}', '') END AS notified
FROM r
"""

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
    execution: uuid.UUID,
) -> tuple[bool, str | None]:
    """Consume the oldest unconsumed ``name`` signal into checkpoint ``seq``.

    Idempotent per (run, position): if ``seq`` already holds a consumed signal, that one is
    returned again. ``(False, None)`` when there is none (or ``execution`` lost the run).
    """
    row = await conn.fetchrow(CONSUME, run_id, name, seq, step_name, execution)
    if row is None:
        return False, None
    return True, row[0]


async def send_recorded(
    pool: asyncpg.Pool,
    run_id: uuid.UUID,
    execution: uuid.UUID,
    seq: int,
    target: uuid.UUID,
    name: str,
    payload: str,
) -> tuple[str, str] | None:
    """Send ``name`` to ``target`` and checkpoint it at ``seq`` of ``run_id``, atomically.

    Returns ``("completed", signal id as JSON)`` or ``("failed", error document)`` (the
    target does not exist or has finished) — the recorded outcome if ``seq`` already has one —
    or None when ``execution`` no longer holds the run (nothing was sent).
    """
    step_name = f"send:{name}"
    try:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(SENT, run_id, seq, execution)
            if row is None or not row["held"]:
                return None
            if row["status"] == "completed":
                return "completed", str(row["output"])
            if row["status"] == "failed":
                return "failed", str(row["error"])
            sent = await conn.fetchrow(SEND, target, name, payload)
            output: str | None = None
            error: str | None = None
            if sent is None:
                error = _error_doc(RunNotFound(target))
            elif sent["status"] in FINISHED_VALUES:
                exc = RunFinished(target, sent["status"], f"receive signal {name!r}")
                error = _error_doc(exc, status=sent["status"])
            else:
                output = str(sent["signal_id"])
            status = "completed" if error is None else "failed"
            done = await conn.execute(
                RECORD_SENT, run_id, seq, step_name, status, output, error, execution
            )
            if not done.endswith(" 1"):
                raise _NotHeld()  # rolls the signal back
    except _NotHeld:
        return None
    if error is not None:
        return "failed", error
    assert output is not None
    return "completed", output


class _NotHeld(Exception):
    """The run was taken from the execution between the check and the checkpoint."""


def _error_doc(exc: RunNotFound | RunFinished, **extra: str) -> str:
    return json.dumps(
        {"type": type(exc).__name__, "message": str(exc), "run_id": str(exc.run_id), **extra}
    )


def sent_error(doc: dict[str, object], name: str) -> RunNotFound | RunFinished:
    """The exception a recorded failed ``ctx.send_signal`` raises again on replay."""
    target = doc.get("run_id")
    if doc.get("type") == "RunFinished":
        status = str(doc.get("status", "finished"))
        return RunFinished(target, status, f"receive signal {name!r}")
    return RunNotFound(target)
