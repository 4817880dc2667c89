# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The jobs page of a real ``forktex_core.queue.Queue`` on Redis: counts, workers, failed
jobs with their tracebacks, a look-up by id, and a queue whose Redis is unusable."""

from __future__ import annotations

import asyncio
import html
import secrets
from collections.abc import Callable
from typing import Any

import httpx
from starlette.requests import Request

from forktex_core.console import flow_console
from forktex_core.flow import Flow
from forktex_core.queue import JobFailed, Queue

USER = {"x-user": "ada"}


def staff(request: Request) -> str | None:
    return request.headers.get("x-user")


async def test_jobs_page_shows_counts_workers_and_failed_tracebacks(
    flow: Flow, forktex_redis: Any, client: Callable[..., httpx.AsyncClient]
) -> None:
    queue = Queue(forktex_redis.url, name=f"{forktex_redis.prefix}q{secrets.token_hex(3)}")

    @queue.task(retries=0)
    async def explode(n: int) -> None:
        raise ValueError(f"exploded with token=never-shown-{n}")

    @queue.task()
    async def fine(n: int) -> int:
        return n

    failing = [await explode.enqueue(n, _job_id=f"bad-{n}") for n in range(3)]
    good = await fine.enqueue(1, _job_id="good-1")
    later = await fine.enqueue(2, _defer_by=3600)
    worker = asyncio.create_task(queue.run_worker(burst=True, handle_signals=False, heartbeat=0.2))
    try:
        for job in failing:
            try:
                await job.result(timeout=20)
            except JobFailed:
                pass
        assert await good.result(timeout=20) == 1
        app = flow_console(flow, staff, queue=queue)
        async with client(app) as http:
            runs = await http.get("/", headers=USER)
            assert ">Jobs<" in runs.text
            page = await http.get("/jobs", headers=USER)
            assert page.status_code == 200
            text = html.unescape(page.text)
            assert f"Queue {queue.name}" in text
            assert 'data-job-count="deferred">1<' in text
            for n in range(3):
                assert f'data-job="bad-{n}"' in text
            assert 'data-job="good-1"' not in text  # only failures are listed
            assert "ValueError: exploded with token=never-shown-0" in text
            assert 'raise ValueError(f"exploded with token=never-shown-{n}")' in text  # traceback
            assert "4 finished jobs kept" in text
            assert 'data-job-count="failed">3<' in text
            assert 'data-job-count="complete">1<' in text
            assert 'data-job-count="aborted">0<' in text

            found = html.unescape(
                (await http.get("/jobs", params={"job": "bad-1"}, headers=USER)).text
            )
            assert "Job <code>bad-1</code> is <strong>failed</strong>" in found
            assert "Traceback (most recent call last)" in found
            done = html.unescape(
                (await http.get("/jobs", params={"job": "good-1"}, headers=USER)).text
            )
            assert "is <strong>complete</strong>" in done
            unknown = await http.get("/jobs", params={"job": "nope"}, headers=USER)
            assert "is <strong>not_found</strong>" in unknown.text
            bad = await http.get("/jobs", params={"job": "has space"}, headers=USER)
            assert "InvalidArgument" in bad.text
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await later.abort()
        await queue.close()


async def test_jobs_page_says_so_when_redis_is_unusable(
    flow: Flow, client: Callable[..., httpx.AsyncClient]
) -> None:
    queue = Queue("redis://127.0.0.1:1/0", name="unreachable", command_timeout=1)
    try:
        async with client(flow_console(flow, staff, queue=queue)) as http:
            page = await http.get("/jobs", headers=USER)
        assert page.status_code == 503
        assert "queue &#x27;unreachable&#x27; is unavailable" in page.text
        assert "127.0.0.1:1/0" in page.text
    finally:
        await queue.close()
