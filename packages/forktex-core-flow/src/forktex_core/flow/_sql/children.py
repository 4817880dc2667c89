# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Statements of child workflows: a parent's execution starts a child, the children of a
run, and the cancellation that follows a cancelled parent down its tree.

A child's outcome reaches its parent by trigger (migration 9 of ``_schema``), as the signal
``flow.child:<child id>``, whatever ends the child.
"""

from __future__ import annotations

from .._defs import CHILD_SIGNAL_PREFIX
from .._schema import SCHEMA
from .common import DONE_CHANNEL, RUN_COLUMNS, WORK_CHANNEL

# START with the parent ($14), whether the child follows its cancellation ($15) and a fence
# on the parent's execution ($16): a zombie execution of the parent starts no child. The id
# ($1) is derived from (parent, generation, position), so a re-execution that lost the
# checkpoint (killed between this insert and it) finds the same child (DO NOTHING).
START_CHILD = f"""
WITH ins AS (
    INSERT INTO {SCHEMA}.runs
        (id, workflow, version, status, input, idempotency_key, wake_at, timeout, metadata,
         queue, priority, partition_key, queue_seq, dedup_key, parent_id, cancel_with_parent)
    SELECT $1, $2, $3, 'pending', $4::json, $5,
           coalesce($13::timestamptz,
                    now() + make_interval(secs => coalesce($12::float8, 0))),
           $6, $7::jsonb, $8, $9, $10,
           CASE WHEN $8::text IS NULL THEN NULL ELSE nextval('{SCHEMA}.queue_order') END, $11,
           $14, $15
    WHERE EXISTS (SELECT 1 FROM {SCHEMA}.runs p
                  WHERE p.id = $14 AND p.execution = $16 AND p.status = 'running')
    ON CONFLICT DO NOTHING
    RETURNING id, wake_at <= now() AS due
)
SELECT id, CASE WHEN due THEN pg_notify('{WORK_CHANNEL}', '') END FROM ins
"""

# The parent's child lock (migration 9): a suspension waiting for children takes it after
# updating the run and before looking for their signals, as a child's end does before
# handing its outcome over, so one of the two always sees the other's write.
CHILD_LOCK = "SELECT pg_advisory_xact_lock(1130916204, hashtext($1::uuid::text))"
CHILD_SIGNAL = CHILD_SIGNAL_PREFIX

# A worker told 'wake:<id>' (a child ended while another transaction held its waiting
# parent's row) wakes the parent, in a transaction of its own that may wait for the row.
WAKE_PARENT = f"""
UPDATE {SCHEMA}.runs SET wake_at = now() WHERE id = $1 AND status = 'waiting'
RETURNING pg_notify('{WORK_CHANNEL}', '')
"""

# After DO NOTHING: the run already holding the id (a child started before the parent's
# checkpoint), or the key; and whether the parent's execution still holds it.
CHILD_FOUND = f"""
SELECT (SELECT parent_id FROM {SCHEMA}.runs WHERE id = $1) AS by_id,
       (SELECT id FROM {SCHEMA}.runs WHERE workflow = $2 AND idempotency_key = $3) AS by_key,
       EXISTS (SELECT 1 FROM {SCHEMA}.runs p
               WHERE p.id = $4 AND p.execution = $5 AND p.status = 'running') AS held
"""


# One level of the tree below the runs $1 that were just cancelled: their live children that
# follow their parent's cancellation. One level per statement, so no statement locks a
# parent and its child together (a child ending at the same moment locks child then parent).
CANCEL_CHILDREN = f"""
UPDATE {SCHEMA}.runs
SET status = 'cancelled', finished_at = now(), updated_at = now(), worker = NULL,
    execution = NULL, lease_until = NULL, wake_at = NULL,
    error = jsonb_build_object('type', 'Cancelled',
                               'message', 'cancelled with its parent run ' || parent_id::text)
WHERE parent_id = ANY($1::uuid[]) AND cancel_with_parent
  AND status NOT IN ('succeeded', 'failed', 'cancelled', 'dead')
RETURNING id, pg_notify('{WORK_CHANNEL}', 'cancel:' || id::text),
          pg_notify('{DONE_CHANNEL}', id::text)
"""


def children_of(stale: float) -> str:
    """The children of run ``$1``, oldest first (columns as :func:`.clients.get_run`)."""
    columns = RUN_COLUMNS.replace("{stale}", repr(float(stale)))
    return f"SELECT {columns} FROM {SCHEMA}.runs WHERE parent_id = $1 ORDER BY created_at, id"
