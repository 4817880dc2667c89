# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Spans that cost about a microsecond when no SDK is configured.

A span is started with ``start_span`` and made current only while it records: without an
SDK (or when not sampled) the block gets the API's invalid span and one shared no-op
context manager, and nothing is attached, so a context the host propagated stays visible
inside. ``start_as_current_span`` costs several microseconds even as a no-op.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Final

from opentelemetry import context, trace
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    Span,
    SpanKind,
    StatusCode,
    Tracer,
)
from opentelemetry.util.types import AttributeValue

from ._context import restore
from ._errors import InvalidArgument
from ._names import error_type

#: The semantic-conventions version the attribute names of forktex-core follow.
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.44.0"
#: The semantic-convention attribute of a failure's type.
ERROR_TYPE: Final = "error.type"

#: How a module marks a span failed by an exception (status, ``error.type``, codes).
Failure = Callable[[Span, BaseException], None]
Attributes = Mapping[str, AttributeValue]

_SCOPE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def mark_failed(span: Span, error: str) -> None:
    """Status ERROR with no description and ``error.type`` = ``error``; no exception event
    (it would record the message and traceback).

    Example::

        mark_failed(span, "timeout")
    """
    span.set_attribute(ERROR_TYPE, error)
    span.set_status(StatusCode.ERROR)


def fail(span: Span, exc: BaseException) -> None:
    """The default :data:`Failure`: :func:`mark_failed` with :func:`error_type` of ``exc``
    (the class of the error at the end of its ``__cause__`` chain).

    Example::

        fail(span, ValueError("never recorded"))  # error.type = 'ValueError'
    """
    mark_failed(span, error_type(exc))


def version_of(distribution: str) -> str | None:
    """The installed version of ``distribution``, for the instrumentation scope; ``None``
    when it is not installed (run from a source tree).

    Example::

        version_of("forktex-core-telemetry")  # '0.4.0'
    """
    if not isinstance(distribution, str) or not distribution:
        raise InvalidArgument(
            "distribution must be a non-empty distribution name such as "
            f"'forktex-core-cache', got a {type(distribution).__name__}"
        )
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


class _Idle:
    """The context manager of a span that does not record: the API's invalid span in the
    block, nothing attached or ended (a slotted class: cheaper than ``nullcontext``)."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return trace.INVALID_SPAN

    def __exit__(self, *exc_info: object) -> None:
        return None


_IDLE: Final = _Idle()


def _no_sdk() -> bool:
    """True while no tracer provider is installed: every span would be a no-op, so none is
    started (a step or a cache call then pays one attribute read).

    The API has no public "is a provider set" that avoids its per-call environment lookup,
    so its module global is read directly. A provider configured through the environment
    is loaded by the API's own getter, which every :class:`Tracing` calls when it is made."""
    return trace._TRACER_PROVIDER is None  # third-party private: opentelemetry (no accessor)


class _Recording:
    """The context manager of a recording span: current inside, ended on exit, failed by
    an exception leaving the block."""

    __slots__ = ("_failed", "_token", "span")

    def __init__(self, span: Span, failed: Failure) -> None:
        self.span = span
        self._failed = failed
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
            self._failed(self.span, exc)
        self.span.end()


#: What :meth:`Tracing.operation` and :meth:`Tracing.current` return: ``with`` gives the span.
SpanScope = AbstractContextManager[Span]


class Tracing:
    """The tracer of one module and the ways its spans start and end.

    Create one per module at import time (never per operation): ``scope`` is the module's
    import name, ``distribution`` the distribution whose version names the scope, and
    ``failed`` how the module marks a span failed by an exception (default :func:`fail`;
    a module maps its own errors: Redis reply codes, ``timeout`` for its deadlines).

    Example::

        tracing = Tracing("forktex_core.storage", "forktex-core-storage")
        with tracing.operation("storage.put", SpanKind.CLIENT, attributes) as span:
            ...
    """

    __slots__ = ("failed", "tracer")

    def __init__(self, scope: str, distribution: str, failed: Failure = fail) -> None:
        if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
            got = repr(scope) if isinstance(scope, str) else f"a {type(scope).__name__}"
            raise InvalidArgument(
                f"scope must be a non-empty dotted name such as 'forktex_core.cache', got {got}"
            )
        if not callable(failed):
            raise InvalidArgument(
                f"failed must be a callable (span, exc) -> None, got a {type(failed).__name__}"
            )
        self.tracer: Tracer = trace.get_tracer(
            scope, version_of(distribution), schema_url=SCHEMA_URL
        )
        self.failed: Failure = failed

    def operation(
        self, name: str, kind: SpanKind = SpanKind.INTERNAL, attributes: Attributes | None = None
    ) -> SpanScope:
        """A span around one operation: ``with tracing.operation(name, kind, attrs) as span``.

        Current inside only while it records; an exception leaving the block marks it
        failed (:attr:`failed`) and propagates. Without an SDK (no tracer provider installed)
        no span is started at all.

        Example::

            with tracing.operation("cache.get_json", SpanKind.CLIENT, attrs) as span:
                value = await redis.get(key)
        """
        if _no_sdk():
            return _IDLE
        span = self.tracer.start_span(name, None, kind, attributes)
        if span.is_recording():
            return _Recording(span, self.failed)
        return _IDLE

    def start(
        self,
        name: str,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes | None = None,
        carrier: dict[str, str] | None = None,
    ) -> Span:
        """Start a span without making it current. With a stored ``carrier`` (see
        :func:`capture` / :func:`carrier_of`) the span it describes is the parent and a link;
        a malformed one gives a root span. Make it current with :meth:`current`, or end it
        with :meth:`finish` (an async generator's span must never be made current).

        Example::

            span = tracing.start("queue.process send", SpanKind.CONSUMER, attrs, carrier)
            with tracing.current(span):
                await task()
        """
        if _no_sdk():
            return INVALID_SPAN
        if carrier is None:
            return self.tracer.start_span(name, None, kind, attributes)
        parent = restore(carrier)
        remote = trace.get_current_span(parent).get_span_context()
        links = [Link(remote)] if remote.is_valid else None
        return self.tracer.start_span(name, parent, kind, attributes, links)

    def current(self, span: Span) -> SpanScope:
        """``with tracing.current(span): ...``: ``span`` is current inside and ended on exit,
        failed by an exception leaving the block - if it records. A span that does not
        record is never attached: the block then costs nothing.

        Example::

            with tracing.current(tracing.start("flow.run order")):
                await run()
        """
        if span.is_recording():
            return _Recording(span, self.failed)
        return _IDLE

    def finish(self, span: Span, exc: BaseException | None = None) -> None:
        """End a span started with :meth:`start` and never made current, failed by ``exc``
        if given.

        Example::

            span = tracing.start("storage.list", SpanKind.INTERNAL, attrs)
            try:
                async for item in pages():
                    yield item
            except BaseException as exc:
                tracing.finish(span, exc)
                raise
            tracing.finish(span)
        """
        if span.is_recording():
            if exc is not None:
                self.failed(span, exc)
            span.end()
