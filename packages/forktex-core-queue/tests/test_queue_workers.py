# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Real worker processes: abort, cron across two workers, SIGKILL redelivery, SIGTERM, health."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from queue_helpers import TESTS, Recorded, Workers, background_worker, drain, wait_for

from forktex_core.queue import JobAborted, JobStatus


async def test_abort_a_running_job_leaves_nothing_behind(app, recorded: Recorded, raw) -> None:
    job = await app.slow.enqueue(30, "ab", _job_id="ab1")
    async with background_worker(app.queue):
        await recorded.wait_len("ab:started", 1)
        assert await job.status() is JobStatus.in_progress
        assert await job.abort(timeout=10) is True
        assert await job.status() is JobStatus.aborted
        with pytest.raises(JobAborted):
            await job.result(timeout=1)
        assert await recorded.get("ab:done") == []
        assert await raw.zcard(f"{app.queue.name}:abort") == 0  # the request was consumed
        # the same id runs normally afterwards: no stale abort request kills it
        again = await app.slow.enqueue(0.01, "ab", _job_id="ab1")
        assert again.created
        assert (await again.result(timeout=30))["try"] == 1
    assert len(await recorded.get("ab:done")) == 1


async def test_abort_waiting_finished_and_unknown_jobs(app, recorded: Recorded, raw) -> None:
    waiting = await app.whoami.enqueue(_defer_by=60)
    assert await waiting.abort() is True  # removed at once, no worker needed
    assert await waiting.status() is JobStatus.aborted
    done = await app.add.enqueue(1)
    await drain(app.queue)
    assert await done.abort() is False and await done.result(timeout=1) == 1
    assert await app.queue.job("ghost").abort() is False
    assert await raw.zcard(f"{app.queue.name}:abort") == 0
    assert await recorded.get("whoami") == []


async def test_stale_abort_request_does_not_kill_a_new_job(app, raw) -> None:
    # arq never trims its abort set; here a leftover request for an id must not affect a new job
    await raw.zadd(f"{app.queue.name}:abort", {"reused": 1})
    job = await app.add.enqueue(2, _job_id="reused")
    await drain(app.queue)
    assert await job.result(timeout=5) == 2


async def test_cron_fires_once_per_tick_with_two_workers(
    workers: Workers, recorded: Recorded
) -> None:
    workers.start(cron=True)
    workers.start(cron=True)
    ids = await recorded.wait_len("cron", 4, within=40)
    workers.stop_all()
    ids = await recorded.get("cron")
    counts = collections.Counter(ids)
    assert all(n == 1 for n in counts.values()), counts  # never twice for one tick
    ticks = sorted(int(i.rsplit(":", 1)[1]) for i in ids)
    assert all(t % 1000 == 0 for t in ticks)  # whole seconds, as scheduled


async def test_sigkill_mid_job_runs_again_on_another_worker(
    app, workers: Workers, recorded: Recorded
) -> None:
    job = await app.slow.enqueue(1.0, "kill")
    first = workers.start("--lease", "1")
    pids = await recorded.wait_len("kill:started", 1)
    assert pids == [first.pid]
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = workers.start("--lease", "1")
    result = await job.result(timeout=60)
    assert result["pid"] == second.pid and result["try"] == 2  # at-least-once: it ran again
    assert await recorded.get("kill:started") == [first.pid, second.pid]
    assert await recorded.get("kill:done") == [second.pid]


async def test_sigterm_lets_running_jobs_finish(app, workers: Workers, recorded: Recorded) -> None:
    job = await app.slow.enqueue(1.0, "term")
    proc = workers.start("--grace-period", "20")
    await recorded.wait_len("term:started", 1)
    proc.send_signal(signal.SIGTERM)
    assert await workers.wait_exit(proc) == 0
    assert (await job.result(timeout=1))["pid"] == proc.pid
    assert await recorded.get("term:done") == [proc.pid]


async def test_sigterm_requeues_jobs_past_the_grace_period(
    app, workers: Workers, recorded: Recorded
) -> None:
    job = await app.slow.enqueue(60, "grace-once")
    proc = workers.start("--grace-period", "0.3")
    await recorded.wait_len("grace-once:started", 1)
    proc.send_signal(signal.SIGTERM)
    assert await workers.wait_exit(proc) == 0
    assert await job.status() is JobStatus.queued  # given back, not lost
    second = workers.start()
    result = await job.result(timeout=30)
    assert result["pid"] == second.pid and result["try"] == 1  # the interrupted try not counted


async def test_health_reports_each_worker_and_survives_one_stopping(
    app, workers: Workers, recorded: Recorded
) -> None:
    a = workers.start()
    b = workers.start()

    async def two_alive() -> bool:
        return (await app.queue.health()).alive_workers == 2

    await wait_for(two_alive, 30, "two worker heartbeats")
    job = await app.slow.enqueue(30, "health")
    await recorded.wait_len("health:started", 1)

    async def one_running() -> bool:
        return (await app.queue.health()).in_progress == 1

    await wait_for(one_running, 10, "in_progress == 1")
    health = await app.queue.health()
    assert {w.pid for w in health.workers} == {a.pid, b.pid}
    assert health.last_heartbeat is not None and health.queued == 0
    await job.abort()
    a.send_signal(signal.SIGTERM)
    assert await workers.wait_exit(a) == 0
    health = await app.queue.health()
    assert [w.pid for w in health.workers] == [b.pid]  # a removed only its own record
    assert health.workers[0].alive and health.in_progress == 0

    env = dict(os.environ, PYTHONPATH=str(TESTS), QUEUE_TEST_URL=workers.url,
               QUEUE_TEST_NAME=workers.name)  # fmt: skip
    cmd = [sys.executable, "-m", "forktex_core.queue", "health", "queue_app:make_queue"]
    ok = await asyncio.to_thread(
        subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert '"alive_workers": 1' in ok.stdout
    b.send_signal(signal.SIGTERM)
    assert await workers.wait_exit(b) == 0
    gone = await asyncio.to_thread(
        subprocess.run, [*cmd, "--max-age", "0"], env=env, capture_output=True, timeout=60
    )
    assert gone.returncode == 1


async def test_a_job_blocking_the_event_loop_is_named_in_a_warning(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="forktex_core.queue")
    job = await app.blocks.enqueue(1.5, _job_id="sleepy")
    async with background_worker(app.queue, lease=1):  # half a lease: 0.5 s
        assert await job.result(timeout=30) == "woke"
    warnings = [
        r.getMessage() for r in caplog.records if "blocked the event loop" in r.getMessage()
    ]
    assert len(warnings) == 1, warnings  # one per stall
    assert "job sleepy (task 'blocks')" in warnings[0]
    assert "over half its lease (1 s)" in warnings[0]
    assert "asyncio.to_thread" in warnings[0]


async def test_a_well_behaved_job_raises_no_loop_warning(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="forktex_core.queue")
    job = await app.nap.enqueue(1.5)
    async with background_worker(app.queue, lease=1):
        assert (await job.result(timeout=30))["try"] == 1
    assert "blocked the event loop" not in caplog.text
