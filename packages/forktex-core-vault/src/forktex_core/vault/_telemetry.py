# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Spans through the OpenTelemetry API: a no-op unless the host configures an SDK.

The conventions are those of ``docs/observability.md``. Only key rotations are traced:
encrypting or decrypting one value is pure CPU work of about 15 µs, done once per row a
query returns, so a span each would multiply spans by rows and add several percent to every
call even as a no-op. Payloads, plaintexts, tokens, keys, primary keys and exception
messages are never recorded; key fingerprints (what ``repr(vault)`` shows) are.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from types import TracebackType
from typing import Final

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

SCOPE: Final = "forktex_core.vault"
#: The semantic-conventions version the attribute names follow.
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.44.0"


def _version() -> str | None:
    try:
        return importlib.metadata.version("forktex-core-vault")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return None


tracer: Final = trace.get_tracer(SCOPE, _version(), schema_url=SCHEMA_URL)

# Attribute names (semantic conventions where one exists, forktex.vault.* otherwise).
DB_SYSTEM: Final = "db.system.name"
DB_TABLE: Final = "db.collection.name"
ERROR_TYPE: Final = "error.type"
COLUMN: Final = "forktex.vault.column"
BATCH_SIZE: Final = "forktex.vault.batch_size"
RESUMED: Final = "forktex.vault.resumed"
OLD_KEYS: Final = "forktex.vault.old.fingerprints"
NEW_KEY: Final = "forktex.vault.new.fingerprint"
SCANNED: Final = "forktex.vault.rows.scanned"
ROTATED: Final = "forktex.vault.rows.rotated"
SKIPPED: Final = "forktex.vault.rows.skipped"
FAILED: Final = "forktex.vault.rows.failed"
BATCHES: Final = "forktex.vault.batches"
COMPLETE: Final = "forktex.vault.complete"
UNOPENABLE_EVENT: Final = "forktex.vault.unopenable_rows"


def qualified_name(cls: type) -> str:
    """``sqlalchemy.exc.OperationalError``, ``forktex_core.vault.RotationInterrupted``,
    ``ConnectionResetError``: the class's public dotted name (private modules left out)."""
    module = ".".join(p for p in cls.__module__.split(".") if not p.startswith("_"))
    if module in ("", "builtins"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def error_type(exc: BaseException) -> str:
    """``error.type`` of ``exc``: the class of the original error it wraps (the end of its
    ``__cause__`` chain), else its own. Never the message: it may name primary keys."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return qualified_name(type(exc))


def operation(name: str, attributes: Mapping[str, AttributeValue]) -> _Idle | _Recording:
    """A span around one operation: ``with operation(name, attributes) as span: ...``.

    Current (the parent of spans started inside, e.g. SQLAlchemy's) only while it records;
    otherwise the block gets the API's invalid span and nothing is attached or ended. An
    exception leaving a recording block sets status ERROR and ``error.type``, nothing else.
    """
    span = tracer.start_span(name, None, SpanKind.INTERNAL, attributes)
    if span.is_recording():
        return _Recording(span)
    return _IDLE


class _Idle:
    """The context manager of a span that does not record."""

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
            self.span.set_attribute(ERROR_TYPE, error_type(exc))
            self.span.set_status(StatusCode.ERROR)
        self.span.end()
