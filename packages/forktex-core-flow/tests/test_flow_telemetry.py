# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Spans of runs and steps, recorded by the SDK in memory (``forktex_otel``): the tree
caller → run → steps, retries as events, failures by class, and trace continuity across a
worker SIGKILL and replay with no duplicate step spans."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from forktex_core.flow import Flow, FlowContext, RunFailed, UnknownQueue
from forktex_core.testing import Telemetry, run_python

SECRET = "hunter2-planted-secret"
APP = Path(__file__).with_name("flow_otel_app.py")
test_tracer = trace.get_tracer("forktex_core.flow.tests")


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _producer(telemetry: Telemetry, name: str, caller: trace.Span) -> ReadableSpan:
    """The recorded ``PRODUCER`` span ``name``, checked to be ``caller``'s child."""
    span = telemetry.span(name)
    assert span.kind is SpanKind.PRODUCER
    assert span.parent is not None
    assert span.parent.span_id == caller.get_span_context().span_id
    return span


def _sent(operation: str, run_id: object) -> dict[str, Any]:
    """The messaging attributes of a start or fork that created (or returned) ``run_id``."""
    return {
        "messaging.system": "forktex_flow",
        "messaging.operation.type": "send",
        "messaging.operation.name": operation,
        "messaging.message.id": str(run_id),
        "forktex.flow.run.id": str(run_id),
    }


async def test_a_run_and_its_steps_continue_the_callers_trace(
    make_flow: Callable[..., Flow], h: Any, forktex_otel: Telemetry
) -> None:
    flow = make_flow()

    @flow.step(name="reserve")
    async def reserve(ctx: FlowContext, order: dict[str, Any]) -> str:
        return f"reserved {order['card']}"

    @flow.step(name="ship")
    async def ship(ctx: FlowContext) -> int:
        return 7

    @flow.workflow(name="otel.order", version=3)
    async def order(ctx: FlowContext, order: dict[str, Any]) -> int:
        await reserve(ctx, order)
        return await ship(ctx)

    async with h.running(flow):
        with test_tracer.start_as_current_span("request") as request:
            run_id = await flow.start("otel.order", input={"card": SECRET})
        assert await flow.result(run_id, timeout=20) == 7
        await h.wait_until(lambda: forktex_otel.spans("flow.run"))

    # caller -> flow.start (producer) -> flow.run (consumer) -> steps, in one trace
    start = _producer(forktex_otel, "flow.start otel.order", request)
    assert _attrs(start) == {
        **_sent("start", run_id),
        "forktex.flow.workflow.name": "otel.order",
        "forktex.flow.workflow.version": 3,
    }
    run = forktex_otel.span("flow.run otel.order")
    assert run.kind is SpanKind.CONSUMER
    assert Telemetry.is_child(run, start)
    assert [link.context.span_id for link in run.links] == [start.context.span_id]
    assert run.context.trace_id == request.get_span_context().trace_id
    assert _attrs(run) == {
        "forktex.flow.workflow.name": "otel.order",
        "forktex.flow.workflow.version": 3,
        "forktex.flow.run.id": str(run_id),
        "forktex.flow.outcome": "completed",
    }
    assert run.status.status_code is StatusCode.UNSET
    steps = forktex_otel.spans("flow.step")
    assert [s.name for s in steps] == ["flow.step reserve", "flow.step ship"]
    for step, name in zip(steps, ("reserve", "ship"), strict=True):
        assert Telemetry.is_child(step, run)
        assert _attrs(step) == {
            "forktex.flow.step.name": name,
            "forktex.flow.step.attempt": 1,
            "forktex.flow.outcome": "completed",
        }
    # The start span's context is stored with the run, W3C fields only; inputs are never
    # recorded.
    stored = (await flow.get_run(run_id)).metadata["forktex.trace"]
    ids = start.context
    assert set(stored) == {"traceparent"}
    assert stored["traceparent"].startswith(f"00-{ids.trace_id:032x}-{ids.span_id:016x}-")
    assert SECRET not in forktex_otel.dump()


