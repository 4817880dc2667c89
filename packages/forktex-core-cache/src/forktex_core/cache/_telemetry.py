# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Spans and metrics through the OpenTelemetry API: a no-op unless the host configures an SDK.

The conventions (names, attributes, what is never recorded, the cost rule) are those of
``docs/observability.md``. In short: one span per public operation, started with
``start_span`` and made current only while it records (without an SDK that costs about a
microsecond; ``start_as_current_span`` costs several even as a no-op); attribute dicts are
built once and reused; anything computed per call is set only when ``span.is_recording()``.
Keys, values and exception messages are never recorded: a key contributes its namespace only.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from types import TracebackType
from typing import Final

from opentelemetry import context, metrics, trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

from ._faults import classify
from ._glob import literal_head
from ._namespace import is_namespace

Attributes = Mapping[str, AttributeValue]

SCOPE: Final = "forktex_core.cache"
#: The semantic-conventions version the attribute names follow.
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.44.0"


def _version() -> str | None:
    try:
        return importlib.metadata.version("forktex-core-cache")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return None


_VERSION: Final = _version()
tracer: Final = trace.get_tracer(SCOPE, _VERSION, schema_url=SCHEMA_URL)
meter: Final = metrics.get_meter(SCOPE, _VERSION or "", schema_url=SCHEMA_URL)

#: ``@cached`` calls by result (``hit`` / ``miss`` / ``bypass``) and namespace.
lookups: Final = meter.create_counter(
    "forktex.cache.lookups",
    unit="{lookup}",
    description="@cached calls by result: hit, miss (the value was computed or awaited) or "
    "bypass (Redis unusable: the function ran without the cache)",
)
#: ``rate_limit`` decisions by limiter name and result (``allowed`` / ``denied``).
decisions: Final = meter.create_counter(
    "forktex.cache.rate_limit.decisions",
    unit="{decision}",
    description="rate_limit decisions by limiter name and result (allowed or denied); "
    "forktex.cache.degraded=true when the on_error policy decided without Redis",
)

# Attribute names (semantic conventions where one exists, forktex.cache.* otherwise).
DB_SYSTEM: Final = "db.system.name"
DB_NAMESPACE: Final = "db.namespace"
DB_OPERATION: Final = "db.operation.name"
DB_STATUS: Final = "db.response.status_code"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
FUNCTION: Final = "code.function.name"
NAMESPACE: Final = "forktex.cache.namespace"
RESULT: Final = "forktex.cache.result"
LIMITER: Final = "forktex.cache.rate_limit.name"
DECISION: Final = "forktex.cache.rate_limit.result"
DEGRADED: Final = "forktex.cache.degraded"
COUNT: Final = "forktex.cache.keys"
COALESCED: Final = "forktex.cache.coalesced"
COMPUTED: Final = "forktex.cache.computed"
DEGRADED_EVENT: Final = "forktex.cache.degraded"


def server_attributes(
    host: str | None, port: int | None, db: int | None
) -> dict[str, AttributeValue]:
    """The attributes every span of one client carries: backend, server and database."""
    attributes: dict[str, AttributeValue] = {DB_SYSTEM: "redis"}
    if host is not None:
        attributes[SERVER_ADDRESS] = host
    if port is not None:
        attributes[SERVER_PORT] = port
    if db is not None:
        attributes[DB_NAMESPACE] = str(db)
    return attributes


def key_namespace(key: str) -> str | None:
    """The namespace of a key built by ``Namespace.key`` (the text before its first ``::``),
    or ``None``: the rest of a key may be user data and is never recorded."""
    head, sep, _ = key.partition("::")
    return head if sep and is_namespace(head) else None


def pattern_namespace(pattern: str) -> str | None:
    """The namespace a ``delete_pattern`` pattern is confined to: its literal head up to the
    last ``:`` (before any ``::``), if that is a valid namespace."""
    head = literal_head(pattern)
    if "::" in head:
        return key_namespace(head)
    name, sep, _ = head.rpartition(":")
    return name if sep and is_namespace(name) else None


def operation(name: str, kind: SpanKind, attributes: Attributes) -> _Idle | _Recording:
    """A span around one operation: ``with operation(name, kind, attributes) as span: ...``.

    The span is current (the parent of spans started inside) only while it records. When it
    does not - no SDK, or not sampled - the block gets the API's invalid span and a shared
    no-op context manager: the whole cost is one ``start_span`` of the no-op tracer. An
    exception leaving a recording block sets status ERROR and ``error.type`` (never the
    message: it may quote keys or values).
    """
    span = tracer.start_span(name, None, kind, attributes)
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


def failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``: status ERROR, ``error.type`` and, for an error
    reply, ``db.response.status_code``."""
    error_type, code = classify(exc)
    span.set_attribute(ERROR_TYPE, error_type)
    if code is not None:
        span.set_attribute(DB_STATUS, code)
    span.set_status(StatusCode.ERROR)


def degraded(exc: BaseException) -> None:
    """Record, on the current span, a Redis failure the caller went on without (fail-open):
    an event, not an error status - the operation itself succeeded."""
    span = trace.get_current_span()
    if span.is_recording():
        error_type, code = classify(exc)
        attributes: dict[str, AttributeValue] = {ERROR_TYPE: error_type}
        if code is not None:
            attributes[DB_STATUS] = code
        span.add_event(DEGRADED_EVENT, attributes)


def annotate(name: str, value: AttributeValue) -> None:
    """Set one attribute on the current span, if it records."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(name, value)
