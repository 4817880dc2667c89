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
- cron ticks are claimed with ``SET NX`` per tick, so several workers enqueue each tick once.
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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arq.worker import Worker, func

from . import _serde
from ._cron import cron_job_id
from ._errors import Retry, SerializationError, TaskTimeout
from ._job import FailedJob, JobContext, _current

if TYPE_CHECKING:
    from ._arq import ArqBackend
    from ._backend import WorkerOptions
    from ._task import Registry, TaskSpec

log = logging.getLogger("forktex_core.queue")

CRON_TICK_TTL_MS = 3_600_000  # a tick's claim outlives any clock skew between workers
EXPIRES_EXTRA_MS = 86_400_000  # a job not started within a day of its run time is dropped


def _ms() -> int:
    return int(time.time() * 1000)


_MAX_MESSAGE = 4000


def _message(error: BaseException) -> str:
    """An exception's text for the failure record: bounded, and never raising itself."""
    try:
        text = str(error)
    except Exception:
        text = f"<{type(error).__name__} whose str() failed>"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class QueueWorker(Worker):
    """One worker process's engine for one queue (see the module docstring)."""

    def __init__(self, backend: ArqBackend, registry: Registry, options: WorkerOptions) -> None:
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
        self.tokens: dict[str, str] = {}
        self._last_renew = 0.0
        self._cron_next: dict[str, datetime] = {}
        self._grace = options.grace_period

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
        """Run until a signal (graceful), cancellation (in-flight jobs requeued) or, in burst
        mode, an empty queue."""
        log.info(
            "worker %s: queue %r, %d tasks, concurrency %d",
            self.worker_id,
            self.keys.name,
            len(self.registry.tasks),
            self.max_jobs,
        )
        try:
            await self.async_run()
        except asyncio.CancelledError:
            if not self.stopping:
                await self._shutdown()
                raise
        finally:
            if self._handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    self.loop.remove_signal_handler(sig)
        await self._shutdown()

    async def _shutdown(self) -> None:
        for t in self.tasks.values():
            if not t.done() and not t.cancelling():  # a second cancel would cut the requeue short
                t.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()
        try:
            await self.backend.remove_workers([self.worker_id])
        except Exception:  # Redis gone: the record goes stale and is reported as dead
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
        k = self.keys
        for raw in job_ids:
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs or not self.allow_pick_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            job_id = raw.decode()
            token = secrets.token_hex(8)
            claim = await self.backend.claim_script(
                keys=[
                    k.in_progress(job_id),
                    k.queue,
                    k.job(job_id),
                    k.retry(job_id),
                    k.abort,
                    k.running,
                ],
                args=[job_id, _ms(), self.lease_ms, token],
            )
            if not claim:
                self.job_counter -= 1
                self.sem.release()
                continue
            payload, job_try, aborted, _score = claim
            self.tokens[job_id] = token
            t = self.loop.create_task(self._run(job_id, payload, int(job_try), bool(aborted)))
            t.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = t

    async def _cancel_aborted_jobs(self) -> None:
        async with self.pool.pipeline(transaction=True) as tr:
            tr.zrange(self.keys.abort, 0, -1)
            # requests older than a minute concern jobs no live worker is running: drop them
            tr.zremrangebyscore(self.keys.abort, "-inf", _ms() - 60_000)
            requested, _ = await tr.execute()
        for raw in requested:
            job_id = raw.decode()
            task = self.job_tasks.get(job_id)
            if task is not None and not task.done() and job_id not in self.aborting_tasks:
                self.aborting_tasks.add(job_id)
                task.cancel()

    # -- running one job ---------------------------------------------------------------------

    async def _finish(
        self,
        job_id: str,
        mode: str,
        record: dict[str, Any] | None = None,
        keep_ms: int = 0,
        retry_at_ms: int = 0,
    ) -> None:
        k = self.keys
        token = self.tokens.pop(job_id, "")
        data = _serde.dumps(record) if record is not None else b""
        await self.backend.finish_script(
            keys=[
                k.in_progress(job_id),
                k.queue,
                k.job(job_id),
                k.retry(job_id),
                k.abort,
                k.running,
                k.result(job_id),
            ],
            args=[job_id, token, mode, data, keep_ms, retry_at_ms],
        )

    async def _run(self, job_id: str, payload: bytes | None, job_try: int, aborted: bool) -> None:
        start = _ms()
        name, enqueued = "<unknown>", start
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        keep_ms = 3600 * 1000

        async def done(
            state: str,
            error: BaseException | None = None,
            value: Any = None,
            spec: TaskSpec | None = None,
        ) -> None:
            record: dict[str, Any] = {"s": state, "t": job_try, "f": name, "st": start, "ft": _ms()}
            if state == "complete":
                record["r"] = value
                self.jobs_complete += 1
            else:
                self.jobs_failed += 1
                record["e"] = "Aborted" if state == "aborted" else type(error).__name__
                record["m"] = "aborted by request" if error is None else _message(error)
            await asyncio.shield(self._finish(job_id, "done", record, keep_ms))
            if state == "failed":
                await self._on_failure(spec, job_id, name, args, kwargs, job_try, error)

        if payload is None:
            await done("failed", SerializationError(f"job {job_id!r} expired before it ran"))
            return
        try:
            job = _serde.loads(payload)
            name, args, kwargs, enqueued = job["f"], job["a"], job["k"], job["et"]
        except (ValueError, KeyError, TypeError) as exc:
            await done("failed", SerializationError(f"job {job_id!r} is not a valid job: {exc}"))
            return
        spec = self.registry.tasks.get(name)
        if spec is not None:
            keep_ms = int(spec.keep_result * 1000)
        if aborted:
            await done("aborted")
            return
        err: Exception
        if spec is None:
            err = LookupError(
                f"no task named {name!r} on queue {self.keys.name!r} in this worker "
                f"(known: {sorted(self.registry.tasks)})"
            )
            await done("failed", err)
            return
        if job_try > spec.max_tries:
            err = RuntimeError(
                f"{job_try - 1} tries already started and did not finish (max {spec.max_tries}):"
                " a worker probably died while running it"
            )
            await done("failed", err, spec=spec)
            return

        ctx_token = _current.set(
            JobContext(
                job_id,
                name,
                self.keys.name,
                job_try,
                spec.max_tries,
                datetime.fromtimestamp(enqueued / 1000, UTC),
            )
        )
        try:
            task = self.loop.create_task(spec.fn(*args, **kwargs))
        finally:
            _current.reset(ctx_token)
        self.job_tasks[job_id] = task
        log.debug("job %s %s try %d started", job_id, name, job_try)
        try:
            try:
                finished, _ = await asyncio.wait({task}, timeout=spec.timeout)
            except asyncio.CancelledError:
                # the worker is stopping: stop the job and give it back to the queue
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await asyncio.shield(self._finish(job_id, "requeue"))
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
                    try:
                        _serde.dumps(value, what=f"the result of task {name!r}")
                    except SerializationError as exc:
                        await done("failed", exc, spec=spec)
                        return
                    await done("complete", value=value)
                    log.debug("job %s %s complete", job_id, name)
                    return
                await done(
                    "failed",
                    SerializationError(f"the result of task {name!r} is not JSON: {why}"),
                    spec=spec,
                )
                return
            await self._failed_try(job_id, spec, job_try, error, done)
        finally:
            self.job_tasks.pop(job_id, None)
            self.aborting_tasks.discard(job_id)

    async def _failed_try(
        self, job_id: str, spec: TaskSpec, job_try: int, error: BaseException, done: Any
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
                error,
                delay,
            )
            await asyncio.shield(
                self._finish(job_id, "retry", retry_at_ms=_ms() + int(delay * 1000))
            )
            return
        log.error(
            "job %s %s failed for good after %d tries: %s",
            job_id,
            spec.name,
            job_try,
            "".join(traceback.format_exception_only(type(error), error)).strip(),
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
            args=list(args),
            kwargs=dict(kwargs),
            tries=tries,
            error_type=type(error).__name__,
            message="" if error is None else _message(error),
            error=error,
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
            self._last_renew = now
            await self._renew_leases()
        await self.record_health()
        if self.registry.crons:
            await self._run_cron()

    async def _renew_leases(self) -> None:
        k = self.keys
        expires = _ms() + self.lease_ms
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in list(self.tokens):
                pipe.pexpire(k.in_progress(job_id), self.lease_ms)
                pipe.zadd(k.running, {job_id: expires}, xx=True)
            await pipe.execute()

    async def record_health(self) -> None:
        now = time.time()
        if now - self._last_health_check < self.health_check_interval:
            return
        self._last_health_check = now
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
        await self.pool.hset(self.keys.workers, self.worker_id, _serde.dumps(record))  # type: ignore[misc,arg-type]

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
                claimed = await self.pool.set(
                    self.keys.cron_tick(spec.name, tick),
                    self.worker_id,
                    nx=True,
                    px=CRON_TICK_TTL_MS,
                )
                if claimed:
                    payload = _serde.dumps({"f": spec.name, "a": [], "k": {}, "et": _ms()})
                    await self.backend.enqueue(
                        cron_job_id(spec.name, tick),
                        payload,
                        tick,
                        max(0, tick - _ms()) + EXPIRES_EXTRA_MS,
                    )
                    log.debug("cron %s: enqueued tick %s", spec.name, nxt.isoformat())
                nxt = self._cron_next[spec.name] = spec.cron.next_after(nxt)
