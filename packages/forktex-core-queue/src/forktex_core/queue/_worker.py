# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The worker: arq's poll loop, concurrency limit and signal handling, with the job
lifecycle replaced so that it does what arq users expect.

Differences from ``arq.worker.Worker`` (each one a fix of a known arq pitfall):

- every key is derived from the queue name (arq shares ``arq:job:*`` / ``arq:abort``);
- claiming a job is one Lua script (arq: WATCH/MULTI plus a second round trip);
- ordinary exceptions and timeouts are retried per the task's policy with exponential
  backoff (arq only retries on its own ``Retry``), then an ``on_failure`` hook runs;
- a running job holds a lease the worker renews; a worker that dies loses it and the job is
  run again elsewhere once the lease expires (arq: only after ``timeout + 10 s``);
- abort requests are consumed when acted on and stale ones expire (arq never trims its
  abort set, so an old request could kill a later job with the same id);
- each worker writes its own health record and removes only that one on shutdown
  (arq workers of one queue share a key and the first to stop deletes it);
- cron ticks are claimed with ``SET NX`` per tick, so several workers enqueue each tick once;
- no job can stop the worker: a payload that is not a job, arguments that do not fit the
  task, a result that cannot be stored — each fails that job (recorded, with its traceback)
  and the worker goes on (arq re-raises some of these in its poll loop and dies);
- a Redis outage does not end the worker: every Redis call has a deadline, and the poll loop
  and the storing of results retry with backoff for up to ``max_outage`` seconds (arq's
  loop ends at the first ``ConnectionError``);
- a job that blocks the event loop for over half its lease or timeout is named in a warning.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from arq.connections import ArqRedis
from arq.worker import Worker, func
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from . import _serde, _telemetry
from ._backend import WorkerOptions
from ._context import CURRENT_JOB, FailedJob, JobContext
from ._cron import cron_job_id
from ._errors import InvalidJob, QueueUnavailable, Retry, SerializationError, TaskTimeout
from ._faults import persist
from ._keys import EXPIRES_EXTRA_MS, Keys
from ._records import StoredJob, decode_job
from ._registry import Registry, TaskSpec
from ._watchdog import Culprit, LoopWatchdog

log = logging.getLogger("forktex_core.queue")

CRON_TICK_TTL_MS = 3_600_000  # a tick's claim outlives any clock skew between workers

_MAX_MESSAGE = 4000
_OUTCOMES = {
    "complete": _telemetry.COMPLETED,
    "failed": _telemetry.FAILED,
    "aborted": _telemetry.ABORTED,
}
_MAX_TRACEBACK = 16_000


def _ms() -> int:
    return int(time.time() * 1000)


def _message(error: BaseException) -> str:
    """An exception's text for the failure record: bounded, and never raising itself."""
    try:
        text = str(error)
    except Exception:
        text = f"<{type(error).__name__} whose str() failed>"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _traceback(error: BaseException) -> str:
    """The formatted traceback for the failure record: the last 16,000 characters (the
    innermost frames), and never raising itself."""
    try:
        text = "".join(traceback.format_exception(error))
    except Exception:
        text = f"{type(error).__name__}: {_message(error)}\n"
    return text if len(text) <= _MAX_TRACEBACK else "...\n" + text[-(_MAX_TRACEBACK - 4) :]


@dataclass(frozen=True)
class Claim:
    """A job this worker has just claimed: its raw payload (``None`` if the job key is gone
    or holds another Redis type, named by ``kind``), its try number and whether an abort
    was requested before it started."""

    payload: bytes | None
    try_number: int
    aborted: bool
    kind: str


class WorkerStore(Protocol):
    """What the worker needs of the engine's storage (:class:`~._arq.ArqBackend` is one):
    the arq Redis client its poll loop runs on, and one call per step of a job's life.
    Every call raises :class:`QueueUnavailable` when Redis is unusable."""

    keys: Keys
    where: str  # host:port/db, for messages
    redis: ArqRedis

    async def ping(self) -> None: ...

    async def due(self, limit: int) -> list[bytes]: ...

    async def queued(self) -> int: ...

    async def claim(self, job_id: str, lease_ms: int, token: str) -> Claim | None: ...

    async def finish(
        self,
        job_id: str | bytes,
        token: str,
        mode: str,
        record: bytes,
        keep_ms: int,
        retry_at_ms: int = 0,
        expires_ms: int = 0,
    ) -> None: ...

    async def renew(self, tokens: dict[str, str], lease_ms: int) -> dict[str, int]: ...

    async def abort_requests(self) -> list[bytes]: ...

    async def write_health(self, worker_id: str, record: bytes) -> None: ...

    async def remove_workers(self, worker_ids: list[str]) -> None: ...

    async def claim_cron_tick(
        self, cron: str, tick_ms: int, worker_id: str, ttl_ms: int
    ) -> bool: ...

    async def enqueue(
        self, job_id: str, payload: bytes, score_ms: int, expires_ms: int
    ) -> bool: ...


