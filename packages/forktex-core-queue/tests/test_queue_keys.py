# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Distinct (queue name, job id) pairs never share a Redis key, though queue names and job
ids may both contain ':'."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from queue_helpers import drain

from forktex_core.queue import InvalidArgument, Queue
from forktex_core.queue._keys import Keys, queue_name_problem

URL = "redis://localhost:6379/0"


def test_a_queue_name_that_would_share_keys_is_refused() -> None:
    # queue 'a' with job 'x:queue' writes 'a:job:x:queue', the queue key of 'a:job:x'
    with pytest.raises(InvalidArgument, match="its part 'job' is reserved"):
        Queue(URL, "a:job:x")
    for name in ("a:result", "retry:a", "x:in-progress:y", "cron"):
        with pytest.raises(InvalidArgument, match="is reserved"):
            Queue(URL, name)
    for name in ("a", "app:emails", "jobs", "a:jobs:x", "my-cron", "Job"):
        assert Queue(URL, name).name == name


async def test_the_colliding_pair_keeps_its_jobs_apart(forktex_redis: Any, raw: Any) -> None:
    prefix = forktex_redis.prefix
    a = Queue(forktex_redis.url, f"{prefix}a")

    @a.task(name="add")
    async def add(x: int) -> int:
        return x

    try:
        job = await add.enqueue(7, _job_id="x:queue")
        await drain(a)
        assert await job.result(timeout=30) == 7
        keys = {k.decode() async for k in raw.scan_iter(match=f"{prefix}a:*")}
        assert keys == {f"{prefix}a:result:x:queue"}  # nothing under another queue's keys
    finally:
        await a.close()


_part = st.sampled_from(["a", "job", "queue", "result", "retry", "in-progress", "cron", "x", "1"])
_name = st.lists(_part, min_size=1, max_size=5).map(":".join)
_id = st.lists(_part, min_size=1, max_size=4).map(":".join)


def _keys(name: str, job_id: str) -> set[str]:
    k = Keys(name)
    return {
        k.queue, k.abort, k.running, k.workers, k.job(job_id), k.in_progress(job_id),
        k.result(job_id), k.retry(job_id), k.cron_tick(job_id, 1),
    }  # fmt: skip


@settings(max_examples=2000, database=None, deadline=None)
@given(name1=_name, id1=_id, name2=_name, id2=_id)
def test_distinct_pairs_never_share_a_key(name1: str, id1: str, name2: str, id2: str) -> None:
    if queue_name_problem(name1) or queue_name_problem(name2):
        return
    shared = _keys(name1, id1) & _keys(name2, id2)
    if name1 != name2:
        assert not shared, (name1, id1, name2, id2, shared)
    elif id1 != id2:  # one queue: only its queue-wide keys are common
        k = Keys(name1)
        assert shared == {k.queue, k.abort, k.running, k.workers}
