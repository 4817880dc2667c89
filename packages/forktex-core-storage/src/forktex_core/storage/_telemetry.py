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

import importlib.metadata
from collections.abc import Mapping
from types import TracebackType
from typing import Final

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

from ._errors import StorageError, StorageServiceError, StorageUnavailable

SCOPE: Final = "forktex_core.storage"
#: The semantic-conventions version the attribute names follow.
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.44.0"


def _version() -> str | None:
    try:
        return importlib.metadata.version("forktex-core-storage")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return None


tracer: Final = trace.get_tracer(SCOPE, _version(), schema_url=SCHEMA_URL)

# Attribute names (semantic conventions where one exists, forktex.storage.* otherwise).
BUCKET: Final = "aws.s3.bucket"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
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


def operation(
    name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]
) -> _Idle | _Recording:
    """A span around one call: ``with operation(name, kind, attributes) as span: ...``.

    Current (the parent of spans started inside, e.g. aiohttp's) only while it records; when
    it does not - no SDK - the block gets the API's invalid span and nothing is attached or
    ended. An exception leaving a recording block sets status ERROR and ``error.type``.
    """
    span = tracer.start_span(name, None, kind, attributes)
    if span.is_recording():
        return _Recording(span)
    return _IDLE


def detached(name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]) -> Span:
    """A span never made current, for an async generator (``list``, ``stream``): attaching
    it there would leak into the caller's context between two items. End it with
    :func:`finish`."""
    return tracer.start_span(name, None, kind, attributes)


def finish(span: Span, exc: BaseException | None) -> None:
    """End a :func:`detached` span, failed by ``exc`` if given."""
    if span.is_recording():
        if exc is not None:
            failed(span, exc)
        span.end()


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
    """``aiohttp.client_exceptions.ClientConnectorError``, ``forktex_core.storage.ObjectNotFound``,
    ``ConnectionRefusedError``: the class's public dotted name (private modules left out)."""
    module = ".".join(p for p in cls.__module__.split(".") if not p.startswith("_"))
    if module in ("", "builtins"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def error_type(exc: BaseException) -> str:
    """``error.type`` of ``exc``: the service's error code (``EntityTooLarge``) for a
    refusal without a type of its own; for an unusable service ``timeout`` or the original
    error (the end of the ``__cause__`` chain: a connection error); else our error's class
    (``forktex_core.storage.ObjectNotFound``: S3's ``NoSuchKey`` and a missing file alike)."""
    if isinstance(exc, StorageServiceError) and exc.code:
        return exc.code
    if isinstance(exc, StorageUnavailable) or not isinstance(exc, StorageError):
        root = exc
        while root.__cause__ is not None:
            root = root.__cause__
        if isinstance(root, TimeoutError):
            return "timeout"
        return qualified_name(type(root))
    return qualified_name(type(exc))


def failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``: status ERROR and ``error.type``, nothing else."""
    span.set_attribute(ERROR_TYPE, error_type(exc))
    span.set_status(StatusCode.ERROR)