async def test_retries_are_events_and_a_failure_is_an_error_by_class(
    make_flow: Callable[..., Flow], h: Any, forktex_otel: Telemetry
) -> None:
    flow = make_flow()
    tries = {"flaky": 0}

    @flow.step(name="flaky", max_attempts=3, backoff=0.01)
    async def flaky(ctx: FlowContext) -> str:
        tries["flaky"] += 1
        if tries["flaky"] < 3:
            raise ConnectionResetError(f"reset {SECRET}")
        return "ok"

    @flow.step(name="broken")
    async def broken(ctx: FlowContext) -> None:
        raise ValueError(f"bad card {SECRET}")

    @flow.workflow(name="otel.failing", version=1)
    async def failing(ctx: FlowContext) -> None:
        await flaky(ctx)
        await broken(ctx)

    async with h.running(flow):
        run_id = await flow.start("otel.failing")
        with pytest.raises(RunFailed):
            await flow.result(run_id, timeout=20)
        await h.wait_until(lambda: forktex_otel.spans("flow.run"))

    retried = forktex_otel.span("flow.step flaky")
    assert retried.status.status_code is StatusCode.UNSET  # it survived its failures
    assert _attrs(retried)["forktex.flow.step.attempt"] == 3
    assert _attrs(retried)["forktex.flow.outcome"] == "completed"
    assert [(e.name, dict(e.attributes or {})) for e in retried.events] == [
        (
            "forktex.flow.step.retried",
            {"error.type": "ConnectionResetError", "forktex.flow.step.attempt": attempt},
        )
        for attempt in (1, 2)
    ]
    failed = forktex_otel.span("flow.step broken")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is None
    assert _attrs(failed)["error.type"] == "ValueError"
    assert _attrs(failed)["forktex.flow.outcome"] == "failed"
    run = forktex_otel.span("flow.run otel.failing")
    # no caller's span at start: the start span is the root, the run its child
    start = forktex_otel.span("flow.start otel.failing")
    assert start.parent is None and Telemetry.is_child(run, start)
    assert start.status.status_code is StatusCode.UNSET  # the start itself went fine
    assert run.status.status_code is StatusCode.ERROR
    assert _attrs(run)["error.type"] == "ValueError"
    assert _attrs(run)["forktex.flow.outcome"] == "failed"
    stored = (await flow.get_run(run_id)).metadata["forktex.trace"]["traceparent"]
    assert stored.startswith(f"00-{start.context.trace_id:032x}-{start.context.span_id:016x}-")
    assert SECRET not in forktex_otel.dump()


async def test_a_start_is_a_producer_span_even_without_a_callers_span(
    make_flow: Callable[..., Flow], h: Any, forktex_otel: Telemetry
) -> None:
    flow = make_flow()
    flow.queue("otel.mail", concurrency=2)

    @flow.workflow(name="otel.mail", version=1)
    async def mail(ctx: FlowContext, to: str) -> str:
        return "sent"

    async with h.running(flow):
        first = await flow.start("otel.mail", SECRET, queue="otel.mail", idempotency_key="k1")
        again = await flow.start("otel.mail", SECRET, queue="otel.mail", idempotency_key="k1")
        assert again == first
        assert await flow.result(first, timeout=20) == "sent"
        await h.wait_until(lambda: forktex_otel.spans("flow.run"))
    starts = forktex_otel.spans("flow.start")
    assert [s.name for s in starts] == ["flow.start otel.mail"] * 2
    for start in starts:  # roots (no caller's span), the queue as destination
        assert start.parent is None and start.kind is SpanKind.PRODUCER
        assert _attrs(start)["messaging.destination.name"] == "otel.mail"
        assert _attrs(start)["messaging.message.id"] == str(first)
    # the run continues the first start (the idempotent second one stored nothing)
    (run,) = forktex_otel.spans("flow.run")
    assert Telemetry.is_child(run, starts[0])
    # refused starts record no span: bad input raises before it
    with pytest.raises(UnknownQueue):
        await flow.start("otel.mail", "x", queue="otel.nowhere")
    assert len(forktex_otel.spans("flow.start")) == 2
    assert SECRET not in forktex_otel.dump()


