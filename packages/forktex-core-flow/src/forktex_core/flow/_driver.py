# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Drives one claimed run: replay from the log, checkpoint new steps, then settle the run.

The :class:`RunDriver` implements the :class:`~forktex_core.flow._runtime.Runtime` that
the run's :class:`FlowContext` and replay use, and owns the run's state: the position, the
preloaded log, the branches inside steps and the requests to suspend (the values waiting to
be written are kept by its :class:`~forktex_core.flow._checkpoint.Checkpoints`).

Every way an execution ends settles its run (:mod:`._finish`): it completes, fails or
suspends it; if the run was taken from it (cancelled, reaped) it stops quietly; anything
else — the worker stopping, the database unreachable for a lease, an unexpected error, the
run's own code making the process exit — hands the run back (counted as a recovery attempt
unless the worker is just stopping) or fails it with the error recorded. No path leaves a
run ``running``.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from typing import Any, Protocol

from . import _telemetry as tm
from ._checkpoint import Checkpoints
from ._child_launch import launch
from ._children import child_run_id
from ._claim import ClaimedRun
from ._clock import DbClock
from ._context import CURRENT, FlowContext
from ._continuation import ContinueAsNew
from ._db import log
from ._defs import StepDef, WorkflowDef
from ._errors import NonDeterminismError, NotSerialisable, WorkflowTimeout
from ._finish import Settlement
from ._held import HeldChecks
from ._hooks import HookSet
from ._lease import DriverError, GaveUp, LeaseLost, StaleLog
from ._registry import Registry
from ._runtime import ChildRequest, LogEntry, Suspend
from ._serde import Serializer, encode
from ._settings import Settings
from ._store import Store
from ._transaction import run_transaction


class Host(Protocol):
    """What a driver needs from its worker."""

    store: Store
    checks: HeldChecks
    clock: DbClock
    hooks: HookSet
    settings: Settings
    registry: Registry

    def schedule_wake(self, at: float) -> None: ...


