# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.queue vs raw arq on the same Redis, in one process, interleaved.

- enqueue: N sequential ``task.enqueue()`` vs ``ArqRedis.enqueue_job()`` (arq defaults: pickle).
- end-to-end: enqueue N no-op jobs, then a burst worker runs them all (concurrency 10,
  poll interval 0.5 s on both sides; results kept on both sides).

Reported as time per job, so a ratio <= 1.11 means >= 0.9x arq's throughput.

    uv run python tools/bench/queue_throughput.py --quick
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

import redis.asyncio
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main, redis_url

from forktex_core.queue import Queue, Task

CONCURRENCY = 10
POLL = 0.5


async def noop(ctx: dict[str, object]) -> None:
    return None


class Bench:
    def __init__(self, url: str, n: int) -> None:
        self.url = url
        self.n = n
        self.tag = f"forktex-bench:{secrets.token_hex(4)}"
        self.runs = 0

    def name(self, side: str) -> str:
        self.runs += 1
        return f"{self.tag}:{side}{self.runs}"

    # -- ours -------------------------------------------------------------------------------

    def queue(self, name: str) -> Queue:
        queue = Queue(self.url, name)

        @queue.task(name="noop")
        async def _noop() -> None:
            return None

        return queue

    async def ours_enqueue(self) -> float:
        name = self.name("ours")
        queue = self.queue(name)
        t = Task(queue, queue.registry.tasks["noop"])
        await t.enqueue(_job_id=f"{name}:warm")
        start = time.perf_counter()
        for i in range(self.n):
            await t.enqueue(_job_id=f"{name}:{i}")
        elapsed = time.perf_counter() - start
        await queue.close()
        return elapsed / self.n * 1e6

    async def ours_e2e(self) -> float:
        name = self.name("ours")
        queue = self.queue(name)
        t = Task(queue, queue.registry.tasks["noop"])
        start = time.perf_counter()
        for i in range(self.n):
            await t.enqueue(_job_id=f"{name}:{i}")
        await queue.run_worker(
            burst=True, concurrency=CONCURRENCY, poll_interval=POLL, handle_signals=False
        )
        elapsed = time.perf_counter() - start
        assert (await queue.health()).queued == 0
        await queue.close()
        return elapsed / self.n * 1e6

    # -- raw arq ----------------------------------------------------------------------------

    async def pool(self, name: str) -> ArqRedis:
        return await create_pool(RedisSettings.from_dsn(self.url), default_queue_name=name)

    async def arq_enqueue(self) -> float:
        name = self.name("arq")
        pool = await self.pool(name)
        await pool.enqueue_job("noop", _job_id=f"{name}:warm")
        start = time.perf_counter()
        for i in range(self.n):
            await pool.enqueue_job("noop", _job_id=f"{name}:{i}")
        elapsed = time.perf_counter() - start
        await pool.aclose()
        return elapsed / self.n * 1e6

    async def arq_e2e(self) -> float:
        name = self.name("arq")
        pool = await self.pool(name)
        start = time.perf_counter()
        for i in range(self.n):
            await pool.enqueue_job("noop", _job_id=f"{name}:{i}")
        worker = Worker(
            [noop], queue_name=name, redis_pool=pool, burst=True, max_jobs=CONCURRENCY,
            poll_delay=POLL, handle_signals=False, log_results=False,
        )  # fmt: skip
        await worker.async_run()
        elapsed = time.perf_counter() - start
        assert worker.jobs_complete == self.n, worker.jobs_complete
        await worker.close()  # closes the pool too
        return elapsed / self.n * 1e6

    async def cleanup(self) -> None:
        raw = redis.asyncio.Redis.from_url(self.url)
        try:
            for pattern in (f"{self.tag}*", f"arq:*{self.tag}*"):
                async for key in raw.scan_iter(match=pattern, count=1000):
                    await raw.unlink(key)
        finally:
            await raw.aclose()


async def run(quick: bool) -> list[Row]:
    runs, n = (3, 1000) if quick else (3, 10_000)
    rows: list[Row] = []
    async with redis_url() as url:
        bench = Bench(url, n)
        try:
            ours, base = await interleave(bench.ours_enqueue, bench.arq_enqueue, runs)
            rows.append(Row("queue", f"enqueue {n:,} jobs", ours, "µs/job", "raw arq", base, runs))
            await bench.cleanup()
            ours, base = await interleave(bench.ours_e2e, bench.arq_e2e, runs)
            rows.append(
                Row("queue", f"end-to-end {n:,} no-op jobs", ours, "µs/job", "raw arq", base,
                    runs, f"concurrency {CONCURRENCY}, poll {POLL} s")
            )  # fmt: skip
        finally:
            await bench.cleanup()
    return rows


if __name__ == "__main__":
    main(run)
