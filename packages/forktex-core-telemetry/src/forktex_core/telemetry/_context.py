# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""W3C trace context carried across processes: captured by a producer, stored with the job
or run, checked and restored by the worker."""

from __future__ import annotations

from typing import Final

from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# The W3C propagator itself, not the global one: it writes traceparent/tracestate only,
# never baggage (which may hold user data), whatever propagators the host configured.
_PROPAGATOR: Final = TraceContextTextMapPropagator()
#: The carrier's fields and how long they may be (traceparent is 55 characters; tracestate
#: has at most 32 members of at most 256 characters): anything else is not trace context.
_FIELDS: Final = {"traceparent": 64, "tracestate": 8192}


def capture() -> dict[str, str]:
    """The current trace context as a carrier to store with a job or run: ``traceparent``
    and, if any, ``tracestate``. Empty when there is no valid current span.

    Example::

        with tracing.operation("queue.enqueue send", SpanKind.PRODUCER, attrs):
            job["tc"] = capture() or None
    """
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def carrier_of(value: object) -> dict[str, str] | None:
    """``value`` if it is a usable stored carrier - a dict of a ``traceparent`` (required)
    and a ``tracestate``, strings of sane length - else ``None``: a stored value is data
    read back from Redis or Postgres and is never trusted.

    Example::

        carrier_of({"traceparent": "00-...-01"})  # the dict itself
        carrier_of("junk")  # None
    """
    if not isinstance(value, dict) or "traceparent" not in value:
        return None
    for key, text in value.items():
        limit = _FIELDS.get(key) if isinstance(key, str) else None
        if limit is None or not isinstance(text, str) or len(text) > limit:
            return None
    return value


def restore(carrier: dict[str, str]) -> Context:
    """The context a stored carrier describes, to start a span in (its parent). A malformed
    carrier gives an empty context: the span is then a root.

    Example::

        span = tracer.start_span("flow.run order", restore(stored))
    """
    return _PROPAGATOR.extract(carrier)
