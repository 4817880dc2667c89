# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The registration half of the :class:`Flow` facade: steps, workflows, actions, graphs,
hooks, and what is registered (all kept by the :class:`Registry`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, overload

from ._defs import (
    StepDef,
    WorkflowDef,
    check_async,
    isolation_level_value,
    positional_count,
    positive_int,
    seconds,
    step_policy,
    storable_text,
)
from ._errors import InvalidArgument
from ._graph import Graph
from ._hashing import Fingerprint, fingerprint
from ._hooks import FlowHooks
from ._queues import Queue
from ._registry import Registry
from ._states import Handler
from ._steps import make_step_wrapper
from ._store import Store
from ._transaction import run_plain

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])


class Registration:
    """What :class:`Flow` registers and knows (its registry), as decorators and queries."""

    _registry: Registry
    _store: Store

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
        policy = step_policy(max_attempts, backoff, max_backoff, retry_on, timeout)
        if name is not None:
            storable_text(name, "step name")
        level = isolation_level_value(isolation_level)
        if level is not None and not transactional:
            raise InvalidArgument("isolation_level applies to transactional steps only")
        plain_tx = functools.partial(run_plain, self._store)

        def decorate(func: F) -> F:
            check_async(func, "@flow.step" if not transactional else "@flow.transaction")
            sdef = StepDef(
                name or func.__qualname__,
                func,
                *policy,
                transactional=bool(transactional),
                isolation_level=level,
            )
            return make_step_wrapper(sdef, plain_tx)  # type: ignore[return-value]

        if fn is not None:
            return decorate(fn)
        return decorate

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
        queue: str | None = None,
    ) -> Callable[[F], F]: ...

    def workflow(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        version: int = 1,
        timeout: float | None = None,
        queue: str | None = None,
    ) -> F | Callable[[F], F]:
        """Register an ``async def (ctx, input)`` as a durable workflow.

        ``name`` and ``version`` identify it (runs remember the version they started with;
        bump it when the sequence of steps changes). ``timeout`` (seconds) fails a run that
        takes longer, counted from when a worker first picks the run up (time spent queued
        does not count; ``retry`` starts a fresh window). ``queue`` names the queue its runs
        go through unless ``start(queue=...)`` says otherwise. Returns the function unchanged.
        Workflows may be registered at any time, also while a worker runs.

        Example::

            @flow.workflow(name="cloud.deploy", version=1, timeout=3600)
            async def deploy(ctx: FlowContext, manifest: dict) -> dict:
                server_id = await provision_vps(ctx, manifest)
                return {"server_id": server_id}
        """
        if name is not None and ":" in storable_text(name, "workflow name"):
            raise InvalidArgument(f"workflow name must not contain ':', got {name!r}")
        ver = positive_int(version, "version")
        limit = seconds(timeout, "timeout", allow_none=True)
        if queue is not None:
            storable_text(queue, "queue")

        def decorate(func: F) -> F:
            check_async(func, "@flow.workflow")
            count = positional_count(func)
            if count < 1:
                raise InvalidArgument(
                    f"workflow {func.__qualname__} must accept the FlowContext as its first "
                    "argument: async def wf(ctx, input)"
                )
            wname = name or f"{func.__module__}.{func.__qualname__}"
            wdef = WorkflowDef(wname, ver, func, limit, count >= 2, queue)
            self._registry.add_workflow(wdef, fingerprint(func))
            func.__forktex_workflow__ = wdef  # type: ignore[attr-defined]
            return func

        if fn is not None:
            return decorate(fn)
        return decorate

    def queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        worker_concurrency: int | None = None,
        limit: int | None = None,
        period: float | None = None,
        priorities: bool = False,
        partition_concurrency: int | None = None,
    ) -> Queue:
        """Declare a flow-control queue (stored in Postgres on first use; every worker and
        client then agrees on it; declaring it again with other limits replaces it, with a
        warning: the latest declaration wins).

        ``concurrency``: runs at once across all workers; ``worker_concurrency``: per
        worker; ``limit`` starts per ``period`` seconds over any sliding window;
        ``priorities``: ``start(priority=...)``, higher first; ``partition_concurrency``:
        runs at once per ``start(partition_key=...)``, 1 = one at a time per key, in start
        order. A run holds its slot from its start until it finishes.

        Example::

            emails = flow.queue("emails", concurrency=10, worker_concurrency=2,
                                limit=100, period=60)
            per_tenant = flow.queue("billing", partition_concurrency=1)
        """
        definition = Queue(
            name,
            concurrency,
            worker_concurrency,
            limit,
            period,
            priorities,
            partition_concurrency,
        )
        self._registry.add_queue(definition)
        return definition

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
            self._registry.add_action(name, func)
            func.__forktex_action__ = name  # type: ignore[attr-defined]
            return func

        return decorate

    @property
    def actions(self) -> dict[str, Handler]:
        """The registered ``@flow.action`` handlers by name (a copy).

        Example::

            g = Graph.from_dict(data, actions=flow.actions)
        """
        return self._registry.actions()

    def register_graph(self, graph: Graph) -> Graph:
        """Validate ``graph`` and register it as a workflow of the same name and version.

        Action names are resolved against ``@flow.action`` registrations; every error
        (unknown state or action, unreachable state, no reachable terminal, ...) is a
        :class:`GraphValidationError` naming the graph and the state. Returns the graph.

        Example::

            flow.register_graph(g)
            run_id = await flow.start("user.onboarding", input={"email": "a@example.com"})
        """
        return self._registry.add_graph(graph)

    def graph(self, name: str, version: int | None = None) -> Graph:
        """A registered graph (the newest version unless ``version`` is given).

        Example::

            print(flow.graph("user.onboarding").to_mermaid())
        """
        return self._registry.graph(name, version)

    @property
    def graphs(self) -> dict[str, list[int]]:
        """Registered graph names and their versions.

        Example::

            for name, versions in flow.graphs.items(): print(name, versions)
        """
        return self._registry.graph_versions()

    def fingerprints(self) -> dict[tuple[str, int], Fingerprint]:
        """AST fingerprints of every registered workflow and graph (for ``forktex-flow audit``).

        Example::

            for (name, version), fp in flow.fingerprints().items(): print(name, version, fp.hash)
        """
        return self._registry.fingerprints()

    def add_hooks(self, hooks: FlowHooks) -> None:
        """Register an extension (see :class:`FlowHooks`); several compose in order.

        Example::

            flow.add_hooks(OrgHooks())
        """
        self._registry.add_hooks(hooks)
