# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Starting a run: check the request, let the hooks see it, store it as ``pending``.

The insert also NOTIFYs the workers, so an idle one claims the run at once. An
``idempotency_key`` already used for the workflow returns the existing run instead, and so
does a ``dedup_key`` held by a live run of the workflow. A run may go through a queue
(checked against the queue's stored definition) and start after a delay.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import _telemetry as tm
from ._claim import EagerSlot, SlotHost
from ._defs import WorkflowDef, positive_int, storable_text
from ._errors import InvalidArgument, UnknownQueue, UnknownWorkflow
from ._hooks import StartRequest
from ._queues import Placement, Queue, delay_seconds, placement
from ._registry import Registry
from ._serde import Serializer, encode
from ._store import Store
from ._store_children import ChildLink


@dataclass(frozen=True, slots=True)
class StartOptions:
    """Flow control of a start: queue, priority, partition key, dedup key, start time."""

    queue: Queue | str | None = None
    priority: int = 0
    partition_key: str | None = None
    dedup_key: str | None = None
    delay: float | timedelta | None = None
    not_before: datetime | None = None


async def _placement(
    store: Store, registry: Registry, name: str | None, options: StartOptions
) -> Placement:
    """The checked queue placement of a start (declared queues are stored first)."""
    if name is None:
        return placement(None, None, options.priority, options.partition_key)
    storable_text(name, "queue")
    await store.queues.declare(registry.queues())
    definition = await store.queues.get(name)
    if definition is None:
        raise UnknownQueue(name)
    return placement(definition, name, options.priority, options.partition_key)


async def _by_name(store: Store, workflow: object, version: object) -> WorkflowDef:
    """The definition of a start by name in a process that runs no code of it (a client):
    the given version, else the newest one a worker announces or a run has, else 1.
    No default queue is known here (start(queue=...) names one); the timeout is set by the
    worker's claim from its own registration."""

    async def body() -> None:  # never run: workers run their own registered body
        return None

    if not isinstance(workflow, str) or not workflow:
        raise InvalidArgument(f"workflow must be a workflow name, got {workflow!r}")
    if ":" in storable_text(workflow, "workflow name"):
        raise InvalidArgument(f"workflow name must not contain ':', got {workflow!r}")
    if version is not None:
        ver = positive_int(version, "version")
    else:
        ver = await store.latest_version(workflow) or 1
    return WorkflowDef(workflow, ver, body, None, True)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A start checked and encoded, ready for its insert (with the encoded metadata)."""

    wdef: WorkflowDef
    place: Placement
    input: str
    delay: float | None


async def start_run(
    store: Store,
    registry: Registry,
    serializer: Serializer,
    workflow: object,
    input: Any,
    *,
    idempotency_key: str | None,
    version: int | None,
    metadata: dict[str, Any] | None,
    options: StartOptions = StartOptions(),
    conn: Any = None,
    by_name: bool = False,
    host: SlotHost | None = None,
) -> uuid.UUID:
    """Persist a new run of ``workflow`` (a name or a decorated function); its id.
    ``host`` (this process's worker) claims the run in the same call when it has a free slot
    for it (an eager start: for a due run without keys, outside a caller's transaction).

    Example::

        run_id = await start_run(store, registry, serializer, "cloud.deploy", {"name": "web"},
                                 idempotency_key=None, version=None, metadata=None)
    """
    run_id, _ = await _start(
        store,
        registry,
        serializer,
        workflow,
        input,
        idempotency_key=idempotency_key,
        version=version,
        metadata=metadata,
        options=options,
        by_name=by_name,
        insert=lambda ready, meta: store.insert_run(
            uuid.uuid4(),
            ready.wdef.name,
            ready.wdef.version,
            ready.input,
            idempotency_key,
            ready.wdef.timeout,
            meta,
            ready.place,
            options.dedup_key,
            ready.delay,
            options.not_before,
            conn,
            _slot(host, ready, idempotency_key, options, conn),
        ),
    )
    assert run_id is not None  # insert_run always names a run
    return run_id


def _slot(
    host: SlotHost | None,
    ready: _Prepared,
    idempotency_key: str | None,
    options: StartOptions,
    conn: Any,
) -> EagerSlot | None:
    """A slot of this process's worker for an eager start, when one applies."""
    if (
        host is None
        or conn is not None
        or idempotency_key is not None
        or options.dedup_key is not None
        or ready.delay
        or options.not_before is not None
    ):
        return None
    return host.slot(ready.wdef.name, ready.wdef.version)


async def start_child_run(
    store: Store,
    registry: Registry,
    serializer: Serializer,
    link: ChildLink,
    workflow: object,
    input: Any,
    *,
    idempotency_key: str | None,
    version: int | None,
    metadata: dict[str, Any] | None,
    options: StartOptions = StartOptions(),
) -> tuple[uuid.UUID | None, WorkflowDef]:
    """Persist child ``link.child_id`` of ``workflow`` for the parent's execution in ``link``
    (the same checks and hooks as :func:`start_run`); the child's id (None when the parent
    is no longer held by that execution) and the definition started.

    Example::

        child_id, wdef = await start_child_run(store, registry, serializer, link,
                                               "billing.charge", {"cents": 5},
                                               idempotency_key=None, version=None,
                                               metadata=None)
    """
    return await _start(
        store,
        registry,
        serializer,
        workflow,
        input,
        idempotency_key=idempotency_key,
        version=version,
        metadata=metadata,
        options=options,
        by_name=False,
        insert=lambda ready, meta: store.children.start(
            link,
            ready.wdef.name,
            ready.wdef.version,
            ready.input,
            idempotency_key,
            ready.wdef.timeout,
            meta,
            ready.place,
        ),
    )


async def _start(
    store: Store,
    registry: Registry,
    serializer: Serializer,
    workflow: object,
    input: Any,
    *,
    idempotency_key: str | None,
    version: int | None,
    metadata: dict[str, Any] | None,
    options: StartOptions,
    by_name: bool,
    insert: Callable[[_Prepared, str], Awaitable[uuid.UUID | None]],
) -> tuple[uuid.UUID | None, WorkflowDef]:
    """Check a start, let the hooks see it, then ``insert`` it (given the encoded metadata)
    inside the start's span; the run's id (None when ``insert`` started nothing) and the
    definition started."""
    try:
        wdef = registry.lookup(workflow, version)
    except UnknownWorkflow:
        # a client (no workflow registered here) starts by name: the run waits for a worker
        if not (by_name or not registry.keys()):
            raise
        wdef = await _by_name(store, workflow, version)
    if idempotency_key is not None:
        storable_text(idempotency_key, "idempotency_key", max_length=1000)
    if options.dedup_key is not None:
        storable_text(options.dedup_key, "dedup_key", max_length=1000)
    queue = options.queue
    if isinstance(queue, Queue):
        registry.add_queue(queue)
        queue = queue.name
    place = await _placement(store, registry, queue if queue is not None else wdef.queue, options)
    delay = delay_seconds(options.delay)
    not_before = options.not_before
    if not_before is not None:
        if not isinstance(not_before, datetime) or not_before.tzinfo is None:
            raise InvalidArgument(
                f"not_before must be a timezone-aware datetime, got {not_before!r}"
            )
        if delay is not None:
            raise InvalidArgument("give delay= or not_before=, not both")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgument(f"metadata must be a dict or None, got {metadata!r}")
    hooks = registry.hooks
    if hooks.has("attach_metadata") or hooks.has("authorize_start"):
        request = StartRequest(
            wdef.name, wdef.version, input, idempotency_key, dict(metadata or {})
        )
        await hooks.start(request)
        metadata = request.metadata
    text = encode(serializer, input, f"the input of workflow {wdef.name!r}")
    ready = _Prepared(wdef, place, text, delay)
    span = tm.start_span(wdef.name, wdef.version, place.queue)
    with tm.tracing.current(span):
        # the trace continues into the run: through this span when it records, else
        # straight from the caller's
        meta = encode(serializer, tm.carried(metadata) or {}, "run metadata")
        run_id = await insert(ready, meta)
        if run_id is not None:
            tm.started(span, str(run_id))
    return run_id, wdef
