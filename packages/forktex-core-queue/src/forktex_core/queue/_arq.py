# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The arq implementation of :class:`~._backend.Backend`.

arq's own key names (``arq:job:*``, ``arq:result:*``, one shared ``arq:abort`` set) are global;
this backend keeps arq's data model (a sorted set scored by run time, a job key, an in-progress
lease, a retry counter, a result key) but derives every key from the queue name and does each
state change in one Lua script, which also fixes arq's races (see ``_worker``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import _serde
from ._backend import AbortOutcome, Counts, JobState, Keys, WorkerOptions
from ._errors import QueueUnavailable

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

    from ._task import Registry

# KEYS: job, queue, result, retry, abort   ARGV: id, payload, score_ms, expires_ms
ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
"""

# KEYS: job, in_progress, queue, result, retry, abort, running
# ARGV: id, result_record, keep_ms, now_ms
ABORT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[6], ARGV[4], ARGV[1])
  return 2
end
redis.call('DEL', KEYS[1], KEYS[5])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[3]) end
return 1
"""

# KEYS: in_progress, queue, job, retry, abort, running   ARGV: id, now_ms, lease_ms, token
CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
redis.call('ZADD', KEYS[6], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
local payload = redis.call('GET', KEYS[3])
local try = redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], 604800000)
local aborted = redis.call('ZREM', KEYS[5], ARGV[1])
return {payload, try, aborted, score}
"""

# KEYS: in_progress, queue, job, retry, abort, running, result
# ARGV: id, token, mode, result_record, keep_ms, retry_score_ms
#   mode "done": store the result, forget the job;  "retry": run again at retry_score_ms;
#   "requeue": give the job back untouched (worker shutting down), this try does not count.
FINISH = """
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[6], ARGV[1])
end
local mode = ARGV[3]
if mode == 'done' then
  if tonumber(ARGV[5]) > 0 then redis.call('SET', KEYS[7], ARGV[4], 'PX', ARGV[5]) end
  redis.call('DEL', KEYS[3], KEYS[4])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
elseif mode == 'retry' then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('ZADD', KEYS[2], 'XX', ARGV[6], ARGV[1])
  end
elseif mode == 'requeue' then
  if tonumber(redis.call('GET', KEYS[4]) or '0') > 0 then redis.call('DECR', KEYS[4]) end
end
return 1
"""

# KEYS: queue, running, workers   ARGV: now_ms, stale_ms
COUNTS = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
local due = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
local deferred = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
local running = redis.call('ZCARD', KEYS[2])
return {due, deferred, running, redis.call('HGETALL', KEYS[3])}
"""


def now_ms() -> int:
    return int(time.time() * 1000)


class ArqBackend:
    """Jobs stored in Redis with arq's data model under keys derived from the queue name."""

    def __init__(self, redis_url: str, keys: Keys, where: str, **redis_kwargs: Any) -> None:
        self.keys = keys
        self.where = where  # host:port/db, never the password: for error messages
        self.redis: ArqRedis = ArqRedis.from_url(redis_url, **redis_kwargs)
        self.redis.job_serializer = _serde.dumps
        self.redis.job_deserializer = _serde.loads
        self.redis.default_queue_name = keys.queue
        r = cast(Redis, self.redis)
        self.enqueue_script: AsyncScript = r.register_script(ENQUEUE)
        self.abort_script: AsyncScript = r.register_script(ABORT)
        self.claim_script: AsyncScript = r.register_script(CLAIM)
        self.finish_script: AsyncScript = r.register_script(FINISH)
        self.counts_script: AsyncScript = r.register_script(COUNTS)

    def unavailable(self, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(
            f"queue {self.keys.name!r}: Redis at {self.where} did not answer "
            f"({type(exc).__name__}: {exc}); check that it is running and reachable"
        )

    async def enqueue(self, job_id: str, payload: bytes, score_ms: int, expires_ms: int) -> bool:
        k = self.keys
        try:
            created = await self.enqueue_script(
                keys=[k.job(job_id), k.queue, k.result(job_id), k.retry(job_id), k.abort],
                args=[job_id, payload, score_ms, expires_ms],
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self.unavailable(exc) from None
        return bool(created)

    async def state(self, job_id: str) -> JobState:
        k = self.keys
        try:
            async with self.redis.pipeline(transaction=True) as tr:
                tr.exists(k.job(job_id))
                tr.exists(k.in_progress(job_id))
                tr.zscore(k.queue, job_id)
                tr.get(k.result(job_id))
                live, running, score, result = await tr.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self.unavailable(exc) from None
        return JobState(
            live=bool(live),
            running=bool(running),
            score_ms=None if score is None else int(score),
            result=result,
        )

    async def abort(self, job_id: str, result: bytes, keep_ms: int) -> AbortOutcome:
        k = self.keys
        try:
            outcome = await self.abort_script(
                keys=[
                    k.job(job_id),
                    k.in_progress(job_id),
                    k.queue,
                    k.result(job_id),
                    k.retry(job_id),
                    k.abort,
                    k.running,
                ],
                args=[job_id, result, keep_ms, now_ms()],
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self.unavailable(exc) from None
        return {0: "none", 1: "aborted", 2: "requested"}[int(outcome)]  # type: ignore[return-value]

    async def counts(self, stale_ms: int) -> Counts:
        k = self.keys
        try:
            due, deferred, running, flat = await self.counts_script(
                keys=[k.queue, k.running, k.workers], args=[now_ms(), stale_ms]
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self.unavailable(exc) from None
        workers = [_serde.loads(flat[i + 1]) for i in range(0, len(flat), 2)]
        return Counts(
            queued=max(0, int(due) - int(running)),
            deferred=int(deferred),
            in_progress=int(running),
            workers=workers,
        )

    async def remove_workers(self, worker_ids: list[str]) -> None:
        if worker_ids:
            await self.redis.hdel(self.keys.workers, *worker_ids)  # type: ignore[misc]

    async def run_worker(self, registry: Registry, options: WorkerOptions) -> None:
        from ._worker import QueueWorker

        worker = QueueWorker(self, registry, options)
        try:
            await worker.run_until_stopped()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self.unavailable(exc) from None

    async def close(self) -> None:
        await self.redis.aclose()
