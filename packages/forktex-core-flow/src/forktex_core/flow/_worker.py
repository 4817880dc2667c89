# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The worker: claims runs under a lease, drives them, heartbeats, campaigns for leader.

Idle workers sleep on LISTEN/NOTIFY (new runs, signals, due timers, reaped runs) and poll
only as a fallback every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import os
import random
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg

from . import _claim
from ._db import TRANSIENT, keep_session, log
from ._driver import RunDriver
from ._leader import Leader, LeaderSettings
from ._listener import Listener
from ._schema import SCHEMA
from ._serde import Serializer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ._flow import Flow

REGISTER = f"""
INSERT INTO {SCHEMA}.workers (id, hostname, pid, versions) VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (id) DO UPDATE SET heartbeat = now(), versions = EXCLUDED.versions
"""


class Worker:
    """One worker process's runtime (created by :meth:`Flow.run_worker`)."""

    def __init__(self, flow: Flow, concurrency: int, worker_id: str | None) -> None:
        self.flow = flow
        self.concurrency = concurrency
        self.worker_id = worker_id or (
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self.serializer: Serializer = flow.serializer
        self.lease = flow.lease
        self.pool: asyncpg.Pool = None  # set in run()
        self.lease_pool: asyncpg.Pool = None
        self.leader = Leader(
            flow._dsn,
            self.worker_id,
            LeaderSettings(
                interval=flow.reaper_interval,
                max_recovery_attempts=flow.max_recovery_attempts,
                retention=flow.retention,
                prune_batch=flow.prune_batch,
                lease=flow.lease,
            ),
        )
        self._active: dict[uuid.UUID, tuple[asyncio.Task[None], RunDriver]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._more = True
        self._timers: list[float] = []
        self._keys = sorted(flow._workflow_keys())
        self.started = asyncio.Event()

    # -- Host protocol used by drivers -------------------------------------------------------

    def sa_engine(self) -> AsyncEngine:
        return self.flow._sa_engine()

    def schedule_wake(self, at: float) -> None:
        heapq.heappush(self._timers, at)

    # -- control ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to stop claiming and shut down gracefully."""
        self._stopping.set()
        self._wake.set()

    @property
    def active_runs(self) -> int:
        return len(self._active)

    def _on_work(self, payload: str) -> None:
        if payload.startswith("cancel:"):
            with contextlib.suppress(ValueError):
                entry = self._active.get(uuid.UUID(payload[7:]))
                if entry is not None and entry[1].task is not None:
                    entry[1].task.cancel()
            return
        self._more = True
        self._wake.set()

    def _on_reconnect(self) -> None:
        self._more = True
        self._wake.set()

    # -- main loop --------------------------------------------------------------------------

    async def run(self) -> None:
        flow = self.flow
        await flow._ensure_schema()
        self.pool = await asyncpg.create_pool(
            flow._dsn,
            min_size=1,
            max_size=flow.pool_size or min(self.concurrency + 3, 24),
            reset=keep_session,
        )
        # Claims and heartbeats only move leases: losing one in a Postgres crash is the same
        # as losing the worker (the lease expires and the run is recovered), so they commit
        # without waiting for the WAL flush. Checkpoints and completions stay synchronous.
        self.lease_pool = await asyncpg.create_pool(
            flow._dsn,
            min_size=1,
            max_size=2,
            server_settings={"synchronous_commit": "off"},
            reset=keep_session,
        )
        listener = Listener(flow._dsn, {_claim.WORK_CHANNEL: self._on_work}, self._on_reconnect)
        side: list[asyncio.Task[None]] = []
        try:
            await self.pool.execute(
                REGISTER,
                self.worker_id,
                socket.gethostname(),
                os.getpid(),
                json.dumps(self._keys),
            )
            await listener.start()
            loop = asyncio.get_running_loop()
            side.append(loop.create_task(self._heartbeat()))
            side.append(loop.create_task(self.leader.run(self._stopping)))
            self.started.set()
            await self._claim_loop()
            await self._drain(flow.shutdown_grace)
        finally:
            self._stopping.set()
            await self._drain(0.0)
            for task in side:
                task.cancel()
            for task in side:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.leader.close()
            await listener.close()
            with contextlib.suppress(*TRANSIENT, asyncpg.PostgresError, TimeoutError):
                await asyncio.wait_for(
                    self.pool.execute(
                        f"DELETE FROM {SCHEMA}.workers WHERE id = $1", self.worker_id
                    ),
                    2.0,
                )
            for pool in (self.pool, self.lease_pool):
                if pool is None:
                    continue
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pool.close(), 5.0)
                pool.terminate()

    async def _claim_loop(self) -> None:
        delay = 0.05
        flow = self.flow
        while not self._stopping.is_set():
            free = self.concurrency - len(self._active)
            if free > 0 and (self._more or self._due()):
                self._wake.clear()
                self._more = False
                try:
                    runs = await _claim.claim(
                        self.pool, free, self.worker_id, self._keys, self.lease
                    )
                    delay = 0.05
                except (*TRANSIENT, asyncpg.PostgresError) as exc:
                    log.warning("flow: claim failed (%s); retrying", type(exc).__name__)
                    self._more = True
                    await asyncio.sleep(delay * (0.5 + random.random() / 2))
                    delay = min(delay * 2, 2.0)
                    continue
                for run in runs:
                    self._spawn(run)
                if len(runs) == free:
                    self._more = True
                    continue
            timeout = flow.poll_interval
            if self._timers:
                timeout = max(0.0, min(timeout, self._timers[0] - time.time() + 0.002))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                self._more = True  # fallback poll
            self._wake.clear()

    def _due(self) -> bool:
        now = time.time()
        due = False
        while self._timers and self._timers[0] <= now:
            heapq.heappop(self._timers)
            due = True
        return due

    def _spawn(self, run: _claim.ClaimedRun) -> None:
        wf = self.flow._workflows.get(run.workflow, {}).get(run.version)
        if wf is None:  # filtered by the claim query; defensive
            return
        driver = RunDriver(self, run, wf)
        task = asyncio.get_running_loop().create_task(driver.drive())
        self._active[run.id] = (task, driver)

        def done(_t: asyncio.Task[None], run_id: uuid.UUID = run.id) -> None:
            self._active.pop(run_id, None)
            self._wake.set()

        task.add_done_callback(done)

    async def _heartbeat(self) -> None:
        interval = self.flow.heartbeat
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
            if self._stopping.is_set():
                return
            try:
                await asyncio.wait_for(
                    self.lease_pool.execute(_claim.HEARTBEAT, self.worker_id, self.lease),
                    max(interval, self.lease / 2),
                )
            except (*TRANSIENT, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("flow: heartbeat failed (%s)", type(exc).__name__)

    async def _drain(self, grace: float) -> None:
        """Wait up to ``grace`` s for in-flight runs; cancel and hand back the rest."""
        if not self._active:
            return
        tasks = [t for t, _ in self._active.values()]
        if grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        left = [(rid, t) for rid, (t, _) in list(self._active.items()) if not t.done()]
        if not left:
            return
        for _, task in left:
            task.cancel()
        await asyncio.gather(*(t for _, t in left), return_exceptions=True)
        with contextlib.suppress(*TRANSIENT, asyncpg.PostgresError, TimeoutError):
            await asyncio.wait_for(
                self.pool.execute(_claim.RELEASE, [rid for rid, _ in left], self.worker_id), 5.0
            )
            await self.pool.execute(f"NOTIFY {_claim.WORK_CHANNEL}")

    def describe(self) -> dict[str, Any]:
        return {"id": self.worker_id, "active": len(self._active), "leader": self.leader.is_leader}
