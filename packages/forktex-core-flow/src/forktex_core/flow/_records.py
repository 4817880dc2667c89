# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Read-only records returned by introspection: :class:`RunInfo`, :class:`StepInfo`, and
their decoding from stored rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ._errors import InvalidArgument


class RunStatus(StrEnum):
    """Lifecycle of a run.

    ``pending`` (runnable) → ``running`` (leased by a worker) → ``succeeded`` / ``failed``;
    ``waiting`` while suspended on a durable sleep or a signal; ``cancelled`` by
    ``flow.cancel``; ``dead`` when it crashed its workers more often than allowed.

    Example::

        info = await flow.get_run(run_id)
        if info.status is RunStatus.SUCCEEDED: ...
    """

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"

    @property
    def finished(self) -> bool:
        """True for the final statuses (succeeded, failed, cancelled, dead)."""
        return self in _FINISHED


_FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.DEAD})
FINISHED_VALUES = tuple(s.value for s in _FINISHED)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run as stored: status, input, output, error, timestamps, worker, version.

    ``metadata`` holds what the host (or a :class:`FlowHooks` extension) attached at start;
    ``waiting_for_worker`` flags a runnable run no live worker can claim (its version is
    not registered on any of them). ``deadline`` (workflows with a timeout) is set when a
    worker first picks the run up; ``worker`` names the worker executing it.

    Example::

        info = await flow.get_run(run_id)
        print(info.workflow, info.version, info.status, info.output)
    """

    id: uuid.UUID
    workflow: str
    version: int
    status: RunStatus
    input: Any
    output: Any
    error: Any
    idempotency_key: str | None
    worker: str | None
    lease_until: datetime | None
    recovery_attempts: int
    wake_at: datetime | None
    deadline: datetime | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    waiting_for_worker: bool = False
    """True when the run is runnable but no live worker has its (workflow, version)
    registered: it waits for a worker with that version (e.g. v1 runs after a v2-only
    deploy)."""
    queue: str | None = None
    """The queue the run goes through (None: started without one)."""
    priority: int = 0
    partition_key: str | None = None
    dedup_key: str | None = None
    parent_id: uuid.UUID | None = None
    """The run that started this one as a child workflow (``ctx.start_child``), if any."""


@dataclass(frozen=True, slots=True)
class StepInfo:
    """One entry of a run's checkpoint log.

    ``kind`` is ``step``, ``transaction``, ``sleep``, ``signal`` (a wait), ``send`` (a
    ``ctx.send_signal``), ``now``, ``uuid``, ``state`` (a graph state), ``patch``,
    ``event`` (a ``ctx.set_event``), ``wait_first`` (its winner's index) or ``child`` (a
    ``ctx.start_child``: the child's id, workflow and version);
    ``status`` is ``completed``, ``failed``, ``retrying`` (an attempt failed, more to come)
    or ``waiting`` (a signal wait not yet satisfied).

    Example::

        for step in await flow.history(run_id):
            print(step.seq, step.name, step.attempt, step.duration, step.output)
    """

    seq: int
    name: str
    kind: str
    status: str
    attempt: int
    output: Any
    error: Any
    started_at: datetime
    finished_at: datetime | None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None while unfinished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def run_info(row: Mapping[str, Any], loads: Callable[[str], Any]) -> RunInfo:
    """A :class:`RunInfo` from a stored row (JSON columns as text, decoded by ``loads``).

    Example::

        info = run_info(row, JsonSerializer().loads)
    """
    return RunInfo(
        id=row["id"],
        workflow=row["workflow"],
        version=row["version"],
        status=RunStatus(row["status"]),
        input=None if row["input"] is None else loads(row["input"]),
        output=None if row["output"] is None else loads(row["output"]),
        error=None if row["error"] is None else loads(row["error"]),
        idempotency_key=row["idempotency_key"],
        worker=row["worker"],
        lease_until=row["lease_until"],
        recovery_attempts=row["recovery_attempts"],
        wake_at=row["wake_at"],
        deadline=row["deadline"],
        metadata=loads(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        waiting_for_worker=bool(row["waiting_for_worker"]),
        queue=row["queue"],
        priority=row["priority"],
        partition_key=row["partition_key"],
        dedup_key=row["dedup_key"],
        parent_id=row.get("parent_id"),
    )


def step_info(row: Mapping[str, Any], loads: Callable[[str], Any]) -> StepInfo:
    """A :class:`StepInfo` from a stored step row (JSON columns as text).

    Example::

        steps = [step_info(r, JsonSerializer().loads) for r in rows]
    """
    return StepInfo(
        seq=row["seq"],
        name=row["name"],
        kind=row["kind"],
        status=row["status"],
        attempt=row["attempt"],
        output=None if row["output"] is None else loads(row["output"]),
        error=None if row["error"] is None else loads(row["error"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def status_values(status: RunStatus | str | Iterable[RunStatus | str] | None) -> list[str] | None:
    """The status filter of ``list_runs`` as stored values (``InvalidArgument`` if unknown).

    Example::

        status_values(["failed", RunStatus.DEAD])  # ['failed', 'dead']
    """
    if status is None:
        return None
    items = [status] if isinstance(status, str) else list(status)
    try:
        return [RunStatus(s).value for s in items]
    except ValueError:
        raise InvalidArgument(
            f"status must be one of {[s.value for s in RunStatus]}, got {status!r}"
        ) from None
