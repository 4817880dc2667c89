# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What several groups of statements share: the NOTIFY channels and the run columns."""

from __future__ import annotations

from .._schema import SCHEMA

WORK_CHANNEL = "forktex_flow_work"  # new or woken runs; "cancel:<run id>" stops an execution
DONE_CHANNEL = "forktex_flow_done"  # the id of a run that has finished

RUN_COLUMNS = (
    "id, workflow, version, status, input::text AS input, output::text AS output, "
    "queue, priority, partition_key, dedup_key, parent_id, "
    "error::text AS error, idempotency_key, worker, lease_until, recovery_attempts, wake_at, "
    "deadline, metadata::text AS metadata, created_at, updated_at, started_at, finished_at, "
    # runnable, but no live worker has this (workflow, version) registered
    f"(status = 'pending' OR (status = 'waiting' AND wake_at <= now())) AND NOT EXISTS ("
    f"SELECT 1 FROM {SCHEMA}.workers w WHERE w.versions ? ({SCHEMA}.runs.workflow || ':' || "
    f"{SCHEMA}.runs.version) AND w.heartbeat > now() - make_interval(secs => {{stale}})"
    ") AS waiting_for_worker"
)


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
