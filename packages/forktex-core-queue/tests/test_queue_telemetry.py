# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Tracing: the span tree of a job (caller → enqueue → each try → the task's own spans), trace
context carried through Redis into a worker (in process and in another process), outcomes and
errors by type only, nothing secret recorded, and nothing at all without an SDK."""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from queue_helpers import background_worker, drain, wait_for

from forktex_core.queue import JobFailed, JobStatus, Queue, Retry, current_job
from forktex_core.testing import RedisService, Telemetry, run_python

#: This directory, importable by the fresh interpreters (they import ``Traced`` from here).
_TESTS = Path(__file__).resolve().parent

test_tracer = trace.get_tracer("forktex_core.queue.tests")


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _ids(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


class Traced:
    """A queue of this test's own with tasks that trace, fail, retry and time out."""

    def __init__(self, url: str, name: str) -> None:
        self.queue = queue = Queue(redis_url=url, name=name, keep_result=600)
        self.inside: list[trace.Span] = []

        @queue.task(name="traced")
        async def traced(secret: str) -> int:
            self.inside.append(trace.get_current_span())
            with test_tracer.start_as_current_span("inside the task"):
                pass
            return len(secret)

        @queue.task(name="boom", retries=1, backoff=0.01)
        async def boom(secret: str) -> None:
            raise ValueError(f"bad value {secret}")

        @queue.task(name="again", retries=2, backoff=0.01)
        async def again() -> int:
            if current_job().try_number == 1:
                raise Retry(defer=0.01)
            return current_job().try_number

        @queue.task(name="slow", timeout=0.2, retries=0)
        async def slow() -> None:
            await asyncio.sleep(30)

        @queue.task(name="sleepy", timeout=60, retries=0)
        async def sleepy() -> None:
            await asyncio.sleep(60)

        self.traced, self.boom, self.again, self.slow = traced, boom, again, slow
        self.sleepy = sleepy


@pytest.fixture
async def traced(forktex_redis: RedisService, queue_name: str) -> Any:
    app = Traced(forktex_redis.url, queue_name)
    try:
        yield app
    finally:
        await app.queue.close()


@pytest.fixture
def messaging(forktex_redis: RedisService, queue_name: str) -> Callable[[str, str], dict[str, Any]]:
    """``messaging(job_id, operation)``: the messaging and server attributes of this test's
    queue."""

    def attributes(job_id: str, operation: str) -> dict[str, Any]:
        return {
            "server.address": forktex_redis.host,
            "server.port": forktex_redis.port,
            "messaging.system": "arq",
            "messaging.operation.type": operation,
            "messaging.operation.name": "enqueue" if operation == "send" else "process",
            "messaging.destination.name": queue_name,
            "messaging.message.id": job_id,
        }

    return attributes


async def test_span_tree_of_a_job_continues_the_callers_trace(
    traced: Traced, forktex_otel: Telemetry, messaging: Callable[[str, str], dict[str, Any]]
) -> None:
    secret = f"s3cret-{secrets.token_hex(4)}"
    with test_tracer.start_as_current_span("request"):
        job = await traced.traced.enqueue(secret, _job_id=f"job-{secrets.token_hex(3)}")
    await drain(traced.queue)
    assert await job.result(timeout=10) == len(secret)

    request = forktex_otel.span("request")
    enqueue = forktex_otel.span("queue.enqueue traced")
    process = forktex_otel.span("queue.process traced")
    inside = forktex_otel.span("inside the task")

    assert enqueue.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert Telemetry.is_child(enqueue, request)
    assert Telemetry.is_child(process, enqueue)  # restored from what the job carried
    assert Telemetry.is_child(inside, process)  # the task ran with its span current
    assert traced.inside[0].get_span_context() == process.context
    assert [(link.context.trace_id, link.context.span_id) for link in process.links] == [
        _ids(enqueue)
    ]
    assert _ids(process)[0] == _ids(request)[0]

    assert _attrs(enqueue) == {
        **messaging(job.job_id, "send"),
        "forktex.queue.task.name": "traced",
        "forktex.queue.job.created": True,
    }
    assert _attrs(process) == {
        **messaging(job.job_id, "process"),
        "forktex.queue.task.name": "traced",
        "code.function.name": f"{__name__}.Traced.__init__.<locals>.traced",
        "forktex.queue.job.attempt": 1,
        "forktex.queue.outcome": "completed",
    }
    assert enqueue.status.status_code is StatusCode.UNSET
    assert process.status.status_code is StatusCode.UNSET
    assert secret not in forktex_otel.dump()