Done = Callable[..., Awaitable[None]]


class QueueWorker(Worker):
    """One worker process's engine for one queue (see the module docstring)."""

    def __init__(self, backend: WorkerStore, registry: Registry, options: WorkerOptions) -> None:
        functions = [
            func(spec.fn, name=spec.name, timeout=spec.timeout, max_tries=spec.max_tries)
            for spec in registry.tasks.values()
        ]
        super().__init__(
            functions,
            queue_name=backend.keys.queue,
            redis_pool=backend.redis,
            burst=options.burst,
            handle_signals=options.handle_signals,
            job_completion_wait=1
            if options.grace_period > 0
            else 0,  # picks arq's graceful handler
            max_jobs=options.concurrency,
            poll_delay=options.poll_interval,
            health_check_interval=options.heartbeat,
            allow_abort_jobs=True,
            job_serializer=_serde.dumps,
            job_deserializer=_serde.loads,
            log_results=False,
        )
        self.backend = backend
        self.registry = registry
        self.options = options
        self.keys = backend.keys
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease_ms = int(options.lease * 1000)
        self.started_at = time.time()
        self.stopping = False
        self._started = False  # Redis answered and the worker began polling
        self._shut_down = False
        self.tokens: dict[str, str] = {}
        self._last_renew = 0.0
        self._cron_next: dict[str, datetime] = {}
        self._grace = options.grace_period
        self._specs: dict[str, TaskSpec] = {}  # running job -> its task, for the watchdog
        # task name -> its span name and attributes, built once (registered tasks only)
        self._span_info: dict[str | None, tuple[str, dict[str, AttributeValue]]] = {}
        shortest = min([options.lease, *(s.timeout for s in registry.tasks.values())])
        self._watchdog = LoopWatchdog(
            self._culprit, default_threshold=options.lease / 2, min_threshold=shortest / 2
        )

    # -- lifecycle -------------------------------------------------------------------------

    def handle_sig(self, signum: signal.Signals) -> None:
        self.stopping = True
        super().handle_sig(signum)

    def handle_sig_wait_for_completion(self, signum: signal.Signals) -> None:
        self.stopping = True
        super().handle_sig_wait_for_completion(signum)

    async def _wait_for_tasks_to_complete(self, signum: signal.Signals) -> None:
        # arq only takes whole seconds; honour a fractional grace period too.
        try:
            await asyncio.wait_for(self._sleep_until_tasks_complete(), self._grace)
        except TimeoutError:
            pass
        for t in self.tasks.values():
            if not t.done():
                t.cancel()
        if self.main_task:
            self.main_task.cancel()

    async def run_until_stopped(self) -> None:
        """Run until a signal (graceful), cancellation (in-flight jobs requeued), in burst
        mode an empty queue, or an outage longer than ``max_outage`` (QueueUnavailable)."""
        try:
            await self.async_run()
        except asyncio.CancelledError:
            if not self.stopping:  # cancelled by the caller, not stopped by a signal
                raise
        finally:
            if self._handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    self.loop.remove_signal_handler(sig)
            await self._shutdown()  # running jobs are requeued (or finish, after a signal)

    async def main(self) -> None:
        # Fail fast when Redis is unusable from the start (a wrong URL, a server that is not
        # there); once running, outages are ridden out.
        await self.backend.ping()
        self._started = True
        log.info(
            "worker %s: queue %r, %d tasks, concurrency %d",
            self.worker_id,
            self.keys.name,
            len(self.registry.tasks),
            self.max_jobs,
        )
        self._watchdog.start(self.loop)
        try:
            while True:
                started = self.loop.time()
                finished = await persist(
                    self._poll_once,
                    patience=self.options.max_outage,
                    doing="polling for jobs",
                    where=self.backend.where,
                )
                if finished:
                    return
                await asyncio.sleep(max(0.0, self.poll_delay_s - (self.loop.time() - started)))
        finally:
            self._watchdog.stop()

    async def _poll_once(self) -> bool:
        """One poll: start due jobs, act on abort requests, heartbeat. True when a burst
        worker is done."""
        await self._poll_iteration()
        if self.burst and await self.backend.queued() == 0:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            return True
        return False

    async def _poll_iteration(self) -> None:
        if self.allow_pick_jobs and self.job_counter < self.max_jobs:
            await self.start_jobs(await self.backend.due(self.queue_read_limit))
        await self._cancel_aborted_jobs()
        for job_id, t in list(self.tasks.items()):
            if t.done():
                del self.tasks[job_id]
        await self.heart_beat()

    async def _shutdown(self) -> None:
        if self._shut_down or not self._started:
            return
        self._shut_down = True
        for t in self.tasks.values():
            if not t.done() and not t.cancelling():  # a second cancel would cut the requeue short
                t.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()
        try:
            await self.backend.remove_workers([self.worker_id])
        except QueueUnavailable:  # Redis gone: the record goes stale and is reported as dead
            log.warning("worker %s: could not remove its health record", self.worker_id)
        log.info(
            "worker %s stopped: %d complete, %d failed, %d retried",
            self.worker_id,
            self.jobs_complete,
            self.jobs_failed,
            self.jobs_retried,
        )

    async def close(self) -> None:  # arq's close() would delete the shared pool and health key
        await self._shutdown()

    # -- picking jobs ------------------------------------------------------------------------

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        for raw in job_ids:
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs or not self.allow_pick_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            try:
                started = await self._start(raw)
            except BaseException:
                self.job_counter -= 1
                self.sem.release()
                raise
            if not started:
                self.job_counter -= 1
                self.sem.release()

    async def _start(self, raw: bytes) -> bool:
        try:
            job_id = raw.decode()
        except UnicodeDecodeError:
            await self._bury(raw)
            return False
        token = secrets.token_hex(8)
        claim = await self.backend.claim(job_id, self.lease_ms, token)
        if claim is None:
            return False
        self.tokens[job_id] = token
        t = self.loop.create_task(self._run(job_id, claim))
        t.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
        self.tasks[job_id] = t
        return True

    async def _bury(self, member: bytes) -> None:
        """Fail a queue member that is not UTF-8 (no job id can be): its record is stored
        under its raw bytes, and it leaves the queue."""
        error = InvalidJob(
            f"queue {self.keys.name!r} holds the member {member[:60]!r}, which is not UTF-8 "
            "and so not a job id; it was removed from the queue"
        )
        log.error("%s", error)
        record = {"s": "failed", "t": 0, "f": "", "e": "InvalidJob", "m": _message(error)}
        self.jobs_failed += 1
        keep_ms = int(self.options.keep_result * 1000)
        await self.backend.finish(member, "", "done", _serde.dumps(record), keep_ms)

    async def _cancel_aborted_jobs(self) -> None:
        for raw in await self.backend.abort_requests():
            job_id = raw.decode(errors="replace")  # a member that is not UTF-8 matches no job
            task = self.job_tasks.get(job_id)
            if task is not None and not task.done() and job_id not in self.aborting_tasks:
                self.aborting_tasks.add(job_id)
                task.cancel()

    # -- running one job ---------------------------------------------------------------------

    async def _finish(
        self,
        job_id: str,
        mode: str,
        data: bytes = b"",
        keep_ms: int = 0,
        retry_at_ms: int = 0,
        *,
        patient: bool = True,
    ) -> None:
        """Record a job's outcome. During an outage this waits (up to ``max_outage``) for
        Redis to come back; the job's lease is renewed meanwhile, so it is not run twice."""
        token = self.tokens.get(job_id, "")
        expires_ms = max(0, retry_at_ms - _ms()) + EXPIRES_EXTRA_MS
        await persist(
            lambda: self.backend.finish(
                job_id, token, mode, data, keep_ms, retry_at_ms, expires_ms
            ),
            patience=self.options.max_outage if patient else 0.0,
            doing=f"storing the outcome of job {job_id!r}",
            where=self.backend.where,
        )
        self.tokens.pop(job_id, None)

    def _decode(self, job_id: str, claim: Claim) -> tuple[StoredJob | None, InvalidJob | None]:
        """The claimed job's payload, or why there is none to run."""
        if claim.payload is None:
            what = (
                "expired before it ran"
                if claim.kind == "none"
                else (f"is stored as a Redis {claim.kind}, not a job payload")
            )
            return None, InvalidJob(f"job {job_id!r} {what}")
        try:
            return decode_job(claim.payload, job_id), None
        except InvalidJob as exc:
            return None, exc

    def _span(self, job_id: str, job_try: int, stored: StoredJob | None) -> Span:
        """The ``CONSUMER`` span of this try, child of the span that enqueued the job."""
        spec = self.registry.tasks.get(stored.task) if stored is not None else None
        name = spec.name if spec is not None else None  # never a name the payload made up
        info = self._span_info.get(name)
        if info is None:
            info = self._span_info[name] = (
                "queue.process" if name is None else f"queue.process {name}",
                _telemetry.consumer_attributes(
                    self.keys.name,
                    name,
                    _telemetry.function_name(spec.fn) if spec else None,
                    self.backend.where,
                ),
            )
        carrier = stored.trace if stored is not None else None
        span = _telemetry.start(info[0], SpanKind.CONSUMER, info[1], carrier)
        if span.is_recording():
            span.set_attribute(_telemetry.MESSAGE_ID, job_id)
            span.set_attribute(_telemetry.ATTEMPT, job_try)
        return span

    async def _run(self, job_id: str, claim: Claim) -> None:
        """Run one claimed job to its recorded outcome. Nothing raised here reaches the poll
        loop: a fault of the worker's own is recorded as the job's failure."""
        try:
            stored, problem = self._decode(job_id, claim)
            span = self._span(job_id, claim.try_number, stored)
        except Exception as exc:  # defensive: whatever happens, the job gets its record
            log.exception("job %s: the worker failed while reading it", job_id)
            stored, span = None, trace.INVALID_SPAN
            problem = InvalidJob(f"job {job_id!r} could not be read ({type(exc).__name__})")
        with _telemetry.current(span):
            await self._run_traced(job_id, claim, stored, problem, span)

    async def _run_traced(
        self,
        job_id: str,
        claim: Claim,
        stored: StoredJob | None,
        problem: InvalidJob | None,
        span: Span,
    ) -> None:
        try:
            await self._run_claimed(job_id, claim, stored, problem, span)
        except QueueUnavailable as exc:
            # Redis stayed away past max_outage while storing the outcome: the lease lapses
            # and the job runs again elsewhere (at-least-once), nothing is lost.
            log.error("job %s: outcome not stored, it will run again: %s", job_id, exc)
            if span.is_recording():
                _telemetry.failed(span, exc)
        except Exception as exc:
            log.exception("job %s: the worker failed while handling it", job_id)
            _telemetry.outcome(span, _telemetry.FAILED, exc)
            record = {"s": "failed", "t": claim.try_number, "f": "", "st": _ms(), "ft": _ms()}
            record.update(e=type(exc).__name__, m=_message(exc), tb=_traceback(exc))
            keep_ms = int(self.options.keep_result * 1000)
            try:
                await self._finish(job_id, "done", _serde.dumps(record), keep_ms, patient=False)
            except Exception:
                log.exception("job %s: could not record its failure either", job_id)

    async def _run_claimed(
        self,
        job_id: str,
        claim: Claim,
        stored: StoredJob | None,
        problem: InvalidJob | None,
        span: Span,
    ) -> None:
        start = _ms()
        job_try = claim.try_number
        name = "<unknown>"
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        keep_ms = int(self.options.keep_result * 1000)

        async def done(
            state: str,
            error: BaseException | None = None,
            value: Any = None,
            spec: TaskSpec | None = None,
        ) -> None:
            record: dict[str, Any] = {"s": state, "t": job_try, "f": name, "st": start, "ft": _ms()}
            if state == "complete":
                try:
                    data = _serde.dumps({**record, "r": value}, what=f"the result of task {name!r}")
                except SerializationError as exc:  # too large (the limit counts the record)
                    state, error, record["s"] = "failed", exc, "failed"
            if state == "complete":
                self.jobs_complete += 1
            else:
                self.jobs_failed += 1
                record["e"] = "Aborted" if state == "aborted" else type(error).__name__
                record["m"] = "aborted by request" if error is None else _message(error)
                if state == "failed" and error is not None:
                    record["tb"] = _traceback(error)
                data = _serde.dumps(record)  # every field is bounded: it always fits
            _telemetry.outcome(span, _OUTCOMES[state], error if state == "failed" else None)
            await asyncio.shield(self._finish(job_id, "done", data, keep_ms))
            if state == "failed":
                await self._on_failure(spec, job_id, name, args, kwargs, job_try, error)

        if stored is None:
            await done("failed", problem)
            return
        name, args, kwargs = stored.task, stored.args, stored.kwargs
        spec = self.registry.tasks.get(name)
        if spec is not None:
            keep_ms = int(spec.keep_result * 1000)
        if claim.aborted:
            await done("aborted")
            return
        if spec is None:
            error: BaseException = InvalidJob(
                f"no task named {name!r} on queue {self.keys.name!r} in this worker "
                f"(known: {sorted(self.registry.tasks)})"
            )
            await done("failed", error)
            return
        try:
            bound = spec.signature.bind(*args, **kwargs)
        except TypeError as exc:  # retrying cannot help: fail at once
            error = InvalidJob(
                f"the arguments of job {job_id!r} do not fit {name}{spec.signature}: {exc}"
            )
            await done("failed", error, spec=spec)
            return
        if job_try > spec.max_tries:
            error = RuntimeError(
                f"{job_try - 1} tries already started and did not finish (max {spec.max_tries}):"
                " a worker probably died while running it"
            )
            await done("failed", error, spec=spec)
            return
        await self._run_task(
            job_id, spec, bound.args, bound.kwargs, stored.enqueued_ms, job_try, done, span
        )

    async def _run_task(
        self,
        job_id: str,
        spec: TaskSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        enqueued_ms: float,
        job_try: int,
        done: Done,
        span: Span,
    ) -> None:
        name = spec.name
        ctx_token = CURRENT_JOB.set(
            JobContext(
                job_id,
                name,
                self.keys.name,
                job_try,
                spec.max_tries,
                datetime.fromtimestamp(enqueued_ms / 1000, UTC),
            )
        )
        try:
            task = self.loop.create_task(spec.fn(*args, **kwargs))
        finally:
            CURRENT_JOB.reset(ctx_token)
        self.job_tasks[job_id] = task
        self._specs[job_id] = spec
        log.debug("job %s %s try %d started", job_id, name, job_try)
        try:
            try:
                finished, _ = await asyncio.wait({task}, timeout=spec.timeout)
            except asyncio.CancelledError:
                # the worker is stopping: stop the job and give it back to the queue
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                _telemetry.outcome(span, _telemetry.REQUEUED)
                await asyncio.shield(self._finish(job_id, "requeue", patient=False))
                self.jobs_retried += 1
                log.info("job %s %s requeued: worker shutting down", job_id, name)
                return
            error: BaseException | None
            if not finished:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                error = TaskTimeout(f"task {name!r} ran past its timeout of {spec.timeout:g} s")
            elif task.cancelled():
                if job_id in self.aborting_tasks:
                    log.info("job %s %s aborted", job_id, name)
                    await done("aborted")
                    return
                error = asyncio.CancelledError("the task cancelled itself")
            else:
                error = task.exception()
            if error is None:
                value = task.result()
                why = _serde.problem(value)
                if why is None:
                    await done("complete", value=value)
                    log.debug("job %s %s complete", job_id, name)
                    return
                await done(
                    "failed",
                    SerializationError(f"the result of task {name!r} is not JSON: {why}"),
                    spec=spec,
                )
                return
            await self._failed_try(job_id, spec, job_try, error, done, span)
        finally:
            self.job_tasks.pop(job_id, None)
            self._specs.pop(job_id, None)
            self.aborting_tasks.discard(job_id)

    async def _failed_try(
        self,
        job_id: str,
        spec: TaskSpec,
        job_try: int,
        error: BaseException,
        done: Done,
        span: Span,
    ) -> None:
        if job_try < spec.max_tries:
            if isinstance(error, Retry) and error.defer is not None:
                delay = error.defer
            else:
                delay = spec.backoff_delay(job_try)
            self.jobs_retried += 1
            log.warning(
                "job %s %s try %d/%d failed (%s: %s); retrying in %.2f s",
                job_id,
                spec.name,
                job_try,
                spec.max_tries,
                type(error).__name__,
                _message(error),
                delay,
            )
            _telemetry.outcome(span, _telemetry.RETRYING, error)
            await asyncio.shield(
                self._finish(job_id, "retry", retry_at_ms=_ms() + int(delay * 1000))
            )
            return
        log.error(
            "job %s %s failed for good after %d tries",
            job_id,
            spec.name,
            job_try,
            exc_info=error,
        )
        await done("failed", error, spec=spec)

    async def _on_failure(
        self,
        spec: TaskSpec | None,
        job_id: str,
        name: str,
        args: Any,
        kwargs: Any,
        tries: int,
        error: BaseException | None,
    ) -> None:
        hooks = list(self.registry.on_failure)
        if spec is not None and spec.on_failure is not None:
            hooks.insert(0, spec.on_failure)
        if not hooks:
            return
        failed = FailedJob(
            job_id=job_id,
            task=name,
            queue=self.keys.name,
            args=list(args) if isinstance(args, list | tuple) else [],
            kwargs=dict(kwargs) if isinstance(kwargs, dict) else {},
            tries=tries,
            error_type=type(error).__name__,
            message="" if error is None else _message(error),
            error=error,
            traceback="" if error is None else _traceback(error),
        )
        for hook in hooks:
            try:
                await asyncio.wait_for(hook(failed), 30)
            except Exception:
                log.exception("on_failure hook %r raised for job %s", hook, job_id)

    # -- heartbeat: health record, lease renewal, cron ---------------------------------------

    async def heart_beat(self) -> None:
        now = time.time()
        if self.tokens and now - self._last_renew >= self.options.lease / 3:
            await self._renew_leases()
            self._last_renew = now
        await self.record_health()
        if self.registry.crons:
            await self._run_cron()

    async def _renew_leases(self) -> None:
        tokens = dict(self.tokens)
        for job_id, outcome in (await self.backend.renew(tokens, self.lease_ms)).items():
            if job_id not in self.tokens:  # it finished meanwhile
                continue
            log.warning(
                "job %s: its lease %s (Redis unusable or the event loop blocked for longer "
                "than the lease, %g s): the job may run twice",
                job_id,
                "lapsed" if outcome == 2 else "was taken over by another worker",
                self.options.lease,
            )

    async def record_health(self) -> None:
        now = time.time()
        if now - self._last_health_check < self.health_check_interval:
            return
        record = {
            "worker_id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.started_at,
            "last_heartbeat": now,
            "heartbeat_interval": self.health_check_interval,
            "concurrency": self.max_jobs,
            "jobs_complete": self.jobs_complete,
            "jobs_failed": self.jobs_failed,
            "jobs_retried": self.jobs_retried,
            "jobs_ongoing": sum(not t.done() for t in self.tasks.values()),
        }
        await self.backend.write_health(self.worker_id, _serde.dumps(record))
        self._last_health_check = now

    async def _run_cron(self) -> None:
        now = datetime.now(UTC)
        horizon = now.timestamp() + max(self.poll_delay_s, 0.5) * 2
        for spec in self.registry.crons:
            assert spec.cron is not None
            nxt = self._cron_next.get(spec.name)
            if nxt is None:
                nxt = self._cron_next[spec.name] = spec.cron.next_after(now)
            while nxt.timestamp() <= horizon:
                tick = int(nxt.timestamp() * 1000)
                if await self.backend.claim_cron_tick(
                    spec.name, tick, self.worker_id, CRON_TICK_TTL_MS
                ):
                    payload = _serde.dumps({"f": spec.name, "a": [], "k": {}, "et": _ms()})
                    await self.backend.enqueue(
                        cron_job_id(spec.name, tick),
                        payload,
                        tick,
                        max(0, tick - _ms()) + EXPIRES_EXTRA_MS,
                    )
                    log.debug("cron %s: enqueued tick %s", spec.name, nxt.isoformat())
                nxt = self._cron_next[spec.name] = spec.cron.next_after(nxt)

    # -- the loop watchdog -------------------------------------------------------------------

    def _culprit(self, task: asyncio.Task[object] | None) -> Culprit | None:
        """The job ``task`` runs (called from the watchdog thread while the loop is stuck,
        so nothing here changes under it)."""
        if task is None:
            return None
        job_id = next((j for j, t in list(self.job_tasks.items()) if t is task), None)
        if job_id is None:
            get_context = getattr(task, "get_context", None)  # Python 3.12+: sub-tasks too
            ctx = get_context().get(CURRENT_JOB) if get_context is not None else None
            if ctx is None:
                return None
            job_id = ctx.job_id
        spec = self._specs.get(job_id)
        if spec is None:
            return None
        lease = self.options.lease
        if spec.timeout < lease:
            return Culprit(job_id, spec.name, spec.timeout / 2, f"timeout ({spec.timeout:g} s)")
        return Culprit(job_id, spec.name, lease / 2, f"lease ({lease:g} s)")
