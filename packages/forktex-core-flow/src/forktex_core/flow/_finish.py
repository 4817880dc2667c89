# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Finishing: how an execution settles its run.

It completes it (output written, ``result()`` woken), fails it (error document written),
suspends it (``waiting`` until a timer or a signal) or hands it back for another execution
(``pending``; counted as a recovery attempt unless the worker is just stopping, and past
``max_recovery_attempts`` parked as ``dead``). Each write is fenced on the execution, so a
run that was taken from it (cancelled, reaped) is left alone.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from ._checkpoint import Checkpoints
from ._continuation import lineage
from ._db import TRANSIENT, log
from ._errors import NonDeterminismError
from ._events import run_event
from ._hooks import HookSet
from ._lease import DriverError, GaveUp, LeaseLost, StaleLog
from ._runtime import Suspend
from ._serde import ending_positions, error_text

HAND_BACK_WITHIN = 5.0  # seconds for the best-effort hand-back; the lease expires otherwise


class Settlement:
    """Settles the run of one execution; ``settled`` once it is no longer its to hand back.

    Example::

        settle = Settlement(writes, hooks, max_recovery_attempts=5)
        await settle.complete(result, '{"ok": true}')
    """

    __slots__ = (
        "failure",
        "hooks",
        "max_recovery_attempts",
        "outcome",
        "settled",
        "settling",
        "writes",
    )

    def __init__(self, writes: Checkpoints, hooks: HookSet, *, max_recovery_attempts: int) -> None:
        self.writes = writes
        self.hooks = hooks
        self.max_recovery_attempts = max_recovery_attempts
        self.settling = False  # completing, failing or suspending the run
        self.settled = False  # the run is no longer this execution's to hand back
        self.outcome: str | None = None  # how this execution left the run (for its span)
        self.failure: BaseException | None = None  # what failed it, if it did

    async def complete(self, result: Any, output: str) -> None:
        """Mark the run succeeded with ``output`` (``result`` decoded, for observers)."""
        self.settling = True
        writes = self.writes
        await writes.flush_pending()
        marks = writes.take_marks()
        run = writes.run
        held = await writes.call(
            "run completion",
            lambda: writes.store.complete(run.id, run.execution, output, marks),
        )
        self.settled = True
        if not held:
            raise LeaseLost()
        self.outcome = "completed"
        if self.hooks.observes:
            event = run_event(run, writes.serializer, "succeeded", result, None)
            await self.hooks.observe("on_run_completed", event)

    async def fail(self, exc: BaseException) -> None:
        """Mark the run failed with ``exc`` (its error document names the ending positions)."""
        self.settling = True
        if isinstance(exc, NonDeterminismError):
            log.error("flow: %s", exc)
        doc = error_text(exc, seqs=ending_positions(exc))
        writes = self.writes
        await writes.flush_marks()
        run = writes.run
        held = await writes.call(
            "run failure", lambda: writes.store.fail(run.id, run.execution, doc)
        )
        self.settled = True
        if held:
            self.outcome, self.failure = "failed", exc
        if held and self.hooks.observes:
            event = run_event(run, writes.serializer, "failed", None, doc)
            await self.hooks.observe("on_run_failed", event)

    async def fail_or_hand_back(self, exc: BaseException) -> None:
        """Fail the run with ``exc``; if even that cannot be written, hand it back."""
        try:
            await self.fail(exc)
        except GaveUp:
            await self.hand_back(penalise=True)
        except StaleLog:
            await self.hand_back(penalise=False)
        except LeaseLost:
            self.settled = True
        except DriverError:
            await self.hand_back(penalise=True)

    async def hand_back(self, *, penalise: bool) -> None:
        """Give the run back for another execution (fenced: a settled run is left alone)."""
        if self.settled:
            return
        self.settled = True
        self.settling = True
        self.outcome = "requeued"
        run = self.writes.run
        try:
            status = await asyncio.wait_for(
                self.writes.store.hand_back(
                    run.id, run.execution, penalise, self.max_recovery_attempts
                ),
                HAND_BACK_WITHIN,
            )
        except (*TRANSIENT, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning(
                "flow: run %s could not be handed back (%s); its lease expires instead",
                run.id,
                type(exc).__name__,
            )
            return
        if status == "dead":
            log.warning("flow: run %s parked as dead (it keeps losing its worker)", run.id)

    async def suspend(self, suspends: list[Suspend]) -> float | None:
        """Put the run aside until the earliest wake-up or a signal it waits for.

        Returns the wake-up time (database clock), if any.
        """
        self.settling = True
        writes = self.writes
        await writes.flush_pending()
        run = writes.run
        wakes = [s.wake_at for s in suspends if s.wake_at is not None]
        if run.deadline is not None:
            wakes.append(run.deadline)
        wake = min(wakes) if wakes else None
        names = sorted({s.signal for s in suspends if s.signal is not None})
        marks = writes.take_marks()
        held = await writes.call(
            "run suspension",
            lambda: writes.store.suspend(run.id, run.execution, wake, names, marks),
        )
        self.settled = True
        if not held:
            raise LeaseLost()
        self.outcome = "suspended"
        return wake

    async def continue_as_new(self, text: str) -> None:
        """Start the run afresh with input ``text``; its log so far becomes a finished run."""
        self.settling = True
        writes = self.writes
        run = writes.run
        archive = uuid.uuid4()
        held = await writes.call(
            "continue-as-new",
            lambda: writes.store.lineage.continue_as_new(
                run.id, run.execution, archive, text, lineage(run.id, archive)
            ),
        )
        self.settled = True
        if not held:
            raise LeaseLost()
        self.outcome = "continued"
