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

import importlib.metadata
from collections.abc import Mapping
from types import TracebackType
from typing import Final

from opentelemetry import context, trace
from opentelemetry.trace import Link, Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from ._errors import TaskTimeout

SCOPE: Final = "forktex_core.queue"
#: The semantic-conventions version the attribute names follow.
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.44.0"


def _version() -> str | None:
    try:
        return importlib.metadata.version("forktex-core-queue")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return None


tracer: Final = trace.get_tracer(SCOPE, _version(), schema_url=SCHEMA_URL)
# The W3C propagator itself, not the global one: it writes traceparent/tracestate only,
# never baggage (which may hold user data), whatever propagators the host configured.
_PROPAGATOR: Final = TraceContextTextMapPropagator()
#: The carrier's fields and how long they may be (traceparent is 55 characters; tracestate
#: has at most 32 members of at most 256 characters): anything else is not trace context.
_FIELDS: Final = {"traceparent": 64, "tracestate": 8192}

# Attribute names (semantic conventions where one exists, forktex.queue.* otherwise).
SYSTEM: Final = "messaging.system"
OPERATION_TYPE: Final = "messaging.operation.type"
OPERATION_NAME: Final = "messaging.operation.name"
DESTINATION: Final = "messaging.destination.name"
MESSAGE_ID: Final = "messaging.message.id"
FUNCTION: Final = "code.function.name"
ERROR_TYPE: Final = "error.type"
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


def capture() -> dict[str, str]:
    """The current trace context as a carrier to store with a job (empty when there is no
    valid span: nothing to continue)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def carrier_of(value: object) -> dict[str, str] | None:
    """A stored carrier, checked: a dict of ``traceparent`` (required) and ``tracestate``
    strings of sane length; anything else is ``None`` (the job then gets a root span)."""
    if not isinstance(value, dict) or "traceparent" not in value:
        return None
    for key, text in value.items():
        limit = _FIELDS.get(key) if isinstance(key, str) else None
        if limit is None or not isinstance(text, str) or len(text) > limit:
            return None
    return value


def start(
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, AttributeValue],
    carrier: dict[str, str] | None = None,
) -> Span:
    """Start a span; with a stored ``carrier`` its span is the parent and a link."""
    if carrier is None:
        return tracer.start_span(name, None, kind, attributes)
    parent = _PROPAGATOR.extract(carrier)
    remote = trace.get_current_span(parent).get_span_context()
    links = [Link(remote)] if remote.is_valid else None
    return tracer.start_span(name, parent, kind, attributes, links)


def current(span: Span) -> _Idle | _Recording:
    """``with current(span): ...``: ``span`` is current inside (the parent of the task's own
    spans) and ended on exit - if it records. A span that does not record (no SDK) is never
    attached: the block then costs nothing."""
    if span.is_recording():
        return _Recording(span)
    return _IDLE


class _Idle:
    """The context manager of a span that does not record: nothing to attach or end."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return trace.INVALID_SPAN

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_IDLE: Final = _Idle()


class _Recording:
    """The context manager of a recording span: current inside, ended on exit."""

    __slots__ = ("_token", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token: object = None

    def __enter__(self) -> Span:
        self._token = context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        context.detach(self._token)  # type: ignore[arg-type]
        if exc is not None:
            failed(self.span, exc)
        self.span.end()


def qualified_name(cls: type) -> str:
    """``redis.exceptions.ConnectionError``, ``forktex_core.queue.InvalidJob``,
    ``ValueError``: the class's public dotted name (private modules left out)."""
    module = ".".join(p for p in cls.__module__.split(".") if not p.startswith("_"))
    if module in ("", "builtins"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def error_type(exc: BaseException) -> str:
    """``error.type`` of ``exc``: ``timeout`` for a task's own deadline, else the class of
    the original error (the end of its ``__cause__`` chain). Never the message: it may
    quote arguments."""
    if isinstance(exc, TaskTimeout):
        return "timeout"
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return qualified_name(type(exc))


def failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``: status ERROR and ``error.type``, nothing else."""
    span.set_attribute(ERROR_TYPE, error_type(exc))
    span.set_status(StatusCode.ERROR)


def outcome(span: Span, result: str, error: BaseException | None = None) -> None:
    """Record how a try ended (one of the outcome constants); a failed or retrying try is
    an error of its span."""
    if span.is_recording():
        span.set_attribute(OUTCOME, result)
        if error is not None:
            failed(span, error)
