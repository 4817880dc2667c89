# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The run half of the :class:`Flow` facade: start runs, wait for them, signal, inspect and
control them (each a short call into the :class:`Store`)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._claim import SlotHost
from ._context import current_context
from ._db import log
from ._defs import positive_int, run_id_value, seconds, signal_name, storable_text
from ._errors import InvalidArgument, RunCancelled, RunFailed, RunNotFound
from ._outbox import outbox_connection
from ._pictures import FORMATS
from ._queues import Queue, QueueInfo
from ._records import RunInfo, RunStatus, StepInfo, run_info, status_values, step_info
from ._registry import Registry
from ._runtime import IN_STEP
from ._serde import encode
from ._settings import Settings
from ._start import StartOptions, start_run
from ._store import Store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


class RunCalls:
    """Starting, waiting for, signalling, inspecting and controlling runs."""

    _registry: Registry
    _settings: Settings
    _store: Store
    _worker: SlotHost | None = None  # the worker running in this process, if any

    async def start(
        self,
        workflow: str | Callable[..., Any],
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        version: int | None = None,
        metadata: dict[str, Any] | None = None,
        queue: Queue | str | None = None,
        priority: int = 0,
        partition_key: str | None = None,
        dedup_key: str | None = None,
        delay: float | timedelta | None = None,
        not_before: datetime | None = None,
        session: AsyncSession | AsyncConnection | None = None,
    ) -> uuid.UUID:
        """Persist a new run and return its id at once (a worker picks it up).

        The same ``idempotency_key`` for the same workflow returns the existing run instead
        of creating another (forever); a ``dedup_key`` held by a *live* run of the workflow
        (pending, running or waiting) returns that run's id. ``version`` defaults to the
        highest registered one. ``metadata`` is a free JSON object kept with the run (for
        hooks and filtering); :class:`FlowHooks` may add to it and may refuse the start.

        ``queue`` (a declared queue's name, default: the workflow's ``queue``) puts the run
        under that queue's flow control, with ``priority`` (higher first, queues with
        ``priorities=True``) and ``partition_key`` (queues with ``partition_concurrency``).
        ``delay`` (seconds) or ``not_before`` (an aware datetime) start it later, durably.
        ``session`` (a SQLAlchemy ``AsyncSession`` or ``AsyncConnection`` on the same
        database) inserts the run in the caller's transaction: it exists if and only if the
        caller commits, and the workers are woken at commit. A session on another database
        is refused with :class:`InvalidArgument` naming both.

        In a process whose worker serves the workflow and has a free slot, a due start
        without keys or ``session`` is *eager*: the run is inserted and claimed for that
        worker in one call (within every limit of its queue) and begins at once.

        Example::

            run_id = await flow.start("cloud.deploy", input={"name": "web"},
                                      idempotency_key="deploy-web-42")
            await flow.start("send.email", input=msg, queue="emails", partition_key="org-7")
        """
        conn = None if session is None else await outbox_connection(self._store, session)
        return await start_run(
            self._store,
            self._registry,
            self._settings.serializer,
            workflow,
            input,
            idempotency_key=idempotency_key,
            version=version,
            metadata=metadata,
            options=StartOptions(queue, priority, partition_key, dedup_key, delay, not_before),
            conn=conn,
            host=self._worker,
        )

    async def queues(self, name: str | None = None) -> list[QueueInfo]:
        """Every declared queue (or only ``name``): depth, active and running runs, runs
        per partition key, admissions in the current rate window.

        Example::

            for q in await flow.queues():
                print(q.name, q.depth, q.active, q.partitions, q.window_starts)
        """
        if name is not None:
            storable_text(name, "queue name")
        await self._store.queues.declare(self._registry.queues())
        return await self._store.queues.info(name)

    async def result(self, run_id: uuid.UUID | str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait for a run to finish and return its output.

        Raises :class:`RunFailed` (``.status``, ``.error``) if it failed or was parked as
        dead, :class:`RunCancelled` if cancelled, :class:`ResultTimeout` after ``timeout``
        seconds. Completion is pushed by NOTIFY, so it returns within milliseconds.

        Example::

            output = await flow.result(run_id, timeout=30)
        """
        rid = run_id_value(run_id)
        limit = seconds(timeout, "timeout", allow_none=True)
        row = await self._store.wait_finished(rid, limit)
        loads = self._settings.serializer.loads
        status = row["status"]
        if status == "succeeded":
            return None if row["output"] is None else loads(row["output"])
        err = None if row["error"] is None else loads(row["error"])
        if status == "cancelled":
            raise RunCancelled(rid, status, err)
        raise RunFailed(rid, status, err)

    async def send_signal(self, run_id: uuid.UUID | str, name: str, payload: Any = None) -> int:
        """Deliver a signal to a run; stored durably even if the run is not waiting yet.

        Each signal is consumed exactly once, in the order sent, by
        ``ctx.wait_for_signal(name)``. Returns the signal id. Raises :class:`RunNotFound`
        for an unknown run and :class:`RunFinished` for a finished one.

        Example::

            await flow.send_signal(run_id, "advance", payload={"code": "abc"})
        """
        rid = run_id_value(run_id)
        signal_name(name)
        text = encode(self._settings.serializer, payload, f"the payload of signal {name!r}")
        if current_context() is not None and not IN_STEP.get():
            log.warning(
                "flow: send_signal in a workflow body is sent again on every replay; "
                "use ctx.send_signal (recorded, sent once)"
            )
        hooks = self._registry.hooks
        if hooks.has("authorize_signal"):
            await hooks.authorize("authorize_signal", await self.get_run(rid), name, payload)
        return await self._store.send_signal(rid, name, text)

    async def get_run(self, run_id: uuid.UUID | str) -> RunInfo:
        """The stored state of one run.

        Example::

            info = await flow.get_run(run_id)
            print(info.status, info.worker, info.output)
        """
        rid = run_id_value(run_id)
        row = await self._store.run(rid)
        if row is None:
            raise RunNotFound(rid)
        return run_info(row, self._settings.serializer.loads)

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
        queue: str | None = None,
    ) -> list[RunInfo]:
        """Runs, newest first, filtered by workflow, status(es), creation time, queue and
        metadata.

        ``metadata`` keeps runs whose metadata contains it (JSON containment, indexed):
        ``{"org_id": "o1"}`` lists one organisation's runs.

        Example::

            failed = await flow.list_runs(workflow="cloud.deploy", status="failed", limit=20)
            page2 = await flow.list_runs(limit=20, offset=20)
            mine = await flow.list_runs(metadata={"org_id": "o1"})
        """
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidArgument(f"metadata must be a dict or None, got {metadata!r}")
        serializer = self._settings.serializer
        meta = None if not metadata else encode(serializer, metadata, "metadata filter")
        if workflow is not None and (not isinstance(workflow, str) or not workflow):
            raise InvalidArgument(f"workflow must be a non-empty string, got {workflow!r}")
        if queue is not None:
            storable_text(queue, "queue")
        statuses = status_values(status)
        for value, label in ((created_after, "created_after"), (created_before, "created_before")):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidArgument(f"{label} must be a timezone-aware datetime, got {value!r}")
        lim = positive_int(limit, "limit")
        if lim > 10_000:
            raise InvalidArgument(f"limit must be at most 10000, got {limit!r}")
        off = positive_int(offset, "offset", 0)
        rows = await self._store.runs(
            workflow, statuses, created_after, created_before, lim, off, meta, queue
        )
        return [run_info(r, serializer.loads) for r in rows]

    async def history(self, run_id: uuid.UUID | str) -> list[StepInfo]:
        """The checkpoint log of a run, in step order.

        Example::

            for step in await flow.history(run_id):
                print(step.seq, step.name, step.status, step.attempt, step.duration)
        """
        rid = run_id_value(run_id)
        rows = await self._store.history(rid)
        if rows is None:
            raise RunNotFound(rid)
        return [step_info(r, self._settings.serializer.loads) for r in rows]

    async def picture(self, run_id: uuid.UUID | str, format: str = "mermaid") -> str:
        """The run's graph as Mermaid or DOT, with its current and visited states marked.

        The states come from the run's history (``state`` entries); the run's graph (same
        name and version) must be registered on this Flow.

        Example::

            print(await flow.picture(run_id, format="dot"))
        """
        if format not in FORMATS:
            raise InvalidArgument(f"format must be one of {list(FORMATS)}, got {format!r}")
        info = await self.get_run(run_id)
        graph = self._registry.graph(info.workflow, info.version)
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
        hooks = self._registry.hooks
        if hooks.has("authorize_cancel"):
            await hooks.authorize("authorize_cancel", await self.get_run(rid))
        await self._store.cancel(rid)

    async def retry(self, run_id: uuid.UUID | str) -> None:
        """Resume a failed, dead or cancelled run from its last checkpoint.

        Completed steps are replayed from the log; the failure that ended the run (the step
        or signal wait named by the run's error) runs again with a fresh attempt count, while
        failures the workflow caught and handled replay as recorded.

        Example::

            await flow.retry(run_id)
        """
        rid = run_id_value(run_id)
        hooks = self._registry.hooks
        if hooks.has("authorize_retry"):
            await hooks.authorize("authorize_retry", await self.get_run(rid))
        await self._store.retry(rid)
