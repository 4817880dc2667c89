# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The ``forktex_otel`` fixture: the OpenTelemetry SDK recording spans and counters in memory,
a clean slate per test, clear failures, and a skip (never an import error) without the SDK."""

from __future__ import annotations

import pytest
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind

from forktex_core.testing import Telemetry

tracer = trace.get_tracer("forktex_core.testing.tests")
meter = metrics.get_meter("forktex_core.testing.tests")
jobs = meter.create_counter("forktex.testing.jobs", unit="{job}")


def test_spans_are_recorded_with_their_parents(forktex_otel: Telemetry) -> None:
    with tracer.start_as_current_span("outer") as outer:
        with tracer.start_as_current_span("inner", kind=SpanKind.CLIENT, attributes={"a": 1}):
            pass
    assert outer.is_recording() is False  # ended
    inner, recorded_outer = forktex_otel.spans()
    assert [inner.name, recorded_outer.name] == ["inner", "outer"]  # in the order they ended
    assert forktex_otel.span("inner") is inner
    assert inner.kind is SpanKind.CLIENT and dict(inner.attributes or {}) == {"a": 1}
    assert Telemetry.is_child(inner, recorded_outer)
    assert not Telemetry.is_child(recorded_outer, inner)
    assert [s.name for s in forktex_otel.spans("inn")] == ["inner"]
    assert '"name": "inner"' in forktex_otel.dump()


def test_each_test_starts_with_no_spans(forktex_otel: Telemetry) -> None:
    assert forktex_otel.spans() == []  # the previous test's spans are gone
    with tracer.start_as_current_span("mine"):
        pass
    forktex_otel.clear()
    assert forktex_otel.spans() == []


def test_counter_increments_of_this_test_only(forktex_otel: Telemetry) -> None:
    jobs.add(5, {"result": "before"})
    fresh = Telemetry.install()  # what a later test gets: counts start from here
    jobs.add(1, {"result": "ok"})
    jobs.add(2, {"result": "ok"})
    jobs.add(1, {"result": "failed"})
    assert fresh.counts("forktex.testing.jobs") == {
        frozenset({("result", "ok")}): 3,
        frozenset({("result", "failed")}): 1,
    }
    assert fresh.counts("forktex.testing.other") == {}


def test_installing_twice_keeps_one_provider(forktex_otel: Telemetry) -> None:
    provider = trace.get_tracer_provider()
    again = Telemetry.install()
    assert trace.get_tracer_provider() is provider
    assert again.exporter is forktex_otel.exporter


def test_a_missing_span_names_what_was_recorded(forktex_otel: Telemetry) -> None:
    with tracer.start_as_current_span("present"):
        pass
    with pytest.raises(AssertionError, match="present"):
        forktex_otel.span("absent")
    with tracer.start_as_current_span("present"):
        pass
    with pytest.raises(AssertionError, match="present"):
        forktex_otel.span("present")  # two of them: not "the one"


def test_without_the_sdk_the_fixture_skips_and_says_how_to_install_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        from forktex_core.testing import hide_otel_sdk

        hide_otel_sdk()
        """
    )
    pytester.makepyfile(
        test_traced="""
        def test_traced(forktex_otel):
            raise AssertionError("must not run")

        def test_other():
            import forktex_core.testing  # the plugin itself never needs the SDK
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*forktex-core-testing[[]otel[]]*"])