async def test_a_duplicate_enqueue_is_traced_as_not_created(
    traced: Traced, forktex_otel: Telemetry
) -> None:
    job_id = f"dup-{secrets.token_hex(3)}"
    await traced.traced.enqueue("a", _job_id=job_id)
    again = await traced.traced.enqueue("a", _job_id=job_id)
    assert again.created is False
    first, second = forktex_otel.spans("queue.enqueue traced")
    assert _attrs(first)["forktex.queue.job.created"] is True
    assert _attrs(second)["forktex.queue.job.created"] is False


async def test_the_job_carries_only_w3c_trace_context_never_baggage(
    traced: Traced, forktex_otel: Telemetry, raw: redis.asyncio.Redis, queue_name: str
) -> None:
    token = context.attach(baggage.set_baggage("user.email", "ada@example.com"))
    try:
        with test_tracer.start_as_current_span("request"):
            job = await traced.traced.enqueue("x")
    finally:
        context.detach(token)
    stored = json.loads(await raw.get(f"{queue_name}:job:{job.job_id}"))
    enqueue = forktex_otel.span("queue.enqueue traced")
    trace_id, span_id = _ids(enqueue)
    assert list(stored["tc"]) == ["traceparent"]
    assert stored["tc"]["traceparent"].startswith(f"00-{trace_id:032x}-{span_id:016x}-")
    assert "ada@example.com" not in json.dumps(stored)


async def test_a_failing_job_records_each_try_by_error_type_never_its_message(
    traced: Traced, forktex_otel: Telemetry, messaging: Callable[[str, str], dict[str, Any]]
) -> None:
    secret = f"s3cret-{secrets.token_hex(4)}"
    with test_tracer.start_as_current_span("request"):
        job = await traced.boom.enqueue(secret)
    await drain(traced.queue)
    with pytest.raises(JobFailed):
        await job.result(timeout=10)

    enqueue = forktex_otel.span("queue.enqueue boom")
    first, last = forktex_otel.spans("queue.process boom")
    for attempt, span, outcome in ((1, first, "retrying"), (2, last, "failed")):
        assert Telemetry.is_child(span, enqueue)  # every try continues the caller's trace
        assert _attrs(span) == {
            **messaging(job.job_id, "process"),
            "forktex.queue.task.name": "boom",
            "code.function.name": f"{__name__}.Traced.__init__.<locals>.boom",
            "forktex.queue.job.attempt": attempt,
            "forktex.queue.outcome": outcome,
            "error.type": "ValueError",
        }
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description is None
        assert span.events == ()  # no exception event: its message quotes the argument
    assert secret not in forktex_otel.dump()


async def test_a_retry_then_success_and_a_timeout(traced: Traced, forktex_otel: Telemetry) -> None:
    again = await traced.again.enqueue()
    slow = await traced.slow.enqueue()
    await drain(traced.queue)
    assert await again.result(timeout=10) == 2
    with pytest.raises(JobFailed):
        await slow.result(timeout=10)
    first, second = forktex_otel.spans("queue.process again")
    assert _attrs(first)["forktex.queue.outcome"] == "retrying"
    assert _attrs(first)["error.type"] == "forktex_core.queue.Retry"
    assert _attrs(second)["forktex.queue.outcome"] == "completed"
    assert second.status.status_code is StatusCode.UNSET
    timed_out = forktex_otel.span("queue.process slow")
    assert _attrs(timed_out)["error.type"] == "timeout"
    assert _attrs(timed_out)["forktex.queue.outcome"] == "failed"


