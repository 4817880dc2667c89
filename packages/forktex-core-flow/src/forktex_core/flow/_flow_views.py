# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The operators' half of the :class:`Flow` facade: keyset pages of runs, counts by status,
workers and signals (read-only; what a console or a health endpoint shows)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ._defs import positive_int, run_id_value, storable_text
from ._errors import InvalidArgument, RunNotFound
from ._records import RunInfo, RunStatus, run_info, status_values
from ._serde import encode
from ._settings import Settings
from ._store import Store
from ._views import (
    RunCounts,
    RunPage,
    SignalInfo,
    WorkerInfo,
    cursor_text,
    cursor_value,
    worker_info,
)

LIVE_STATUSES = [RunStatus.PENDING.value, RunStatus.RUNNING.value, RunStatus.WAITING.value]


class ViewCalls:
    """Read-only views for operators: pages of runs, counts, workers, signals."""

    _settings: Settings
    _store: Store

    async def page_runs(
        self,
        *,
        workflow: str | None = None,
        version: int | None = None,
        status: RunStatus | str | Iterable[RunStatus | str] | None = None,
        metadata: dict[str, Any] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        queue: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> RunPage:
        """A page of runs, newest first, continuing after the cursor ``after``.

        Keyset pagination: each page costs the same however deep it is, and runs started
        meanwhile never shift a page. Filters: ``workflow`` (and ``version``, which needs
        it), ``status`` (one or several), ``metadata`` (JSON containment), creation time
        (``created_after`` inclusive, ``created_before`` exclusive), ``queue`` (runs started
        on that flow-control queue). Each is served by an index.

        Example::

            page = await flow.page_runs(workflow="cloud.deploy", status="failed", limit=20)
            older = await flow.page_runs(workflow="cloud.deploy", status="failed", limit=20,
                                         after=page.next)
        """
        filters: dict[str, Any] = {}
        if workflow is not None:
            if not isinstance(workflow, str) or not workflow:
                raise InvalidArgument(f"workflow must be a non-empty string, got {workflow!r}")
            filters["workflow"] = workflow
        if version is not None:
            if workflow is None:
                raise InvalidArgument("version filters need a workflow: pass workflow= too")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise InvalidArgument(f"version must be an int >= 1, got {version!r}")
            filters["version"] = version
        if queue is not None:
            filters["queue"] = storable_text(queue, "queue")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidArgument(f"metadata must be a dict or None, got {metadata!r}")
        if metadata:
            filters["metadata"] = encode(self._settings.serializer, metadata, "metadata filter")
        for value, label in ((created_after, "created_after"), (created_before, "created_before")):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidArgument(f"{label} must be a timezone-aware datetime, got {value!r}")
        filters["created_after"] = created_after
        filters["created_before"] = created_before
        lim = positive_int(limit, "limit")
        if lim > 1000:
            raise InvalidArgument(f"limit must be at most 1000, got {limit!r}")
        cursor = None if after is None else cursor_value(after)
        statuses = status_values(status)
        if statuses is not None:
            statuses = sorted(set(statuses))
            if not statuses:
                return RunPage([], None)
        rows = await self._store.views.page_runs(lim + 1, cursor, filters, statuses)
        loads = self._settings.serializer.loads
        runs: list[RunInfo] = [run_info(r, loads) for r in rows[:lim]]
        more = len(rows) > lim
        return RunPage(runs, cursor_text(runs[-1].created_at, runs[-1].id) if more else None)

    async def run_counts(self, *, exact_below: int = 100_000) -> RunCounts:
        """How many runs there are in each status.

        Live statuses (pending, running, waiting) are always counted exactly, through an
        index. Finished ones are counted too while the table holds fewer than
        ``exact_below`` rows (by the planner's estimate); above that they are the
        planner's estimates (``exact`` is False), so the call stays cheap with millions of
        runs (refreshed by autovacuum's ANALYZE).

        Example::

            counts = await flow.run_counts()
            print(counts.by_status[RunStatus.RUNNING], counts.total)
        """
        threshold = positive_int(exact_below, "exact_below", 0)
        counts, exact = await self._store.views.count_runs(threshold, LIVE_STATUSES)
        by_status = {s: int(counts.get(s.value, 0)) for s in RunStatus}
        return RunCounts(by_status, exact)

    async def workers(self) -> list[WorkerInfo]:
        """The workers registered on this database (``alive`` flags recent heartbeats),
        which ``workflow:version`` pairs each serves, and which one leads.

        Example::

            for w in await flow.workers():
                print(w.id, "leader" if w.leader else "", w.versions)
        """
        rows, leader = await self._store.views.workers()
        return [worker_info(r, leader, _versions(r["versions"])) for r in rows]

    async def signals(self, run_id: uuid.UUID | str, *, limit: int = 1000) -> list[SignalInfo]:
        """The signals sent to a run, oldest first (at most ``limit``), consumed or not.

        Example::

            for s in await flow.signals(run_id):
                print(s.name, s.payload, "consumed" if s.consumed_at else "pending")
        """
        rid = run_id_value(run_id)
        lim = positive_int(limit, "limit")
        rows = await self._store.views.signals_of(rid, lim)
        if rows is None:
            raise RunNotFound(rid)
        loads = self._settings.serializer.loads
        return [
            SignalInfo(
                id=int(r["id"]),
                name=r["name"],
                payload=None if r["payload"] is None else loads(r["payload"]),
                created_at=r["created_at"],
                consumed_at=r["consumed_at"],
                consumed_seq=r["consumed_seq"],
            )
            for r in rows
        ]


def _versions(text: str) -> list[str]:
    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []
