# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The shared span helpers, recorded by the SDK in memory (``forktex_otel``) and, for the
no-SDK cost rule, in a fresh interpreter with no provider (and one without the SDK)."""

from __future__ import annotations

import importlib.metadata
import json
import textwrap
from pathlib import Path

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.trace import Span, SpanKind, StatusCode

from forktex_core.telemetry import (
    ERROR_TYPE,
    SCHEMA_URL,
    InvalidArgument,
    Tracing,
    capture,
    carrier_of,
    error_type,
    fail,
    mark_failed,
    qualified_name,
    restore,
    root_cause,
    version_of,
)
from forktex_core.testing import Telemetry, run_python

SECRET = "hunter2-planted-secret"
tracing = Tracing("forktex_core.telemetry.tests", "forktex-core-telemetry")


class _Private(Exception):
    """Defined in this test module: its qualified name keeps the module path."""


def _wrapped() -> RuntimeError:
    """A RuntimeError raised from a ConnectionRefusedError, both quoting the secret."""
    try:
        try:
            raise ConnectionRefusedError(f"refused, password={SECRET}")
        except OSError as exc:
            raise RuntimeError(f"unusable: {SECRET}") from exc
    except RuntimeError as exc:
        return exc


# --- error.type ------------------------------------------------------------------------


def test_qualified_name_leaves_out_private_modules_and_builtins() -> None:
    assert qualified_name(ConnectionRefusedError) == "ConnectionRefusedError"
    assert qualified_name(InvalidArgument) == "forktex_core.telemetry.InvalidArgument"
    assert qualified_name(json.JSONDecodeError) == "json.decoder.JSONDecodeError"
    assert qualified_name(_Private) == f"{_Private.__module__}._Private"


def test_qualified_name_refuses_what_is_not_a_class() -> None:
    with pytest.raises(InvalidArgument, match=r"takes a class, got a ValueError: pass type"):
        qualified_name(ValueError("x"))  # type: ignore[arg-type]


def test_root_cause_follows_the_cause_chain_and_stops_on_a_loop() -> None:
    exc = _wrapped()
    assert type(root_cause(exc)) is ConnectionRefusedError
    plain = KeyError("k")
    assert root_cause(plain) is plain
    a, b = ValueError("a"), TypeError("b")
    a.__cause__, b.__cause__ = b, a  # a loop: ends where it would repeat
    assert root_cause(a) is b


def test_root_cause_refuses_what_is_not_an_exception() -> None:
    with pytest.raises(InvalidArgument, match="takes an exception, got a str"):
        root_cause("boom")  # type: ignore[arg-type]


def test_error_type_is_the_class_of_the_root_cause_never_the_message() -> None:
    assert error_type(_wrapped()) == "ConnectionRefusedError"
    assert error_type(InvalidArgument("x")) == "forktex_core.telemetry.InvalidArgument"


# --- spans -----------------------------------------------------------------------------


def test_operation_records_a_current_span_with_its_attributes(forktex_otel: Telemetry) -> None:
    inner = trace.get_tracer("probe")
    with tracing.operation("test.op target", SpanKind.CLIENT, {"db.system.name": "redis"}) as s:
        assert s.is_recording()
        assert trace.get_current_span() is s
        with inner.start_as_current_span("test.child"):
            pass
    assert trace.get_current_span() is trace.INVALID_SPAN  # detached on exit
    span = forktex_otel.span("test.op target")
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {"db.system.name": "redis"}
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time is not None
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "forktex_core.telemetry.tests"
    assert span.instrumentation_scope.schema_url == SCHEMA_URL
    assert span.instrumentation_scope.version == version_of("forktex-core-telemetry")
    assert Telemetry.is_child(forktex_otel.span("test.child"), span)


def test_an_exception_marks_the_span_failed_without_its_message(forktex_otel: Telemetry) -> None:
    with pytest.raises(RuntimeError), tracing.operation("test.fails"):
        raise _wrapped()
    span = forktex_otel.span("test.fails")
    assert span.kind is SpanKind.INTERNAL
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is None
    assert dict(span.attributes or {}) == {ERROR_TYPE: "ConnectionRefusedError"}
    assert list(span.events) == []
    assert SECRET not in forktex_otel.dump()


def test_a_module_maps_its_own_failures(forktex_otel: Telemetry) -> None:
    def failed(span: Span, exc: BaseException) -> None:
        span.set_attribute("db.response.status_code", "READONLY")
        mark_failed(span, "READONLY" if isinstance(exc, PermissionError) else error_type(exc))

    mine = Tracing("forktex_core.telemetry.tests.mine", "forktex-core-telemetry", failed)
    with pytest.raises(PermissionError), mine.operation("test.mapped", SpanKind.CLIENT):
        raise PermissionError(SECRET)
    span = forktex_otel.span("test.mapped")
    assert dict(span.attributes or {}) == {
        ERROR_TYPE: "READONLY",
        "db.response.status_code": "READONLY",
    }
    assert span.status.status_code is StatusCode.ERROR
    assert SECRET not in forktex_otel.dump()


def test_fail_and_mark_failed_set_status_and_error_type(forktex_otel: Telemetry) -> None:
    first = tracing.start("test.fail")
    fail(first, _wrapped())
    first.end()
    second = tracing.start("test.mark")
    mark_failed(second, "timeout")
    second.end()
    assert dict(forktex_otel.span("test.fail").attributes or {}) == {
        ERROR_TYPE: "ConnectionRefusedError"
    }
    assert dict(forktex_otel.span("test.mark").attributes or {}) == {ERROR_TYPE: "timeout"}
    for name in ("test.fail", "test.mark"):
        assert forktex_otel.span(name).status.status_code is StatusCode.ERROR


def test_start_current_and_finish(forktex_otel: Telemetry) -> None:
    span = tracing.start("test.detached", SpanKind.INTERNAL, {"n": 1})
    assert trace.get_current_span() is trace.INVALID_SPAN  # started, never made current
    tracing.finish(span, ValueError(SECRET))
    with tracing.current(tracing.start("test.current", SpanKind.CONSUMER)) as current:
        assert trace.get_current_span() is current
    ok = tracing.start("test.finished")
    tracing.finish(ok)
    detached = forktex_otel.span("test.detached")
    assert detached.status.status_code is StatusCode.ERROR
    assert dict(detached.attributes or {}) == {"n": 1, ERROR_TYPE: "ValueError"}
    assert forktex_otel.span("test.current").kind is SpanKind.CONSUMER
    assert forktex_otel.span("test.finished").status.status_code is StatusCode.UNSET
    assert SECRET not in forktex_otel.dump()


def test_tracing_refuses_a_bad_scope_or_failure_mapping() -> None:
    with pytest.raises(InvalidArgument, match=r"scope must be .* got ''"):
        Tracing("", "forktex-core-telemetry")
    with pytest.raises(InvalidArgument, match=r"scope must be .* got 'forktex core\.x'"):
        Tracing("forktex core.x", "forktex-core-telemetry")
    with pytest.raises(InvalidArgument, match=r"scope must be .* got a NoneType"):
        Tracing(None, "forktex-core-telemetry")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"failed must be a callable .* got a str"):
        Tracing("forktex_core.x", "forktex-core-telemetry", "fail")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"distribution must be .* got a int"):
        Tracing("forktex_core.x", 3)  # type: ignore[arg-type]


def test_version_of() -> None:
    assert version_of("forktex-core-telemetry") == importlib.metadata.version(
        "forktex-core-telemetry"
    )
    assert version_of("forktex-core-no-such-distribution") is None
    with pytest.raises(InvalidArgument, match="distribution must be a non-empty"):
        version_of("")


# --- trace context across processes ----------------------------------------------------


def test_capture_writes_the_w3c_context_only_never_baggage(forktex_otel: Telemetry) -> None:
    assert capture() == {}  # no current span: nothing to continue
    token = context.attach(baggage.set_baggage("user.email", SECRET))
    try:
        with tracing.operation("test.producer", SpanKind.PRODUCER) as span:
            carrier = capture()
    finally:
        context.detach(token)
    ids = span.get_span_context()
    assert set(carrier) == {"traceparent"}
    flags = f"{ids.trace_flags:02x}"
    assert carrier["traceparent"] == f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{flags}"
    assert SECRET not in json.dumps(carrier)


def test_start_with_a_carrier_continues_the_trace_and_links_to_it(
    forktex_otel: Telemetry,
) -> None:
    with tracing.operation("test.enqueue", SpanKind.PRODUCER):
        carrier = capture()
    span = tracing.start("test.process", SpanKind.CONSUMER, {}, carrier_of(carrier))
    with tracing.current(span):
        pass
    producer, consumer = forktex_otel.span("test.enqueue"), forktex_otel.span("test.process")
    assert Telemetry.is_child(consumer, producer)
    assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
    restored = trace.get_current_span(restore(carrier)).get_span_context()
    assert restored.span_id == producer.context.span_id and restored.is_remote


def test_a_malformed_carrier_gives_a_root_span(forktex_otel: Telemetry) -> None:
    span = tracing.start("test.orphan", SpanKind.CONSUMER, {}, {"traceparent": "00-junk"})
    tracing.finish(span)
    orphan = forktex_otel.span("test.orphan")
    assert orphan.parent is None and list(orphan.links) == []
    assert not trace.get_current_span(restore({"traceparent": "nope"})).get_span_context().is_valid


@pytest.mark.parametrize(
    "value",
    [
        None,
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ["traceparent"],
        {},
        {"tracestate": "a=b"},
        {"traceparent": 1},
        {"traceparent": "x" * 65},
        {"traceparent": "00-a-b-01", "baggage": "user=x"},
        {"traceparent": "00-a-b-01", "tracestate": "x" * 8193},
        {1: "x", "traceparent": "00-a-b-01"},
    ],
)
def test_carrier_of_refuses_anything_but_trace_context(value: object) -> None:
    assert carrier_of(value) is None


def test_carrier_of_accepts_a_stored_carrier() -> None:
    stored = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=value",
    }
    assert carrier_of(stored) == stored
    assert carrier_of({"traceparent": stored["traceparent"]}) == {
        "traceparent": stored["traceparent"]
    }


# --- no SDK ----------------------------------------------------------------------------


_NO_SDK_OPERATIONS = """
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from forktex_core.telemetry import Tracing, capture

