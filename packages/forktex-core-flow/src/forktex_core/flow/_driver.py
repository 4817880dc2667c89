# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Executes one claimed run: replay from the log, checkpoint new steps, then finish,
fail or suspend it. Exactly one write per completed step; no reads between steps except the
one that confirms, before a step starts, that the run is still this execution's.

Every way an execution ends settles its run: it completes, fails or suspends it; if the run
was taken from it (cancelled, reaped) it stops quietly; anything else — the worker stopping,
the database unreachable for a lease, an unexpected error, the run's own code making the
process exit — hands the run back (counted as a recovery attempt unless the worker is just
stopping) or fails it with the error recorded. No path leaves a run ``running``.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import asyncpg

from . import _claim, _signals
from ._clock import DbClock
from ._context import COMPLETED, CURRENT, FAILED, FlowContext
from ._db import TRANSIENT, log, retry_transient
from ._defs import StepDef, WorkflowDef
from ._errors import NonDeterminismError, NotSerialisable, WorkflowTimeout
from ._events import run_event, step_event
from ._held import HeldChecks
from ._hooks import HookSet
from ._lease import DriverError, GaveUp, LeaseLost, StaleLog
from ._serde import Serializer, encode, ending_positions, error_text
from ._transaction import run_transaction

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

HAND_BACK_WITHIN = 5.0  # seconds for the best-effort hand-back; the lease expires otherwise


class Host(Protocol):
    """What a driver needs from its worker."""

    pool: asyncpg.Pool
    worker_id: str
    serializer: Serializer
    lease: float
    clock: DbClock
    max_recovery_attempts: int
    hooks: HookSet
    checks: HeldChecks

    def sa_engine(self) -> AsyncEngine: ...

    def schedule_wake(self, at: float) -> None: ...


