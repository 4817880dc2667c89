# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Job handles (`status`, `result`, `abort`), job context inside a task, failure records."""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

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

if TYPE_CHECKING:
    from ._queue import Queue

R = TypeVar("R")


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


@dataclass(frozen=True)
class JobContext:
    """What a running task can learn about its own job (see :func:`current_job`).

    Example::

        @queue.task(retries=3)
        async def sync_account(account_id: str) -> None:
            job = current_job()
            log.info("try %d of %d for job %s", job.try_number, job.max_tries, job.job_id)
    """

    job_id: str
    task: str
    queue: str
    try_number: int
    max_tries: int
    enqueued_at: datetime


@dataclass(frozen=True)
class FailedJob:
    """Passed to ``on_failure`` hooks once a job has failed for good.

    ``error`` is the exception itself (``None`` for a job that could not be decoded),
    ``traceback`` its formatted traceback, as stored with the job's result.

    Example::

        @queue.on_failure
        async def alert(failed: FailedJob) -> None:
            await pager.send(f"{failed.task} {failed.job_id}: {failed.error_type}")
    """

    job_id: str
    task: str
    queue: str
    args: list[Any]
    kwargs: dict[str, Any]
    tries: int
    error_type: str
    message: str
    error: BaseException | None = field(default=None, compare=False)
    traceback: str = field(default="", compare=False)


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "forktex_queue_job", default=None
)


def current_job() -> JobContext:
    """The :class:`JobContext` of the job this task is running for.

    Raises :class:`InvalidArgument` outside a job (e.g. when the task function is called
    directly rather than by a worker).

    Example::

        @queue.task()
        async def report() -> None:
            print(current_job().job_id)
    """
    ctx = _current.get()
    if ctx is None:
        raise InvalidArgument(
            "current_job() is only available inside a task run by a worker, "
            "not when the function is called directly"
        )
    return ctx


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

    def __init__(self, queue: Queue, job_id: str, created: bool = True) -> None:
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
        state = await self._queue._state(self.job_id)
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
            state = await self._queue._state(self.job_id)
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
        outcome = await self._queue._abort(self.job_id)
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


def now_utc() -> datetime:
    return datetime.now(UTC)
