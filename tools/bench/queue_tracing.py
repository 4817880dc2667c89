# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What tracing costs forktex_core.queue, per job.

- Enqueue, our code alone: ``task.enqueue()`` with an engine that answers at once (so only
  our code runs), with the tracing API calls (no SDK configured: the no-op path a service
  without an SDK runs) vs with them replaced by no-ops, in one process, interleaved.
- The tracing calls of one job alone (no SDK): the enqueue's and the worker's, as the queue
  makes them, next to the process CPU one no-op job costs end to end with tracing stubbed
  out: the ratio is the share tracing adds to a job (target <= 3%).
- End to end on Redis: enqueue N no-op jobs, then a burst worker runs them all; process CPU
  per job, tracing API (no SDK) vs tracing calls replaced by no-ops, interleaved. On a
  shared machine this row's run-to-run noise (+-20 %) is far above the few microseconds
  measured above; it shows there is no hidden cost beyond them.
- The same end to end with the OpenTelemetry SDK and an in-memory span exporter configured
  vs API only (no SDK): the cost of recording two spans a job and carrying the trace
  context. A global SDK cannot be removed once installed, so each side runs in its own
  interpreter, interleaved.

    uv run python tools/bench/queue_tracing.py --quick
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis.asyncio
from opentelemetry import trace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, install_memory_sdk, interleave, main, redis_url

from forktex_core.queue import Queue, _telemetry

HERE = Path(__file__).resolve()
CONCURRENCY = 10
POLL = 0.05


def _queue(url: str, name: str) -> Queue:
    queue = Queue(url, name)

    @queue.task(name="noop")
    async def noop() -> None:
        return None

    return queue


@contextmanager
def tracing_stubbed() -> Iterator[None]:
    """The module's tracing calls replaced by no-ops: the code without tracing."""
    saved = (_telemetry.start, _telemetry.capture, _telemetry.outcome)
    _telemetry.start = lambda *args, **kwargs: trace.INVALID_SPAN  # type: ignore[assignment]
    _telemetry.capture = dict  # type: ignore[assignment]
    _telemetry.outcome = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        _telemetry.start, _telemetry.capture, _telemetry.outcome = saved  # type: ignore[misc]


class _AtOnce:
    """A stand-in engine whose enqueue answers at once: only our code runs."""

    where = "127.0.0.1:6379/0"  # what the span attributes name (never connected to)

    async def enqueue(self, job_id: str, payload: bytes, score_ms: int, expires_ms: int) -> bool:
        return True


async def _enqueue_cpu_us(url: str, n: int, stub: bool) -> float:
    queue = _queue(url, f"forktex-bench:{secrets.token_hex(4)}")
    queue._backend = _AtOnce()  # type: ignore[assignment]
    queue._loop = asyncio.get_running_loop()
    task = queue.registry.tasks["noop"]
    from forktex_core.queue import Task

    noop = Task(queue, task)
    with tracing_stubbed() if stub else _nothing():
        start = time.process_time()
        for _ in range(n):
            await noop.enqueue()
        return (time.process_time() - start) / n * 1e6


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _tracing_calls_us(n: int) -> float:
    """CPU microseconds of the tracing calls one job makes without an SDK: the enqueue's
    (producer span, context capture) and the worker's (consumer span, current, outcome)."""
    from opentelemetry.trace import SpanKind

    producer = _telemetry.producer_attributes("bench", "noop", "127.0.0.1:6379/0")
    consumer = _telemetry.consumer_attributes("bench", "noop", "bench.noop", "127.0.0.1:6379/0")
    start = time.process_time()
    for _ in range(n):
        span = _telemetry.start("queue.enqueue noop", SpanKind.PRODUCER, producer)
        with _telemetry.current(span):
            carrier = _telemetry.capture()
            if span.is_recording() or carrier:
                raise AssertionError("an SDK is configured: this row needs none")
        span = _telemetry.start("queue.process noop", SpanKind.CONSUMER, consumer, None)
        span.is_recording()
        with _telemetry.current(span):
            pass
        _telemetry.outcome(span, _telemetry.COMPLETED)
    return (time.process_time() - start) / n * 1e6


