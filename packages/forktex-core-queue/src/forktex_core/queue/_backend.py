# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The small interface between the public API and the engine that stores and runs jobs.

Everything the public modules (`_queue`, `_task`, `_job`) need from the engine goes through
:class:`Backend`; the arq implementation lives in `_arq` and `_worker`, which depend on this
module, never the other way round. Swapping engines means writing another ``Backend``, not
touching consumer code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ._keys import Keys
from ._registry import Registry

AbortOutcome = Literal["aborted", "requested", "none"]


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
    max_outage: float
    keep_result: float


class Backend(Protocol):
    """What the public API needs from a job engine."""

    keys: Keys
    where: str  # host:port/db (or unix:/path/db), never the password: messages and spans

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

    async def results(self, scan: int) -> tuple[list[tuple[str, bytes]], bool]:
        """Up to about ``scan`` kept result records as ``(job id, record)``, and whether
        every kept record was read."""

    async def run_worker(self, registry: Registry, options: WorkerOptions) -> None:
        """Process jobs until stopped (or, in burst mode, until the queue is empty)."""

    async def close(self) -> None:
        """Release connections."""
