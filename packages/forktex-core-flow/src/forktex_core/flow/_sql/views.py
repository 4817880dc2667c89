# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Statements of operators' views (the console): keyset pages, counts, workers, signals."""

from __future__ import annotations

from .._schema import SCHEMA
from .common import RUN_COLUMNS

# The filters a page of runs can have, in the order of their parameters after the fixed ones
# (limit, cursor time, cursor id). Each present filter adds one clause, so every combination
# is a statement of its own whose plan uses the index for exactly those filters (no
# "$1 IS NULL OR ..." that a generic plan cannot use).
PAGE_FILTERS: dict[str, str] = {
    "workflow": "workflow = ${n}",
    "version": "version = ${n}",
    "created_after": "created_at >= ${n}",
    "created_before": "created_at < ${n}",
    "metadata": "metadata @> ${n}::jsonb",
    "queue": "queue = ${n}",
}


def page_runs(stale: float, filters: tuple[str, ...], by_status: bool) -> str:
    """A keyset page of runs, newest first: ``$1`` limit, ``$2``/``$3`` the cursor (created
    at, id of the last run of the previous page, or NULLs), then one parameter per name in
    ``filters`` (keys of :data:`PAGE_FILTERS`, in that order), then (``by_status``) the
    statuses as ``text[]``.

    With statuses, each one is probed on its own through ``runs_status_created`` (a
    ``LATERAL`` per status, each stopping after ``limit`` rows) and the probes are merged,
    so a rare status among millions of runs costs a few index reads.
    """
    columns = RUN_COLUMNS.replace("{stale}", repr(float(stale)))
    clauses = [
        "($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid))",
        # the same bound again as a plain range: usable by (workflow, created_at) and friends
        "($2::timestamptz IS NULL OR created_at <= $2::timestamptz)",
    ]
    for i, name in enumerate(filters):
        clauses.append(PAGE_FILTERS[name].replace("{n}", str(4 + i)))
    where = " AND ".join(clauses)
    if by_status:
        status_param = 4 + len(filters)
        ids = f"""
        SELECT r.id, r.created_at FROM unnest(${status_param}::text[]) AS s(status)
        CROSS JOIN LATERAL (
            SELECT id, created_at FROM {SCHEMA}.runs
            WHERE status = s.status AND {where}
            ORDER BY created_at DESC, id DESC LIMIT $1
        ) r
        ORDER BY r.created_at DESC, r.id DESC LIMIT $1"""
    else:
        ids = f"""
        SELECT id, created_at FROM {SCHEMA}.runs WHERE {where}
        ORDER BY created_at DESC, id DESC LIMIT $1"""
    return f"""WITH page AS ({ids})
    SELECT {columns} FROM {SCHEMA}.runs WHERE id = ANY (ARRAY(SELECT id FROM page))
    ORDER BY created_at DESC, id DESC"""


# Exact counts by status (what small tables and the statuses of live runs use).
COUNT_BY_STATUS = f"SELECT status, count(*) AS n FROM {SCHEMA}.runs GROUP BY status"

COUNT_STATUSES = f"""
SELECT s.status, (SELECT count(*) FROM {SCHEMA}.runs r WHERE r.status = s.status) AS n
FROM unnest($1::text[]) AS s(status)
"""

# The planner's statistics of the runs table: its estimated row count and the frequency of
# each status (what large tables use for finished runs instead of counting them).
RUN_STATISTICS = f"""
SELECT c.reltuples::float8 AS reltuples,
       s.most_common_vals::text::text[] AS statuses,
       s.most_common_freqs::float8[] AS freqs
FROM pg_class c
LEFT JOIN pg_stats s ON s.schemaname = '{SCHEMA}' AND s.tablename = 'runs'
                    AND s.attname = 'status'
WHERE c.oid = '{SCHEMA}.runs'::regclass
"""

WORKERS = f"""
SELECT id, hostname, pid, started_at, heartbeat, versions::text AS versions,
       heartbeat > now() - make_interval(secs => $1) AS alive
FROM {SCHEMA}.workers ORDER BY id
"""

SIGNALS_OF = f"""
SELECT id, name, payload::text AS payload, created_at, consumed_at, consumed_seq
FROM {SCHEMA}.signals WHERE run_id = $1 ORDER BY id LIMIT $2
"""
