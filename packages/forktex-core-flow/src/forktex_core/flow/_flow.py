# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The :class:`Flow` facade: each method is a short call into the parts.

The parts: :class:`Settings` (checked once), :class:`Registry` (workflows, graphs, actions,
fingerprints, hooks), :class:`Store` (all persistence) and, while one runs, the
:class:`Worker` (handed the store, the registry and the settings). Registration methods
are in :mod:`._flow_registration`, the calls about runs in :mod:`._flow_runs`, schedules in
:mod:`._flow_schedules`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import timedelta

from ._defs import positive_int, storable_text
from ._errors import FlowError, InvalidArgument, ResultTimeout
from ._flow_composition import CompositionCalls
from ._flow_registration import Registration
from ._flow_runs import RunCalls
from ._flow_schedules import ScheduleDeclarations
from ._flow_views import ViewCalls
from ._hooks import FlowHooks
from ._registry import Registry
from ._serde import Serializer
from ._settings import DEFAULT_RETENTION, Settings
from ._store import Store
from ._unavailable import DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_OUTAGE
from ._worker import Worker


class Flow(Registration, RunCalls, ViewCalls, CompositionCalls, ScheduleDeclarations):
    """Durable workflows on one Postgres database.

    Create one per process (at import time is fine: nothing connects until first use),
    register steps and workflows with its decorators, start runs from anywhere, and run
    workers with :meth:`run_worker`. All tables live in the ``forktex_flow`` schema, created
    on first use.

    Settings (seconds unless noted): ``lease`` (how long a run stays with a silent worker),
    ``heartbeat`` (lease renewal period), ``reaper_interval`` (leader housekeeping period),
    ``poll_interval`` (fallback poll when no NOTIFY arrives), ``max_recovery_attempts``
    (lost-worker recoveries before a run is parked as ``dead``), ``retention`` (finished runs
    older than this are pruned, ``prune_batch`` rows at a time), ``shutdown_grace`` (how long
    a stopping worker lets in-flight runs finish), ``pool_size`` (worker pool connections),
    ``serializer`` (JSON hooks for custom types).

    Nothing waits forever on the database: ``connect_timeout`` [5 s] bounds opening a
    connection, ``command_timeout`` [30 s; ``None``: no limit] the wait for the reply to one
    statement, on every connection flow opens; past them, and on a refused or lost
    connection or an unknown host, calls raise :class:`FlowUnavailable` naming the server.
    A worker rides out a database outage (reconnecting with backoff) for up to
    ``max_outage`` [300 s], then ``run_worker`` raises :class:`FlowUnavailable`.

    Example::

        flow = Flow(database_url="postgresql+asyncpg://user:pass@host/db")

        @flow.step
        async def provision_vps(ctx: FlowContext, manifest: dict) -> str:
            return await hetzner.create_server(...)

        @flow.workflow(name="cloud.deploy", version=1)
        async def deploy(ctx: FlowContext, manifest: dict) -> dict:
            return {"server_id": await provision_vps(ctx, manifest)}

        run_id = await flow.start("cloud.deploy", input={"name": "web"})
        print(await flow.result(run_id, timeout=60))
    """

    def __init__(
        self,
        database_url: str,
        *,
        serializer: Serializer | None = None,
        lease: float = 5.0,
        heartbeat: float = 1.0,
        reaper_interval: float = 1.0,
        poll_interval: float = 1.0,
        max_recovery_attempts: int = 5,
        retention: float | timedelta = DEFAULT_RETENTION,
        prune_batch: int = 500,
        shutdown_grace: float = 10.0,
        pool_size: int | None = None,
        worker_id: str | None = None,
        hooks: Iterable[FlowHooks] = (),
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
        max_outage: float = DEFAULT_MAX_OUTAGE,
    ) -> None:
        self._settings = Settings(
            database_url,
            serializer=serializer,
            lease=lease,
            heartbeat=heartbeat,
            reaper_interval=reaper_interval,
            poll_interval=poll_interval,
            max_recovery_attempts=max_recovery_attempts,
            retention=retention,
            prune_batch=prune_batch,
            shutdown_grace=shutdown_grace,
            pool_size=pool_size,
            worker_id=worker_id,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            max_outage=max_outage,
        )
        self._registry = Registry(hooks)
        self._store = Store(self._settings)
        self._worker: Worker | None = None
        self._worker_done: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"Flow({self._store.masked_url!r}, workflows={self._registry.keys()})"

    # -- settings (read-only) ---------------------------------------------------------------

    @property
    def serializer(self) -> Serializer:
        """The JSON serializer of inputs, results, signals and errors."""
        return self._settings.serializer

    @property
    def lease(self) -> float:
        """Seconds a run stays with a worker that stopped renewing it."""
        return self._settings.lease

    @property
    def heartbeat(self) -> float:
        """Seconds between lease renewals."""
        return self._settings.heartbeat

    @property
    def reaper_interval(self) -> float:
        """Seconds between the leader's housekeeping rounds."""
        return self._settings.reaper_interval

    @property
    def poll_interval(self) -> float:
        """Seconds between fallback polls when no NOTIFY arrives."""
        return self._settings.poll_interval

    @property
    def max_recovery_attempts(self) -> int:
        """Lost-worker recoveries before a run is parked as dead."""
        return self._settings.max_recovery_attempts

    @property
    def retention(self) -> float:
        """Seconds finished runs are kept before pruning."""
        return self._settings.retention

    @property
    def prune_batch(self) -> int:
        """Finished runs deleted per pruning statement."""
        return self._settings.prune_batch

    @property
    def shutdown_grace(self) -> float:
        """Seconds a stopping worker lets in-flight runs finish."""
        return self._settings.shutdown_grace

    @property
    def pool_size(self) -> int | None:
        """Connections of the worker's pool (None: from the concurrency)."""
        return self._settings.pool_size

    @property
    def connect_timeout(self) -> float:
        """Seconds to open a database connection before :class:`FlowUnavailable`."""
        return self._settings.connect_timeout

    @property
    def command_timeout(self) -> float | None:
        """Seconds to wait for one statement's reply before :class:`FlowUnavailable`."""
        return self._settings.command_timeout

    @property
    def max_outage(self) -> float:
        """Seconds a worker rides out an unreachable database before it gives up."""
        return self._settings.max_outage

    @property
    def _dsn(self) -> str:
        # the libpq DSN, for tests and tools that open a connection of their own
        return self._store.dsn

    async def connect(self) -> None:
        """Connect and create/migrate the schema now (otherwise done on first use).

        Example::

            await flow.connect()
        """
        await self._store.connect()

    # -- workers ----------------------------------------------------------------------------

    async def run_worker(self, concurrency: int = 16, *, worker_id: str | None = None) -> None:
        """Run a worker in this process until :meth:`stop` (or :meth:`close`) is called.

        Claims up to ``concurrency`` runs at a time, each driven by one execution whose lease
        a heartbeat thread renews (so a step blocking the event loop never loses its run),
        wakes on NOTIFY, and campaigns for the leader role (reaping runs of dead workers,
        firing timers, pruning). Workflows registered later are served at once. On stop it
        lets in-flight runs finish for ``shutdown_grace`` seconds, then hands the rest back.

        Example::

            worker = asyncio.create_task(flow.run_worker(concurrency=32))
            ...
            flow.stop(); await worker
        """
        self._store.check_open()
        conc = positive_int(concurrency, "concurrency")
        if conc > 10_000:
            raise InvalidArgument(f"concurrency must be at most 10000, got {concurrency!r}")
        if worker_id is not None:
            storable_text(worker_id, "worker_id")
        if self._worker is not None:
            raise FlowError("a worker is already running on this Flow; stop it first")
        worker = Worker(
            self._store,
            self._registry,
            self._settings,
            conc,
            worker_id or self._settings.worker_id,
        )
        self._worker = worker
        self._worker_done = asyncio.Event()
        try:
            await worker.run()
        finally:
            self._worker = None
            self._worker_done.set()

    def stop(self) -> None:
        """Ask the running worker (if any) to stop gracefully; ``run_worker`` then returns.

        Example::

            signal.signal(signal.SIGTERM, lambda *_: flow.stop())
        """
        if self._worker is not None:
            self._worker.stop()

    async def wait_worker_started(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until this Flow's worker (started elsewhere) is connected and claiming.

        Example::

            asyncio.create_task(flow.run_worker()); await flow.wait_worker_started()
        """
        deadline = time.monotonic() + timeout
        while self._worker is None:
            if time.monotonic() > deadline:
                raise ResultTimeout("no worker started on this Flow")
            await asyncio.sleep(0.01)
        await asyncio.wait_for(self._worker.started.wait(), max(0.0, deadline - time.monotonic()))

    @property
    def worker_id(self) -> str | None:
        """The id of the worker running on this Flow, if one is running."""
        return None if self._worker is None else self._worker.worker_id

    @property
    def is_leader(self) -> bool:
        """True while this Flow's worker holds the leader role.

        Example::

            if flow.is_leader: print("housekeeping here")
        """
        return self._worker is not None and self._worker.leader.is_leader

    async def leader(self) -> str | None:
        """The worker id of the current leader across all processes (None if nobody leads).

        Example::

            print(await flow.leader())   # 'host-a:4242:9f3c1e'
        """
        return await self._store.leader()

    async def close(self) -> None:
        """Stop the worker (gracefully), close every connection. Idempotent.

        Example::

            await flow.close()
        """
        if self._worker is not None and self._worker_done is not None:
            self._worker.stop()
            await self._worker_done.wait()
        await self._store.close()

    async def __aenter__(self) -> Flow:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def with_database(flow: Flow, database_url: str) -> Flow:
    """A new Flow on ``database_url`` sharing ``flow``'s registry (workflows, graphs, actions,
    hooks): what the CLI runs for ``--app`` together with ``--database-url``.

    Example::

        other = with_database(load_flow("app:flow"), "postgresql://user:pass@host/db")
    """
    other = Flow(database_url)
    other._registry = flow._registry
    return other


def database_label(flow: Flow) -> str:
    """``flow``'s database URL with its password masked (for messages).

    Example::

        database_label(flow)  # 'postgresql://app:***@db/app'
    """
    return flow._store.masked_url