class RunDriver:
    """Drives one execution of a leased run to completion, failure, suspension or hand-back.

    Example::

        driver = RunDriver(worker, claimed_run, workflow_def)
        task = asyncio.create_task(driver.drive())
    """

    __slots__ = (
        "_background",
        "_cancelled",
        "_steps",
        "active",
        "diverged",
        "exit",
        "host",
        "idle",
        "log",
        "position",
        "run",
        "settle",
        "suspended",
        "suspends",
        "task",
        "wf",
        "writes",
    )

    def __init__(self, host: Host, run: ClaimedRun, wf: WorkflowDef) -> None:
        settings = host.settings
        self.host = host
        self.run = run
        self.wf = wf
        self.writes = Checkpoints(
            host.store,
            host.checks,
            run,
            lease=settings.lease,
            hooks=host.hooks,
            serializer=settings.serializer,
        )
        self.settle = Settlement(
            self.writes, host.hooks, max_recovery_attempts=settings.max_recovery_attempts
        )
        self.task: asyncio.Task[Any] | None = None
        self.log: dict[int, LogEntry] = run.log
        self.position = 0
        self.active = 0  # branches inside a step (or a durable primitive)
        self.idle = asyncio.Event()  # set when the last of them leaves
        self.suspended = asyncio.Event()  # a branch asked to put the run aside
        self.suspends: list[Suspend] = []
        self.diverged: NonDeterminismError | None = None  # the log disagreed with the code
        self.exit: BaseException | None = None  # the run's own code made the process exit
        self._background: set[asyncio.Task[None]] = set()
        self._steps: dict[asyncio.Task[Any], list[str]] = {}  # branches inside steps
        self._cancelled = False  # the run was cancelled or taken: stop, write nothing

    # -- what the worker uses ----------------------------------------------------------------

    @property
    def execution(self) -> uuid.UUID:
        """The id of this execution of the run."""
        return self.run.execution

    @property
    def settling(self) -> bool:
        """True while the run is being completed, failed, suspended or handed back."""
        return self.settle.settling

    def running_steps(self) -> tuple[str, ...]:
        """Names of the steps executing now (safe to call from another thread)."""
        return tuple(names[0] for names in list(self._steps.values()) if names)

    def stop(self) -> None:
        """The run was cancelled, or the heartbeat found it taken: stop without writing."""
        if self.settle.settling or self._cancelled:
            return
        self._cancelled = True
        self.writes.closed = True
        if self.task is not None:
            self.task.cancel()

    # -- the Runtime: the run's position --------------------------------------------------

    @property
    def serializer(self) -> Serializer:
        """The Flow's serializer."""
        return self.writes.serializer

    def replaying(self) -> bool:
        """True while the next position is already in the recorded log."""
        return self.position in self.log

    def take_position(self, name: str, kind: str) -> tuple[int, LogEntry | None]:
        """Take the next position (synchronously, in program order) and its recorded entry."""
        seq = self.position
        self.position = seq + 1
        entry = self.log.get(seq)
        if entry is not None and (entry.name != name or entry.kind != kind):
            exc = NonDeterminismError(self.run.id, seq, entry.name, name, entry.kind, kind)
            if self.diverged is None:
                self.diverged = exc
            raise exc
        return seq, entry

    def patched(self, name: str) -> bool:
        """Take the patch's position if this run runs the patched code (recorded once)."""
        seq = self.position
        entry = self.log.get(seq)
        if entry is None:
            self.position = seq + 1
            self.writes.marks.append((seq, name, "patch"))
            return True
        if entry.kind == "patch" and entry.name == name:
            self.position = seq + 1
            return True
        return False

    def mark(self, name: str, kind: str) -> bool:
        """Record a marker entry (a graph state); written with the next checkpoint.

        Markers need no write of their own: replay re-derives them, so they only have to be
        durable no later than the next entry, and they are written in the same statement as
        that entry. True while markers wait to be written (not replaying).
        """
        seq, entry = self.take_position(name, kind)
        if entry is None:
            self.writes.marks.append((seq, name, kind))
        return bool(self.writes.marks)

    def preview_marks(self) -> None:
        """Timer callback: a state has been busy for a while, so write its marker now.

        Markers normally ride along with the next checkpoint (no extra round trip); a
        long-running state would then look like the previous one in pictures until its
        first step finishes. A missing marker is harmless for replay (it is re-derived).
        """
        if not self.writes.marks:
            return
        task = asyncio.get_running_loop().create_task(self._preview_flush())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _preview_flush(self) -> None:
        try:
            await self.writes.flush_marks()
        except (LeaseLost, DriverError, Exception) as exc:  # the next checkpoint will tell
            log.debug("flow: run %s: early state marker not written (%r)", self.run.id, exc)

    def defer(self, seq: int, kind: str, text: str) -> None:
        """A recorded ``ctx.now()`` / ``ctx.uuid()`` value, written before the next write."""
        self.writes.pending.append((seq, kind, text))

    # -- the Runtime: time and branches ---------------------------------------------------

    def clock(self) -> float:
        """The database's clock (epoch seconds): sleeps, deadlines and ``ctx.now()``."""
        return self.host.clock.now()

    def begin(self, name: str) -> None:
        """A branch enters step ``name`` (or a durable primitive): suspension waits for it."""
        self.active += 1
        self.idle.clear()
        task = asyncio.current_task()
        if task is not None:
            self._steps.setdefault(task, []).append(name)

    def end(self) -> None:
        """The branch left the step."""
        self.active -= 1
        if self.active == 0:
            self.idle.set()
        task = asyncio.current_task()
        names = None if task is None else self._steps.get(task)
        if task is not None and names:
            names.pop()
            if not names:
                del self._steps[task]

    async def suspend(self, wake_at: float | None, signal: str | None) -> Any:
        """Ask for the run to be put aside; this branch never resumes in this execution."""
        self.suspends.append(Suspend(wake_at, signal))
        self.suspended.set()
        await asyncio.get_running_loop().create_future()

    def exited(self, exc: BaseException) -> None:
        """A step raised ``SystemExit``: the process exits because of this run."""
        self.exit = exc

    # -- the Runtime: durable writes --------------------------------------------------------

    async def flush_pending(self) -> bool:
        """Write the recorded ``ctx.now()`` / ``ctx.uuid()`` values; True if there were any."""
        return await self.writes.flush_pending()

    async def check_held(self) -> None:
        """Raise :class:`LeaseLost` unless the run is still this execution's."""
        await self.writes.check_held()

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
        """Write checkpoint ``seq``."""
        await self.writes.record_step(seq, name, kind, status, attempt, output, error, duration)

    async def run_transaction(
        self,
        sdef: StepDef,
        seq: int,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Run a transactional step: its writes and its checkpoint commit together."""
        return await run_transaction(self.writes, sdef, seq, attempt, args, kwargs)

    async def consume_signal(self, seq: int, name: str, step_name: str) -> tuple[bool, str | None]:
        """Consume the next ``name`` signal into checkpoint ``seq`` (if one is stored)."""
        return await self.writes.consume_signal(seq, name, step_name)

    async def send_recorded(
        self, seq: int, target: uuid.UUID, name: str, payload: str
    ) -> tuple[str, str]:
        """Send a signal and checkpoint it at ``seq`` in one transaction."""
        return await self.writes.send_recorded(seq, target, name, payload)

    # -- the Runtime: child workflows ------------------------------------------------------

    def child_id(self, seq: int) -> uuid.UUID:
        """The id of the child started at position ``seq`` (the same on every execution)."""
        return child_run_id(self.run.id, self.run.metadata, seq)

    async def start_child(self, seq: int, request: ChildRequest) -> str:
        """Start the child of position ``seq`` (once) and checkpoint it."""
        return await launch(self.writes, self.host.registry, seq, request)

    # -- the run itself ---------------------------------------------------------------------

    async def drive(self) -> None:
        """Execute the run; never raises except ``CancelledError`` (after handing it back).
        One ``flow.run`` span covers the execution (the caller of ``flow.start`` its parent)."""
        run = self.run
        span = tm.run_span(run.workflow, run.version, str(run.id), run.metadata)
        with tm.tracing.current(span):
            try:
                await self._settled()
            finally:
                outcome = self.settle.outcome or (tm.CANCELLED if self._cancelled else None)
                tm.run_ended(span, outcome, self.settle.failure)

    async def _settled(self) -> None:
        settle = self.settle
        try:
            await self._drive()
        except GaveUp:
            await settle.hand_back(penalise=True)
        except StaleLog:
            await settle.hand_back(penalise=False)
        except LeaseLost:
            settle.settled = True
            log.info("flow: run %s is no longer held by this execution; dropped", self.run.id)
        except DriverError as exc:
            await settle.fail_or_hand_back(exc.error)
        except asyncio.CancelledError:
            self._close_branches()
            # The worker is stopping (no penalty), the run was cancelled or taken (the
            # fenced hand-back changes nothing), or the run's own code is making the process
            # exit (a recovery attempt, so a run that always does it ends up dead).
            await settle.hand_back(penalise=self._self_inflicted())
            raise
        except Exception as exc:  # a bug, or a value the database refused
            log.exception("flow: run %s: unexpected error in its execution", self.run.id)
            await settle.fail_or_hand_back(exc)

    async def _drive(self) -> None:
        run = self.run
        if run.deadline is not None and self.clock() >= run.deadline:
            await self.settle.fail(WorkflowTimeout(f"workflow {run.workflow!r} timed out"))
            return
        input_value = None if run.input is None else self.serializer.loads(run.input)
        ctx = FlowContext(
            self, run.id, run.workflow, run.version, input_value, run.recovery_attempts
        )
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
                if self.suspended.is_set():
                    if await self._quiescent(task):
                        suspended = True
                        break
                    if task.done():
                        break
                    # Another branch is still executing a step: wait for it to settle.
                    other = asyncio.ensure_future(self.idle.wait())
                else:
                    other = asyncio.ensure_future(self.suspended.wait())
                timeout = None if deadline is None else max(0.0, deadline - self.clock())
                done, _ = await asyncio.wait(
                    {task, other}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not other.done():
                    other.cancel()
                if not done:
                    await self._close(task)
                    await self.settle.fail(
                        WorkflowTimeout(f"workflow {self.run.workflow!r} exceeded its timeout")
                    )
                    return
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        if suspended and not task.done():
            await self._close(task)
            failure = self.writes.fatal or self.diverged
            if failure is not None:
                await self.settle.fail(failure)
                return
            wake = await self.settle.suspend(self.suspends)
            if wake is not None:
                self.host.schedule_wake(wake)
            return
        await self._close(task)
        await self._finish(task)

    async def _quiescent(self, task: asyncio.Task[Any]) -> bool:
        """True when no branch is executing a step (so suspending loses no work)."""
        for _ in range(3):
            if self.active or task.done():
                return False
            await asyncio.sleep(0)
        return not self.active and not task.done()

    def _close_branches(self) -> list[asyncio.Task[Any]]:
        self.writes.closed = True
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
            await asyncio.wait(pending, timeout=self.writes.lease)
            for branch in pending:
                if not branch.done():
                    log.warning("flow: run %s: a branch ignores cancellation", self.run.id)

    async def _finish(self, task: asyncio.Task[Any]) -> None:
        """The workflow's coroutine has ended: complete or fail the run with its outcome."""
        settle = self.settle
        settle.settling = True
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
            await settle.hand_back(penalise=True)
            return
        if isinstance(exc, DriverError):
            exc = exc.error
        elif isinstance(exc, LeaseLost):
            raise exc
        if self.writes.lost or self._cancelled:
            raise LeaseLost()
        failure = self.writes.fatal or self.diverged or exc
        if isinstance(failure, ContinueAsNew):
            await settle.continue_as_new(failure.text)
            return
        if failure is not None:
            await settle.fail(failure)
            return
        result = task.result()
        try:
            text = encode(self.serializer, result, f"the result of workflow {self.run.workflow!r}")
        except NotSerialisable as err:
            await settle.fail(err)
            return
        await settle.complete(result, text)