async def test_a_malformed_stored_context_gives_a_root_span(
    make_flow: Callable[..., Flow], h: Any, forktex_otel: Telemetry, pg: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="otel.forged", version=1)
    async def forged(ctx: FlowContext) -> int:
        return 1

    # a start stores its own context over whatever the metadata named; forge it afterwards
    run_id = await flow.start("otel.forged", metadata={"forktex.trace": "from the caller"})
    assert (await flow.get_run(run_id)).metadata["forktex.trace"] != "from the caller"
    forged_meta = {"forktex.trace": {"traceparent": "00-junk", "baggage": SECRET}}
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(
            "UPDATE forktex_flow.runs SET metadata = $2::jsonb WHERE id = $1",
            run_id,
            json.dumps(forged_meta),
        )
    finally:
        await conn.close()
    async with h.running(flow):
        assert await flow.result(run_id, timeout=20) == 1
        await h.wait_until(lambda: forktex_otel.spans("flow.run"))
    run = forktex_otel.span("flow.run otel.forged")
    assert run.parent is None and list(run.links) == []
    assert _attrs(run)["forktex.flow.outcome"] == "completed"


async def test_a_fork_continues_the_forkers_trace_and_continue_as_new_is_an_outcome(
    make_flow: Callable[..., Flow], h: Any, forktex_otel: Telemetry
) -> None:
    flow = make_flow()

    @flow.workflow(name="otel.counter", version=1)
    async def counter(ctx: FlowContext, n: int) -> int:
        if n < 1:
            ctx.continue_as_new(n + 1)
        return n

    async with h.running(flow):
        with test_tracer.start_as_current_span("request") as request:
            original = await flow.start("otel.counter", input=0)
        assert await flow.result(original, timeout=20) == 1
        await h.wait_until(lambda: len(forktex_otel.spans("flow.run")) == 2)
        with test_tracer.start_as_current_span("operator") as operator:
            fork = await flow.fork(original, from_step=0)
        assert await flow.result(fork, timeout=20) == 1
        await h.wait_until(lambda: len(forktex_otel.spans("flow.run")) == 3)
    first, second, forked = forktex_otel.spans("flow.run")
    # the first generation's execution ended by continuing as new; the next one completed
    assert _attrs(first)["forktex.flow.outcome"] == "continued"
    assert first.status.status_code is StatusCode.UNSET
    assert _attrs(second)["forktex.flow.outcome"] == "completed"
    start = _producer(forktex_otel, "flow.start otel.counter", request)
    for run in (first, second):  # both generations continue the one start
        assert Telemetry.is_child(run, start)
    # the fork has a producer span of its own, the operator's child, and the forked run
    # is in the operator's trace, not the original's
    producer = _producer(forktex_otel, "flow.fork", operator)
    assert _attrs(producer) == _sent("fork", fork)
    assert _attrs(forked)["forktex.flow.run.id"] == str(fork)
    assert Telemetry.is_child(forked, producer)
    assert forked.context.trace_id == operator.get_span_context().trace_id
    assert forked.context.trace_id != request.get_span_context().trace_id


