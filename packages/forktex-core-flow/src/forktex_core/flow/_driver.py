# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Executes one claimed run: replay from the log, checkpoint new steps, then finish,
fail or suspend it. Exactly one write per completed step; no reads between steps."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import asyncpg

from . import _claim, _signals
from ._context import COMPLETED, CURRENT, FAILED, FlowContext
from ._db import TRANSIENT, log, retry_transient
from ._defs import StepDef, WorkflowDef
from ._errors import NonDeterminismError, NotSerialisable, WorkflowTimeout
from ._hooks import HookSet, RunEvent, StepEvent
from ._serde import Serializer, encode, error_text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


class LeaseLost(BaseException):
    """This worker no longer holds the run (reaped, cancelled, or taken over): stop quietly."""


class Host(Protocol):
    """What a driver needs from its worker."""

    pool: asyncpg.Pool
    worker_id: str
    serializer: Serializer
    lease: float

    def sa_engine(self) -> AsyncEngine: ...

    def schedule_wake(self, at: float) -> None: ...


class RunDriver:
    """Drives one leased run to completion, failure or suspension."""

    __slots__ = (
        "_background",
        "_retried",
        "ctx",
        "hooks",
        "host",
        "run",
        "serializer",
        "task",
        "wf",
    )

    def __init__(self, host: Host, run: _claim.ClaimedRun, wf: WorkflowDef) -> None:
        self.host = host
        self.run = run
        self.wf = wf
        self.serializer = host.serializer
        self.task: asyncio.Task[Any] | None = None
        self.ctx: FlowContext | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._retried = False
        # The worker's Flow carries the extension hooks; only observers matter here.
        hooks = getattr(getattr(host, "flow", None), "_hooks", None)
        self.hooks: HookSet | None = (
            hooks if isinstance(hooks, HookSet) and hooks.observes else None
        )

    def _take_marks(self) -> tuple[list[int], list[str], list[str]] | None:
        ctx = self.ctx
        if ctx is None or not ctx._marks:
            return None
        marks, ctx._marks = ctx._marks, []
        return [m[0] for m in marks], [m[1] for m in marks], [m[2] for m in marks]

    def _marked(self, plain: str, one: str, many: str) -> tuple[str, tuple[Any, ...]]:
        """The statement to use (plain, with one marker, with several) and marker args."""
        ctx = self.ctx
        if ctx is None or not ctx._marks:
            return plain, ()
        marks, ctx._marks = ctx._marks, []
        if len(marks) == 1:
            return one, marks[0]
        return many, ([m[0] for m in marks], [m[1] for m in marks], [m[2] for m in marks])

    async def flush_marks(self, conn: asyncpg.Connection | None = None) -> None:
        """Write pending markers now (before a write that cannot carry them)."""
        marks = self._take_marks()
        if marks is None:
            return
        if conn is not None:
            await conn.execute(_claim.FLUSH_MARKS, self.run.id, self.host.worker_id, *marks)
            return
        await self._db(
            "checkpoint of graph states",
            lambda p: p.execute(_claim.FLUSH_MARKS, self.run.id, self.host.worker_id, *marks),
        )

    def preview_marks(self) -> None:
        """Timer callback: a state has been busy for a while, so write its marker now.

        Markers normally ride along with the next checkpoint (no extra round trip); a
        long-running state would then look like the previous one in pictures until its
        first step finishes. A missing marker is harmless for replay (it is re-derived).
        """
        if self.ctx is None or not self.ctx._marks:
            return
        task = asyncio.get_running_loop().create_task(self._preview_flush())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _preview_flush(self) -> None:
        try:
            await self.flush_marks()
        except (LeaseLost, Exception) as exc:  # the next checkpoint will tell
            log.debug("flow: run %s: early state marker not written (%r)", self.run.id, exc)

    def _metadata(self) -> dict[str, Any]:
        text = self.run.metadata
        if not text:
            return {}
        value = self.serializer.loads(text)
        return value if isinstance(value, dict) else {}

    async def _step_event(
        self,
        seq: int,
        name: str,
        kind: str,
        status: str,
        attempt: int,
        output: str | None,
        error: str | None,
        duration: float,
    ) -> None:
        assert self.hooks is not None
        loads = self.serializer.loads
        event = StepEvent(
            run_id=self.run.id,
            workflow=self.run.workflow,
            version=self.run.version,
            seq=seq,
            name=name,
            kind=kind,
            status=status,
            attempt=attempt,
            output=None if output is None else loads(output),
            error=None if error is None else loads(error),
            duration=duration,
            metadata=self._metadata(),
        )
        method = "on_step_completed" if status == COMPLETED else "on_step_failed"
        await self.hooks.observe(method, event)

    async def _run_event(self, status: str, output: Any, error: str | None) -> None:
        if self.hooks is None:
            return
        event = RunEvent(
            run_id=self.run.id,
            workflow=self.run.workflow,
            version=self.run.version,
            status=status,
            output=output,
            error=None if error is None else self.serializer.loads(error),
            metadata=self._metadata(),
        )
        method = "on_run_completed" if status == "succeeded" else "on_run_failed"
        await self.hooks.observe(method, event)

    # -- database operations used by the context ------------------------------------------

    async def _db(self, what: str, op: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        pool = self.host.pool
        first = True

        async def attempt() -> T:
            nonlocal first
            if not first:
                self._retried = True
            first = False
            return await op(pool)

        try:
            return await retry_transient(attempt, within=self.host.lease, what=what)
        except TRANSIENT as exc:
            # Give the run up: the lease expires and the leader hands it to a worker again.
            log.warning("flow: run %s: %s failed for good (%s)", self.run.id, what, exc)
            raise LeaseLost() from exc

    async def record_step(
        self,
        seq: int,
        name: str,
        kind: str,
        status: str,
        attempt: int,
        output: str | None,
        error: str | None,
        duration: float,
    ) -> None:
        """Upsert checkpoint ``seq`` (fenced on our lease); one autocommit statement."""
        self._retried = False
        statement, marks = self._marked(
            _claim.RECORD_STEP, _claim.RECORD_STEP_MARK1, _claim.RECORD_STEP_MARKED
        )
        args = (
            self.run.id,
            seq,
            name,
            kind,
            status,
            attempt,
            output,
            error,
            duration,
            self.host.worker_id,
        )
        res = await self._db(
            f"checkpoint of step {name!r}", lambda p: p.execute(statement, *args, *marks)
        )
        if res.endswith(" 1"):
            if (
                self.hooks is not None
                and status in (COMPLETED, FAILED)
                and kind in ("step", "transaction")
            ):
                await self._step_event(seq, name, kind, status, attempt, output, error, duration)
            return
        if self._retried:
            # The first try may have committed before the connection dropped.
            row = await self._db(
                "checkpoint check",
                lambda p: p.fetchrow(_claim.RECORDED, self.run.id, seq, self.host.worker_id),
            )
            if row is not None and row["held"] and row["status"] == status:
                return
        raise LeaseLost()

    async def flush_pending(self, ctx: FlowContext) -> None:
        """Write the recorded ``ctx.now()`` / ``ctx.uuid()`` values before anything durable."""
        pending, ctx._pending = ctx._pending, []
        for seq, kind, text in pending:
            await self.record_step(seq, kind, kind, COMPLETED, 1, text, None, 0.0)

    async def consume_signal(self, seq: int, name: str, step_name: str) -> tuple[bool, str | None]:
        """Consume the next ``name`` signal into checkpoint ``seq`` (if one is stored)."""
        await self.flush_marks()
        return await self._db(
            "signal consumption",
            lambda p: _signals.consume(p, self.run.id, name, seq, step_name, self.host.worker_id),
        )

    async def run_transaction(
        self,
        ctx: FlowContext,
        sdef: StepDef,
        seq: int,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Run a transactional step: its writes and its checkpoint commit together.

        When the step's own connection is lost (Postgres restarted, backend terminated),
        the transaction rolled back or, if the commit itself was cut, may have committed:
        the checkpoint tells which. Either the recorded result is returned or the step runs
        again in a new transaction (for up to one lease), so a dropped connection never
        fails the step nor applies its writes twice.
        """
        deadline = time.monotonic() + self.host.lease
        delay = 0.05
        while True:
            try:
                return await self._transaction_once(sdef, seq, attempt, args, kwargs)
            except Exception as exc:
                if not _connection_lost(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    log.warning("flow: run %s: step %r lost its connection", self.run.id, sdef.name)
                    raise LeaseLost() from exc
                log.warning(
                    "flow: run %s: step %r lost its connection (%s); retrying",
                    self.run.id,
                    sdef.name,
                    type(exc).__name__,
                )
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, 1.0)
            row = await self._db(
                "checkpoint check",
                lambda p: p.fetchrow(_claim.RECORDED, self.run.id, seq, self.host.worker_id),
            )
            if row is None or not row["held"]:
                raise LeaseLost()
            if row["status"] == COMPLETED:  # the cut commit went through
                out = row["output"]
                return None if out is None else self.serializer.loads(out)

    async def _transaction_once(
        self,
        sdef: StepDef,
        seq: int,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import AsyncSession

        await self.flush_marks()
        engine = self.host.sa_engine()
        started = time.monotonic()
        out_text: str | None = None
        async with engine.connect() as conn:
            try:
                async with conn.begin():
                    session = AsyncSession(bind=conn, expire_on_commit=False)
                    try:
                        call = sdef.fn(*args[:1], session, *args[1:], **kwargs)
                        if sdef.timeout is not None:
                            async with asyncio.timeout(sdef.timeout):
                                result = await call
                        else:
                            result = await call
                        await session.flush()
                        what = f"the result of step {sdef.name!r}"
                        out_text = encode(self.serializer, result, what)
                        res = await conn.execute(
                            text(_TX_RECORD),
                            {
                                "run": self.run.id,
                                "seq": seq,
                                "name": sdef.name,
                                "attempt": attempt,
                                "output": out_text,
                                "dur": time.monotonic() - started,
                                "worker": self.host.worker_id,
                            },
                        )
                        if res.rowcount != 1:
                            raise LeaseLost()
                    finally:
                        await session.close()
            except Exception as exc:
                # A connection cut mid-operation may go back to the pool in a broken state.
                if _connection_lost(exc) and not conn.invalidated:
                    with contextlib.suppress(Exception):
                        await conn.invalidate()
                raise
        return self.serializer.loads(out_text)

    # -- the run itself ---------------------------------------------------------------------

    async def drive(self) -> None:
        """Execute the run; never raises except ``CancelledError`` on worker shutdown."""
        run = self.run
        try:
            if run.deadline is not None and time.time() >= run.deadline:
                await self._fail(WorkflowTimeout(f"workflow {run.workflow!r} timed out"))
                return
            input_value = None if run.input is None else self.serializer.loads(run.input)
            ctx = FlowContext(
                self,
                run.id,
                run.workflow,
                run.version,
                input_value,
                run.log,
                run.recovery_attempts,
            )
            self.ctx = ctx
            await self._execute(ctx, input_value)
        except LeaseLost:
            log.info("flow: run %s is no longer held by this worker; dropped", run.id)

    async def _execute(self, ctx: FlowContext, input_value: Any) -> None:
        wf = self.wf
        coro = wf.fn(ctx, input_value) if wf.takes_input else wf.fn(ctx)
        context = contextvars.copy_context()
        context.run(CURRENT.set, ctx)
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro, context=context)
        self.task = task
        deadline = self.run.deadline
        suspended = False
        try:
            while not task.done():
                if ctx._suspend_event.is_set():
                    if await self._quiescent(ctx, task):
                        suspended = True
                        break
                    if task.done():
                        break
                    # Another branch is still executing a step: wait for it to settle.
                    other = asyncio.ensure_future(ctx._idle.wait())
                else:
                    other = asyncio.ensure_future(ctx._suspend_event.wait())
                timeout = None if deadline is None else max(0.0, deadline - time.time())
                done, _ = await asyncio.wait(
                    {task, other}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not other.done():
                    other.cancel()
                if not done:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    await self._fail(
                        WorkflowTimeout(f"workflow {self.run.workflow!r} exceeded its timeout")
                    )
                    return
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        if suspended and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if ctx._fatal is not None:
                await self._fail(ctx._fatal)
                return
            await self._suspend(ctx)
            return
        await self._finish(ctx, task)

    async def _quiescent(self, ctx: FlowContext, task: asyncio.Task[Any]) -> bool:
        """True when no branch is executing a step (so suspending loses no work)."""
        for _ in range(3):
            if ctx._active or task.done():
                return False
            await asyncio.sleep(0)
        return not ctx._active and not task.done()

    async def _finish(self, ctx: FlowContext, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            raise LeaseLost()
        exc = task.exception()
        if isinstance(exc, LeaseLost):
            raise exc
        if ctx._fatal is not None:
            await self._fail(ctx._fatal)
            return
        if exc is not None:
            await self._fail(exc)
            return
        try:
            text = encode(
                self.serializer, task.result(), f"the result of workflow {self.run.workflow!r}"
            )
        except NotSerialisable as err:
            await self._fail(err)
            return
        if ctx._pending:
            await self.flush_pending(ctx)
        statement, marks = self._marked(
            _claim.COMPLETE, _claim.COMPLETE_MARK1, _claim.COMPLETE_MARKED
        )
        row = await self._db(
            "run completion",
            lambda p: p.fetchrow(statement, self.run.id, text, self.host.worker_id, *marks),
        )
        if row is None:
            raise LeaseLost()
        await self._run_event("succeeded", task.result(), None)

    async def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, NonDeterminismError):
            log.error("flow: %s", exc)
        doc = error_text(exc)
        await self.flush_marks()
        row = await self._db(
            "run failure",
            lambda p: p.fetchrow(_claim.FAIL, self.run.id, doc, self.host.worker_id),
        )
        if row is not None:
            await self._run_event("failed", None, doc)

    async def _suspend(self, ctx: FlowContext) -> None:
        if ctx._pending:
            await self.flush_pending(ctx)
        wakes = [s.wake_at for s in ctx._suspends if s.wake_at is not None]
        if self.run.deadline is not None:
            wakes.append(self.run.deadline)
        wake = min(wakes) if wakes else None
        names = sorted({s.signal for s in ctx._suspends if s.signal is not None})
        run_id, worker = self.run.id, self.host.worker_id
        marks = self._take_marks()

        async def op(pool: asyncpg.Pool) -> bool:
            async with pool.acquire() as conn, conn.transaction():
                if marks is not None:
                    await conn.execute(_claim.FLUSH_MARKS, run_id, worker, *marks)
                if await conn.fetchval(_claim.SUSPEND, run_id, wake, worker) is None:
                    return False
                if names and await conn.fetchval(_claim.SIGNAL_PENDING, run_id, names):
                    await conn.fetchval(_claim.WAKE_NOW, run_id)
            return True

        if not await self._db("run suspension", op):
            raise LeaseLost()
        if wake is not None:
            self.host.schedule_wake(wake)


def _connection_lost(exc: BaseException) -> bool:
    """True for a SQLAlchemy error caused by losing the database connection itself."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return False
    return bool(exc.connection_invalidated) or isinstance(
        exc.orig.__cause__ if exc.orig is not None else None, TRANSIENT
    )


_TX_RECORD = """
INSERT INTO forktex_flow.steps
    (run_id, seq, name, kind, status, attempt, output, started_at, finished_at)
SELECT :run, :seq, :name, 'transaction', 'completed', :attempt, CAST(:output AS json),
       now() - make_interval(secs => :dur), now()
WHERE EXISTS (SELECT 1 FROM forktex_flow.runs
              WHERE id = :run AND worker = :worker AND status = 'running')
ON CONFLICT (run_id, seq) DO UPDATE
SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, output = EXCLUDED.output,
    error = NULL, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
WHERE forktex_flow.steps.status IN ('retrying', 'waiting')
"""
