# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Spans through the OpenTelemetry API: a no-op unless the host configures an SDK.

The conventions are those of ``docs/observability.md``: a ``PRODUCER`` span per enqueue
(``queue.enqueue <task>``) and a ``CONSUMER`` span per try a worker runs
(``queue.process <task>``), with the messaging semantic-convention attributes. The enqueue
captures the caller's trace context (W3C ``traceparent`` / ``tracestate`` only, never
baggage) into the job's payload; the worker restores it, so the job's span is a child of
the span that enqueued it (and links to it). Job arguments, results and exception messages
are never recorded; the job id (ours, or the caller's ``_job_id``) is.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from forktex_core.telemetry import Tracing, error_type, mark_failed
from forktex_core.telemetry import capture as capture
from forktex_core.telemetry import carrier_of as carrier_of

from ._errors import TaskTimeout

SCOPE: Final = "forktex_core.queue"
# Attribute names (semantic conventions where one exists, forktex.queue.* otherwise).
SYSTEM: Final = "messaging.system"
OPERATION_TYPE: Final = "messaging.operation.type"
OPERATION_NAME: Final = "messaging.operation.name"
DESTINATION: Final = "messaging.destination.name"
MESSAGE_ID: Final = "messaging.message.id"
FUNCTION: Final = "code.function.name"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
TASK: Final = "forktex.queue.task.name"
ATTEMPT: Final = "forktex.queue.job.attempt"
CREATED: Final = "forktex.queue.job.created"
OUTCOME: Final = "forktex.queue.outcome"

#: ``forktex.queue.outcome`` of a try: the job's value was stored / it failed for good /
#: it failed and will be tried again / it was aborted / the worker stopped and gave it back.
COMPLETED: Final = "completed"
FAILED: Final = "failed"
RETRYING: Final = "retrying"
ABORTED: Final = "aborted"
REQUEUED: Final = "requeued"


def server_attributes(where: str) -> dict[str, AttributeValue]:
    """``server.address`` / ``server.port`` of a queue's Redis from where it points
    (``host:port/db``, ``[::1]:port/db`` or ``unix:/path/db``; never the URL)."""
    location = where.rpartition("/")[0]
    if location.startswith("unix:"):
        return {SERVER_ADDRESS: location[len("unix:") :]}
    host, _, port = location.rpartition(":")
    if not host or not port.isdigit():
        return {}
    return {SERVER_ADDRESS: host.strip("[]"), SERVER_PORT: int(port)}


def producer_attributes(queue: str, task: str, where: str) -> dict[str, AttributeValue]:
    """The attributes every enqueue of ``task`` carries (built once per task)."""
    return {
        SYSTEM: "arq",
        OPERATION_TYPE: "send",
        OPERATION_NAME: "enqueue",
        DESTINATION: queue,
        TASK: task,
        **server_attributes(where),
    }


def consumer_attributes(
    queue: str, task: str | None, function: str | None, where: str
) -> dict[str, AttributeValue]:
    """The attributes every try of ``task`` carries (built once per task and worker)."""
    attributes: dict[str, AttributeValue] = {
        SYSTEM: "arq",
        OPERATION_TYPE: "process",
        OPERATION_NAME: "process",
        DESTINATION: queue,
        **server_attributes(where),
    }
    if task is not None:
        attributes[TASK] = task
    if function is not None:
        attributes[FUNCTION] = function
    return attributes


def function_name(fn: object) -> str | None:
    """``module.qualname`` of a task's function, for ``code.function.name``."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(qualname, str):
        return None
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


def failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``: status ERROR and ``error.type`` - ``timeout`` for
    a task's own deadline, else the class of the original error (never the message: it may
    quote arguments)."""
    mark_failed(span, "timeout" if isinstance(exc, TaskTimeout) else error_type(exc))


tracing: Final = Tracing(SCOPE, "forktex-core-queue", failed)
tracer: Final = tracing.tracer
#: ``start(name, kind, attributes, carrier)``: a span not yet current; with a stored
#: carrier (``"tc"`` of the job) the enqueue span is its parent and a link.
start: Final = tracing.start
#: ``with current(span): ...``: current inside and ended on exit, if it records.
current: Final = tracing.current


def outcome(span: Span, result: str, error: BaseException | None = None) -> None:
    """Record how a try ended (one of the outcome constants); a failed or retrying try is
    an error of its span."""
    if span.is_recording():
        span.set_attribute(OUTCOME, result)
        if error is not None:
            failed(span, error)
