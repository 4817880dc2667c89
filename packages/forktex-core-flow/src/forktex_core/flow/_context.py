# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The per-run :class:`FlowContext`: step counter, preloaded log, durable time and signals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ._defs import duration, run_id_value, storable_text
from ._errors import NonDeterminismError
from ._serde import encode

if TYPE_CHECKING:
    from ._driver import RunDriver

COMPLETED = "completed"
FAILED = "failed"
RETRYING = "retrying"
WAITING = "waiting"

CURRENT: ContextVar[FlowContext | None] = ContextVar("forktex_flow_context", default=None)
IN_STEP: ContextVar[bool] = ContextVar("forktex_flow_in_step", default=False)


class LogEntry:
    """One recorded checkpoint as loaded at claim time (JSON kept as text until needed)."""

    __slots__ = ("attempt", "error", "kind", "name", "output", "status")

    def __init__(
        self,
        name: str,
        kind: str,
        status: str,
        attempt: int,
        output: str | None,
        error: str | None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.status = status
        self.attempt = attempt
        self.output = output
        self.error = error


class Suspend:
    """Why a branch of the workflow wants the run to be put aside."""

    __slots__ = ("signal", "wake_at")

    def __init__(self, wake_at: float | None, signal: str | None) -> None:
        self.wake_at = wake_at
        self.signal = signal


class FlowContext:
    """What a running workflow knows about itself, and its durable primitives.

    The worker creates one per execution and passes it as the first argument of the
    workflow; pass it on to steps. ``run_id``, ``workflow``, ``version`` and ``input``
    describe the run.

    Example::

        @flow.workflow(name="cloud.deploy", version=1)
        async def deploy(ctx: FlowContext, manifest: dict) -> dict:
            started = ctx.now()                     # recorded: replay returns the same value
            server = await provision_vps(ctx, manifest)
            await ctx.sleep(30)                     # durable: survives worker restarts
            approval = await ctx.wait_for_signal("approve", timeout=3600)
            return {"server": server, "approved_by": approval["user"], "at": started.isoformat()}
    """

    __slots__ = (
        "_active",
        "_driver",
        "_fatal",
        "_idle",
        "_log",
        "_marks",
        "_pending",
        "_seq",
        "_suspend_event",
        "_suspends",
        "input",
        "recovery_attempts",
        "run_id",
        "version",
        "workflow",
    )

    def __init__(
        self,
        driver: RunDriver,
        run_id: uuid.UUID,
        workflow: str,
        version: int,
        input: Any,
        log: dict[int, LogEntry],
        recovery_attempts: int = 0,
    ) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.version = version
        self.input = input
        self.recovery_attempts = recovery_attempts
        self._driver = driver
        self._log = log
        self._seq = 0
        self._active = 0
        self._idle = asyncio.Event()
        self._suspend_event = asyncio.Event()
        self._suspends: list[Suspend] = []
        self._pending: list[tuple[int, str, str]] = []
        self._marks: list[tuple[int, str, str]] = []
        self._fatal: BaseException | None = None

    def __repr__(self) -> str:
        return f"FlowContext(run_id={self.run_id}, workflow={self.workflow!r}, v{self.version})"

    @property
    def replaying(self) -> bool:
        """True while the next step position is already in the recorded log."""
        return self._seq in self._log

    # -- sequencing -------------------------------------------------------------------------

    def _next(self, name: str, kind: str) -> tuple[int, LogEntry | None]:
        """Take the next position (synchronously, in program order) and its recorded entry."""
        seq = self._seq
        self._seq = seq + 1
        entry = self._log.get(seq)
        if entry is not None and (entry.name != name or entry.kind != kind):
            exc = NonDeterminismError(self.run_id, seq, entry.name, name, entry.kind, kind)
            if self._fatal is None:
                self._fatal = exc
            raise exc
        return seq, entry

    def _begin(self, name: str) -> None:
        """A branch enters step ``name`` (or a durable primitive): suspension waits for it."""
        self._active += 1
        self._idle.clear()
        self._driver.enter_step(name)

    def _end(self) -> None:
        self._active -= 1
        if self._active == 0:
            self._idle.set()
        self._driver.leave_step()

    async def _suspend(self, wake_at: float | None, signal: str | None) -> Any:
        """Ask the driver to put the run aside; this branch never resumes in this execution."""
        self._suspends.append(Suspend(wake_at, signal))
        self._suspend_event.set()
        await asyncio.get_running_loop().create_future()

    def _mark(self, name: str, kind: str) -> None:
        """Record a marker entry (a graph state, a patch); written with the next checkpoint.

        Markers need no write of their own: replay re-derives them, so they only have to be
        durable no later than the next entry, and the driver writes them in the same
        statement as that entry.
        """
        seq, entry = self._next(name, kind)
        if entry is None:
            self._marks.append((seq, name, kind))

    # -- durable primitives -----------------------------------------------------------------

    def patched(self, name: str) -> bool:
        """True when this run executes the code after the patch ``name`` was added.

        The escape hatch for a hotfix that must reach in-flight runs without a version bump:
        runs that already passed this point on the old code replay the old branch; runs
        that reach it now take the new branch and record that choice in their log, so
        replay stays deterministic. ``forktex-flow audit`` accepts a body change that only
        adds ``if ctx.patched(...)`` branches, and records the patch with ``--update``.

        Example::

            if ctx.patched("charge-with-idempotency-key"):
                await charge_v2(ctx, order, key=ctx.uuid())
            else:
                await charge(ctx, order)
        """
        storable_text(name, "patch name")
        seq = self._seq
        entry = self._log.get(seq)
        if entry is None:
            self._seq = seq + 1
            self._marks.append((seq, name, "patch"))
            return True
        if entry.kind == "patch" and entry.name == name:
            self._seq = seq + 1
            return True
        return False

    def now(self) -> datetime:
        """The current time (UTC) on the database's clock, recorded once: replay returns the
        same instant. (The database's clock is also the one of sleeps and timeouts, so a
        worker with a wrong wall clock measures the same durations.)

        Example::

            started = ctx.now()
        """
        seq, entry = self._next("now", "now")
        if entry is not None and entry.output is not None:
            value = float(self._driver.serializer.loads(entry.output))
        else:
            value = self._driver.now()
            self._pending.append((seq, "now", repr(value)))
        return datetime.fromtimestamp(value, UTC)

    def uuid(self) -> uuid.UUID:
        """A random UUID (v4), recorded once: replay returns the same value.

        Example::

            key = ctx.uuid()      # safe as an idempotency key for an external API
        """
        seq, entry = self._next("uuid", "uuid")
        if entry is not None and entry.output is not None:
            return uuid.UUID(str(self._driver.serializer.loads(entry.output)))
        value = uuid.uuid4()
        self._pending.append((seq, "uuid", f'"{value}"'))
        return value

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        """Sleep durably: the wake-up time is recorded, and a restart does not restart it.

        Long sleeps release the run (status ``waiting``) so it uses no worker slot; the
        run is claimed again when the time comes.

        Example::

            await ctx.sleep(3600)
        """
        delay = duration(seconds, "sleep seconds")
        assert delay is not None
        seq, entry = self._next("sleep", "sleep")
        from ._replay import durable_sleep

        return durable_sleep(self, seq, entry, delay)

    def wait_for_signal(
        self, name: str, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, Any]:
        """Wait for the next signal called ``name`` and return its payload.

        Signals are stored durably when sent, so one sent before the wait is not lost; each
        is consumed exactly once, in the order sent. Raises :class:`SignalTimeout` after
        ``timeout`` seconds (measured durably from the first call).

        Example::

            payload = await ctx.wait_for_signal("advance", timeout=86400)
        """
        storable_text(name, "signal name")
        limit = duration(timeout, "timeout", allow_none=True)
        seq, entry = self._next(f"signal:{name}", "signal")
        from ._replay import wait_signal

        return wait_signal(self, seq, entry, name, limit)

    def send_signal(
        self, run_id: UUID | str, name: str, payload: Any = None
    ) -> Coroutine[Any, Any, int]:
        """Send a signal to another run (or this one), exactly once; returns the signal id.

        Recorded like a step: the signal and the checkpoint commit in one transaction, so a
        replay of the body returns the recorded id instead of sending again (calling
        ``flow.send_signal`` in a workflow body would send once per replay). Raises
        :class:`RunNotFound` / :class:`RunFinished` for a missing or finished target — also
        on replay. Hooks' ``authorize_signal`` is not consulted: the sender is workflow code
        of the host, not a caller.

        Example::

            await ctx.send_signal(parent_run_id, "child_done", {"result": out})
        """
        target = run_id_value(run_id)
        storable_text(name, "signal name")
        text = encode(self._driver.serializer, payload, f"the payload of signal {name!r}")
        seq, entry = self._next(f"send:{name}", "send")
        from ._replay import durable_send

        return durable_send(self, seq, entry, target, name, text)


def current_context() -> FlowContext | None:
    """The context of the workflow running in this task, if any."""
    return CURRENT.get()