async def test_an_aborted_try_and_a_requeued_try_are_not_errors(
    traced: Traced, forktex_otel: Telemetry
) -> None:
    async def running(job: Any) -> bool:
        return bool(await job.status() is JobStatus.in_progress)

    aborted = await traced.sleepy.enqueue()
    async with background_worker(traced.queue):
        await wait_for(lambda: running(aborted), 30, "the job to run")
        assert await aborted.abort(timeout=30) is True
        await wait_for(lambda: _ended(forktex_otel, 1), 30, "the aborted try's span")
        requeued = await traced.sleepy.enqueue()
        await wait_for(lambda: running(requeued), 30, "the second job to run")
    # the worker was cancelled while the job ran: it gave the job back
    assert await requeued.status() is JobStatus.queued
    await requeued.abort()
    first, second = forktex_otel.spans("queue.process sleepy")
    assert _attrs(first)["messaging.message.id"] == aborted.job_id
    assert _attrs(first)["forktex.queue.outcome"] == "aborted"
    assert _attrs(second)["messaging.message.id"] == requeued.job_id
    assert _attrs(second)["forktex.queue.outcome"] == "requeued"
    for span in (first, second):
        assert span.status.status_code is StatusCode.UNSET
        assert "error.type" not in _attrs(span)


async def _ended(telemetry: Telemetry, n: int) -> bool:
    return len(telemetry.spans("queue.process")) >= n


async def test_a_job_enqueued_without_a_span_gets_a_root_span_under_its_enqueue(
    traced: Traced, forktex_otel: Telemetry
) -> None:
    job = await traced.traced.enqueue("x")
    await drain(traced.queue)
    await job.result(timeout=10)
    enqueue = forktex_otel.span("queue.enqueue traced")
    assert enqueue.parent is None
    assert Telemetry.is_child(forktex_otel.span("queue.process traced"), enqueue)


@pytest.mark.parametrize(
    "carrier",
    [
        {"traceparent": "not a traceparent"},
        {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"},  # the invalid context
        {"traceparent": 7},
        {"other": "x"},
        "00-abc",
        {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "tracestate": "x" * 9000},
    ],
    ids=["garbage", "zeros", "not-text", "other-field", "not-a-dict", "huge-state"],
)
async def test_a_malformed_stored_context_gives_a_root_span_and_the_job_runs(
    traced: Traced, forktex_otel: Telemetry, queue_name: str, carrier: object
) -> None:
    job_id = f"bad-tc-{secrets.token_hex(3)}"
    payload = json.dumps({"f": "traced", "a": ["x"], "k": {}, "et": 1, "tc": carrier}).encode()
    assert await traced.queue.backend.enqueue(job_id, payload, 0, 60_000)
    await drain(traced.queue)
    assert await traced.queue.job(job_id).result(timeout=10) == 1
    process = forktex_otel.span("queue.process traced")
    assert process.parent is None and process.links == ()
    assert _attrs(process)["forktex.queue.outcome"] == "completed"


async def test_a_job_that_is_not_a_job_gets_an_anonymous_failed_span(
    traced: Traced, forktex_otel: Telemetry
) -> None:
    job_id = f"junk-{secrets.token_hex(3)}"
    payload = json.dumps({"f": "no such task", "a": [], "k": {}, "et": 1}).encode()
    assert await traced.queue.backend.enqueue(job_id, payload, 0, 60_000)
    await drain(traced.queue)
    with pytest.raises(JobFailed):
        await traced.queue.job(job_id).result(timeout=10)
    span = forktex_otel.span("queue.process")  # never a name the payload made up
    assert "forktex.queue.task.name" not in _attrs(span)
    assert _attrs(span)["error.type"] == "forktex_core.queue.InvalidJob"
    assert _attrs(span)["forktex.queue.outcome"] == "failed"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("cache.internal:6380/2", {"server.address": "cache.internal", "server.port": 6380}),
        ("[::1]:6379/0", {"server.address": "::1", "server.port": 6379}),
        ("unix:/run/redis.sock/0", {"server.address": "/run/redis.sock"}),
        ("garbage", {}),
    ],
)
def test_the_server_is_recorded_never_the_url(where: str, expected: dict[str, Any]) -> None:
    from forktex_core.queue import _telemetry

    assert _telemetry.server_attributes(where) == expected


