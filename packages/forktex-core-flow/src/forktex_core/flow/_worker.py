# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The worker: claims runs, starts one execution per claimed run, campaigns for leader.

Idle workers sleep on LISTEN/NOTIFY (new runs, signals, due timers, reaped runs) and poll
only as a fallback every ``poll_interval`` seconds. Leases are renewed by a
:class:`LeaseKeeper` thread, for the executions that are running and nothing else; runs
registered while the worker runs are claimed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import os
import random
import socket
import time
import uuid
from typing import Any

import asyncpg

from ._claim import ClaimedRun, EagerSlot
from ._clock import DbClock
from ._db import TRANSIENT, connection_lost, log
from ._driver import RunDriver
from ._errors import FlowUnavailable
from ._heartbeat import KeeperSettings, LeaseKeeper
from ._held import HeldChecks
from ._hooks import HookSet
from ._leader import Leader
from ._listener import Listener
from ._registry import Registry
from ._settings import Settings
from ._store import Store


class Worker:
    """One worker process's runtime (created by :meth:`Flow.run_worker`).

    It is handed what it needs: the store (all persistence), the registry (what it can run,
    and the hooks) and the settings.

    Example::

        worker = Worker(store, registry, settings, concurrency=16)
        task = asyncio.create_task(worker.run())
        worker.stop(); await task
    """

    def __init__(
        self,
        store: Store,
        registry: Registry,
        settings: Settings,
        concurrency: int,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.hooks: HookSet = registry.hooks
        self.concurrency = concurrency
        self.worker_id = worker_id or (
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self.clock = DbClock()
        self.checks = HeldChecks(store)
        self.leader = Leader(store, self.worker_id, settings)
        self._active: dict[uuid.UUID, tuple[asyncio.Task[None], RunDriver]] = {}
        self._background: set[asyncio.Task[None]] = set()  # parents being woken
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._more = True
        # work notifications so far: one that arrives while a run is in flight may be that
        # run's own wake-up (a signal right after it suspended), which the claim skipped
        self._notes = 0
        self._timers: list[float] = []  # wake-up times on the database's clock
        self._keys = registry.keys()
        self._queued = False  # queues exist: claim through admission (claim_queued)
        self._recheck = False  # ask the database whether queues exist (before the next claim)
        self._checked = 0.0  # when it was last asked (monotonic)
        self._queue_active: dict[str, int] = {}  # this worker's running runs per queue
        self._reserved = 0  # slots lent to eager starts still in their call
        self._context = contextvars.copy_context()  # what executions start from (see run)
        self._slots_back = asyncio.Event()  # set when none is lent
        self._keeper: LeaseKeeper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = asyncio.Event()

    # -- Host protocol used by drivers -------------------------------------------------------

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
                if entry is not None:
                    entry[1].stop()
            return
        if payload.startswith("wake:"):
            with contextlib.suppress(ValueError):
                self._spawn_wake(uuid.UUID(payload[5:]))
            return
        if payload == "queues":
            self._queued = True
        self._notes += 1
        self._more = True
        self._wake.set()

    def _spawn_wake(self, run_id: uuid.UUID) -> None:
        """Wake a waiting parent a child's end could not wake (see ``_schema`` migration 9)."""

        async def wake() -> None:
            try:
                await self.store.children.wake(run_id)
            except Exception as exc:  # the parent stays as it is; its own timers still run
                log.warning("flow: waking parent run %s failed: %r", run_id, exc)

        task = asyncio.get_running_loop().create_task(wake())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_reconnect(self) -> None:
        self._recheck = True  # a "queues" notification may have been missed
        self._more = True
        self._wake.set()

    def _stop_runs(self, lost: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """The heartbeat found these runs taken from their executions: stop those."""
        for run_id, execution in lost:
            entry = self._active.get(run_id)
            if entry is not None and entry[1].execution == execution:
                entry[1].stop()

    def _registered(self) -> None:
        """A workflow or graph was registered (in any thread): serve it from now on."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._refresh_keys)

    def _refresh_keys(self) -> None:
        self._keys = self.registry.keys()
        if self._keeper is not None:
            self._keeper.set_versions(self._keys)
        self._more = True
        self._wake.set()

    def describe_steps(self) -> str:
        """What the executions of this worker are running (for the stall warning)."""
        parts = [
            f"run {run_id} step {name!r}"
            for run_id, (_, driver) in list(self._active.items())
            for name in driver.running_steps()
        ]
        return "; ".join(parts) or "workflow code outside any step"

    # -- main loop --------------------------------------------------------------------------

    async def _connect(self, listener: Listener) -> None:
        """Schema, pool, the worker's row, LISTEN; each step is safe to repeat."""
        await self.store.open_worker(self.settings.pool_size or min(self.concurrency + 3, 24))
        self._keys = self.registry.keys()
        sent = time.monotonic()
        db_now = await self.store.register_worker(
            self.worker_id, socket.gethostname(), os.getpid(), self._keys
        )
        self.clock.observe(db_now, sent, time.monotonic())
        await self.store.queues.declare(self.registry.queues())
        await self.store.schedules.declare(self.registry.schedules())
        await listener.start()
        self._queued = await self.store.queues.exist()

    async def _start(self, listener: Listener) -> None:
        """:meth:`_connect`, riding out connections lost meanwhile (up to ``max_outage``);
        a database that cannot be reached at all on the first attempt is reported at once."""
        deadline = time.monotonic() + self.settings.max_outage
        delay = 0.1
        first = True
        while True:
            try:
                await self._connect(listener)
                return
            except Exception as exc:
                if first and isinstance(exc, FlowUnavailable) and exc.connecting:
                    raise
                if not connection_lost(exc) or time.monotonic() + delay > deadline:
                    raise
                first = False
                log.warning("flow: worker start-up lost its connection (%s); retrying", exc)
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, 2.0)

    async def run(self) -> None:
        """Serve until :meth:`stop`: claim, execute, campaign; then hand everything back."""
        settings = self.settings
        self._loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()
        unsubscribe = self.registry.subscribe(self._registered)
        listener = self.store.work_listener(self._on_work, self._on_reconnect)
        side: list[asyncio.Task[None]] = []
        try:
            await self._start(listener)
            self._keeper = LeaseKeeper(
                self.store,
                KeeperSettings(
                    self.worker_id,
                    socket.gethostname(),
                    os.getpid(),
                    settings.lease,
                    settings.heartbeat,
                ),
                self.clock,
                self._loop,
                on_lost=self._stop_runs,
                describe=self.describe_steps,
            )
            self._keeper.set_versions(self._keys)
            self._keeper.start()
            side.append(self._loop.create_task(self.leader.run(self._stopping)))
            self.started.set()
            await self._claim_loop()
            await self._settle_slots()
            await self._drain(settings.shutdown_grace)
        finally:
            unsubscribe()
            self._stopping.set()
            await self._settle_slots()
            await self._drain(0.0)
            if self._keeper is not None:
                try:
                    await asyncio.to_thread(self._keeper.stop)
                except RuntimeError:  # the loop's executor is gone (interpreter exiting)
                    self._keeper.stop()
            side.extend(self._background)  # parents still being woken: stopping drops them
            for task in side:
                task.cancel()
            for task in side:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.leader.close()
            await self.checks.close()
            await listener.close()
            await self.store.close_worker(self.worker_id)

    def _check_outage(self) -> None:
        """Give up (:class:`FlowUnavailable`) once the heartbeat has failed for longer than
        ``max_outage``; shorter outages are ridden out (every part reconnects by itself)."""
        since = None if self._keeper is None else self._keeper.down_since
        limit = self.settings.max_outage
        if since is not None and time.monotonic() - since > limit:
            raise FlowUnavailable(
                f"the worker lost {self.store.target} for more than {limit:g} s (max_outage) "
                "and stops; the runs it held go to other workers once their leases expire"
            )

    async def _claim_loop(self) -> None:
        delay = 0.05
        lease = self.settings.lease
        poll = self.settings.poll_interval
        self._checked = time.monotonic()
        while not self._stopping.is_set():
            self._check_outage()
            free = self.concurrency - len(self._active) - self._reserved
            if free > 0 and (self._more or self._due()):
                self._wake.clear()
                self._more = False
                try:
                    if not self._queued and (
                        self._recheck or time.monotonic() - self._checked > poll
                    ):
                        # a "queues" notification may have been missed: look, at most
                        # once per poll interval
                        self._queued = await self.store.queues.exist()
                        self._checked = time.monotonic()
                    self._recheck = False
                    sent = time.monotonic()
                    if self._queued:
                        runs = await self.store.claim_queued(
                            free,
                            self.worker_id,
                            self._keys,
                            lease,
                            list(self._active),
                            self._queue_active,
                            self._timeouts(),
                        )
                    else:
                        runs = await self.store.claim(
                            free,
                            self.worker_id,
                            self._keys,
                            lease,
                            list(self._active),
                            self._timeouts(),
                        )
                    if runs:
                        self.clock.observe(runs[0].db_now, sent, time.monotonic())
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
            timeout = self.settings.poll_interval
            if self._timers:
                timeout = max(0.0, min(timeout, self._timers[0] - self.clock.now() + 0.002))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                self._more = True  # fallback poll
                self._recheck = True
            self._wake.clear()

    # -- eager starts: a start in this process claims for this worker -----------------------

    def slot(self, workflow: str, version: int) -> EagerSlot | None:
        """Reserve a free slot for a run of ``workflow`` ``version`` being started in this
        process, or None: the worker is not serving (yet, or any more), runs on another
        event loop, has no free slot, or lacks that version.

        Example::

            slot = worker.slot("send.email", 1)
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        free = self.concurrency - len(self._active) - self._reserved
        if (
            loop is not self._loop
            or not self.started.is_set()
            or self._stopping.is_set()
            or free <= 0
            or f"{workflow}:{version}" not in self._keys
        ):
            return None
        self._reserved += 1
        self._slots_back.clear()
        return _Slot(self)

    def _take_eager(self, runs: list[ClaimedRun], sent: float) -> None:
        """An eager start's call ended: drive what it claimed, free its slot."""
        self._reserved -= 1
        if self._reserved == 0:
            self._slots_back.set()
        if runs:
            self.clock.observe(runs[0].db_now, sent, time.monotonic())
        for run in runs:
            # in the worker's context, not the starting caller's: its context variables
            # (a trace, a request's state) are not the run's
            self._context.run(self._spawn, run)
        self._wake.set()  # the slot, had it stayed free, might have claimed meanwhile

    async def _settle_slots(self) -> None:
        """Wait (briefly) for eager starts still in their call, so what they claim is
        drained with the rest."""
        if self._reserved > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slots_back.wait(), 10.0)

    def _timeouts(self) -> list[float | None]:
        """The workflow timeout of each served key (runs started by name lack theirs)."""
        out: list[float | None] = []
        for key in self._keys:
            name, _, version = key.rpartition(":")
            wdef = self.registry.workflow(name, int(version))
            out.append(None if wdef is None else wdef.timeout)
        return out

    def _due(self) -> bool:
        now = self.clock.now()
        due = False
        while self._timers and self._timers[0] <= now:
            heapq.heappop(self._timers)
            due = True
        return due

    def _spawn(self, run: ClaimedRun) -> None:
        assert self._keeper is not None
        keeper = self._keeper
        wf = self.registry.workflow(run.workflow, run.version)
        if wf is None:  # filtered by the claim query: defensive; its lease simply expires
            log.error("flow: claimed run %s of unregistered %s", run.id, run.workflow)
            return
        keeper.hold(run.id, run.execution)
        queue = run.queue
        if queue is not None:
            self._queue_active[queue] = self._queue_active.get(queue, 0) + 1
        driver = RunDriver(self, run, wf)
        task = asyncio.get_running_loop().create_task(driver.drive())
        self._active[run.id] = (task, driver)
        notes = self._notes

        def done(_t: asyncio.Task[None]) -> None:
            # Only now: the lease of an execution is renewed until it has settled its run.
            keeper.release(run.id, run.execution)
            self._active.pop(run.id, None)
            if queue is not None:
                # its slot (and this worker's) may be free: admit the next run
                self._queue_active[queue] -= 1
                self._more = True
            if self._notes != notes:  # claims meanwhile skipped this run: look again
                self._more = True
            self._wake.set()

        task.add_done_callback(done)

    async def _drain(self, grace: float) -> None:
        """Wait up to ``grace`` s for in-flight runs; stop the rest (they hand their runs back)."""
        if not self._active:
            return
        tasks = [t for t, _ in self._active.values()]
        if grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        left = [(t, d) for t, d in list(self._active.values()) if not t.done()]
        for task, driver in left:
            if not driver.settling:  # never interrupt a completion or a hand-back
                task.cancel()
        if left:
            await asyncio.wait([t for t, _ in left], timeout=10.0)

    def describe(self) -> dict[str, Any]:
        return {"id": self.worker_id, "active": len(self._active), "leader": self.leader.is_leader}


class _Slot:
    """A worker slot lent to one eager start (see :class:`~._claim.EagerSlot`)."""

    __slots__ = ("_sent", "_worker")

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._sent = 0.0

    def claim_args(self) -> tuple[str, float, list[str], list[int]]:
        w = self._worker
        self._sent = time.monotonic()
        queues = list(w._queue_active)
        return (w.worker_id, w.settings.lease, queues, [w._queue_active[q] for q in queues])

    def take(self, runs: list[ClaimedRun]) -> None:
        self._worker._take_eager(runs, self._sent)
