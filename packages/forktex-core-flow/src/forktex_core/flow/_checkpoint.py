# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Checkpointing: the writes of one execution while its workflow runs.

Exactly one write per completed step (an autocommit statement, fenced on the execution); no
reads between steps except the one that confirms, before a step starts, that the run is
still this execution's - and none when the previous checkpoint just proved it (the workflow
went from one step to the next without awaiting anything else). What needs no write of its
own waits here for the next one: markers (graph states, patches) ride along in the same
statement, and recorded ``ctx.now()`` / ``ctx.uuid()`` values are written just before the
next durable action.

A write that loses its connection is retried for up to one lease; after that the execution
gives the run up (:class:`GaveUp`). A write the database refuses fails the run
(:class:`DriverError`). A write that finds the run no longer held stops the execution
(:class:`LeaseLost`); one that finds its position written by a zombie execution hands the
run back for replay (:class:`StaleLog`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from ._claim import ClaimedRun
from ._db import TRANSIENT, log, retry_transient
from ._events import step_event
from ._held import HeldChecks
from ._hooks import HookSet
from ._lease import DriverError, GaveUp, LeaseLost, StaleLog
from ._runtime import COMPLETED, FAILED
from ._serde import Serializer
from ._store import Store

T = TypeVar("T")

_OBSERVED = frozenset(("step", "transaction"))  # checkpoint kinds the step hooks hear of


class Checkpoints:
    """The fenced writes of one execution, and what waits for the next of them.

    Example::

        writes = Checkpoints(store, checks, run, lease=5.0, hooks=hooks, serializer=s)
        await writes.check_held()
        await writes.record_step(0, "charge", "step", "completed", 1, '"ok"', None, 0.2)
    """

    __slots__ = (
        "_armed",
        "_retried",
        "checks",
        "closed",
        "confirmed",
        "fatal",
        "hooks",
        "lease",
        "lost",
        "marks",
        "pending",
        "run",
        "serializer",
        "store",
    )

    def __init__(
        self,
        store: Store,
        checks: HeldChecks,
        run: ClaimedRun,
        *,
        lease: float,
        hooks: HookSet,
        serializer: Serializer,
    ) -> None:
        self.store = store
        self.checks = checks
        self.run = run
        self.lease = lease
        self.hooks = hooks
        self.serializer = serializer
        self.marks: list[tuple[int, str, str]] = []  # markers for the next write
        self.pending: list[tuple[int, str, str]] = []  # recorded values not written yet
        self.closed = False  # no new step may start in this execution
        self.lost = False  # a write found the run taken from this execution
        self.fatal: BaseException | None = None  # the database refused a write of the run
        self._retried = False
        self.confirmed = False  # a fenced write succeeded and the loop has not polled since
        self._armed = False

    def _confirm(self) -> None:
        """A fenced write just succeeded: the run was this execution's when it committed.

        That proof holds until the event loop next polls for I/O (the first moment a cancel
        notification, or anything else, could have arrived), so it is withdrawn by a callback
        of the next loop iteration. A step that starts right after the previous checkpoint,
        without the workflow awaiting anything else in between, needs no read of its own.
        """
        self.confirmed = True
        if not self._armed:
            self._armed = True
            asyncio.get_running_loop().call_soon(self._withdraw)

    def _withdraw(self) -> None:
        self.confirmed = False
        self._armed = False

    async def call(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        """Run one write (or read) of the execution, riding out a dropped connection."""
        try:
            return await op()
        except BaseException as exc:
            return await self.recover(what, op, exc)

    async def recover(self, what: str, op: Callable[[], Awaitable[T]], exc: BaseException) -> T:
        """After ``op`` raised ``exc`` on its first try: retry a dropped connection for up to
        one lease, else give the run up; fail the run on a refused statement.

        Kept out of :meth:`call` so that the common case (the first try succeeds) is one
        await, with no retry loop and no closure around it.
        """
        try:
            if not isinstance(exc, TRANSIENT) or isinstance(exc, ValueError):
                raise exc
            self._retried = True
            return await retry_transient(op, within=self.lease, what=what)
        except TRANSIENT as lost:
            # Give the run up: it is handed back (or its lease expires) for another execution.
            log.warning("flow: run %s: %s failed for good (%s)", self.run.id, what, lost)
            self.closed = True
            raise GaveUp() from lost
        except asyncpg.PostgresError as refused:
            log.error("flow: run %s: %s refused by the database: %s", self.run.id, what, refused)
            self.closed = True
            self.fatal = refused
            raise DriverError(refused) from refused

    async def check_held(self) -> None:
        """Raise :class:`LeaseLost` unless the run is still this execution's: one read, or
        none when a checkpoint of this execution succeeded since the loop last polled."""
        if self.closed:
            raise LeaseLost()
        if self.confirmed:
            return
        checks, run = self.checks, self.run
        try:
            held = await checks.held(run.id, run.execution)
        except BaseException as exc:
            held = await self.recover(
                "lease check", lambda: checks.held(run.id, run.execution), exc
            )
        if not held:
            self.lost = True
            raise LeaseLost()

    async def recorded(self, seq: int) -> asyncpg.Record | None:
        """The checkpoint at ``seq`` and whether this execution still holds the run."""
        run = self.run
        return await self.call(
            "checkpoint check", lambda: self.store.recorded(run.id, run.execution, seq)
        )

    def take_marks(self) -> list[tuple[int, str, str]]:
        """The markers waiting for a write (now the caller's to write)."""
        marks, self.marks = self.marks, []
        return marks

    async def flush_marks(self) -> None:
        """Write waiting markers now (before a write that cannot carry them)."""
        marks = self.take_marks()
        if not marks:
            return
        run = self.run
        await self.call(
            "checkpoint of graph states",
            lambda: self.store.flush_marks(run.id, run.execution, marks),
        )

    async def flush_pending(self) -> bool:
        """Write the recorded ``ctx.now()`` / ``ctx.uuid()`` values; True if there were any."""
        if not self.pending:
            return False
        pending, self.pending = self.pending, []
        for seq, kind, text in pending:
            await self.record_step(seq, kind, kind, COMPLETED, 1, text, None, 0.0)
        return True

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
        marks = self.take_marks()
        values = (seq, name, kind, status, attempt, output, error, duration)
        run, store = self.run, self.store
        try:  # the common case inline: one await, no closure (see recover)
            written = await store.record_step(run.id, run.execution, values, marks)
        except BaseException as exc:
            written = await self.recover(
                f"checkpoint of step {name!r}",
                lambda: store.record_step(run.id, run.execution, values, marks),
                exc,
            )
        if written:
            self._confirm()
            if self.hooks.observes and status in (COMPLETED, FAILED) and kind in _OBSERVED:
                event = step_event(run, self.serializer, *values)
                method = "on_step_completed" if status == COMPLETED else "on_step_failed"
                await self.hooks.observe(method, event)
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

    async def consume_signal(self, seq: int, name: str, step_name: str) -> tuple[bool, str | None]:
        """Consume the next ``name`` signal into checkpoint ``seq`` (if one is stored)."""
        await self.flush_marks()
        run = self.run
        return await self.call(
            "signal consumption",
            lambda: self.store.consume_signal(run.id, run.execution, seq, name, step_name),
        )

    async def send_recorded(
        self, seq: int, target: uuid.UUID, name: str, payload: str
    ) -> tuple[str, str]:
        """Send a signal and checkpoint it at ``seq`` in one transaction (``ctx.send_signal``)."""
        await self.flush_marks()
        run = self.run
        outcome = await self.call(
            f"signal {name!r} to run {target}",
            lambda: self.store.send_recorded(run.id, run.execution, seq, target, name, payload),
        )
        if outcome is None:
            self.lost = True
            raise LeaseLost()
        return outcome