async def test_bad_input_starts_no_span(traced: Traced, forktex_otel: Telemetry) -> None:
    with pytest.raises(TypeError):
        await traced.traced.enqueue({1, 2})
    with pytest.raises(ValueError):
        await traced.traced.enqueue("x", _job_id="has space")
    assert forktex_otel.spans() == []


async def test_a_worker_in_another_process_continues_the_trace(
    traced: Traced, forktex_otel: Telemetry, forktex_redis: RedisService, tmp_path: Path
) -> None:
    with test_tracer.start_as_current_span("request"):
        job = await traced.traced.enqueue("abc")
    enqueue = forktex_otel.span("queue.enqueue traced")
    result = await asyncio.to_thread(
        functools.partial(run_python, cwd=tmp_path, path=[_TESTS], timeout=120),
        f"""
        import asyncio, json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

        from test_queue_telemetry import Traced

        app = Traced({forktex_redis.url!r}, {traced.queue.name!r})
        asyncio.run(app.queue.run_worker(burst=True, poll_interval=0.05, handle_signals=False))
        print(json.dumps([
            {{"name": s.name, "trace": s.context.trace_id,
              "parent": s.parent.span_id if s.parent else None}}
            for s in exporter.get_finished_spans()
        ]))
        """,
    )
    assert await job.result(timeout=10) == 3
    trace_id, span_id = _ids(enqueue)
    process = next(s for s in result if s["name"] == "queue.process traced")
    assert process == {"name": "queue.process traced", "trace": trace_id, "parent": span_id}


#: Enqueue and process jobs in a fresh interpreter (URL and NAME defined before).
_OPERATIONS = """
import asyncio
from opentelemetry import trace
from forktex_core.queue import Queue

queue = Queue(redis_url=URL, name=NAME)
inside = []

@queue.task(name="probe")
async def probe(n):
    inside.append(trace.get_current_span())
    return n

@queue.task(name="fails", retries=0)
async def fails():
    raise ValueError("x")

async def main():
    async with queue:
        job = await probe.enqueue(1)
        failing = await fails.enqueue()
        payload = await queue.backend.redis.get(queue.keys.job(job.job_id))
        await queue.run_worker(burst=True, poll_interval=0.05, handle_signals=False)
        assert await job.result(timeout=10) == 1
        assert (await failing.status()).value == "failed"
        return payload

stored = json.loads(asyncio.run(main()))
"""


def test_without_an_sdk_nothing_is_recorded_or_stored(
    forktex_redis: RedisService, queue_name: str, tmp_path: Path
) -> None:
    result = run_python(
        f"""
        import json
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        URL, NAME = {forktex_redis.url!r}, {queue_name + "-nosdk"!r}
        # An SDK that is installed but not the global provider must see nothing.
        exporter = InMemorySpanExporter()
        TracerProvider().add_span_processor(SimpleSpanProcessor(exporter))
        {textwrap.indent(_OPERATIONS, " " * 8).strip()}
        from forktex_core.queue import _telemetry

        print(json.dumps({{
            "provider": type(trace.get_tracer_provider()).__name__,
            "recording": _telemetry.tracer.start_span("probe").is_recording(),
            "inside": [span is trace.INVALID_SPAN for span in inside],
            "carried": "tc" in stored,
            "exported": len(exporter.get_finished_spans()),
        }}))
        """,
        cwd=tmp_path,
        path=[_TESTS],
    )
    assert result == {
        "provider": "ProxyTracerProvider",
        "recording": False,
        "inside": [True],  # the task ran with nothing made current around it
        "carried": False,
        "exported": 0,
    }


def test_works_without_the_sdk_installed(
    forktex_redis: RedisService, queue_name: str, tmp_path: Path
) -> None:
    result = run_python(
        f"""
        import json
        import sys
        URL, NAME = {forktex_redis.url!r}, {queue_name + "-hidden"!r}
        {textwrap.indent(_OPERATIONS, " " * 8).strip()}
        print(json.dumps({{
            "sdk_loaded": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
            "inside": len(inside),
        }}))
        """,
        cwd=tmp_path,
        path=[_TESTS],
        hide_sdk=True,
    )
    assert result == {"sdk_loaded": [], "inside": 1}
