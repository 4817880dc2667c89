# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The span helpers every forktex-core module traces with, on the OpenTelemetry API only.

Without an SDK configured by the host every call is a no-op costing about a microsecond;
the conventions (names, attributes, what is never recorded) are ``docs/observability.md``.
Each module keeps its own span names, attributes and error mapping and shares these:

- :class:`Tracing` - a module's tracer; ``operation`` / ``start`` / ``current`` / ``finish``;
- :func:`fail`, :func:`mark_failed`, :func:`error_type`, :func:`qualified_name`,
  :func:`root_cause` - failures as ``error.type``, never a message;
- :func:`capture`, :func:`carrier_of`, :func:`restore` - W3C trace context stored with a
  job or run and restored in the worker;
- :func:`version_of`, :data:`SCHEMA_URL`, :data:`ERROR_TYPE`.

Example::

    from opentelemetry.trace import SpanKind
    from forktex_core.telemetry import Tracing

    tracing = Tracing("forktex_core.storage", "forktex-core-storage")
    with tracing.operation("storage.put", SpanKind.CLIENT, {"aws.s3.bucket": "media"}):
        ...
"""

from __future__ import annotations

from ._context import capture, carrier_of, restore
from ._errors import InvalidArgument
from ._names import error_type, qualified_name, root_cause
from ._spans import (
    ERROR_TYPE,
    SCHEMA_URL,
    Attributes,
    Failure,
    SpanScope,
    Tracing,
    fail,
    mark_failed,
    version_of,
)

__all__ = [
    "ERROR_TYPE",
    "SCHEMA_URL",
    "Attributes",
    "Failure",
    "InvalidArgument",
    "SpanScope",
    "Tracing",
    "capture",
    "carrier_of",
    "error_type",
    "fail",
    "mark_failed",
    "qualified_name",
    "restore",
    "root_cause",
    "version_of",
]
