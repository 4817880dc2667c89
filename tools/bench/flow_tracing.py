# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What tracing costs forktex_core.flow, per step.

- The tracing calls of one run, per step (no SDK): the ``flow.start`` span and the context
  capture at start, the ``flow.run`` span (start, current, outcome) and the ``flow.step``
  span of each step, as flow makes them, next to the process CPU one no-op step costs end
  to end (runs of ``STEPS`` steps on Postgres, tracing stubbed out): the ratio is the share
  tracing adds to a step (target <= 3%).
- End to end on Postgres: runs of ``STEPS`` no-op steps through an in-process worker;
  process CPU per step, tracing API (no SDK) vs tracing calls replaced by no-ops,
  interleaved. Run-to-run noise on a shared machine is far above the microseconds above.
- The same with the OpenTelemetry SDK and an in-memory span exporter vs API only (no SDK):
  a global SDK cannot be removed once installed, so each side runs in its own interpreter.

    uv run python tools/bench/flow_tracing.py --quick
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import trace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, install_memory_sdk, interleave, main, postgres_database

from forktex_core.flow import Flow, FlowContext, _telemetry

HERE = Path(__file__).resolve()
STEPS = 10
CONCURRENCY = 16
RUN_ID = "0190b5a0-0000-7000-8000-000000000000"


def _flow(url: str) -> Flow:
    flow = Flow(database_url=url)

    @flow.step(name="noop")
    async def noop(ctx: FlowContext, i: int) -> int:
        return i

    @flow.workflow(name="bench.traced", version=1)
    async def traced(ctx: FlowContext) -> int:
        total = 0
        for i in range(STEPS):
            total += await noop(ctx, i)
        return total

    return flow


@contextmanager
def tracing_stubbed() -> Iterator[None]:
    """Flow's tracing calls replaced by no-ops: the code without tracing."""
    tm: Any = _telemetry
    names = ("step", "run_span", "run_ended", "carried", "start_span", "started")
    saved = {name: getattr(tm, name) for name in names}
    tm.step = lambda name, attempt, body: body
    tm.run_span = lambda *args: trace.INVALID_SPAN
    tm.run_ended = lambda *args: None
    tm.carried = lambda metadata: metadata
    tm.start_span = lambda *args: trace.INVALID_SPAN
    tm.started = lambda *args: None
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(tm, name, value)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _tracing_calls_us(n: int) -> float:
    """CPU microseconds per step of the tracing calls of one run execution of ``STEPS``
    steps without an SDK (``n`` executions)."""

    async def body() -> None:
        return None

    start = time.process_time()
    for _ in range(n):
        producer = _telemetry.start_span("bench.traced", 1, None)
        with _telemetry.tracing.current(producer):
            _telemetry.carried(None)
            _telemetry.started(producer, RUN_ID)
        span = _telemetry.run_span("bench.traced", 1, RUN_ID, "{}")
        with _telemetry.tracing.current(span):
            for _ in range(STEPS):
                coro = body()
                step = _telemetry.step("noop", 1, coro)
                if step is not coro:
                    raise AssertionError("an SDK is configured: this row needs none")
                coro.close()
        _telemetry.run_ended(span, _telemetry.COMPLETED, None)
    return (time.process_time() - start) / (n * STEPS) * 1e6


async def _runs_cpu_us(flow: Flow, runs: int) -> float:
    """Process CPU microseconds per step: ``runs`` runs started and awaited."""
    cpu = time.process_time()
    ids = [await flow.start("bench.traced") for _ in range(runs)]
    for run_id in ids:
        assert await flow.result(run_id, timeout=120) == sum(range(STEPS))
    return (time.process_time() - cpu) / (runs * STEPS) * 1e6


async def _worker(mode: str, url: str, runs: int) -> None:
    """One measured end-to-end run in this interpreter: ``sdk`` installs the SDK first."""
    exporter: Any = install_memory_sdk() if mode == "sdk" else None
    flow = _flow(url)
    worker = asyncio.create_task(flow.run_worker(concurrency=CONCURRENCY))
    await flow.wait_worker_started()
    try:
        await _runs_cpu_us(flow, 20)
        cpu = await _runs_cpu_us(flow, runs)
    finally:
        flow.stop()
        await worker
        await flow.close()
    if exporter is not None:
        assert len(exporter.get_finished_spans()) >= (runs + 20) * (STEPS + 2)
    print(json.dumps(cpu))


async def _in_interpreter(mode: str, url: str, runs: int) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE), "--worker", mode, url, str(runs),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker ({mode}) failed: {err.decode()[-2000:]}")
    cpu: float = json.loads(out.decode().strip().splitlines()[-1])
    return cpu


async def run(quick: bool) -> list[Row]:
    runs, n = (5, 100) if quick else (9, 500)
    rows: list[Row] = []
    with postgres_database() as db:
        flow = _flow(db.url)
        worker = asyncio.create_task(flow.run_worker(concurrency=CONCURRENCY))
        await flow.wait_worker_started()
        try:

            def e2e(stub: bool) -> Callable[[], Any]:
                async def one() -> float:
                    with tracing_stubbed() if stub else _nothing():
                        return await _runs_cpu_us(flow, n)

                return one

            await e2e(False)()
            await e2e(True)()
            calls = statistics.median(_tracing_calls_us(20_000) for _ in range(runs))
            stubbed = statistics.median([await e2e(True)() for _ in range(runs)])
            rows.append(Row("flow", f"tracing calls of one run of {STEPS} steps, per step, "
                            "no SDK", calls, "µs CPU/step", f"one no-op step end to end "
                            f"({n} runs), tracing stubbed out", stubbed, runs))  # fmt: skip
            ours, base = await interleave(e2e(False), e2e(True), runs)
            rows.append(Row("flow", f"end-to-end {n} runs of {STEPS} no-op steps, tracing "
                            "API (no SDK)", ours, "µs CPU/step", "tracing calls stubbed out",
                            base, runs, f"concurrency {CONCURRENCY}"))  # fmt: skip
        finally:
            flow.stop()
            await worker
            await flow.close()
        sdk, api = await interleave(
            lambda: _in_interpreter("sdk", db.url, n),
            lambda: _in_interpreter("api", db.url, n),
            runs,
        )
        rows.append(Row("flow", f"end-to-end {n} runs of {STEPS} no-op steps, SDK + "
                        "in-memory export", sdk, "µs CPU/step", "API only (no SDK)", api,
                        runs))  # fmt: skip
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, url, count = sys.argv[2:5]
        asyncio.run(_worker(mode, url, int(count)))
    else:
        main(run)
