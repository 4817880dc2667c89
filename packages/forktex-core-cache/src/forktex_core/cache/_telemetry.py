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

from typing import Final

from opentelemetry import metrics
from opentelemetry.trace import Span, get_current_span
from opentelemetry.util.types import AttributeValue

from forktex_core.telemetry import ERROR_TYPE, SCHEMA_URL, Tracing, mark_failed, version_of

from ._faults import classify
from ._glob import literal_head
from ._namespace import is_namespace

SCOPE: Final = "forktex_core.cache"
meter: Final = metrics.get_meter(
    SCOPE, version_of("forktex-core-cache") or "", schema_url=SCHEMA_URL
)

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


def failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``: status ERROR, ``error.type`` and, for an error
    reply, ``db.response.status_code``."""
    error_type, code = classify(exc)
    if code is not None:
        span.set_attribute(DB_STATUS, code)
    mark_failed(span, error_type)


tracing: Final = Tracing(SCOPE, "forktex-core-cache", failed)
tracer: Final = tracing.tracer
#: ``with operation(name, kind, attributes) as span: ...``: a span around one operation,
#: current inside only while it records; a failure is marked by :func:`failed` (the
#: error's class or Redis reply code, never the message: it may quote keys or values).
operation: Final = tracing.operation


def degraded(exc: BaseException) -> None:
    """Record, on the current span, a Redis failure the caller went on without (fail-open):
    an event, not an error status - the operation itself succeeded."""
    span = get_current_span()
    if span.is_recording():
        error_type, code = classify(exc)
        attributes: dict[str, AttributeValue] = {ERROR_TYPE: error_type}
        if code is not None:
            attributes[DB_STATUS] = code
        span.add_event(DEGRADED_EVENT, attributes)
