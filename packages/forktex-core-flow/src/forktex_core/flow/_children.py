# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Child workflows, the workflow's side: ``ctx.start_child``, ``ctx.run_child`` and the
:class:`ChildHandle` whose ``result()`` the parent awaits.

A start is recorded like a step (kind ``child``, the child's id, workflow and version as its
output), so replay never starts a second child. The child's id is derived from (parent run,
generation, position), so an execution killed between the child's insert and the parent's
checkpoint finds the same child when it runs again; and since the id is known when the call
is made, ``run_child`` takes both of its positions (the start and the result) at once, in
program order, as ``asyncio.gather`` needs.

Awaiting a result is a durable signal wait (``_replay.wait_signal``) for the signal
``flow.child:<child id>``, which the database sends to the parent in the transaction that
ends the child (a trigger; ``_schema`` migration 9): the parent is suspended without a worker
slot until then and woken at once, the outcome is recorded at the wait's position, and inside
``ctx.wait_first`` the wait only parks its branch.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Coroutine
from typing import Any

from . import _sql as sql
from ._errors import ChildFailed, InvalidArgument
from ._replay import wait_signal
from ._runtime import COMPLETED, IN_STEP, ChildRequest, LogEntry, Runtime

KIND = "child"
SIGNAL_PREFIX = sql.CHILD_SIGNAL  # the trigger of migration 9 names them so
GENERATION = "generation"
_NAMESPACE = uuid.UUID("6a1d3f0e-2c4b-5e8f-9a7d-0b1c2d3e4f50")


class ChildHandle:
    """A child workflow started by ``ctx.start_child``: its ``run_id``, ``workflow`` and
    ``version``, and ``result()`` to await its output in the parent.

    Example::

        handle = await ctx.start_child("billing.charge", {"cents": 500})
        ctx_run_id = handle.run_id                # a run like any other (flow.get_run)
        receipt = await handle.result()           # suspends the parent, no worker slot held
    """

    __slots__ = ("_runtime", "_taken", "run_id", "version", "workflow")

    def __init__(self, runtime: Runtime, run_id: uuid.UUID, workflow: str, version: int) -> None:
        self._runtime = runtime
        self._taken = False
        self.run_id = run_id
        self.workflow = workflow
        self.version = version

    def __repr__(self) -> str:
        return f"ChildHandle(run_id={self.run_id}, workflow={self.workflow!r}, v{self.version})"

    def result(self) -> Coroutine[Any, Any, Any]:
        """The child's output, once it has finished (await it once, in the workflow body).

        Suspends the parent (status ``waiting``, its worker slot freed) until the child
        ends; raises :class:`ChildFailed` when it failed, was cancelled or is dead. Takes its
        position in the log when called, so ``asyncio.gather`` and ``ctx.wait_first`` over
        several results replay in the same order.

        Example::

            a, b = await asyncio.gather(first.result(), second.result())
        """
        if self._taken:
            raise InvalidArgument(f"the result of child run {self.run_id} is awaited once")
        self._taken = True
        return child_result(self._runtime, self.run_id, self.workflow)


def child_run_id(parent: uuid.UUID, metadata: str | None, seq: int) -> uuid.UUID:
    """The id of the child started at position ``seq`` of run ``parent`` (in the generation
    its ``metadata`` names: continue-as-new starts positions again).

    Example::

        child_run_id(parent_id, None, 3)  # the same UUID on every execution
    """
    generation = 0
    if metadata:
        doc = json.loads(metadata)
        value = doc.get(GENERATION) if isinstance(doc, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            generation = value
    return uuid.uuid5(_NAMESPACE, f"{parent}/{generation}/{seq}")


def workflow_name(workflow: object) -> str:
    """The name of ``workflow`` (a name or a decorated workflow function), checked."""
    if callable(workflow) and hasattr(workflow, "__forktex_workflow__"):
        workflow = workflow.__forktex_workflow__.name
    if not isinstance(workflow, str) or not workflow:
        raise InvalidArgument(
            f"workflow must be a workflow name or a decorated workflow, got {workflow!r}"
        )
    return workflow


def request(workflow: object, input: Any, **options: Any) -> ChildRequest:
    """A checked :class:`ChildRequest` (what can be checked without the database).

    Example::

        req = request("billing.charge", {"cents": 5}, cancel_with_parent=False)
    """
    if IN_STEP.get():
        raise InvalidArgument("child workflows are started from the workflow body, not a step")
    cancel = options.get("cancel_with_parent", True)
    if not isinstance(cancel, bool):
        raise InvalidArgument(f"cancel_with_parent must be True or False, got {cancel!r}")
    metadata = options.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgument(f"metadata must be a dict or None, got {metadata!r}")
    return ChildRequest(workflow, workflow_name(workflow), input, **options)


def start_child(rt: Runtime, req: ChildRequest) -> Coroutine[Any, Any, ChildHandle]:
    """``ctx.start_child``: takes its position now; the coroutine starts the child once.

    Example::

        handle = await start_child(rt, request("billing.charge", {"cents": 5}))
    """
    seq, entry = rt.take_position(f"{KIND}:{req.name}", KIND)
    return _started(rt, seq, entry, req)


def run_child(rt: Runtime, req: ChildRequest) -> Coroutine[Any, Any, Any]:
    """``ctx.run_child``: both positions (start, result) now; the coroutine starts the child
    and returns its output.

    Example::

        receipt = await run_child(rt, request("billing.charge", {"cents": 5}))
    """
    seq, entry = rt.take_position(f"{KIND}:{req.name}", KIND)
    child = rt.child_id(seq)
    waiting = child_result(rt, child, req.name)

    async def both() -> Any:
        try:
            await _started(rt, seq, entry, req)
        except BaseException:
            waiting.close()
            raise
        return await waiting

    return both()


async def _started(rt: Runtime, seq: int, entry: LogEntry | None, req: ChildRequest) -> ChildHandle:
    if entry is not None and entry.status == COMPLETED and entry.output is not None:
        text = entry.output
    else:
        rt.begin(f"{KIND}:{req.name}")
        try:
            await rt.flush_pending()
            text = await rt.start_child(seq, req)
        finally:
            rt.end()
    doc = json.loads(text)
    return ChildHandle(rt, uuid.UUID(doc["id"]), str(doc["workflow"]), int(doc["version"]))


def child_result(rt: Runtime, child: uuid.UUID, workflow: str) -> Coroutine[Any, Any, Any]:
    """The result wait of child ``child``: takes its position now.

    Example::

        output = await child_result(rt, handle.run_id, handle.workflow)
    """
    signal = f"{SIGNAL_PREFIX}{child}"
    seq, entry = rt.take_position(f"signal:{signal}", "signal")
    return _outcome(rt, seq, entry, signal, child, workflow)


async def _outcome(
    rt: Runtime,
    seq: int,
    entry: LogEntry | None,
    signal: str,
    child: uuid.UUID,
    workflow: str,
) -> Any:
    doc = await wait_signal(rt, seq, entry, signal, None)
    if not isinstance(doc, dict):
        doc = {}
    status = str(doc.get("status", "failed"))
    if status == "succeeded":
        return doc.get("output")
    raise ChildFailed(child, workflow, status, doc.get("error"))
