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
from redis.asyncio.connection import parse_url

from . import _serde
from ._backend import AbortOutcome, Counts, JobState, WorkerOptions
from ._faults import Deadline
from ._keys import Keys
from ._records import decode_worker
from ._registry import Registry
from ._worker import Claim, QueueWorker

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

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
# Returns false (not claimable) or {payload or false, try, aborted, score, type of the job key}.
# Whatever sits under the job and retry keys, the script does not fail: a job key of another
# type is reported, a retry counter that is not an integer starts again at 1. The retry
# counter lives as long as the payload (at least a week), so a long-deferred retry keeps it.
CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
redis.call('ZADD', KEYS[6], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
local kind = redis.call('TYPE', KEYS[3])['ok']
local payload = false
if kind == 'string' then payload = redis.call('GET', KEYS[3]) end
local try = redis.pcall('INCR', KEYS[4])
if type(try) == 'table' then
  redis.call('SET', KEYS[4], 1)
  try = 1
end
local ttl = redis.call('PTTL', KEYS[3])
if ttl < 604800000 then ttl = 604800000 end
redis.call('PEXPIRE', KEYS[4], ttl)
local aborted = redis.call('ZREM', KEYS[5], ARGV[1])
return {payload, try, aborted, score, kind}
"""

# KEYS: in_progress, queue, job, retry, abort, running, result
# ARGV: id, token, mode, result_record, keep_ms, retry_score_ms, expires_ms
#   mode "done": store the result, forget the job;  "retry": run again at retry_score_ms, and
#   keep the payload (and the retry counter) until expires_ms from now;
#   "requeue": give the job back untouched (worker shutting down), this try does not count.
# Running it twice (a retry after a lost reply) changes nothing more.
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
    redis.call('PEXPIRE', KEYS[3], ARGV[7])
    if redis.call('PTTL', KEYS[4]) < tonumber(ARGV[7]) then
      redis.call('PEXPIRE', KEYS[4], ARGV[7])
    end
  end
elseif mode == 'requeue' then
  local try = tonumber(redis.call('GET', KEYS[4]) or '0')
  if try and try > 0 then redis.call('DECR', KEYS[4]) end
end
return 1
"""

# KEYS: in_progress, running   ARGV: id, token, lease_ms, now_ms
# Renew this worker's lease: 1 renewed, 2 it lapsed (the job may run again elsewhere), 0 another
# worker holds it now. A lapsed lease is not taken back: the job may have finished meanwhile.
RENEW = """
local holder = redis.call('GET', KEYS[1])
if not holder then return 2 end
if holder ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[4]) + tonumber(ARGV[3]), ARGV[1])
return 1
"""

# KEYS: tick   ARGV: worker_id, ttl_ms
# 1 for the one worker that gets to enqueue this cron tick — again if it claimed it before and
# the enqueue did not get through (an outage between the two calls must not lose the tick).
CRON_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
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


def _credentials(url: str, options: dict[str, Any]) -> list[str]:
    parsed = parse_url(url)
    found = [parsed.get("password"), parsed.get("username")]
    found += [options.get("password"), options.get("username")]
    return [str(v) for v in found if v]


class ArqBackend:
    """Jobs stored in Redis with arq's data model under keys derived from the queue name.

    Every operation runs under the queue's ``command_timeout`` and raises
    :class:`QueueUnavailable` (see :class:`~._faults.Deadline`) on any Redis failure.
    """

    def __init__(
        self, redis_url: str, keys: Keys, where: str, timeout: float, **redis_kwargs: Any
    ) -> None:
        self.keys = keys
        self.where = where  # host:port/db, never the password: for error messages
        self.deadline = Deadline(keys.name, where, timeout, _credentials(redis_url, redis_kwargs))
        self.redis: ArqRedis = ArqRedis.from_url(redis_url, **redis_kwargs)
        self.redis.job_serializer = _serde.dumps
        self.redis.job_deserializer = _serde.loads
        self.redis.default_queue_name = keys.queue
        r = cast(Redis, self.redis)
        self.enqueue_script: AsyncScript = r.register_script(ENQUEUE)
        self.abort_script: AsyncScript = r.register_script(ABORT)
        self.claim_script: AsyncScript = r.register_script(CLAIM)
        self.finish_script: AsyncScript = r.register_script(FINISH)
        self.renew_script: AsyncScript = r.register_script(RENEW)
        self.counts_script: AsyncScript = r.register_script(COUNTS)
        self.cron_claim_script: AsyncScript = r.register_script(CRON_CLAIM)

    # -- the public API's operations --------------------------------------------------------

    async def enqueue(self, job_id: str, payload: bytes, score_ms: int, expires_ms: int) -> bool:
        k = self.keys
        created = await self.deadline.run(
            "enqueueing",
            self.enqueue_script(
                keys=[k.job(job_id), k.queue, k.result(job_id), k.retry(job_id), k.abort],
                args=[job_id, payload, score_ms, expires_ms],
            ),
        )
        return bool(created)

    async def state(self, job_id: str) -> JobState:
        k = self.keys

        async def read() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as tr:
                tr.exists(k.job(job_id))
                tr.exists(k.in_progress(job_id))
                tr.zscore(k.queue, job_id)
                tr.get(k.result(job_id))
                return await tr.execute()

        live, running, score, result = await self.deadline.run("reading a job", read())
        return JobState(
            live=bool(live),
            running=bool(running),
            score_ms=None if score is None else int(score),
            result=result,
        )

    async def abort(self, job_id: str, result: bytes, keep_ms: int) -> AbortOutcome:
        k = self.keys
        outcome = await self.deadline.run(
            "aborting a job",
            self.abort_script(
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
            ),
        )
        return {0: "none", 1: "aborted", 2: "requested"}[int(outcome)]  # type: ignore[return-value]

    async def counts(self, stale_ms: int) -> Counts:
        k = self.keys
        due, deferred, running, flat = await self.deadline.run(
            "reading the queue's health",
            self.counts_script(keys=[k.queue, k.running, k.workers], args=[now_ms(), stale_ms]),
        )
        workers = []
        for i in range(0, len(flat), 2):
            record = decode_worker(flat[i + 1])
            if record is not None:
                workers.append(record)
        return Counts(
            queued=max(0, int(due) - int(running)),
            deferred=int(deferred),
            in_progress=int(running),
            workers=workers,
        )

    async def remove_workers(self, worker_ids: list[str]) -> None:
        if worker_ids:
            await self.deadline.run(
                "removing worker records",
                self.redis.hdel(self.keys.workers, *worker_ids),  # type: ignore[arg-type]
            )

    async def results(self, scan: int) -> tuple[list[tuple[str, bytes]], bool]:
        # Results have no index: SCAN their keys (the queue name holds no glob character,
        # see queue_name_problem) and read them in batches, each under the deadline.
        head = self.keys.result("")
        found: list[tuple[str, bytes]] = []
        cursor: int = 0
        read = 0
        while read < scan:
            cursor, keys = await self.deadline.run(
                "listing finished jobs",
                self.redis.scan(cursor, match=head + "*", count=1000),
            )
            if keys:
                read += len(keys)
                values = await self.deadline.run("reading finished jobs", self.redis.mget(keys))
                for key, raw in zip(keys, values, strict=True):
                    if isinstance(raw, bytes):
                        job_id = key.decode(errors="replace")[len(head) :]
                        found.append((job_id, raw))
            if int(cursor) == 0:
                break
        if read > scan or int(cursor) != 0:
            return found[:scan], False
        return found, True

    async def run_worker(self, registry: Registry, options: WorkerOptions) -> None:
        await QueueWorker(self, registry, options).run_until_stopped()

    async def close(self) -> None:
        await self.redis.aclose()

    # -- the worker's operations ------------------------------------------------------------

    async def ping(self) -> None:
        """Check that Redis answers (a worker's first call)."""
        await self.deadline.run("connecting", self.redis.ping())

    async def due(self, limit: int) -> list[bytes]:
        """Up to ``limit`` queue members whose time has come, earliest first."""
        members = await self.deadline.run(
            "polling for jobs",
            self.redis.zrangebyscore(self.keys.queue, "-inf", now_ms(), start=0, num=limit),
        )
        return cast(list[bytes], members)

    async def queued(self) -> int:
        """How many jobs are live (waiting, deferred or running)."""
        return int(await self.deadline.run("counting jobs", self.redis.zcard(self.keys.queue)))

    async def claim(self, job_id: str, lease_ms: int, token: str) -> Claim | None:
        """Take a due job under a lease; ``None`` if it is running elsewhere or not due."""
        k = self.keys
        claim = await self.deadline.run(
            "claiming a job",
            self.claim_script(
                keys=[
                    k.in_progress(job_id),
                    k.queue,
                    k.job(job_id),
                    k.retry(job_id),
                    k.abort,
                    k.running,
                ],
                args=[job_id, now_ms(), lease_ms, token],
            ),
        )
        if not claim:
            return None
        payload, job_try, aborted, _score, kind = claim
        return Claim(
            payload if isinstance(payload, bytes) else None,
            int(job_try),
            bool(aborted),
            kind.decode() if isinstance(kind, bytes) else str(kind),
        )

    async def finish(
        self,
        job_id: str | bytes,
        token: str,
        mode: str,
        record: bytes,
        keep_ms: int,
        retry_at_ms: int = 0,
        expires_ms: int = 0,
    ) -> None:
        """Store a result (``done``), schedule another try (``retry``) or give the job back
        (``requeue``); ``job_id`` may be the raw bytes of a member that is not UTF-8."""
        k = self.keys
        if isinstance(job_id, bytes):
            in_progress, job, retry, result = k.of_member(job_id)
            keys: list[str | bytes] = [in_progress, k.queue, job, retry, k.abort, k.running, result]
        else:
            keys = [
                k.in_progress(job_id),
                k.queue,
                k.job(job_id),
                k.retry(job_id),
                k.abort,
                k.running,
                k.result(job_id),
            ]
        await self.deadline.run(
            "storing a job's outcome",
            self.finish_script(
                keys=keys, args=[job_id, token, mode, record, keep_ms, retry_at_ms, expires_ms]
            ),
        )

    async def renew(self, tokens: dict[str, str], lease_ms: int) -> dict[str, int]:
        """Renew the leases of these running jobs; return those not renewed: job id -> 2 if
        its lease lapsed, 0 if another worker holds it."""
        k = self.keys
        ids = list(tokens)

        async def renew_all() -> list[Any]:
            async with self.redis.pipeline(transaction=False) as pipe:
                now = now_ms()
                for job_id in ids:
                    await self.renew_script(
                        keys=[k.in_progress(job_id), k.running],
                        args=[job_id, tokens[job_id], lease_ms, now],
                        client=pipe,
                    )
                return await pipe.execute()

        outcomes = await self.deadline.run("renewing leases", renew_all())
        return {j: int(o) for j, o in zip(ids, outcomes, strict=True) if int(o) != 1}

    async def abort_requests(self) -> list[bytes]:
        """Abort requests for running jobs; drops those older than a minute (they concern
        jobs no live worker is running)."""

        async def read() -> list[bytes]:
            async with self.redis.pipeline(transaction=True) as tr:
                tr.zrange(self.keys.abort, 0, -1)
                tr.zremrangebyscore(self.keys.abort, "-inf", now_ms() - 60_000)
                requested, _ = await tr.execute()
            return cast(list[bytes], requested)

        return await self.deadline.run("reading abort requests", read())

    async def write_health(self, worker_id: str, record: bytes) -> None:
        await self.deadline.run(
            "writing the worker's health record",
            self.redis.hset(self.keys.workers, worker_id, record),  # type: ignore[arg-type]
        )

    async def claim_cron_tick(self, cron: str, tick_ms: int, worker_id: str, ttl_ms: int) -> bool:
        """``SET NX`` the tick's key: True for the one worker that gets to enqueue it (and
        again for that worker, until it has)."""
        claimed = await self.deadline.run(
            "claiming a cron tick",
            self.cron_claim_script(
                keys=[self.keys.cron_tick(cron, tick_ms)], args=[worker_id, ttl_ms]
            ),
        )
        return bool(claimed)