def _load_app() -> Any:
    """``flow_otel_app`` as a module, without the worker set-up (no env read here)."""
    spec = importlib.util.spec_from_file_location("flow_otel_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spawn(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A worker process running ``flow_otel_app.py`` (its own SDK, spans to a file)."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "forktex_core.flow._cli", "worker", f"{APP}:flow"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
async def test_trace_continues_across_a_worker_sigkill_without_duplicate_step_spans(
    make_flow: Callable[..., Flow], pg: Any, h: Any, forktex_otel: Telemetry, tmp_path: Path
) -> None:
    assert "FLOW_TEST_URL" not in os.environ
    flow = make_flow()
    _load_app().define(flow, tmp_path)
    env = {**os.environ, "FLOW_TEST_URL": pg.url, "FLOW_TEST_DIR": str(tmp_path)}
    worker = _spawn(env, tmp_path / "worker.log")
    try:
        with test_tracer.start_as_current_span("request") as request:
            run_id = await flow.start("otel.crash")
        await h.wait_until(lambda: list(tmp_path.glob("holding-*")), timeout=30)
        os.kill(worker.pid, signal.SIGKILL)  # inside step "second", after "first" completed
        await asyncio.to_thread(worker.wait, 10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    killed = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    (tmp_path / "release").touch()
    async with h.running(flow):  # this process replays the run after the lease expires
        assert await flow.result(run_id, timeout=30) == 3
        await h.wait_until(lambda: forktex_otel.spans("flow.run"))

    ids = request.get_span_context()
    # The killed worker ended only the span of "first" (its run span never ended).
    assert [s["name"] for s in killed] == ["flow.step first"]
    assert killed[0]["trace"] == ids.trace_id
    # The replay: a new run span, a child of the caller's span again; "first" came from the
    # log (no span), "second" ran again (a span).
    start = forktex_otel.span("flow.start otel.crash")
    assert start.parent is not None and start.parent.span_id == ids.span_id
    run = forktex_otel.span("flow.run otel.crash")
    assert Telemetry.is_child(run, start)
    assert run.context.trace_id == ids.trace_id
    assert [s.name for s in forktex_otel.spans("flow.step")] == ["flow.step second"]
    assert Telemetry.is_child(forktex_otel.span("flow.step second"), run)
    assert _attrs(run)["forktex.flow.outcome"] == "completed"


#: A run with one step in a fresh interpreter (URL defined before), started under a context
#: the host propagated with no SDK to record it; ``seen`` holds what the step saw as current.
_NO_SDK_RUN = """
import asyncio
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from forktex_core.flow import Flow, FlowContext

host = NonRecordingSpan(SpanContext(0xABC, 0xDEF, True, TraceFlags(1)))
seen = []

async def main():
    flow = Flow(database_url=URL, lease=1.5, heartbeat=0.3, poll_interval=0.5,
                shutdown_grace=0.5)

    @flow.step(name="look")
    async def look(ctx: FlowContext) -> int:
        seen.append(trace.get_current_span() is trace.INVALID_SPAN)
        return 1

    @flow.workflow(name="otel.nosdk", version=1)
    async def nosdk(ctx: FlowContext) -> int:
        return await look(ctx)

    worker = asyncio.create_task(flow.run_worker())
    await flow.wait_worker_started()
    token = context.attach(trace.set_span_in_context(host))
    run_id = await flow.start("otel.nosdk")
    context.detach(token)
    result = await flow.result(run_id, timeout=20)
    stored = (await flow.get_run(run_id)).metadata["forktex.trace"]["traceparent"]
    flow.stop()
    await worker
    await flow.close()
    return result, stored

result, stored = asyncio.run(main())
"""


def test_without_an_sdk_nothing_records_and_the_hosts_context_is_still_carried(
    pg: Any, tmp_path: Path
) -> None:
    result = run_python(
        f"""
        import json
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        # An SDK that is installed but not the global provider must see nothing.
        exporter = InMemorySpanExporter()
        TracerProvider().add_span_processor(SimpleSpanProcessor(exporter))
        URL = {pg.url!r}
        """,
        _NO_SDK_RUN,
        """
        print(json.dumps({"result": result, "stored": stored, "seen": seen,
                          "exported": len(exporter.get_finished_spans())}))
        """,
        cwd=tmp_path,
    )
    assert result == {
        "result": 1,
        # the host's context is carried into the run even though nothing records it
        "stored": f"00-{0xABC:032x}-{0xDEF:016x}-01",
        "seen": [True],  # the step ran with nothing of ours made current
        "exported": 0,
    }


def test_works_without_the_sdk_installed(pg: Any, tmp_path: Path) -> None:
    result = run_python(
        f"URL = {pg.url!r}",
        _NO_SDK_RUN,
        """
        import json, sys
        sdk = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk"))
        print(json.dumps({"result": result, "sdk": sdk}))
        """,
        cwd=tmp_path,
        hide_sdk=True,
    )
    assert result == {"result": 1, "sdk": []}
