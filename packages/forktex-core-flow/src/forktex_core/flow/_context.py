# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The per-run :class:`FlowContext`: a thin public object over the execution's runtime."""

from __future__ import annotations

import uuid
from collections.abc import Coroutine
from contextvars import ContextVar
from datetime import datetime
from typing import Any, NoReturn
from uuid import UUID

from . import _children as children
from . import _race as race
from . import _replay as replay
from . import _run_events as run_events
from ._children import ChildHandle
from ._continuation import ContinueAsNew
from ._defs import duration, run_id_value, signal_name, storable_text
from ._errors import InvalidArgument
from ._runtime import IN_STEP, Runtime
from ._serde import encode

CURRENT: ContextVar[FlowContext | None] = ContextVar("forktex_flow_context", default=None)


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

    __slots__ = ("_runtime", "input", "recovery_attempts", "run_id", "version", "workflow")

    def __init__(
        self,
        runtime: Runtime,
        run_id: uuid.UUID,
        workflow: str,
        version: int,
        input: Any,
        recovery_attempts: int = 0,
    ) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.version = version
        self.input = input
        self.recovery_attempts = recovery_attempts
        self._runtime = runtime

    def __repr__(self) -> str:
        return f"FlowContext(run_id={self.run_id}, workflow={self.workflow!r}, v{self.version})"

    @property
    def replaying(self) -> bool:
        """True while the next step position is already in the recorded log."""
        return self._runtime.replaying()

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
        return self._runtime.patched(name)

    def now(self) -> datetime:
        """The current time (UTC) on the database's clock, recorded once: replay returns the
        same instant. (The database's clock is also the one of sleeps and timeouts, so a
        worker with a wrong wall clock measures the same durations.)

        Example::

            started = ctx.now()
        """
        return replay.recorded_now(self._runtime)

    def uuid(self) -> uuid.UUID:
        """A random UUID (v4), recorded once: replay returns the same value.

        Example::

            key = ctx.uuid()      # safe as an idempotency key for an external API
        """
        return replay.recorded_uuid(self._runtime)

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        """Sleep durably: the wake-up time is recorded, and a restart does not restart it.

        Long sleeps release the run (status ``waiting``) so it uses no worker slot; the
        run is claimed again when the time comes.

        Example::

            await ctx.sleep(3600)
        """
        delay = duration(seconds, "sleep seconds")
        assert delay is not None
        return replay.sleep(self._runtime, delay)

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
        signal_name(name)
        limit = duration(timeout, "timeout", allow_none=True)
        return replay.wait_for_signal(self._runtime, name, limit)

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
        signal_name(name)
        text = encode(self._runtime.serializer, payload, f"the payload of signal {name!r}")
        return replay.send_signal(self._runtime, target, name, text)

    def wait_first(
        self, *awaitables: Coroutine[Any, Any, Any]
    ) -> Coroutine[Any, Any, tuple[int, Any]]:
        """Wait for the first of several durable awaitables; ``(index, value)`` of the winner.

        The durable ``asyncio.wait(FIRST_COMPLETED)`` over step calls, ``ctx.sleep(...)`` and
        ``ctx.wait_for_signal(...)`` (``asyncio.wait`` would race differently on replay). The
        winner is recorded, so a replay after a crash takes the same one; the others are
        cancelled (a losing sleep never suspends the run). If the winner raised, so does
        ``wait_first``. When several finish together the first in argument order wins; a
        loser that had finished too keeps its recorded outcome (a signal it consumed is not
        delivered again).

        Example::

            index, value = await ctx.wait_first(ctx.wait_for_signal("approve"), ctx.sleep(3600))
            if index == 1:
                return "timed out"
        """
        return race.wait_first(self._runtime, awaitables)

    def continue_as_new(self, input: Any = None) -> NoReturn:
        """End this generation of the run and start it afresh with ``input`` (never returns).

        For long-lived entity workflows: the run keeps its id and its unconsumed signals,
        its log so far moves to a finished run of its own (the archived generation), so a
        wake-up replays only the current generation however long the entity has lived. The
        run's metadata gets ``generation`` and ``continued_from``; the archive's
        ``continued_into``. Call it from the workflow body, not from a step.

        Example::

            if handled >= 500:
                ctx.continue_as_new({"balance": balance})
        """
        if IN_STEP.get():
            raise InvalidArgument("continue_as_new is called from the workflow body, not a step")
        text = encode(self._runtime.serializer, input, "the input of continue_as_new")
        raise ContinueAsNew(text)

    def set_event(self, key: str, value: Any) -> Coroutine[Any, Any, None]:
        """Publish ``value`` under ``key`` for clients (``flow.get_event``): progress, status.

        Recorded like a step: written once, exactly (replay does not write it again), and
        clients waiting for the key wake at once. Setting a key again replaces its value
        (the latest wins); every value stays in ``flow.history`` (kind ``event``).

        Example::

            await ctx.set_event("progress", {"done": 3, "of": 10})
        """
        text_key = run_events.event_key(key)
        text = encode(self._runtime.serializer, value, f"the value of event {text_key!r}")
        return run_events.set_event(self._runtime, text_key, text)

    def start_child(
        self,
        workflow: Any,
        input: Any = None,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
        metadata: dict[str, Any] | None = None,
        queue: str | None = None,
        priority: int = 0,
        partition_key: str | None = None,
        cancel_with_parent: bool = True,
    ) -> Coroutine[Any, Any, ChildHandle]:
        """Start a child workflow (a name or a decorated workflow) once; its :class:`ChildHandle`.

        Recorded like a step: replay returns the same child, never a second one, even when
        the worker died between the child's start and this checkpoint. The child is a run
        like any other (same checks, hooks, queue options as ``flow.start``) whose
        ``RunInfo.parent_id`` is this run; ``await handle.result()`` suspends this run
        without a worker slot until the child ends. ``cancel_with_parent`` (default): a
        ``flow.cancel`` of this run cancels the child too (and its own children).

        Example::

            handles = [await ctx.start_child("billing.charge", o) for o in orders]
            receipts = await asyncio.gather(*(h.result() for h in handles))
        """
        req = children.request(
            workflow,
            input,
            version=version,
            idempotency_key=idempotency_key,
            metadata=metadata,
            queue=queue,
            priority=priority,
            partition_key=partition_key,
            cancel_with_parent=cancel_with_parent,
        )
        return children.start_child(self._runtime, req)

    def run_child(
        self,
        workflow: Any,
        input: Any = None,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
        metadata: dict[str, Any] | None = None,
        queue: str | None = None,
        priority: int = 0,
        partition_key: str | None = None,
        cancel_with_parent: bool = True,
    ) -> Coroutine[Any, Any, Any]:
        """Start a child workflow and return its output: ``start_child`` then ``result()``.

        Raises :class:`ChildFailed` (naming the child) when the child failed, was cancelled
        or is dead. Both positions are taken at the call, so ``asyncio.gather`` over several
        ``run_child`` calls replays deterministically.

        Example::

            receipt = await ctx.run_child("billing.charge", {"cents": 500})
        """
        req = children.request(
            workflow,
            input,
            version=version,
            idempotency_key=idempotency_key,
            metadata=metadata,
            queue=queue,
            priority=priority,
            partition_key=partition_key,
            cancel_with_parent=cancel_with_parent,
        )
        return children.run_child(self._runtime, req)


def current_context() -> FlowContext | None:
    """The context of the workflow running in this task, if any."""
    return CURRENT.get()


def runtime_of(ctx: FlowContext) -> Runtime:
    """The runtime behind ``ctx`` (for the step wrapper and the graph walker)."""
    return ctx._runtime
