# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Shared fixtures of the vault tests: keys and vaults (Postgres: forktex-core-testing), and
the OpenTelemetry SDK recording in memory."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from forktex_core.vault import Vault

# Hypothesis caches go to a temporary directory removed at exit, not to the work tree (they are
# written while test modules are imported, before any fixture could redirect them).
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="forktex-vault-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)


@pytest.fixture
def old_key() -> str:
    return Vault.generate_key()


@pytest.fixture
def new_key() -> str:
    return Vault.generate_key()


@pytest.fixture
def old_vault(old_key: str) -> Vault:
    return Vault.from_key(old_key)


@pytest.fixture
def new_vault(new_key: str) -> Vault:
    return Vault.from_key(new_key)


# -- OpenTelemetry SDK with in-memory export ---------------------------------------------------


class Telemetry:
    """What the SDK recorded during one test: finished spans and counter increments."""

    def __init__(self, exporter: InMemorySpanExporter, reader: InMemoryMetricReader | None) -> None:
        self.exporter = exporter
        self.reader = reader
        exporter.clear()
        self._baseline = self._sums()

    def spans(self, prefix: str = "") -> list[ReadableSpan]:
        """Finished spans whose name starts with ``prefix``, in the order they ended."""
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith(prefix)]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span named ``name``."""
        found = [s for s in self.exporter.get_finished_spans() if s.name == name]
        assert len(found) == 1, (name, [s.name for s in self.exporter.get_finished_spans()])
        return found[0]

    def counts(self, metric: str) -> dict[frozenset[tuple[str, Any]], int]:
        """Increments of counter ``metric`` during this test, by attribute set."""
        if self.reader is None:
            pytest.skip("another MeterProvider was installed first: no in-memory reader")
        now = self._sums()
        return {
            attrs: value - self._baseline.get((metric, attrs), 0)
            for (name, attrs), value in now.items()
            if name == metric and value != self._baseline.get((metric, attrs), 0)
        }

    def dump(self) -> str:
        """Every span and metric recorded, as JSON text (to search for what must not be there)."""
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


def _install_sdk() -> tuple[InMemorySpanExporter, InMemoryMetricReader | None]:
    """The SDK as the process-wide provider, once per process. Another package's tests may
    have installed it first: then its in-memory exporter and reader are reused (they hang on
    the provider as ``forktex_memory``)."""
    provider = trace.get_tracer_provider()
    found = getattr(provider, "forktex_memory", None)
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
    provider.forktex_memory = (exporter, reader)  # type: ignore[attr-defined]
    return exporter, reader


@pytest.fixture
def telemetry() -> Telemetry:
    """The OpenTelemetry SDK installed (process-wide, in memory); what this test records."""
    exporter, reader = _install_sdk()
    return Telemetry(exporter, reader)
