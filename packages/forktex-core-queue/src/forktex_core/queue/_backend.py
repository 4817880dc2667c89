# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The small interface between the public API and the engine that stores and runs jobs.

Everything the public modules (`_queue`, `_task`, `_job`) need from the engine goes through
:class:`Backend`; the arq implementation lives in `_arq` and `_worker`. Swapping engines means
writing another ``Backend``, not touching consumer code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ._task import Registry

AbortOutcome = Literal["aborted", "requested", "none"]


@dataclass(frozen=True)
class Keys:
    """Every Redis key of one queue; all of them start with the queue name.

    Example::

        Keys("emails").job("42")  # 'emails:job:42'
    """

    name: str

    @property
    def queue(self) -> str:
        """Sorted set of live job ids, scored by the time (ms) they may run."""
        return f"{self.name}:queue"

    @property
    def abort(self) -> str:
        """Sorted set of abort requests for running jobs, scored by request time (ms)."""
        return f"{self.name}:abort"

    @property
    def running(self) -> str:
        """Sorted set of running job ids, scored by when their lease expires (ms)."""
        return f"{self.name}:running"

    @property
    def workers(self) -> str:
        """Hash of worker id -> JSON health record."""
        return f"{self.name}:workers"

    def job(self, job_id: str) -> str:
        return f"{self.name}:job:{job_id}"

    def in_progress(self, job_id: str) -> str:
        return f"{self.name}:in-progress:{job_id}"

    def result(self, job_id: str) -> str:
        return f"{self.name}:result:{job_id}"

    def retry(self, job_id: str) -> str:
        return f"{self.name}:retry:{job_id}"

    def cron_tick(self, cron: str, tick_ms: int) -> str:
        return f"{self.name}:cron:{cron}:{tick_ms}"


@dataclass(frozen=True)
class JobState:
    """A raw snapshot of one job: live (queued/deferred/running) or its stored result."""

    live: bool
    running: bool
    score_ms: int | None
    result: bytes | None


@dataclass(frozen=True)
class Counts:
    """Queue-wide numbers for a health report."""

    queued: int
    deferred: int
    in_progress: int
    workers: list[dict[str, Any]]


@dataclass(frozen=True)
class WorkerOptions:
    """How one worker runs (validated by ``Queue.run_worker``)."""

    concurrency: int
    burst: bool
    poll_interval: float
    grace_period: float
    lease: float
    heartbeat: float
    handle_signals: bool


class Backend(Protocol):
    """What the public API needs from a job engine."""

    keys: Keys

    async def enqueue(self, job_id: str, payload: bytes, score_ms: int, expires_ms: int) -> bool:
        """Store a job unless one with this id is live; True when this call created it."""

    async def state(self, job_id: str) -> JobState:
        """One consistent snapshot of a job."""

    async def abort(self, job_id: str, result: bytes, keep_ms: int) -> AbortOutcome:
        """Abort: remove a waiting job at once, or ask the worker running it to cancel it."""

    async def counts(self, stale_ms: int) -> Counts:
        """Queued / deferred / in-progress counts and the worker health records."""

    async def remove_workers(self, worker_ids: list[str]) -> None:
        """Drop these workers' health records."""

    async def run_worker(self, registry: Registry, options: WorkerOptions) -> None:
        """Process jobs until stopped (or, in burst mode, until the queue is empty)."""

    async def close(self) -> None:
        """Release connections."""
