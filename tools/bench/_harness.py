# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Shared benchmark harness: interleaved A/B runs, medians, one row shape for every module.

Every benchmark module exposes ``async def run(quick: bool) -> list[Row]`` and ends with
``main(run)`` so it can be run alone::

    uv run python tools/bench/<name>.py --quick

Services: ``FORKTEX_BENCH_POSTGRES_URL`` / ``FORKTEX_BENCH_REDIS_URL`` (falling back to the
``FORKTEX_TEST_*`` URLs, then to the embedded servers of forktex-core-testing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forktex_core.testing import (
    PostgresService,
    create_database,
    drop_database,
    resolve_postgres,
    resolve_redis,
)

HEADER = (
    "| module | workload | ours (median) | baseline | baseline (median) "
    "| ratio ours/baseline | runs |"
)
RULE = "|---|---|---|---|---|---|---|"


@dataclass(frozen=True)
class Row:
    """One benchmark result: our median vs the baseline's median, in the same unit."""

    module: str
    workload: str
    ours: float
    unit: str
    baseline_name: str
    baseline: float
    runs: int
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")

    def markdown(self) -> str:
        workload = self.workload + (f" ({self.note})" if self.note else "")
        return (
            f"| {self.module} | {workload} | {self.ours:.4g} {self.unit} | {self.baseline_name} "
            f"| {self.baseline:.4g} {self.unit} | {self.ratio:.2f}x | {self.runs} |"
        )


async def interleave(
    ours: Callable[[], Awaitable[float]],
    baseline: Callable[[], Awaitable[float]],
    runs: int,
) -> tuple[float, float]:
    """Run ``ours`` and ``baseline`` alternately (A B A B ...), return both medians.

    Each callable performs one measured run and returns its figure (e.g. µs per op).
    """
    a: list[float] = []
    b: list[float] = []
    for i in range(runs):
        # Alternate who goes first so warm-up effects do not favour one side.
        if i % 2 == 0:
            a.append(await ours())
            b.append(await baseline())
        else:
            b.append(await baseline())
            a.append(await ours())
    return statistics.median(a), statistics.median(b)


async def per_op_us(op: Callable[[], Awaitable[object]], n: int) -> float:
    """Microseconds per call of ``op`` over ``n`` sequential calls."""
    start = time.perf_counter()
    for _ in range(n):
        await op()
    return (time.perf_counter() - start) / n * 1e6


@contextlib.contextmanager
def postgres_database() -> Iterator[PostgresService]:
    """A fresh database on the benchmark Postgres, dropped afterwards."""
    url = os.environ.get("FORKTEX_BENCH_POSTGRES_URL") or os.environ.get(
        "FORKTEX_TEST_POSTGRES_URL"
    )
    with tempfile.TemporaryDirectory(prefix="forktex-bench-") as tmp:
        server, stop = resolve_postgres(url, Path(tmp), docker=False)
        try:
            db = create_database(server)
            try:
                yield db
            finally:
                drop_database(server, db.database)
        finally:
            stop()


@contextlib.asynccontextmanager
async def redis_url() -> AsyncIterator[str]:
    """URL of the benchmark Redis (embedded when no URL is configured)."""
    url = os.environ.get("FORKTEX_BENCH_REDIS_URL") or os.environ.get("FORKTEX_TEST_REDIS_URL")
    with tempfile.TemporaryDirectory(prefix="forktex-bench-") as tmp:
        (host, port, db, password, _source), stop = resolve_redis(url, Path(tmp), docker=False)
        try:
            auth = f":{password}@" if password else ""
            yield f"redis://{auth}{host}:{port}/{db}"
        finally:
            stop()


def install_memory_sdk() -> Any:
    """Install the OpenTelemetry SDK with an in-memory span exporter as this interpreter's
    global provider (it cannot be removed: run it in a worker interpreter); the exporter."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


# -- child processes: a benchmark file re-run with --child, talking "@@TAG json" lines ------


def emit(tag: str, value: Any = None) -> None:
    """In a child: report ``value`` under ``tag`` to the parent (one stdout line)."""
    sys.stdout.write(f"@@{tag} {json.dumps(value)}\n")
    sys.stdout.flush()


async def expect_line(word: str) -> None:
    """In a child: wait for the parent to send ``word`` on stdin."""
    line = await asyncio.to_thread(sys.stdin.readline)
    if line.strip() != word:
        raise SystemExit(f"expected {word!r} on stdin, got {line!r}")


class Child:
    """One child process of a benchmark ``script``, talking ``@@TAG json`` lines over stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path, timeout: float) -> None:
        self.proc = proc
        self.log = log
        self.timeout = timeout

    @classmethod
    async def start(
        cls,
        script: Path,
        logdir: Path,
        side: str,
        task: str,
        url: str,
        n: int = 0,
        *,
        timeout: float = 600.0,  # noqa: ASYNC109 - the default bound of expect()
    ) -> Child:
        log = logdir / f"{side}-{task}-{time.monotonic_ns()}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(script),
                "--child",
                side,
                task,
                url,
                str(n),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        return cls(proc, log, timeout)

    async def expect(self, tag: str) -> Any:
        """The value the child reports under ``tag`` (its log tail if it exits first)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(self.timeout):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    await self.proc.wait()
                    tail = self.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(
                        f"child exited ({self.proc.returncode}) before @@{tag}:\n{tail}"
                    )
                if line.startswith(f"@@{tag} "):
                    return json.loads(line.split(" ", 1)[1])

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{word}\n".encode())

    async def finish(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 30)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def machine_line() -> str:
    """One line describing the machine the numbers were measured on."""
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"


def print_rows(rows: list[Row]) -> None:
    print(HEADER)
    print(RULE)
    for row in rows:
        print(row.markdown())


def main(run: Callable[[bool], Awaitable[list[Row]]]) -> None:
    """Command-line entry for one benchmark module."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a smoke run under a minute")
    args = parser.parse_args()
    print_rows(asyncio.run(run(args.quick)))
