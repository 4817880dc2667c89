# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Spans of runs and steps through the OpenTelemetry API: a no-op unless the host configures
an SDK.

The conventions are those of ``docs/observability.md``: a ``PRODUCER`` span
``flow.start <workflow>`` per start (``flow.fork`` per fork) with the messaging attributes,
one ``CONSUMER`` span ``flow.run <workflow>`` per execution of a run by a worker (workflow,
version, run id, outcome) and one ``flow.step <step>`` child per step that execution runs
(name, attempt, outcome). Steps served from the log on replay get none, so a run resumed
after a worker crash has no duplicate step spans. The start stores the W3C trace context
current inside its span (the start span's own when it records, else the caller's) in the
run's metadata (under :data:`TRACE_KEY`); the worker restores it, so a trace reads caller →
``flow.start`` → ``flow.run`` → steps. Inputs, outputs, step results, signal payloads and
exception messages are never recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, Final

from opentelemetry.trace import Span, SpanKind, get_current_span
from opentelemetry.util.types import AttributeValue

from forktex_core.telemetry import (
    ERROR_TYPE,
    Tracing,
    capture,
    carrier_of,
    mark_failed,
    qualified_name,
)

from ._errors import StepFailed, WorkflowTimeout

SCOPE: Final = "forktex_core.flow"
#: The run-metadata key holding the trace context captured at start (W3C fields only).
TRACE_KEY: Final = "forktex.trace"

WORKFLOW: Final = "forktex.flow.workflow.name"
VERSION: Final = "forktex.flow.workflow.version"
RUN_ID: Final = "forktex.flow.run.id"
STEP: Final = "forktex.flow.step.name"
ATTEMPT: Final = "forktex.flow.step.attempt"
OUTCOME: Final = "forktex.flow.outcome"
RETRY_EVENT: Final = "forktex.flow.step.retried"
# The messaging semantic conventions of a start (a run is a message to the workers).
SYSTEM: Final = "messaging.system"
OPERATION_TYPE: Final = "messaging.operation.type"
OPERATION_NAME: Final = "messaging.operation.name"
DESTINATION: Final = "messaging.destination.name"
MESSAGE_ID: Final = "messaging.message.id"
#: ``messaging.system`` of flow's starts: runs are messages in flow's Postgres tables.
MESSAGING_SYSTEM: Final = "forktex_flow"

#: ``forktex.flow.outcome``: the run or step ended / failed for good / the run was put aside
#: to wait / it was cancelled / its execution gave it back for another one / it continued as
#: new (the next generation of the run follows).
COMPLETED: Final = "completed"
FAILED: Final = "failed"
SUSPENDED: Final = "suspended"
CANCELLED: Final = "cancelled"
REQUEUED: Final = "requeued"
CONTINUED: Final = "continued"


def error_type(exc: BaseException) -> str:
    """``error.type`` of a run or step failure: ``timeout`` for a workflow's deadline, the
    class the step's code raised for a :class:`StepFailed` that wraps it, else the class
    raised (the workflow's own code). Never the message: it may quote inputs."""
    if isinstance(exc, WorkflowTimeout):
        return "timeout"
    if isinstance(exc, StepFailed) and exc.__cause__ is not None:
        exc = exc.__cause__
    return qualified_name(type(exc))


def failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc``; a cancellation (the worker stopping, a run closing
    its branches) is not a failure of the span."""
    if not isinstance(exc, asyncio.CancelledError):
        mark_failed(span, error_type(exc))


tracing: Final = Tracing(SCOPE, "forktex-core-flow", failed)


def carried(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """``metadata`` with the caller's trace context added under :data:`TRACE_KEY` (a copy;
    unchanged when there is no current span to continue)."""
    carrier = capture()
    if not carrier:
        return metadata
    return {**(metadata or {}), TRACE_KEY: carrier}


def start_span(workflow: str, version: int, queue: str | None) -> Span:
    """The ``PRODUCER`` span of one start of ``workflow`` (not current yet): make it
    current around capturing the context and inserting the run, then :func:`started`."""
    attributes: dict[str, AttributeValue] = {
        SYSTEM: MESSAGING_SYSTEM,
        OPERATION_TYPE: "send",
        OPERATION_NAME: "start",
        WORKFLOW: workflow,
        VERSION: version,
    }
    if queue is not None:
        attributes[DESTINATION] = queue
    return tracing.start(f"flow.start {workflow}", SpanKind.PRODUCER, attributes)


def fork_span(run_id: str) -> Span:
    """The ``PRODUCER`` span of a fork creating run ``run_id`` (not current yet)."""
    attributes: dict[str, AttributeValue] = {
        SYSTEM: MESSAGING_SYSTEM,
        OPERATION_TYPE: "send",
        OPERATION_NAME: "fork",
        MESSAGE_ID: run_id,
        RUN_ID: run_id,
    }
    return tracing.start("flow.fork", SpanKind.PRODUCER, attributes)


def started(span: Span, run_id: str) -> None:
    """Record the id of the run a start created (or the existing run an idempotency or
    dedup key returned)."""
    if span.is_recording():
        span.set_attribute(MESSAGE_ID, run_id)
        span.set_attribute(RUN_ID, run_id)


def stored_carrier(metadata: str | None) -> dict[str, str] | None:
    """The checked carrier in a claimed run's metadata (JSON text), if any. The text is
    parsed only when it names the key: most runs carry none."""
    if not metadata or TRACE_KEY not in metadata:
        return None
    try:
        doc = json.loads(metadata)
    except ValueError:
        return None
    return carrier_of(doc.get(TRACE_KEY)) if isinstance(doc, dict) else None


def run_span(workflow: str, version: int, run_id: str, metadata: str | None) -> Span:
    """The ``CONSUMER`` span of one execution of a run (not current yet); the span current
    at its start (stored in its metadata) is its parent and a link."""
    attributes: dict[str, AttributeValue] = {
        WORKFLOW: workflow,
        VERSION: version,
        RUN_ID: run_id,
    }
    return tracing.start(
        f"flow.run {workflow}", SpanKind.CONSUMER, attributes, stored_carrier(metadata)
    )


def run_ended(span: Span, outcome: str | None, failure: BaseException | None) -> None:
    """Record how the execution ended: its outcome and, for a failed run, ``error.type``."""
    if span.is_recording():
        if outcome is not None:
            span.set_attribute(OUTCOME, outcome)
        if failure is not None:
            mark_failed(span, error_type(failure))


def step(name: str, attempt: int, body: Coroutine[Any, Any, Any]) -> Coroutine[Any, Any, Any]:
    """``body`` (the execution of step ``name`` from ``attempt``) inside a ``flow.step``
    span; ``body`` itself when the span does not record (no SDK): no wrapper to await."""
    span = tracing.start(f"flow.step {name}", SpanKind.INTERNAL, {STEP: name, ATTEMPT: attempt})
    if not span.is_recording():
        return body
    return _traced_step(span, body)


async def _traced_step(span: Span, body: Coroutine[Any, Any, Any]) -> Any:
    with tracing.current(span):
        try:
            result = await body
        except StepFailed:
            span.set_attribute(OUTCOME, FAILED)
            raise
        span.set_attribute(OUTCOME, COMPLETED)
        return result


def retried(exc: BaseException, attempt: int) -> None:
    """On the current step span: attempt ``attempt`` raised and another one follows (an
    event, not an error of the span: the step may still succeed)."""
    span = get_current_span()
    if span.is_recording():
        span.add_event(RETRY_EVENT, {ERROR_TYPE: qualified_name(type(exc)), ATTEMPT: attempt})
        span.set_attribute(ATTEMPT, attempt + 1)