tracing = Tracing("forktex_core.telemetry.tests", "forktex-core-telemetry")
# A context the host propagated (e.g. from a request header) with no SDK to record it.
host = NonRecordingSpan(SpanContext(0xABC, 0xDEF, True, TraceFlags(1)))
token = context.attach(trace.set_span_in_context(host))
seen = []
with tracing.operation("test.op", SpanKind.CLIENT, {"a": 1}) as span:
    seen.append((span is trace.INVALID_SPAN, trace.get_current_span() is host))
try:
    with tracing.operation("test.fails"):
        raise ValueError("boom")
except ValueError:
    seen.append("raised")
started = tracing.start("test.start", SpanKind.CONSUMER, {}, {"traceparent": "junk"})
with tracing.current(started):
    seen.append(trace.get_current_span() is host)
tracing.finish(tracing.start("test.detached"), ValueError("x"))
carrier = capture()
context.detach(token)
"""


def test_without_an_sdk_nothing_records_and_nothing_is_made_current(tmp_path: Path) -> None:
    result = run_python(
        f"""
        import json
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        # An SDK that is installed but not the global provider must see nothing.
        exporter = InMemorySpanExporter()
        TracerProvider().add_span_processor(SimpleSpanProcessor(exporter))
        {textwrap.indent(_NO_SDK_OPERATIONS, " " * 8).strip()}
        print(json.dumps({{
            "provider": type(trace.get_tracer_provider()).__name__,
            "seen": seen,
            "carrier": sorted(carrier),
            "exported": len(exporter.get_finished_spans()),
        }}))
        """,
        cwd=tmp_path,
    )
    assert result == {
        "provider": "ProxyTracerProvider",
        "seen": [[True, True], "raised", True],
        "carrier": ["traceparent"],  # the host's context still flows on
        "exported": 0,
    }


def test_works_without_the_sdk_installed(tmp_path: Path) -> None:
    result = run_python(
        f"""
        import json
        import sys
        {textwrap.indent(_NO_SDK_OPERATIONS, " " * 8).strip()}
        print(json.dumps({{
            "sdk_loaded": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
            "seen": seen,
        }}))
        """,
        cwd=tmp_path,
        hide_sdk=True,
    )
    assert result == {"sdk_loaded": [], "seen": [[True, True], "raised", True]}
