# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The OpenTelemetry SDK recording in memory, for tests of code traced through the API.

The SDK is imported only when :meth:`Telemetry.install` runs (the ``forktex_otel`` fixture),
never when the plugin loads: it is the optional extra ``forktex-core-testing[otel]``, and the
modules under test depend on ``opentelemetry-api`` alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

#: Attribute of the global tracer provider holding ``(exporter, reader)`` once installed.
_MEMORY = "forktex_memory"

OTEL_MISSING = (
    "the OpenTelemetry SDK is not installed: pip install 'forktex-core-testing[otel]' "
    "(or opentelemetry-sdk)"
)


class _HiddenSdk(MetaPathFinder):
    """Refuses to find ``opentelemetry.sdk`` and its submodules, as if not installed."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname == "opentelemetry.sdk" or fullname.startswith("opentelemetry.sdk."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def hide_otel_sdk() -> MetaPathFinder:
    """Make the OpenTelemetry SDK unimportable in this process, as if it were not installed:
    for a test (in a subprocess) proving that code traced through the API imports and works
    without it. SDK modules already imported are dropped; remove the returned finder from
    ``sys.meta_path`` to undo the rest.

    Example::

        from forktex_core.testing import hide_otel_sdk

        hide_otel_sdk()
        import forktex_core.cache  # works: it needs opentelemetry-api only
    """
    for name in [
        m for m in sys.modules if m == "opentelemetry.sdk" or m.startswith("opentelemetry.sdk.")
    ]:
        del sys.modules[name]
    finder = _HiddenSdk()
    sys.meta_path.insert(0, finder)
    return finder


def _install() -> tuple[InMemorySpanExporter, InMemoryMetricReader | None]:
    """The SDK as the process-wide provider, once per process; later calls (another test,
    another package's suite in the same run) reuse its in-memory exporter and reader."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    found = getattr(provider, _MEMORY, None)
    if found is not None:
        return found  # type: ignore[no-any-return]
    exporter = InMemorySpanExporter()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader: InMemoryMetricReader | None = None
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    setattr(provider, _MEMORY, (exporter, reader))
    return exporter, reader


class Telemetry:
    """What the OpenTelemetry SDK recorded since this object was made: finished spans (in
    the order they ended) and counter increments. The ``forktex_otel`` fixture gives one per
    test, with the SDK installed process-wide and its in-memory exporter cleared.

    Example::

        async def test_traced(forktex_otel):
            await send_email.enqueue("ada@example.com")
            span = forktex_otel.span("queue.enqueue send_email")
            assert span.attributes["messaging.system"] == "arq"
    """

    def __init__(self, exporter: InMemorySpanExporter, reader: InMemoryMetricReader | None) -> None:
        self.exporter = exporter
        self.reader = reader
        exporter.clear()
        self._baseline = self._sums()

    @classmethod
    def install(cls) -> Telemetry:
        """Install the SDK (once per process) and start recording afresh.

        Raises :class:`ModuleNotFoundError` when the SDK is not installed.

        Example::

            telemetry = Telemetry.install()
            assert telemetry.spans() == []
        """
        exporter, reader = _install()
        return cls(exporter, reader)

    def clear(self) -> None:
        """Forget the spans finished so far (counters keep counting from their baseline).

        Example::

            forktex_otel.clear()
            assert forktex_otel.spans() == []
        """
        self.exporter.clear()

    def spans(self, prefix: str = "") -> list[ReadableSpan]:
        """Finished spans whose name starts with ``prefix``, in the order they ended.

        Example::

            assert [s.name for s in forktex_otel.spans("cache.")] == ["cache.get_json"]
        """
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith(prefix)]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span named ``name`` (an ``AssertionError`` listing the names
        recorded when there is none or more than one).

        Example::

            assert forktex_otel.span("cache.get_json").kind is SpanKind.CLIENT
        """
        found = [s for s in self.exporter.get_finished_spans() if s.name == name]
        assert len(found) == 1, (name, [s.name for s in self.exporter.get_finished_spans()])
        return found[0]

    @staticmethod
    def is_child(child: ReadableSpan, parent: ReadableSpan) -> bool:
        """True when ``child``'s parent is ``parent`` (same trace, parent's span id).

        Example::

            assert Telemetry.is_child(forktex_otel.span("query"), forktex_otel.span("fill"))
        """
        return (
            child.parent is not None
            and parent.context is not None
            and child.context is not None
            and child.parent.span_id == parent.context.span_id
            and child.context.trace_id == parent.context.trace_id
        )

    def counts(self, metric: str) -> dict[frozenset[tuple[str, Any]], int]:
        """Increments of counter ``metric`` since this object was made, by attribute set.

        Skips the test when another ``MeterProvider`` was installed first (no in-memory
        reader to read from).

        Example::

            assert forktex_otel.counts("forktex.cache.lookups") == {
                frozenset({("forktex.cache.result", "hit")}): 1
            }
        """
        if self.reader is None:
            import pytest

            pytest.skip("another MeterProvider was installed first: no in-memory reader")
        now = self._sums()
        return {
            attrs: value - self._baseline.get((metric, attrs), 0)
            for (name, attrs), value in now.items()
            if name == metric and value != self._baseline.get((metric, attrs), 0)
        }

    def dump(self) -> str:
        """Every span and metric recorded, as JSON text: search it for what must not be there.

        Example::

            assert "hunter2" not in forktex_otel.dump()
        """
        parts = [s.to_json() for s in self.exporter.get_finished_spans()]
        if self.reader is not None:
            data = self.reader.get_metrics_data()
            if data is not None:
                parts.append(data.to_json())
        return "\n".join(parts)

    def _sums(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], int]:
        sums: dict[tuple[str, frozenset[tuple[str, Any]]], int] = {}
        data = self.reader.get_metrics_data() if self.reader is not None else None
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in getattr(metric.data, "data_points", ()):
                        key = (metric.name, frozenset((point.attributes or {}).items()))
                        sums[key] = int(point.value)
        return sums
