# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The :class:`Flow` object: registration, starting runs, signals, control, workers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, overload

import asyncpg

from . import _claim, _control, _signals
from ._context import IN_STEP, current_context
from ._db import asyncpg_dsn, keep_session, log, mask_url, retry_transient, sqlalchemy_url
from ._defs import (
    StepDef,
    WorkflowDef,
    check_async,
    isolation_level_value,
    positional_count,
    positive_number,
    run_id_value,
    storable_text,
)
from ._errors import (
    FlowClosed,
    FlowError,
    GraphValidationError,
    InvalidArgument,
    ResultTimeout,
    RunCancelled,
    RunFailed,
    RunNotFound,
    UnknownWorkflow,
)
from ._graph import Graph, Handler, build_body
from ._hashing import Fingerprint, fingerprint
from ._hooks import FlowHooks, HookSet, StartRequest
from ._leader import leader_of
from ._listener import Listener
from ._records import FINISHED_VALUES, RunInfo, RunStatus, StepInfo
from ._registry import Registry
from ._replay import make_step_wrapper
from ._schema import SCHEMA, ensure_schema
from ._serde import JsonSerializer, Serializer, encode
from ._worker import Worker

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])

START = f"""
WITH ins AS (
    INSERT INTO {SCHEMA}.runs
        (id, workflow, version, status, input, idempotency_key, wake_at, timeout, metadata)
    VALUES ($1, $2, $3, 'pending', $4::json, $5, now(), $6, $7::jsonb)
    ON CONFLICT (workflow, idempotency_key) DO NOTHING
    RETURNING id
)
SELECT id, pg_notify('{_claim.WORK_CHANNEL}', '') FROM ins
"""

RUN_COLUMNS = (
    "id, workflow, version, status, input::text AS input, output::text AS output, "
    "error::text AS error, idempotency_key, worker, lease_until, recovery_attempts, wake_at, "
    "deadline, metadata::text AS metadata, created_at, updated_at, started_at, finished_at, "
    # runnable, but no live worker has this (workflow, version) registered
    f"(status = 'pending' OR (status = 'waiting' AND wake_at <= now())) AND NOT EXISTS ("
    f"SELECT 1 FROM {SCHEMA}.workers w WHERE w.versions ? ({SCHEMA}.runs.workflow || ':' || "
    f"{SCHEMA}.runs.version) AND w.heartbeat > now() - make_interval(secs => {{stale}})"
    ") AS waiting_for_worker"
)

DEFAULT_RETENTION = 7 * 24 * 3600.0
READ_RETRY = 5.0  # reads retry on a dropped connection for this long


def _seconds(value: object, name: str, *, allow_none: bool = False) -> float | None:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return positive_number(value, name, allow_none=allow_none)


def _req_seconds(value: object, name: str) -> float:
    result = _seconds(value, name)
    assert result is not None
    return result


