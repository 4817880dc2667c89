# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Signals on a given connection: durable delivery, exactly-once consumption in send order.

The :class:`~forktex_core.flow._store.Store` runs these on its pools (nothing else calls
them); the statements and why no wake-up is ever lost are in :mod:`._sql`. Consumption is
idempotent per (run, position): when the checkpoint at that position already holds a
consumed signal, consuming again returns it instead of taking the next one (what a retry
does after the reply of a committed consume was lost). A workflow's own
``ctx.send_signal`` inserts the signal and its checkpoint in one transaction, so it is sent
exactly once however often the body replays.
"""

from __future__ import annotations

import uuid

import asyncpg

from . import _sql as sql
from ._errors import RunFinished, RunNotFound
from ._records import FINISHED_VALUES
from ._serde import signal_failure_doc


async def send(
    conn: asyncpg.Connection | asyncpg.Pool, run_id: uuid.UUID, name: str, payload: str
) -> int:
    """Store a signal for ``run_id`` and wake the run if it waits; return the signal id."""
    row = await conn.fetchrow(sql.SEND, run_id, name, payload)
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
    row = await conn.fetchrow(sql.CONSUME, run_id, name, seq, step_name, execution)
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
            row = await conn.fetchrow(sql.SENT, run_id, seq, execution)
            if row is None or not row["held"]:
                return None
            if row["status"] == "completed":
                return "completed", str(row["output"])
            if row["status"] == "failed":
                return "failed", str(row["error"])
            sent = await conn.fetchrow(sql.SEND, target, name, payload)
            output: str | None = None
            error: str | None = None
            if sent is None:
                error = signal_failure_doc(RunNotFound(target))
            elif sent["status"] in FINISHED_VALUES:
                exc = RunFinished(target, sent["status"], f"receive signal {name!r}")
                error = signal_failure_doc(exc, status=sent["status"])
            else:
                output = str(sent["signal_id"])
            status = "completed" if error is None else "failed"
            done = await conn.execute(
                sql.RECORD_SENT, run_id, seq, step_name, status, output, error, execution
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