async def _end_to_end(url: str, name: str, n: int) -> tuple[float, float]:
    """Wall and CPU microseconds per job: enqueue ``n`` no-op jobs, run them with a burst
    worker."""
    queue = _queue(url, name)
    noop = queue.registry.tasks["noop"]
    from forktex_core.queue import Task

    task = Task(queue, noop)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await task.enqueue()
    await queue.run_worker(
        burst=True, concurrency=CONCURRENCY, poll_interval=POLL, handle_signals=False
    )
    figures = ((time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6)
    assert (await queue.health()).queued == 0
    await queue.close()
    return figures


async def _worker(mode: str, url: str, name: str, n: int) -> None:
    """One measured end-to-end run in this interpreter: ``sdk`` installs the SDK first."""
    exporter: Any = install_memory_sdk() if mode == "sdk" else None
    await _end_to_end(url, name + ":warm", 200)
    figures = await _end_to_end(url, name, n)
    if exporter is not None:
        assert len(exporter.get_finished_spans()) >= 2 * (n + 200)
    print(json.dumps(figures))


async def _in_interpreter(mode: str, url: str, name: str, n: int) -> list[float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE), "--worker", mode, url, name, str(n),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker ({mode}) failed: {err.decode()[-2000:]}")
    figures: list[float] = json.loads(out.decode().strip().splitlines()[-1])
    return figures


async def _cleanup(url: str, tag: str) -> None:
    raw = redis.asyncio.Redis.from_url(url)
    try:
        async for key in raw.scan_iter(match=f"{tag}*", count=1000):
            await raw.unlink(key)
    finally:
        await raw.aclose()


async def run(quick: bool) -> list[Row]:
    runs, n, enqueues = (5, 500, 10_000) if quick else (9, 3000, 100_000)
    tag = f"forktex-bench:{secrets.token_hex(4)}"
    rows: list[Row] = []
    async with redis_url() as url:
        try:
            # warm both paths once
            await _enqueue_cpu_us(url, 1000, False)
            await _enqueue_cpu_us(url, 1000, True)
            ours, base = await interleave(
                lambda: _enqueue_cpu_us(url, enqueues, False),
                lambda: _enqueue_cpu_us(url, enqueues, True),
                runs,
            )
            rows.append(Row("queue", "enqueue, our code alone, tracing API (no SDK)", ours,
                            "µs CPU/job", "tracing calls stubbed out", base, runs))  # fmt: skip

            counter = iter(range(10**6))
            calls = statistics.median(_tracing_calls_us(100_000) for _ in range(runs))
            stubbed: list[float] = []
            for _ in range(runs):
                with tracing_stubbed():
                    stubbed.append((await _end_to_end(url, f"{tag}:s{next(counter)}", n))[1])
            rows.append(Row("queue", "tracing calls of one job (enqueue + process), no SDK",
                            calls, "µs CPU/job", f"one no-op job end to end ({n:,} jobs), "
                            "tracing stubbed out", statistics.median(stubbed), runs))  # fmt: skip

            def e2e(stub: bool) -> Callable[[], Any]:
                async def one() -> float:
                    name = f"{tag}:e2e{next(counter)}"
                    with tracing_stubbed() if stub else _nothing():
                        _, cpu = await _end_to_end(url, name, n)
                    return cpu

                return one

            await e2e(False)()
            await e2e(True)()
            ours, base = await interleave(e2e(False), e2e(True), runs)
            rows.append(Row("queue", f"end-to-end {n:,} no-op jobs, tracing API (no SDK)", ours,
                            "µs CPU/job", "tracing calls stubbed out", base, runs,
                            f"concurrency {CONCURRENCY}, poll {POLL} s"))  # fmt: skip
            await _cleanup(url, tag)

            sdk: list[list[float]] = []
            api: list[list[float]] = []

            async def with_sdk() -> float:
                sdk.append(await _in_interpreter("sdk", url, f"{tag}:sdk{next(counter)}", n))
                return sdk[-1][0]

            async def api_only() -> float:
                api.append(await _in_interpreter("api", url, f"{tag}:api{next(counter)}", n))
                return api[-1][0]

            await interleave(with_sdk, api_only, runs)
            for i, unit in enumerate(("µs/job", "µs CPU/job")):
                rows.append(Row("queue", f"end-to-end {n:,} no-op jobs, SDK + in-memory export",
                                statistics.median(f[i] for f in sdk), unit,
                                "API only (no SDK)", statistics.median(f[i] for f in api),
                                runs))  # fmt: skip
        finally:
            await _cleanup(url, tag)
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, url, name, count = sys.argv[2:6]
        asyncio.run(_worker(mode, url, name, int(count)))
    else:
        main(run)
