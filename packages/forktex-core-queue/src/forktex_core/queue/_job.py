# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Job handles (`status`, `result`, `abort`) and what a handle needs of its queue."""

from __future__ import annotations

import asyncio
import time
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from . import _serde
from ._backend import Backend
from ._errors import (
    MAX_SECONDS,
    InvalidArgument,
    JobAborted,
    JobFailed,
    JobNotFound,
    ResultTimeout,
    show,
)
from ._records import decode_result

JOB_ID_MAX = 200

R = TypeVar("R")


class JobQueue(Protocol):
    """What job handles and tasks need of their queue (a :class:`~._queue.Queue` is one):
    its name, how long results are kept, and its engine on the running event loop."""

    @property
    def name(self) -> str: ...

    @property
    def keep_result(self) -> float: ...

    @property
    def backend(self) -> Backend: ...


def check_job_id(job_id: object) -> str:
    """Validate a job id: a non-empty str of at most 200 printable characters without
    whitespace; return it.

    Example::

        check_job_id("welcome:ada")  # 'welcome:ada'
    """
    if (
        not isinstance(job_id, str)
        or not job_id
        or len(job_id) > JOB_ID_MAX
        or not job_id.isprintable()
        or any(c.isspace() for c in job_id)
    ):
        raise InvalidArgument(
            f"job id {show(job_id)}: must be a non-empty str of at most {JOB_ID_MAX} "
            "printable characters without whitespace"
        )
    return job_id


class JobStatus(StrEnum):
    """Where a job is in its life.

    Example::

        await job.status()  # JobStatus.queued, later JobStatus.complete
    """

    #: waiting for its ``_defer_by`` / ``_defer_until`` time or for a retry's backoff
    deferred = "deferred"
    #: ready to run, waiting for a free worker
    queued = "queued"
    #: a worker is running it
    in_progress = "in_progress"
    #: finished; ``result()`` returns its value
    complete = "complete"
    #: raised (or timed out) on its final try; ``result()`` raises :class:`JobFailed`
    failed = "failed"
    #: stopped by ``abort()``; ``result()`` raises :class:`JobAborted`
    aborted = "aborted"
    #: never enqueued, or its result has expired
    not_found = "not_found"


def _check_timeout(name: str, value: float | None) -> None:
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_SECONDS  # also refuses nan and inf
    ):
        raise InvalidArgument(
            f"{name}={show(value)}: must be seconds from 0 to {MAX_SECONDS} (10 years), "
            "or None (wait forever)"
        )


class Job(Generic[R]):
    """A handle on one job of a queue: check its status, wait for its result, abort it.

    ``created`` is False when an enqueue with an explicit ``_job_id`` found that job already
    live and returned it instead of enqueueing a duplicate.

    Example::

        job = await send_email.enqueue("ada@example.com", _job_id="welcome:ada")
        await job.status()            # JobStatus.queued
        await job.result(timeout=30)  # the task's return value
    """

    __slots__ = ("_queue", "created", "job_id")

    def __init__(self, queue: JobQueue, job_id: str, created: bool = True) -> None:
        self._queue = queue
        self.job_id = job_id
        self.created = created

    def __repr__(self) -> str:
        return f"<Job {self.job_id!r} of queue {self._queue.name!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Job):
            return NotImplemented
        return self.job_id == other.job_id and self._queue.name == other._queue.name

    def __hash__(self) -> int:
        return hash((self._queue.name, self.job_id))

    async def status(self) -> JobStatus:
        """The job's current :class:`JobStatus`.

        Example::

            if await job.status() is JobStatus.failed: ...
        """
        state = await self._queue.backend.state(self.job_id)
        if state.live:
            if state.running:
                return JobStatus.in_progress
            if state.score_ms is not None and state.score_ms > time.time() * 1000:
                return JobStatus.deferred
            return JobStatus.queued
        if state.result is not None:
            return JobStatus(decode_result(state.result, self.job_id)["s"])
        return JobStatus.not_found

    async def result(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the spec's API: job.result(timeout=)
        *,
        poll_interval: float = 0.5,
    ) -> R:
        """Wait for the job to finish and return its value.

        Raises :class:`JobFailed` (it raised on its final try or timed out), :class:`JobAborted`,
        :class:`JobNotFound` (no live job and no stored result), :class:`ResultTimeout`
        after ``timeout`` seconds (``None`` waits forever), :class:`InvalidJob` if the stored
        result is corrupt, or :class:`QueueUnavailable`. Polls Redis, starting fast and
        backing off to ``poll_interval``.

        Example::

            try:
                value = await job.result(timeout=30)
            except JobFailed as exc:
                log.warning("%s: %s", exc.error_type, exc.message)
        """
        _check_timeout("timeout", timeout)
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, int | float)
            or not 0 < poll_interval <= MAX_SECONDS
        ):
            raise InvalidArgument(
                f"poll_interval={show(poll_interval)}: must be seconds > 0 (and finite)"
            )
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = min(0.005, poll_interval)
        while True:
            state = await self._queue.backend.state(self.job_id)
            if state.result is not None and not state.live:
                return self._decode(state.result)  # type: ignore[no-any-return]
            if not state.live:
                raise JobNotFound(
                    f"job {self.job_id!r} of queue {self._queue.name!r} is not queued and has no "
                    "stored result (never enqueued, or its result expired: see keep_result)"
                )
            if deadline is not None and loop.time() >= deadline:
                raise ResultTimeout(
                    f"job {self.job_id!r} did not finish within {timeout} s; it is still "
                    f"{'running' if state.running else 'waiting'}"
                )
            wait = delay if deadline is None else min(delay, max(0.0, deadline - loop.time()))
            await asyncio.sleep(wait)
            delay = min(delay * 2, poll_interval)

    def _decode(self, raw: bytes) -> Any:
        record = decode_result(raw, self.job_id)
        state = record["s"]
        if state == "complete":
            return record.get("r")
        if state == "aborted":
            raise JobAborted(f"job {self.job_id!r} of queue {self._queue.name!r} was aborted")
        raise JobFailed(
            self.job_id,
            record.get("e", "Error"),
            record.get("m", ""),
            record["t"],
            record.get("tb", ""),
        )

    async def abort(self, timeout: float | None = 10.0) -> bool:  # noqa: ASYNC109
        """Stop the job; True if it was aborted, False if it had already finished or is unknown.

        A waiting (queued/deferred/retrying) job is removed at once. A running job is cancelled
        by its worker (within one poll interval); this waits up to ``timeout`` seconds for that
        and raises :class:`ResultTimeout` if the worker has not confirmed by then (the request
        stays in force). Nothing is left behind that could affect a later job with this id.

        Example::

            job = await build_report.enqueue(42)
            if await job.abort():
                print("stopped")
        """
        _check_timeout("timeout", timeout)
        record = _serde.dumps(
            {"s": "aborted", "t": 0, "f": "", "e": "Aborted", "m": "aborted by request"}
        )
        keep_ms = int(self._queue.keep_result * 1000)
        outcome = await self._queue.backend.abort(self.job_id, record, keep_ms)
        if outcome == "aborted":
            return True
        if outcome == "none":
            return False
        try:
            await self.result(timeout=timeout, poll_interval=0.1)
        except JobAborted:
            return True
        except (JobFailed, JobNotFound):
            return False
        return False
