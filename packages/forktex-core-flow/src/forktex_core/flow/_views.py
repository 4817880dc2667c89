# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Records of the operators' views: a keyset page of runs, run counts, workers, signals.

A page's cursor is an opaque string (the creation time and id of its last run) that the
next call takes back as ``after=``; :func:`cursor_value` checks one that came from outside
(a URL, say) and names what is wrong with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._errors import InvalidArgument
from ._records import RunInfo, RunStatus


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs, newest first, and the cursor of the next page (None: last page).

    Example::

        page = await flow.page_runs(status="failed", limit=50)
        while page.next is not None:
            page = await flow.page_runs(status="failed", limit=50, after=page.next)
    """

    runs: list[RunInfo]
    next: str | None


@dataclass(frozen=True, slots=True)
class RunCounts:
    """Runs by status. ``exact`` is False when the numbers of finished statuses are the
    planner's estimates (large tables); live statuses (pending, running, waiting) are always
    counted exactly.

    Example::

        counts = await flow.run_counts()
        print(counts.by_status[RunStatus.FAILED], "failed", "" if counts.exact else "(about)")
    """

    by_status: dict[RunStatus, int] = field(default_factory=dict)
    exact: bool = True

    @property
    def total(self) -> int:
        """All runs (an estimate unless ``exact``)."""
        return sum(self.by_status.values())


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker that registered on the database: its versions served and whether it leads.

    ``alive`` is False once its heartbeat is older than twice the lease (it is presumed
    dead; the leader forgets such workers after a while).

    Example::

        for w in await flow.workers():
            print(w.id, w.alive, w.leader, w.versions)
    """

    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat: datetime
    versions: list[str]
    alive: bool
    leader: bool


@dataclass(frozen=True, slots=True)
class SignalInfo:
    """A signal sent to a run; ``consumed_seq`` is the position of the wait that took it.

    Example::

        for s in await flow.signals(run_id):
            print(s.id, s.name, s.payload, s.consumed_at)
    """

    id: int
    name: str
    payload: Any
    created_at: datetime
    consumed_at: datetime | None
    consumed_seq: int | None


def cursor_text(created_at: datetime, run_id: uuid.UUID) -> str:
    """The cursor naming a run's place in the newest-first order.

    Example::

        cursor_text(info.created_at, info.id)  # '2026-01-02T03:04:05.000006+00:00_9f3c...'
    """
    return f"{created_at.isoformat()}_{run_id}"


def cursor_value(text: object) -> tuple[datetime, uuid.UUID]:
    """The (created at, id) of a cursor made by :func:`cursor_text`; ``InvalidArgument``
    naming the value otherwise.

    Example::

        at, rid = cursor_value(page.next)
    """
    if not isinstance(text, str) or len(text) > 100:
        raise InvalidArgument(f"after must be a cursor from RunPage.next, got {text!r}")
    stamp, sep, rid = text.rpartition("_")
    try:
        if not sep:
            raise ValueError
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None:
            raise ValueError
        return at, uuid.UUID(rid)
    except ValueError:
        raise InvalidArgument(f"after must be a cursor from RunPage.next, got {text!r}") from None


def worker_info(row: Mapping[str, Any], leader: str | None, versions: list[str]) -> WorkerInfo:
    """A :class:`WorkerInfo` from a stored worker row."""
    return WorkerInfo(
        id=row["id"],
        hostname=row["hostname"],
        pid=row["pid"],
        started_at=row["started_at"],
        heartbeat=row["heartbeat"],
        versions=versions,
        alive=bool(row["alive"]),
        leader=row["id"] == leader,
    )
