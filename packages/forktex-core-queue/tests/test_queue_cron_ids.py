# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Cron ticks are jobs with ids ``cron:<task>:<tick ms>``; that id space is reserved, so a user
job can never take a tick's id (which would make the tick's enqueue a no-op and silently skip
the tick)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import queue_app
from queue_helpers import background_worker, wait_for

from forktex_core.queue import InvalidArgument, JobStatus


def _next_tick_ms(after_s: float) -> int:
    return (int(time.time() + after_s) + 1) * 1000


@pytest.mark.parametrize(
    "job_id",
    ["cron:every_second:{tick}", "cron:add:{tick}", "cron:", "cron:anything", "cron:x:y:z"],
)
async def test_user_job_ids_in_the_cron_space_are_refused(app: Any, job_id: str) -> None:
    with pytest.raises(InvalidArgument, match="reserved for cron ticks"):
        await app.add.enqueue(1, _job_id=job_id.format(tick=_next_tick_ms(60)))
    assert (await app.queue.health()).queued + (await app.queue.health()).deferred == 0


async def test_ids_that_only_look_similar_are_allowed(app: Any) -> None:
    for job_id in ("CRON:x:1", "cronjob:1", "my-cron:x:1", "x:cron:1", "cron"):
        job = await app.add.enqueue(1, _job_id=job_id)
        assert job.created and await job.status() is JobStatus.queued


async def test_the_tick_a_user_tried_to_take_still_runs(
    forktex_redis: Any, queue_name: str, recorded: Any
) -> None:
    app = queue_app.build_app(forktex_redis.url, queue_name, cron=True)
    try:
        tick = _next_tick_ms(2)
        tick_id = f"cron:every_second:{tick}"
        with pytest.raises(InvalidArgument, match="reserved"):
            await app.add.enqueue(1, _job_id=tick_id)
        assert await app.queue.job(tick_id).status() is JobStatus.not_found  # handles still work

        async def tick_ran() -> bool:
            return tick_id in await recorded.get("cron")

        async with background_worker(app.queue):
            await wait_for(tick_ran, within=30, what=f"the cron job {tick_id}")
    finally:
        await app.queue.close()
