# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Operator control of runs: cancel and retry.

``cancel`` ends a run at once: its execution is fenced out (no checkpoint of it is accepted
any more, and it confirms the run is still its own before every step), and its worker is
notified to stop it now. ``retry`` puts a failed, dead or cancelled run back to ``pending``
and re-runs only the failure that ended it — the failed checkpoints named by the run's error
(``seqs``) plus attempts that were in progress — so failures the workflow caught and handled
replay exactly as they happened.
"""

from __future__ import annotations

import uuid

import asyncpg

from ._claim import DONE_CHANNEL, WORK_CHANNEL
from ._errors import RunFinished, RunNotFound, RunNotRetryable
from ._schema import SCHEMA

CANCEL = f"""
UPDATE {SCHEMA}.runs
SET status = 'cancelled', finished_at = now(), updated_at = now(), worker = NULL,
    execution = NULL, lease_until = NULL, wake_at = NULL,
    error = jsonb_build_object('type', 'Cancelled', 'message', 'cancelled by flow.cancel()')
WHERE id = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled', 'dead')
RETURNING pg_notify('{WORK_CHANNEL}', 'cancel:' || id::text),
          pg_notify('{DONE_CHANNEL}', id::text)
"""

# The failure that ended the run: the positions its error names ("seqs"). Runs that failed
# before errors named positions fall back to the last failure of the step the error names.
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
    updated_at = now(), deadline = NULL
WHERE id = $1
RETURNING pg_notify('{WORK_CHANNEL}', '')
"""


async def cancel(pool: asyncpg.Pool, run_id: uuid.UUID) -> None:
    """Cancel ``run_id``; :class:`RunNotFound` / :class:`RunFinished` otherwise."""
    if await pool.fetchrow(CANCEL, run_id) is not None:
        return
    status = await pool.fetchval(f"SELECT status FROM {SCHEMA}.runs WHERE id = $1", run_id)
    if status is None:
        raise RunNotFound(run_id)
    raise RunFinished(run_id, status, "cancel it")


async def retry(pool: asyncpg.Pool, run_id: uuid.UUID) -> None:
    """Put a failed, dead or cancelled run back to work, re-running its ending failure."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT status, error::text AS error FROM {SCHEMA}.runs WHERE id = $1 FOR UPDATE",
            run_id,
        )
        if row is None:
            raise RunNotFound(run_id)
        if row["status"] not in ("failed", "dead", "cancelled"):
            raise RunNotRetryable(
                f"run {run_id} is {row['status']}; only failed, dead or cancelled runs can be "
                "retried"
            )
        await conn.execute(FORGET_ENDING_FAILURE, run_id, row["error"] or "{}")
        await conn.fetchrow(RETRY, run_id)
