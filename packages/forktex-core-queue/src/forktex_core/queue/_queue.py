# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``Queue``: the facade: define tasks and cron jobs, look up jobs, run workers, read health."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from ._arq import ArqBackend
from ._backend import Backend, WorkerOptions
from ._cron import CronSchedule
from ._errors import InvalidArgument, InvalidCron, show
from ._finished import FinishedJob, JobCounts, finished_job
from ._job import Job, JobStatus, check_job_id
from ._keys import Keys, queue_name_problem
from ._registry import (
    FailureHook,
    Registry,
    TaskSpec,
    check_hook,
    check_int,
    check_seconds,
)
from ._task import Task
from ._urls import redis_location

P = ParamSpec("P")
R = TypeVar("R")

_EPOCH = datetime.fromtimestamp(0, UTC)


def _check_range(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{name}={show(value)}: must be an int from {low} to {high}")
    return value


@dataclass(frozen=True)
class WorkerHealth:
    """One worker's last heartbeat record.

    Example::

        for w in (await queue.health()).workers:
            print(w.worker_id, w.alive, w.jobs_ongoing)
    """

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    last_heartbeat: datetime
    alive: bool
    concurrency: int
    jobs_complete: int
    jobs_failed: int
    jobs_retried: int
    jobs_ongoing: int


@dataclass(frozen=True)
class QueueHealth:
    """What a host needs for a health endpoint: counts and the workers' heartbeats.

    ``alive`` workers heartbeated within ``3 x`` their heartbeat interval.

    Example::

        health = await queue.health()
        ok = health.last_heartbeat is not None and health.queued < 10_000
    """

    queue: str
    queued: int
    deferred: int
    in_progress: int
    workers: list[WorkerHealth]

    @property
    def last_heartbeat(self) -> datetime | None:
        """The most recent heartbeat of any worker, or None if no worker has reported."""
        return max((w.last_heartbeat for w in self.workers), default=None)

    @property
    def alive_workers(self) -> int:
        """How many workers heartbeated recently."""
        return sum(w.alive for w in self.workers)


class Queue:
    """A named job queue on Redis: register tasks, enqueue them, run workers.

    Every Redis key the queue uses starts with ``name`` (``<name>:queue``, ``<name>:job:<id>``,
    ...), so queues sharing one Redis never see each other's jobs. ``name`` is 1-200
    letters, digits and ``_.:-``, and no ``:``-separated part of it may be ``job``,
    ``in-progress``, ``result``, ``retry`` or ``cron`` (so that two queues never share a
    key). Connections are opened on first use; the library reads no environment variables.

    Every Redis operation (connecting included) must finish within ``command_timeout``
    seconds (default 5), else it raises :class:`QueueUnavailable`: nothing waits forever on
    a server that accepts connections and never answers. ``redis_kwargs`` go to redis-py
    (``socket_connect_timeout``, ``ssl_ca_certs``, ``max_connections`` ...).

    Example::

        queue = Queue(redis_url="redis://localhost:6379/0", name="emails")

        @queue.task(retries=3, timeout=30)
        async def send_email(to: str) -> None: ...

        job = await send_email.enqueue("ada@example.com")
        await queue.run_worker(concurrency=10)   # in the worker process
    """

    def __init__(
        self,
        redis_url: str,
        name: str = "default",
        *,
        keep_result: float | timedelta = 3600,
        timezone: tzinfo = UTC,
        command_timeout: float | timedelta = 5.0,
        **redis_kwargs: Any,
    ) -> None:
        where = redis_location(redis_url, redis_kwargs)
        why = queue_name_problem(name)
        if why is not None:
            raise InvalidArgument(f"name={show(name)}: {why}")
        if not isinstance(timezone, tzinfo):
            raise InvalidArgument(f"timezone={show(timezone)}: must be a tzinfo (e.g. ZoneInfo)")
        self.name = name
        self._keep_result = check_seconds("keep_result", keep_result)
        self.command_timeout = check_seconds("command_timeout", command_timeout, strict=True)
        self.timezone = timezone
        self.keys = Keys(name)
        self.registry = Registry(name)
        self._url = redis_url
        self._where = where
        self._redis_kwargs = redis_kwargs
        self._backend: Backend | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} on redis {self._where}>"

    @property
    def keep_result(self) -> float:
        """Seconds results and failures are kept unless a task sets its own (validated on
        assignment too: finite, at most 10 years).

        Example::

            queue.keep_result = 600
        """
        return self._keep_result

    @keep_result.setter
    def keep_result(self, value: float | timedelta) -> None:
        self._keep_result = check_seconds("keep_result", value)

    # -- connection --------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The engine (arq) behind this queue, connected to the running event loop."""
        loop = asyncio.get_running_loop()
        if self._backend is None or self._loop is not loop:
            # redis-py connections belong to one event loop: a new loop gets a new client
            self._backend = ArqBackend(
                self._url, self.keys, self._where, self.command_timeout, **self._redis_kwargs
            )
            self._loop = loop
        return self._backend

    async def close(self) -> None:
        """Close this queue's Redis connections (they reopen on next use).

        Example::

            await queue.close()
        """
        backend, self._backend, self._loop = self._backend, None, None
        if backend is not None:
            await backend.close()

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- defining tasks ----------------------------------------------------------------------

    def _spec(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None,
        retries: int,
        timeout: float | timedelta,
        backoff: float | timedelta,
        backoff_max: float | timedelta,
        keep_result: float | timedelta | None,
        on_failure: FailureHook | None,
        cron: CronSchedule | None = None,
    ) -> TaskSpec:
        if not inspect.iscoroutinefunction(fn):
            raise InvalidArgument(
                f"{show(fn)} is not an async function (define it with `async def`)"
            )
        if name is not None and not isinstance(name, str):
            raise InvalidArgument(f"name={show(name)}: must be a str or None")
        check_hook("on_failure", on_failure)
        return TaskSpec(
            name=name or fn.__qualname__,
            fn=fn,
            signature=inspect.signature(fn),
            retries=check_int("retries", retries, 0),
            timeout=check_seconds("timeout", timeout, strict=True),
            backoff=check_seconds("backoff", backoff),
            backoff_max=check_seconds("backoff_max", backoff_max),
            keep_result=(
                self.keep_result
                if keep_result is None
                else check_seconds("keep_result", keep_result)
            ),
            on_failure=on_failure,
            cron=cron,
        )

    def task(
        self,
        *,
        name: str | None = None,
        retries: int = 3,
        timeout: float | timedelta = 300,
        backoff: float | timedelta = 1.0,
        backoff_max: float | timedelta = 300,
        keep_result: float | timedelta | None = None,
        on_failure: FailureHook | None = None,
    ) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Task[P, R]]:
        """Register an async function as a task of this queue.

        - ``retries``: extra tries after the first when it raises (any exception) or times out;
          the delay doubles from ``backoff`` seconds up to ``backoff_max`` (+ up to 10 % jitter).
        - ``timeout``: seconds a try may run before it is cancelled (then retried or failed).
        - ``keep_result``: seconds the result (or failure) is kept (default: the queue's).
        - ``on_failure``: async hook called with a :class:`FailedJob` once the job has failed
          for good (after its last retry).
        - ``name``: stored job name (default: the function's ``__qualname__``).

        Example::

            @queue.task(retries=3, timeout=30, backoff=2)
            async def send_email(to: str, subject: str) -> str:
                ...
                return message_id
        """

        def register(fn: Callable[P, Coroutine[Any, Any, R]]) -> Task[P, R]:
            spec = self._spec(
                fn,
                name=name,
                retries=retries,
                timeout=timeout,
                backoff=backoff,
                backoff_max=backoff_max,
                keep_result=keep_result,
                on_failure=on_failure,
            )
            self.registry.add(spec)
            return Task(self, spec)

        return register

    @overload
    def cron(
        self,
        spec: str,
        *,
        name: str | None = ...,
        timeout: float | timedelta = ...,
        retries: int = ...,
        keep_result: float | timedelta | None = ...,
        on_failure: FailureHook | None = ...,
    ) -> Callable[[Callable[[], Coroutine[Any, Any, R]]], Task[[], R]]: ...

    @overload
    def cron(
        self,
        spec: None = ...,
        *,
        name: str | None = ...,
        timeout: float | timedelta = ...,
        retries: int = ...,
        keep_result: float | timedelta | None = ...,
        on_failure: FailureHook | None = ...,
        month: int | Iterable[int] | None = ...,
        day: int | Iterable[int] | None = ...,
        weekday: int | str | Iterable[int] | None = ...,
        hour: int | Iterable[int] | None = ...,
        minute: int | Iterable[int] | None = ...,
        second: int | Iterable[int] | None = ...,
    ) -> Callable[[Callable[[], Coroutine[Any, Any, R]]], Task[[], R]]: ...

    def cron(
        self,
        spec: str | None = None,
        *,
        name: str | None = None,
        timeout: float | timedelta = 300,
        retries: int = 0,
        keep_result: float | timedelta | None = None,
        on_failure: FailureHook | None = None,
        month: int | Iterable[int] | None = None,
        day: int | Iterable[int] | None = None,
        weekday: int | str | Iterable[int] | None = None,
        hour: int | Iterable[int] | None = None,
        minute: int | Iterable[int] | None = None,
        second: int | Iterable[int] | None = 0,
    ) -> Callable[[Callable[[], Coroutine[Any, Any, R]]], Task[[], R]]:
        """Run an async function (taking no arguments) on a schedule, once per tick across all
        workers of the queue.

        ``spec`` is a crontab string (``"*/5 * * * *"``; a sixth, leading field gives seconds)
        evaluated in the queue's ``timezone``; or leave it out and use arq's keyword form
        (``minute={0, 30}``, ``hour=3``, ``weekday="mon"``, ``second=0`` ...). A tick is
        enqueued by whichever worker claims it first; ticks while no worker runs are skipped.

        Example::

            @queue.cron("*/5 * * * *")
            async def refresh_rates() -> None: ...

            @queue.cron(hour=3, minute=0)
            async def nightly_cleanup() -> None: ...
        """
        if spec is not None:
            if any(v is not None for v in (month, day, weekday, hour, minute)) or second != 0:
                raise InvalidCron(
                    f"cron({show(spec)}, ...): give either a crontab string or keyword fields, "
                    "not both"
                )
            schedule = CronSchedule.parse(spec, tz=self.timezone)
        else:
            schedule = CronSchedule.from_fields(
                month=month,
                day=day,
                weekday=weekday,
                hour=hour,
                minute=minute,
                second=second,
                tz=self.timezone,
            )

        def register(fn: Callable[[], Coroutine[Any, Any, R]]) -> Task[[], R]:
            task_spec = self._spec(
                fn,
                name=name,
                retries=retries,
                timeout=timeout,
                backoff=1.0,
                backoff_max=60,
                keep_result=keep_result,
                on_failure=on_failure,
                cron=schedule,
            )
            try:
                task_spec.signature.bind()
            except TypeError:
                raise InvalidArgument(
                    f"cron task {task_spec.name!r} must be callable without arguments; "
                    f"its signature is {task_spec.signature}"
                ) from None
            self.registry.add(task_spec)
            return Task(self, task_spec)

        return register

    def on_failure(self, hook: FailureHook) -> FailureHook:
        """Register a queue-wide hook called with a :class:`FailedJob` when any job of this
        queue fails for good (after its last retry; not on abort). Usable as a decorator.

        Example::

            @queue.on_failure
            async def alert(failed: FailedJob) -> None:
                await pager.send(f"{failed.task} failed: {failed.message}")
        """
        check_hook("hook", hook)
        self.registry.on_failure.append(hook)
        return hook

    # -- jobs --------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job[Any]:
        """A handle on the job with this id (e.g. one enqueued by another process).

        Example::

            status = await queue.job("welcome:ada").status()
        """
        return Job(self, check_job_id(job_id), created=False)

    async def failed_jobs(self, limit: int = 50, *, scan: int = 10_000) -> list[FinishedJob]:
        """The ``limit`` (1-1000) most recently failed jobs whose results are still kept
        (``keep_result``), newest first, with their error and traceback.

        Failures are kept as result records without an index, so at most ``scan``
        (1-10,000,000) kept results are read to find them (:meth:`job_counts` says whether
        that was all of them). Aborted jobs are not failures.

        Example::

            for job in await queue.failed_jobs(limit=20):
                print(job.finished_at, job.task, job.error_type, job.message)
                print(job.traceback)
        """
        limit = _check_range("limit", limit, 1, 1000)
        scan = _check_range("scan", scan, 1, 10_000_000)
        records, _ = await self.backend.results(scan)
        failed = [
            job
            for job_id, raw in records
            if (job := finished_job(job_id, raw)) is not None and job.status is JobStatus.failed
        ]
        failed.sort(
            key=lambda j: (j.finished_at is not None, j.finished_at or _EPOCH), reverse=True
        )
        return failed[:limit]

    async def job_counts(self, *, scan: int = 10_000) -> JobCounts:
        """How many jobs are queued, deferred, in progress, and - among the results still
        kept - complete, failed and aborted (exact unless more than ``scan`` results exist:
        then ``exact`` is False).

        Example::

            counts = await queue.job_counts()
            print(counts.queued, counts.in_progress, counts.failed)
        """
        scan = _check_range("scan", scan, 1, 10_000_000)
        backend = self.backend
        live = await backend.counts(stale_ms=3_600_000)
        records, exact = await backend.results(scan)
        finished = {JobStatus.complete: 0, JobStatus.failed: 0, JobStatus.aborted: 0}
        for job_id, raw in records:
            job = finished_job(job_id, raw)
            if job is not None:
                finished[job.status] += 1
        return JobCounts(
            queued=live.queued,
            deferred=live.deferred,
            in_progress=live.in_progress,
            complete=finished[JobStatus.complete],
            failed=finished[JobStatus.failed],
            aborted=finished[JobStatus.aborted],
            exact=exact,
        )

    # -- workers and health ------------------------------------------------------------------

    async def run_worker(
        self,
        *,
        concurrency: int = 10,
        burst: bool = False,
        poll_interval: float = 0.5,
        grace_period: float = 30.0,
        lease: float = 30.0,
        heartbeat: float = 10.0,
        handle_signals: bool = True,
        max_outage: float = 300.0,
    ) -> None:
        """Process this queue's jobs until stopped.

        - ``concurrency``: jobs run at once by this worker.
        - ``burst``: return once the queue is empty instead of waiting for more jobs.
        - ``grace_period``: on SIGTERM/SIGINT stop taking jobs, let running ones finish for up
          to this many seconds, then cancel and requeue the rest (that try does not count).
        - ``lease``: a running job's claim, renewed every ``lease / 3`` s; if this worker dies
          the job is run again by another worker once the lease expires (at-least-once).
        - ``heartbeat``: seconds between health records (see :meth:`health`).
        - ``handle_signals``: install SIGTERM/SIGINT handlers (main thread only).
        - ``max_outage``: how long Redis may be unusable (unreachable, silent, restarting)
          while the worker keeps retrying with backoff (0.1 s doubling to 5 s); after that
          it stops and raises :class:`QueueUnavailable`. Jobs running meanwhile go on; their
          results are stored once Redis is back. If Redis is unusable when the worker
          starts, it raises at once.

        Cancelling the coroutine stops the worker too (running jobs are requeued).
        A job that blocks the event loop (synchronous I/O, CPU-bound work) for over half
        its lease or timeout is named in a warning: run such code with
        ``await asyncio.to_thread(...)``.

        Example::

            asyncio.run(queue.run_worker(concurrency=20))
        """
        if not self.registry.tasks:
            raise InvalidArgument(
                f"queue {self.name!r} has no tasks: register some with @queue.task/@queue.cron "
                "before running a worker"
            )
        options = WorkerOptions(
            concurrency=check_int("concurrency", concurrency, 1),
            burst=bool(burst),
            poll_interval=check_seconds("poll_interval", poll_interval, strict=True),
            grace_period=check_seconds("grace_period", grace_period),
            lease=check_seconds("lease", lease, minimum=1.0),
            heartbeat=check_seconds("heartbeat", heartbeat, strict=True),
            handle_signals=bool(handle_signals),
            max_outage=check_seconds("max_outage", max_outage),
            keep_result=self.keep_result,
        )
        await self.backend.run_worker(self.registry, options)

    async def health(self) -> QueueHealth:
        """Queue counts and every worker's last heartbeat, for a host's health endpoint.

        ``queued`` = ready and not running, ``deferred`` = waiting for their time (or a retry
        backoff), ``in_progress`` = running under a live lease. Records of workers silent for
        over an hour are dropped.

        Example::

            health = await queue.health()
            print(health.queued, health.in_progress, health.last_heartbeat)
        """
        backend = self.backend
        counts = await backend.counts(stale_ms=3_600_000)
        now = time.time()
        workers: list[WorkerHealth] = []
        gone: list[str] = []
        for r in counts.workers:
            age = now - float(r["last_heartbeat"])
            if age > 3600:
                gone.append(r["worker_id"])
                continue
            workers.append(
                WorkerHealth(
                    worker_id=r["worker_id"],
                    host=r["host"],
                    pid=int(r["pid"]),
                    started_at=datetime.fromtimestamp(r["started_at"], UTC),
                    last_heartbeat=datetime.fromtimestamp(r["last_heartbeat"], UTC),
                    alive=age <= 3 * float(r["heartbeat_interval"]) + 1,
                    concurrency=int(r["concurrency"]),
                    jobs_complete=int(r["jobs_complete"]),
                    jobs_failed=int(r["jobs_failed"]),
                    jobs_retried=int(r["jobs_retried"]),
                    jobs_ongoing=int(r["jobs_ongoing"]),
                )
            )
        if gone:
            await backend.remove_workers(gone)
        workers.sort(key=lambda w: w.worker_id)
        return QueueHealth(
            queue=self.name,
            queued=counts.queued,
            deferred=counts.deferred,
            in_progress=counts.in_progress,
            workers=workers,
        )