def _positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class Flow:
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
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._url = database_url
        if serializer is None:
            serializer = JsonSerializer()
        elif not isinstance(serializer, Serializer):
            raise InvalidArgument(
                f"serializer must have dumps(value) -> str and loads(text), got {serializer!r}"
            )
        self.serializer: Serializer = serializer
        self.lease = _req_seconds(lease, "lease")
        self.heartbeat = _req_seconds(heartbeat, "heartbeat")
        if self.heartbeat * 2 > self.lease:
            raise InvalidArgument(
                f"heartbeat ({heartbeat}) must be at most half the lease ({lease}) so a live "
                "worker never loses its runs"
            )
        self.reaper_interval = _req_seconds(reaper_interval, "reaper_interval")
        self.poll_interval = _req_seconds(poll_interval, "poll_interval")
        self.max_recovery_attempts = _positive_int(
            max_recovery_attempts, "max_recovery_attempts", 0
        )
        self.retention = _req_seconds(retention, "retention")
        self.prune_batch = _positive_int(prune_batch, "prune_batch")
        self.shutdown_grace = float(
            0.0 if shutdown_grace == 0 else _req_seconds(shutdown_grace, "shutdown_grace")
        )
        self.pool_size = None if pool_size is None else _positive_int(pool_size, "pool_size")
        if worker_id is not None:
            storable_text(worker_id, "worker_id")
        self._worker_id = worker_id
        self._registry = Registry()
        self._hooks = HookSet(hooks)
        # A worker whose heartbeat is older than this is presumed dead.
        self._run_columns = RUN_COLUMNS.replace("{stale}", repr(float(self.lease * 2)))
        self._pool: asyncpg.Pool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._pool_lock: asyncio.Lock | None = None
        self._schema_ready = False
        self._engine: AsyncEngine | None = None
        self._engine_loop: asyncio.AbstractEventLoop | None = None
        self._done: Listener | None = None
        self._done_lock: asyncio.Lock | None = None
        self._done_loop: asyncio.AbstractEventLoop | None = None
        self._done_ready = False
        self._waiters: dict[uuid.UUID, list[asyncio.Future[None]]] = {}
        self._worker: Worker | None = None
        self._worker_done: asyncio.Event | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"Flow({mask_url(self._url)!r}, workflows={self._registry.keys()})"

    # -- registration -----------------------------------------------------------------------

    @overload
    def step(self, fn: F, /) -> F: ...

    @overload
    def step(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        max_attempts: int = 1,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        timeout: float | None = None,
        transactional: bool = False,
        isolation_level: str | None = None,
    ) -> Callable[[F], F]: ...

    def step(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        max_attempts: int = 1,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        timeout: float | None = None,
        transactional: bool = False,
        isolation_level: str | None = None,
    ) -> F | Callable[[F], F]:
        """Make an ``async def`` a checkpointed step.

        Inside a workflow the first execution runs it and stores its JSON result; replay
        returns the stored result without running it. A failure is retried up to
        ``max_attempts`` times (only exceptions in ``retry_on``), waiting ``backoff * 2**n``
        seconds (capped at ``max_backoff``, with jitter); the attempt count is durable. A
        final failure is recorded and raised as :class:`StepFailed` (also on replay).
        ``timeout`` bounds each attempt. Outside a workflow it is a plain coroutine.
        With ``transactional=True`` it behaves like :meth:`transaction` (and takes its
        ``isolation_level``).

        Example::

            @flow.step(max_attempts=5, backoff=0.5, retry_on=(ConnectionError,), timeout=30)
            async def provision_vps(ctx: FlowContext, manifest: dict) -> str:
                return await hetzner.create_server(manifest["name"])
        """
        policy = self._step_policy(max_attempts, backoff, max_backoff, retry_on, timeout)
        if name is not None:
            storable_text(name, "step name")
        level = isolation_level_value(isolation_level)
        if level is not None and not transactional:
            raise InvalidArgument("isolation_level applies to transactional steps only")

        def decorate(func: F) -> F:
            check_async(func, "@flow.step" if not transactional else "@flow.transaction")
            sdef = StepDef(
                name or func.__qualname__,
                func,
                *policy,
                transactional=bool(transactional),
                isolation_level=level,
            )
            return make_step_wrapper(sdef, self._plain_tx)  # type: ignore[return-value]

        if fn is not None:
            return decorate(fn)
        return decorate

    @staticmethod
    def _step_policy(
        max_attempts: object,
        backoff: object,
        max_backoff: object,
        retry_on: object,
        timeout: object,
    ) -> tuple[int, float, float, tuple[type[BaseException], ...], float | None]:
        attempts = _positive_int(max_attempts, "max_attempts")
        back = _req_seconds(backoff, "backoff")
        cap = _req_seconds(max_backoff, "max_backoff")
        kinds = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        if not kinds or not all(isinstance(k, type) and issubclass(k, Exception) for k in kinds):
            raise InvalidArgument(
                f"retry_on must be an Exception subclass or a tuple of them, got {retry_on!r}"
            )
        limit = _seconds(timeout, "timeout", allow_none=True)
        return attempts, back, cap, kinds, limit

    def transaction(
        self,
        fn: Callable[Concatenate[Any, AsyncSession, P], Coroutine[Any, Any, R]] | None = None,
        /,
        *,
        name: str | None = None,
        max_attempts: int = 1,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        timeout: float | None = None,
        isolation_level: str | None = None,
    ) -> Any:
        """A step whose database writes commit in the same transaction as its checkpoint.

        The function receives an ``AsyncSession`` (SQLAlchemy, same database) as its second
        argument; callers pass everything else. Its effects happen exactly once, even if
        the worker crashes right after it: either the writes and the checkpoint are both
        committed (replay returns the result) or neither is (it runs again).
        ``isolation_level`` is ``"read committed"`` (the default), ``"repeatable read"`` or
        ``"serializable"``; a serialisation failure or a deadlock runs the step again in a
        new transaction (a bounded number of times) without counting as a failed attempt.

        Example::

            @flow.transaction
            async def record_order(ctx: FlowContext, session: AsyncSession, order: dict) -> int:
                row = Order(**order)
                session.add(row)
                await session.flush()
                return row.id

            order_id = await record_order(ctx, {"sku": "a1"})
        """
        deco = self.step(
            name=name,
            max_attempts=max_attempts,
            backoff=backoff,
            max_backoff=max_backoff,
            retry_on=retry_on,
            timeout=timeout,
            transactional=True,
            isolation_level=isolation_level,
        )
        if fn is not None:
            return deco(fn)
        return deco

    @overload
    def workflow(self, fn: F, /) -> F: ...

    @overload
    def workflow(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        version: int = 1,
        timeout: float | None = None,
    ) -> Callable[[F], F]: ...

    def workflow(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        version: int = 1,
        timeout: float | None = None,
    ) -> F | Callable[[F], F]:
        """Register an ``async def (ctx, input)`` as a durable workflow.

        ``name`` and ``version`` identify it (runs remember the version they started with;
        bump it when the sequence of steps changes). ``timeout`` (seconds) fails a run that
        takes longer, counted from when a worker first picks the run up (time spent queued
        does not count; ``retry`` starts a fresh window). Returns the function unchanged.
        Workflows may be registered at any time, also while a worker runs.

        Example::

            @flow.workflow(name="cloud.deploy", version=1, timeout=3600)
            async def deploy(ctx: FlowContext, manifest: dict) -> dict:
                server_id = await provision_vps(ctx, manifest)
                return {"server_id": server_id}
        """
        if name is not None and ":" in storable_text(name, "workflow name"):
            raise InvalidArgument(f"workflow name must not contain ':', got {name!r}")
        ver = _positive_int(version, "version")
        limit = _seconds(timeout, "timeout", allow_none=True)

        def decorate(func: F) -> F:
            check_async(func, "@flow.workflow")
            count = positional_count(func)
            if count < 1:
                raise InvalidArgument(
                    f"workflow {func.__qualname__} must accept the FlowContext as its first "
                    "argument: async def wf(ctx, input)"
                )
            wname = name or f"{func.__module__}.{func.__qualname__}"
            wdef = WorkflowDef(wname, ver, func, limit, count >= 2)
            self._registry.add_workflow(wdef, fingerprint(func))
            func.__forktex_workflow__ = wdef  # type: ignore[attr-defined]
            return func

        if fn is not None:
            return decorate(fn)
        return decorate

    def action(self, name: str) -> Callable[[F], F]:
        """Register an ``async def (ctx, payload)`` as a named graph action.

        Graphs built from data (:meth:`Graph.from_dict`) reference handlers by these names,
        which is what lets end users create and edit graphs through an API without code.
        An action runs like any state handler: call steps inside it, or stack it on
        ``@flow.step`` to checkpoint the whole action as one step.

        Example::

            @flow.action("send_verification_email")
            async def send_verification_email(ctx: FlowContext, payload: dict) -> dict:
                await send_email_step(ctx, payload["email"])
                return payload
        """
        storable_text(name, "action name")

        def decorate(func: F) -> F:
            sdef = getattr(func, "__forktex_step__", None)
            check_async(func if sdef is None else sdef.fn, "@flow.action")
            existing = self._registry.actions.get(name)
            if existing is not None and existing is not func:
                raise InvalidArgument(f"action {name!r} is already registered ({existing!r})")
            self._registry.actions[name] = func
            func.__forktex_action__ = name  # type: ignore[attr-defined]
            return func

        return decorate

    @property
    def actions(self) -> dict[str, Handler]:
        """The registered ``@flow.action`` handlers by name (a copy).

        Example::

            g = Graph.from_dict(data, actions=flow.actions)
        """
        return dict(self._registry.actions)

    def register_graph(self, graph: Graph) -> Graph:
        """Validate ``graph`` and register it as a workflow of the same name and version.

        Action names are resolved against ``@flow.action`` registrations; every error
        (unknown state or action, unreachable state, no reachable terminal, ...) is a
        :class:`GraphValidationError` naming the graph and the state. Returns the graph.

        Example::

            flow.register_graph(g)
            run_id = await flow.start("user.onboarding", input={"email": "a@example.com"})
        """
        if not isinstance(graph, Graph):
            raise InvalidArgument(f"register_graph needs a Graph, got {graph!r}")
        graph.validate()
        states = graph.resolved(self._registry.actions)
        body = build_body(graph, states)
        existing = self._registry.workflow(graph.name, graph.version)
        if existing is not None and not hasattr(existing.fn, "__forktex_graph__"):
            raise GraphValidationError(
                graph.name,
                None,
                f"a @flow.workflow named {graph.name!r} version "
                f"{graph.version} is already registered",
            )
        wdef = WorkflowDef(graph.name, graph.version, body, graph.timeout, True)
        self._registry.add_graph(graph)
        self._registry.add_workflow(wdef, graph.fingerprint(states))
        return graph

    def graph(self, name: str, version: int | None = None) -> Graph:
        """A registered graph (the newest version unless ``version`` is given).

        Example::

            print(flow.graph("user.onboarding").to_mermaid())
        """
        versions = self._registry.graphs.get(name)
        if not versions:
            raise UnknownWorkflow(name, [f"{n} (graph)" for n in self._registry.graphs])
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise UnknownWorkflow(
                name,
                [f"{n}:{v}" for n in self._registry.graphs for v in self._registry.graphs[n]],
                version,
            )
        return versions[version]

    @property
    def graphs(self) -> dict[str, list[int]]:
        """Registered graph names and their versions.

        Example::

            for name, versions in flow.graphs.items(): print(name, versions)
        """
        return {n: sorted(v) for n, v in sorted(self._registry.graphs.items())}

    def fingerprints(self) -> dict[tuple[str, int], Fingerprint]:
        """AST fingerprints of every registered workflow and graph (for ``forktex-flow audit``).

        Example::

            for (name, version), fp in flow.fingerprints().items(): print(name, version, fp.hash)
        """
        return dict(self._registry.fingerprints)

    def add_hooks(self, hooks: FlowHooks) -> None:
        """Register an extension (see :class:`FlowHooks`); several compose in order.

        Example::

            flow.add_hooks(OrgHooks())
        """
        self._hooks.add(hooks)

    def _lookup(self, workflow: object, version: object) -> WorkflowDef:
        if callable(workflow) and hasattr(workflow, "__forktex_workflow__"):
            workflow = workflow.__forktex_workflow__.name
        if not isinstance(workflow, str) or not workflow:
            raise InvalidArgument(f"workflow must be a registered workflow name, got {workflow!r}")
        versions = self._registry.workflows.get(workflow)
        if not versions:
            raise UnknownWorkflow(workflow, self._registry.workflows)
        if version is None:
            return versions[max(versions)]
        ver = _positive_int(version, "version")
        if ver not in versions:
            raise UnknownWorkflow(workflow, self._registry.keys(), ver)
        return versions[ver]

    # -- connections ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise FlowClosed("this Flow was closed; create a new Flow")

    async def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        await ensure_schema(sqlalchemy_url(self._url))
        self._schema_ready = True

    async def _client(self) -> asyncpg.Pool:
        self._check_open()
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._pool_loop is loop:
            return self._pool
        if self._pool_lock is None or self._pool_loop is not loop:
            self._pool_lock = asyncio.Lock()
        async with self._pool_lock:
            if self._pool is not None and self._pool_loop is loop:
                return self._pool
            if self._pool is not None:  # created on another (finished) event loop
                self._pool.terminate()
                self._pool = None
            self._pool_loop = loop
            await self._ensure_schema()
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=1, max_size=10, reset=keep_session
            )
            return self._pool

    async def connect(self) -> None:
        """Connect and create/migrate the schema now (otherwise done on first use).

        Example::

            await flow.connect()
        """
        await self._client()

    def _sa_engine(self) -> AsyncEngine:
        from sqlalchemy.ext.asyncio import create_async_engine

        loop = asyncio.get_running_loop()
        if self._engine is None or self._engine_loop is not loop:
            self._engine = create_async_engine(
                sqlalchemy_url(self._url), pool_size=5, max_overflow=5, pool_pre_ping=True
            )
            self._engine_loop = loop
        return self._engine

    async def _plain_tx(self, sdef: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from sqlalchemy.ext.asyncio import AsyncSession

        async with AsyncSession(self._sa_engine(), expire_on_commit=False) as session:
            async with session.begin():
                return await sdef.fn(*args[:1], session, *args[1:], **kwargs)

    # -- runs -------------------------------------------------------------------------------

    async def start(
        self,
        workflow: str | Callable[..., Any],
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        version: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        """Persist a new run and return its id at once (a worker picks it up).

        The same ``idempotency_key`` for the same workflow returns the existing run instead
        of creating another. ``version`` defaults to the highest registered one.
        ``metadata`` is a free JSON object kept with the run (for hooks and filtering);
        :class:`FlowHooks` may add to it and may refuse the start.

        Example::

            run_id = await flow.start("cloud.deploy", input={"name": "web"},
                                      idempotency_key="deploy-web-42")
        """
        wdef = self._lookup(workflow, version)
        if idempotency_key is not None:
            storable_text(idempotency_key, "idempotency_key", max_length=1000)
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidArgument(f"metadata must be a dict or None, got {metadata!r}")
        if self._hooks.has("attach_metadata") or self._hooks.has("authorize_start"):
            request = StartRequest(
                wdef.name, wdef.version, input, idempotency_key, dict(metadata or {})
            )
            await self._hooks.start(request)
            metadata = request.metadata
        text = encode(self.serializer, input, f"the input of workflow {wdef.name!r}")
        meta = encode(self.serializer, metadata or {}, "run metadata")
        pool = await self._client()
        run_id = uuid.uuid4()
        row = await pool.fetchrow(
            START, run_id, wdef.name, wdef.version, text, idempotency_key, wdef.timeout, meta
        )
        if row is not None:
            return uuid.UUID(str(row[0]))
        existing = await pool.fetchval(
            f"SELECT id FROM {SCHEMA}.runs WHERE workflow = $1 AND idempotency_key = $2",
            wdef.name,
            idempotency_key,
        )
        if existing is None:  # pragma: no cover - pruned between the two statements
            raise FlowError("idempotent start raced with retention pruning; retry the call")
        return uuid.UUID(str(existing))

    async def _done_listener(self) -> None:
        loop = asyncio.get_running_loop()
        if self._done_ready and self._done_loop is loop:
            return
        # Concurrent first calls of result() (e.g. under gather) must create one listener.
        if self._done_lock is None or self._done_loop is not loop:
            self._done_lock = asyncio.Lock()
            self._done_loop = loop
            self._done_ready = False
        async with self._done_lock:
            if self._done_ready:
                return
            listener = Listener(self._dsn, {_claim.DONE_CHANNEL: self._on_done}, self._wake_all)
            await listener.start()
            old, self._done = self._done, listener
            self._done_ready = True
            if old is not None:
                await old.close()

    def _on_done(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            for fut in self._waiters.pop(uuid.UUID(payload), []):
                if not fut.done():
                    fut.set_result(None)

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, {}
        for futs in waiters.values():
            for fut in futs:
                if not fut.done():
                    fut.set_result(None)

    async def result(self, run_id: uuid.UUID | str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait for a run to finish and return its output.

        Raises :class:`RunFailed` (``.status``, ``.error``) if it failed or was parked as
        dead, :class:`RunCancelled` if cancelled, :class:`ResultTimeout` after ``timeout``
        seconds. Completion is pushed by NOTIFY, so it returns within milliseconds.

        Example::

            output = await flow.result(run_id, timeout=30)
        """
        rid = run_id_value(run_id)
        limit = _seconds(timeout, "timeout", allow_none=True)
        pool = await self._client()
        await self._done_listener()
        loop = asyncio.get_running_loop()
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(rid, []).append(fut)
            try:
                row = await retry_transient(
                    lambda: pool.fetchrow(
                        f"SELECT status, output::text, error::text FROM {SCHEMA}.runs "
                        "WHERE id = $1",
                        rid,
                    ),
                    within=READ_RETRY,
                    what="result read",
                )
                if row is None:
                    raise RunNotFound(rid)
                status = row["status"]
                if status == "succeeded":
                    out = row["output"]
                    return None if out is None else self.serializer.loads(out)
                if status in FINISHED_VALUES:
                    err = None if row["error"] is None else self.serializer.loads(row["error"])
                    if status == "cancelled":
                        raise RunCancelled(rid, status, err)
                    raise RunFailed(rid, status, err)
                wait = 5.0
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        raise ResultTimeout(f"run {rid} did not finish within {limit} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, wait)
            finally:
                futs = self._waiters.get(rid)
                if futs is not None and fut in futs:
                    futs.remove(fut)
                    if not futs:
                        del self._waiters[rid]

    async def send_signal(self, run_id: uuid.UUID | str, name: str, payload: Any = None) -> int:
        """Deliver a signal to a run; stored durably even if the run is not waiting yet.

        Each signal is consumed exactly once, in the order sent, by
        ``ctx.wait_for_signal(name)``. Returns the signal id. Raises :class:`RunNotFound`
        for an unknown run and :class:`RunFinished` for a finished one.

        Example::

            await flow.send_signal(run_id, "advance", payload={"code": "abc"})
        """
        rid = run_id_value(run_id)
        storable_text(name, "signal name")
        text = encode(self.serializer, payload, f"the payload of signal {name!r}")
        if current_context() is not None and not IN_STEP.get():
            log.warning(
                "flow: send_signal in a workflow body is sent again on every replay; "
                "use ctx.send_signal (recorded, sent once)"
            )
        if self._hooks.has("authorize_signal"):
            await self._hooks.authorize("authorize_signal", await self.get_run(rid), name, payload)
        pool = await self._client()
        return await _signals.send(pool, rid, name, text)

    def _run_info(self, row: asyncpg.Record) -> RunInfo:
        loads = self.serializer.loads
        return RunInfo(
            id=row["id"],
            workflow=row["workflow"],
            version=row["version"],
            status=RunStatus(row["status"]),
            input=None if row["input"] is None else loads(row["input"]),
            output=None if row["output"] is None else loads(row["output"]),
            error=None if row["error"] is None else loads(row["error"]),
            idempotency_key=row["idempotency_key"],
            worker=row["worker"],
            lease_until=row["lease_until"],
            recovery_attempts=row["recovery_attempts"],
            wake_at=row["wake_at"],
            deadline=row["deadline"],
            metadata=loads(row["metadata"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            waiting_for_worker=bool(row["waiting_for_worker"]),
        )

    async def get_run(self, run_id: uuid.UUID | str) -> RunInfo:
        """The stored state of one run.

        Example::

            info = await flow.get_run(run_id)
            print(info.status, info.worker, info.output)
        """
        rid = run_id_value(run_id)
        pool = await self._client()
        row = await retry_transient(
            lambda: pool.fetchrow(
                f"SELECT {self._run_columns} FROM {SCHEMA}.runs WHERE id = $1", rid
            ),
            within=READ_RETRY,
            what="get_run",
        )
        if row is None:
            raise RunNotFound(rid)
        return self._run_info(row)

    async def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: RunStatus | str | Iterable[RunStatus | str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> list[RunInfo]:
        """Runs, newest first, filtered by workflow, status(es), creation time and metadata.

        ``metadata`` keeps runs whose metadata contains it (JSON containment, indexed):
        ``{"org_id": "o1"}`` lists one organisation's runs.

        Example::

            failed = await flow.list_runs(workflow="cloud.deploy", status="failed", limit=20)
            page2 = await flow.list_runs(limit=20, offset=20)
            mine = await flow.list_runs(metadata={"org_id": "o1"})
        """
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidArgument(f"metadata must be a dict or None, got {metadata!r}")
        meta = None if not metadata else encode(self.serializer, metadata, "metadata filter")
        # Only with a filter, so the planner can use the GIN index (no "$7 IS NULL OR").
        meta_clause = "" if meta is None else "AND metadata @> $7::jsonb"
        extra = () if meta is None else (meta,)
        if workflow is not None and (not isinstance(workflow, str) or not workflow):
            raise InvalidArgument(f"workflow must be a non-empty string, got {workflow!r}")
        statuses: list[str] | None = None
        if status is not None:
            items = [status] if isinstance(status, str) else list(status)
            try:
                statuses = [RunStatus(s).value for s in items]
            except ValueError:
                raise InvalidArgument(
                    f"status must be one of {[s.value for s in RunStatus]}, got {status!r}"
                ) from None
        for value, label in ((created_after, "created_after"), (created_before, "created_before")):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidArgument(f"{label} must be a timezone-aware datetime, got {value!r}")
        lim = _positive_int(limit, "limit")
        if lim > 10_000:
            raise InvalidArgument(f"limit must be at most 10000, got {limit!r}")
        off = _positive_int(offset, "offset", 0)
        pool = await self._client()
        rows = await retry_transient(
            lambda: pool.fetch(
                f"""SELECT {self._run_columns} FROM {SCHEMA}.runs
            WHERE ($1::text IS NULL OR workflow = $1)
              AND ($2::text[] IS NULL OR status = ANY($2::text[]))
              AND ($3::timestamptz IS NULL OR created_at >= $3)
              AND ($4::timestamptz IS NULL OR created_at < $4)
              {meta_clause}
            ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6""",
                workflow,
                statuses,
                created_after,
                created_before,
                lim,
                off,
                *extra,
            ),
            within=READ_RETRY,
            what="list_runs",
        )
        return [self._run_info(r) for r in rows]

    async def history(self, run_id: uuid.UUID | str) -> list[StepInfo]:
        """The checkpoint log of a run, in step order.

        Example::

            for step in await flow.history(run_id):
                print(step.seq, step.name, step.status, step.attempt, step.duration)
        """
        rid = run_id_value(run_id)
        pool = await self._client()

        async def read() -> tuple[Any, list[asyncpg.Record]]:
            async with pool.acquire() as conn:
                exists = await conn.fetchval(f"SELECT 1 FROM {SCHEMA}.runs WHERE id = $1", rid)
                steps = await conn.fetch(
                    f"""SELECT seq, name, kind, status, attempt, output::text AS output,
                        error::text AS error, started_at, finished_at
                    FROM {SCHEMA}.steps WHERE run_id = $1 ORDER BY seq""",
                    rid,
                )
                return exists, steps

        exists, rows = await retry_transient(read, within=READ_RETRY, what="history")
        if exists is None:
            raise RunNotFound(rid)
        loads = self.serializer.loads
        return [
            StepInfo(
                seq=r["seq"],
                name=r["name"],
                kind=r["kind"],
                status=r["status"],
                attempt=r["attempt"],
                output=None if r["output"] is None else loads(r["output"]),
                error=None if r["error"] is None else loads(r["error"]),
                started_at=r["started_at"],
                finished_at=r["finished_at"],
            )
            for r in rows
        ]

    async def picture(self, run_id: uuid.UUID | str, format: str = "mermaid") -> str:
        """The run's graph as Mermaid or DOT, with its current and visited states marked.

        The states come from the run's history (``state`` entries); the run's graph (same
        name and version) must be registered on this Flow.

        Example::

            print(await flow.picture(run_id, format="dot"))
        """
        from ._pictures import FORMATS

        if format not in FORMATS:
            raise InvalidArgument(f"format must be one of {list(FORMATS)}, got {format!r}")
        info = await self.get_run(run_id)
        graph = self.graph(info.workflow, info.version)
        states = [s.name for s in await self.history(info.id) if s.kind == "state"]
        current = states[-1] if states else None
        path = set(itertools.pairwise(states))
        if format == "dot":
            return graph.to_dot(current=current, visited=states, path=path)
        return graph.to_mermaid(current=current, visited=states, path=path)

    async def cancel(self, run_id: uuid.UUID | str) -> None:
        """Cancel a run that has not finished; a worker running it stops at once.

        Once this returns no new step of the run starts (its execution checks before each).

        Example::

            await flow.cancel(run_id)
        """
        rid = run_id_value(run_id)
        if self._hooks.has("authorize_cancel"):
            await self._hooks.authorize("authorize_cancel", await self.get_run(rid))
        await _control.cancel(await self._client(), rid)

    async def retry(self, run_id: uuid.UUID | str) -> None:
        """Resume a failed, dead or cancelled run from its last checkpoint.

        Completed steps are replayed from the log; the failure that ended the run (the step
        or signal wait named by the run's error) runs again with a fresh attempt count, while
        failures the workflow caught and handled replay as recorded.

        Example::

            await flow.retry(run_id)
        """
        rid = run_id_value(run_id)
        if self._hooks.has("authorize_retry"):
            await self._hooks.authorize("authorize_retry", await self.get_run(rid))
        await _control.retry(await self._client(), rid)

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
        self._check_open()
        conc = _positive_int(concurrency, "concurrency")
        if conc > 10_000:
            raise InvalidArgument(f"concurrency must be at most 10000, got {concurrency!r}")
        if worker_id is not None:
            storable_text(worker_id, "worker_id")
        if self._worker is not None:
            raise FlowError("a worker is already running on this Flow; stop it first")
        worker = Worker(
            self,
            conc,
            worker_id or self._worker_id,
            dsn=self._dsn,
            registry=self._registry,
            hooks=self._hooks,
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
        pool = await self._client()
        return await leader_of(pool)

    async def close(self) -> None:
        """Stop the worker (gracefully), close every connection. Idempotent.

        Example::

            await flow.close()
        """
        if self._worker is not None and self._worker_done is not None:
            self._worker.stop()
            await self._worker_done.wait()
        self._closed = True
        self._done_ready = False
        if self._done is not None:
            await self._done.close()
            self._done = None
        if self._pool is not None:
            if self._pool_loop is asyncio.get_running_loop():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._pool.close(), 5.0)
            self._pool.terminate()
            self._pool = None
        if self._engine is not None:
            if self._engine_loop is asyncio.get_running_loop():
                await self._engine.dispose()
            self._engine = None

    async def __aenter__(self) -> Flow:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