class RunDriver:
    """Drives one execution of a leased run to completion, failure, suspension or hand-back."""

    __slots__ = (
        "_background",
        "_cancelled",
        "_retried",
        "_steps",
        "closed",
        "ctx",
        "exit",
        "fatal",
        "host",
        "lost",
        "run",
        "serializer",
        "settled",
        "settling",
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
        self._steps: dict[asyncio.Task[Any], list[str]] = {}  # branches inside steps
        self._cancelled = False  # the run was cancelled or taken: stop, write nothing
        self.closed = False  # no new step may start in this execution
        self.settling = False  # completing, failing or suspending the run
        self.settled = False  # the run is no longer this execution's to hand back
        self.lost = False  # a write found the run taken from this execution
        self.fatal: BaseException | None = None  # the database refused a write of the run
        self.exit: BaseException | None = None  # the run's own code made the process exit

    # -- what the context, the transaction and the worker use -------------------------------

    @property
    def run_id(self) -> uuid.UUID:
        return self.run.id

    @property
    def execution(self) -> uuid.UUID:
        return self.run.execution

    @property
    def lease(self) -> float:
        return self.host.lease

    def now(self) -> float:
        """The database's clock (epoch seconds): sleeps, deadlines and ``ctx.now()``."""
        return self.host.clock.now()

    def sa_engine(self) -> AsyncEngine:
        return self.host.sa_engine()

    def enter_step(self, name: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._steps.setdefault(task, []).append(name)

    def leave_step(self) -> None:
        task = asyncio.current_task()
        names = None if task is None else self._steps.get(task)
        if task is not None and names:
            names.pop()
            if not names:
                del self._steps[task]

    def running_steps(self) -> tuple[str, ...]:
        """Names of the steps executing now (safe to call from another thread)."""
        return tuple(names[0] for names in list(self._steps.values()) if names)

    def exited(self, exc: BaseException) -> None:
        """A step raised ``SystemExit``: the process exits because of this run."""
        self.exit = exc

    def stop(self) -> None:
        """The run was cancelled, or the heartbeat found it taken: stop without writing."""
        if self.settling or self._cancelled:
            return
        self._cancelled = True
        self.closed = True
        if self.task is not None:
            self.task.cancel()

    async def check_held(self) -> None:
        """Raise :class:`LeaseLost` unless the run is still this execution's (one read)."""
        if self.closed:
            raise LeaseLost()
        checks = self.host.checks
        held = await self._db("lease check", lambda _: checks.held(self.run.id, self.run.execution))
        if not held:
            self.lost = True
            raise LeaseLost()

    async def recorded(self, seq: int) -> asyncpg.Record | None:
        """The checkpoint at ``seq`` and whether this execution still holds the run."""
        return await self._db(
            "checkpoint check",
            lambda p: p.fetchrow(_claim.RECORDED, self.run.id, seq, self.run.execution),
        )

    # -- markers --------------------------------------------------------------------------

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

    async def flush_marks(self) -> None:
        """Write pending markers now (before a write that cannot carry them)."""
        marks = self._take_marks()
        if marks is None:
            return
        await self._db(
            "checkpoint of graph states",
            lambda p: p.execute(_claim.FLUSH_MARKS, self.run.id, self.run.execution, *marks),
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
        except (LeaseLost, DriverError, Exception) as exc:  # the next checkpoint will tell
            log.debug("flow: run %s: early state marker not written (%r)", self.run.id, exc)

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
            # Give the run up: it is handed back (or its lease expires) for another execution.
            log.warning("flow: run %s: %s failed for good (%s)", self.run.id, what, exc)
            self.closed = True
            raise GaveUp() from exc
        except asyncpg.PostgresError as exc:
            log.error("flow: run %s: %s refused by the database: %s", self.run.id, what, exc)
            self.closed = True
            self.fatal = exc
            raise DriverError(exc) from exc

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
        """Upsert checkpoint ``seq`` (fenced on this execution); one autocommit statement."""
        self._retried = False
        statement, marks = self._marked(
            _claim.RECORD_STEP, _claim.RECORD_STEP_MARK1, _claim.RECORD_STEP_MARKED
        )
        args = (self.run.id, seq, name, kind, status, attempt, output, error, duration)
        res = await self._db(
            f"checkpoint of step {name!r}",
            lambda p: p.execute(statement, *args, self.run.execution, *marks),
        )
        if res.endswith(" 1"):
            if (
                self.host.hooks.observes
                and status in (COMPLETED, FAILED)
                and kind in ("step", "transaction")
            ):
                values = (seq, name, kind, status, attempt, output, error, duration)
                event = step_event(self.run, self.serializer, *values)
                method = "on_step_completed" if status == COMPLETED else "on_step_failed"
                await self.host.hooks.observe(method, event)
            return
        row = await self.recorded(seq)
        if row is not None and row["held"]:
            if self._retried and row["status"] == status:
                return  # the first try committed before its reply was lost
            # A zombie execution (reaped, but still running) wrote this position after the
            # run was claimed again: replay from the log instead of diverging from it.
            raise StaleLog()
        self.lost = True
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
            lambda p: _signals.consume(p, self.run.id, name, seq, step_name, self.run.execution),
        )

    async def send_signal(
        self, seq: int, target: uuid.UUID, name: str, payload: str
    ) -> tuple[str, str]:
        """Send a signal and checkpoint it at ``seq`` in one transaction (``ctx.send_signal``)."""
        await self.flush_marks()
        outcome = await self._db(
            f"signal {name!r} to run {target}",
            lambda p: _signals.send_recorded(
                p, self.run.id, self.run.execution, seq, target, name, payload
            ),
        )
        if outcome is None:
            self.lost = True
            raise LeaseLost()
        return outcome

    async def run_transaction(
        self,
        ctx: FlowContext,
        sdef: StepDef,
        seq: int,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Run a transactional step: its writes and its checkpoint commit together."""
        return await run_transaction(self, sdef, seq, attempt, args, kwargs)

    # -- the run itself ---------------------------------------------------------------------

    async def drive(self) -> None:
        """Execute the run; never raises except ``CancelledError`` (after handing it back)."""
        try:
            await self._drive()
        except GaveUp:
            await self._hand_back(penalise=True)
        except StaleLog:
            await self._hand_back(penalise=False)
        except LeaseLost:
            self.settled = True
            log.info("flow: run %s is no longer held by this execution; dropped", self.run.id)
        except DriverError as exc:
            await self._fail_or_hand_back(exc.error)
        except asyncio.CancelledError:
            self._close_branches()
            # The worker is stopping (no penalty), the run was cancelled or taken (the
            # fenced hand-back changes nothing), or the run's own code is making the process
            # exit (a recovery attempt, so a run that always does it ends up dead).
            await self._hand_back(penalise=self._self_inflicted())
            raise
        except Exception as exc:  # a bug, or a value the database refused
            log.exception("flow: run %s: unexpected error in its execution", self.run.id)
            await self._fail_or_hand_back(exc)

    async def _drive(self) -> None:
        run = self.run
        if run.deadline is not None and self.now() >= run.deadline:
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

    def _self_inflicted(self) -> bool:
        task = self.task
        if task is not None and task.done() and not task.cancelled():
            if isinstance(task.exception(), SystemExit):
                self.exit = task.exception()
        return self.exit is not None

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
                timeout = None if deadline is None else max(0.0, deadline - self.now())
                done, _ = await asyncio.wait(
                    {task, other}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not other.done():
                    other.cancel()
                if not done:
                    await self._close(task)
                    await self._fail(
                        WorkflowTimeout(f"workflow {self.run.workflow!r} exceeded its timeout")
                    )
                    return
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        if suspended and not task.done():
            await self._close(task)
            if self.fatal is not None or ctx._fatal is not None:
                await self._fail(self.fatal or ctx._fatal)  # type: ignore[arg-type]
                return
            await self._suspend(ctx)
            return
        await self._close(task)
        await self._finish(ctx, task)

    async def _quiescent(self, ctx: FlowContext, task: asyncio.Task[Any]) -> bool:
        """True when no branch is executing a step (so suspending loses no work)."""
        for _ in range(3):
            if ctx._active or task.done():
                return False
            await asyncio.sleep(0)
        return not ctx._active and not task.done()

    def _close_branches(self) -> list[asyncio.Task[Any]]:
        self.closed = True
        pending = [t for t in (self.task, *self._steps) if t is not None and not t.done()]
        for branch in pending:
            branch.cancel()
        return pending

    async def _close(self, task: asyncio.Task[Any]) -> None:
        """Stop every branch of the run before its outcome is recorded.

        A failing branch must not leave its siblings running: they would keep executing
        steps of a run that has already failed (and, after a retry, race the new execution).
        No new step starts once ``closed`` is set; steps in flight are cancelled.
        """
        pending = self._close_branches()
        if pending:
            await asyncio.wait(pending, timeout=self.host.lease)
            for branch in pending:
                if not branch.done():
                    log.warning("flow: run %s: a branch ignores cancellation", self.run.id)

    async def _finish(self, ctx: FlowContext, task: asyncio.Task[Any]) -> None:
        self.settling = True
        if task.cancelled():
            if self._cancelled:
                raise LeaseLost()
            exc: BaseException | None = asyncio.CancelledError(
                "the workflow was cancelled by its own code"
            )
        else:
            exc = task.exception()
        if isinstance(exc, SystemExit):  # the process is exiting because of this run
            self.exit = exc
            await self._hand_back(penalise=True)
            return
        if isinstance(exc, DriverError):
            exc = exc.error
        elif isinstance(exc, LeaseLost):
            raise exc
        if self.lost or self._cancelled:
            raise LeaseLost()
        failure = self.fatal or ctx._fatal or exc
        if failure is not None:
            await self._fail(failure)
            return
        result = task.result()
        try:
            text = encode(self.serializer, result, f"the result of workflow {self.run.workflow!r}")
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
            lambda p: p.fetchrow(statement, self.run.id, text, self.run.execution, *marks),
        )
        self.settled = True
        if row is None:
            raise LeaseLost()
        if self.host.hooks.observes:
            event = run_event(self.run, self.serializer, "succeeded", result, None)
            await self.host.hooks.observe("on_run_completed", event)

    async def _fail(self, exc: BaseException) -> None:
        self.settling = True
        if isinstance(exc, NonDeterminismError):
            log.error("flow: %s", exc)
        doc = error_text(exc, seqs=ending_positions(exc))
        await self.flush_marks()
        row = await self._db(
            "run failure",
            lambda p: p.fetchrow(_claim.FAIL, self.run.id, doc, self.run.execution),
        )
        self.settled = True
        if row is not None and self.host.hooks.observes:
            event = run_event(self.run, self.serializer, "failed", None, doc)
            await self.host.hooks.observe("on_run_failed", event)

    async def _fail_or_hand_back(self, exc: BaseException) -> None:
        """Fail the run with ``exc``; if even that cannot be written, hand it back."""
        try:
            await self._fail(exc)
        except GaveUp:
            await self._hand_back(penalise=True)
        except StaleLog:
            await self._hand_back(penalise=False)
        except LeaseLost:
            self.settled = True
        except DriverError:
            await self._hand_back(penalise=True)

    async def _hand_back(self, *, penalise: bool) -> None:
        """Give the run back for another execution (fenced: a settled run is left alone)."""
        if self.settled:
            return
        self.settled = True
        self.settling = True
        try:
            row = await asyncio.wait_for(
                self.host.pool.fetchrow(
                    _claim.HAND_BACK,
                    self.run.id,
                    self.run.execution,
                    penalise,
                    self.host.max_recovery_attempts,
                ),
                HAND_BACK_WITHIN,
            )
        except (*TRANSIENT, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning(
                "flow: run %s could not be handed back (%s); its lease expires instead",
                self.run.id,
                type(exc).__name__,
            )
            return
        if row is not None and row["status"] == "dead":
            log.warning("flow: run %s parked as dead (it keeps losing its worker)", self.run.id)

    async def _suspend(self, ctx: FlowContext) -> None:
        self.settling = True
        if ctx._pending:
            await self.flush_pending(ctx)
        wakes = [s.wake_at for s in ctx._suspends if s.wake_at is not None]
        if self.run.deadline is not None:
            wakes.append(self.run.deadline)
        wake = min(wakes) if wakes else None
        names = sorted({s.signal for s in ctx._suspends if s.signal is not None})
        run_id, execution = self.run.id, self.run.execution
        marks = self._take_marks()

        async def op(pool: asyncpg.Pool) -> bool:
            async with pool.acquire() as conn, conn.transaction():
                if marks is not None:
                    await conn.execute(_claim.FLUSH_MARKS, run_id, execution, *marks)
                if await conn.fetchval(_claim.SUSPEND, run_id, wake, execution) is None:
                    return False
                if names and await conn.fetchval(_claim.SIGNAL_PENDING, run_id, names):
                    await conn.fetchval(_claim.WAKE_NOW, run_id)
            return True

        held = await self._db("run suspension", op)
        self.settled = True
        if not held:
            raise LeaseLost()
        if wake is not None:
            self.host.schedule_wake(wake)
