# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Spans through the OpenTelemetry API: a no-op unless the host configures an SDK.

The conventions are those of ``docs/observability.md``: one span per ``StorageClient`` call
(``storage.put``, ``storage.get``, ``storage.signed_url``, ...) with the bucket
(``aws.s3.bucket``), the backend and, for S3, ``server.address`` / ``server.port``. Object
keys, prefixes, bodies, metadata, URLs, signatures and exception messages are never
recorded: keys may be user data (``invoices/<customer>/...``), URLs carry signatures.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from forktex_core.telemetry import Tracing, mark_failed, qualified_name, root_cause

from ._errors import StorageError, StorageServiceError, StorageUnavailable

SCOPE: Final = "forktex_core.storage"
# Attribute names (semantic conventions where one exists, forktex.storage.* otherwise).
BUCKET: Final = "aws.s3.bucket"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
BACKEND: Final = "forktex.storage.backend"
SIZE: Final = "forktex.storage.object.size"
KEYS: Final = "forktex.storage.keys"
OBJECTS: Final = "forktex.storage.objects"
FOUND: Final = "forktex.storage.found"
ACCESS: Final = "forktex.storage.access"


def client_attributes(backend: str, bucket: str, address: str | None) -> dict[str, AttributeValue]:
    """The attributes every span of one client carries (built once per client).
    ``address`` is the S3 endpoint's ``host:port``, never its URL."""
    attributes: dict[str, AttributeValue] = {BACKEND: backend, BUCKET: bucket}
    if address is not None:
        host, _, port = address.rpartition(":")
        attributes[SERVER_ADDRESS] = host.strip("[]")
        if port.isdigit():
            attributes[SERVER_PORT] = int(port)
    return attributes


def error_type(exc: BaseException) -> str:
    """``error.type`` of ``exc``: the service's error code (``EntityTooLarge``) for a
    refusal without a type of its own; for an unusable service ``timeout`` or the original
    error (the end of the ``__cause__`` chain: a connection error); else our error's class
    (``forktex_core.storage.ObjectNotFound``: S3's ``NoSuchKey`` and a missing file alike)."""
    if isinstance(exc, StorageServiceError) and exc.code:
        return exc.code
    if isinstance(exc, StorageUnavailable) or not isinstance(exc, StorageError):
        root = root_cause(exc)
        if isinstance(root, TimeoutError):
            return "timeout"
        return qualified_name(type(root))
    return qualified_name(type(exc))


def failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``: status ERROR and ``error.type``, nothing else."""
    mark_failed(span, error_type(exc))


tracing: Final = Tracing(SCOPE, "forktex-core-storage", failed)
tracer: Final = tracing.tracer
#: ``with operation(name, kind, attributes) as span: ...``: a span around one call, current
#: inside only while it records (the parent of e.g. aiohttp's spans); failures as
#: :func:`failed` marks them.
operation: Final = tracing.operation
#: A span never made current, for an async generator (``list``, ``stream``): attaching it
#: there would leak into the caller's context between two items. End it with ``finish``.
detached: Final = tracing.start
#: ``finish(span, exc)``: end a ``detached`` span, failed by ``exc`` if given.
finish: Final = tracing.finish
