# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The extension Protocol: graft tenant / RBAC / audit concerns onto runs without forking."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ._db import log
from ._errors import InvalidArgument

if TYPE_CHECKING:
    from ._records import RunInfo
    from ._schedules import ScheduleInfo


@dataclass(slots=True)
class StartRequest:
    """A ``flow.start`` about to create a run; ``metadata`` is what will be stored.

    Example::

        async def attach_metadata(self, request: StartRequest):
            return {"org_id": current_org_id()}
    """

    workflow: str
    version: int
    input: Any
    idempotency_key: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepEvent:
    """A step (or transactional step) of a run completed or failed for good (first run only).

    Example::

        async def on_step_failed(self, event: StepEvent):
            alerts.send(f"{event.workflow} step {event.name} failed: {event.error}")
    """

    run_id: uuid.UUID
    workflow: str
    version: int
    seq: int
    name: str
    kind: str
    status: str
    attempt: int
    output: Any
    error: Any
    duration: float
    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A run finished on a worker: ``status`` is ``succeeded`` or ``failed``.

    Example::

        async def on_run_completed(self, event: RunEvent):
            metrics.incr("flow.done", tags={"org": event.metadata.get("org_id")})
    """

    run_id: uuid.UUID
    workflow: str
    version: int
    status: str
    output: Any
    error: Any
    metadata: Mapping[str, Any]


class FlowHooks(Protocol):
    """Extension points, all optional and async: subclass and override what you need.

    * ``attach_metadata(request)`` — return a dict merged into the new run's metadata
      (stored in ``runs.metadata``, filterable with ``flow.list_runs(metadata={...})``);
    * ``authorize_start(request)`` / ``authorize_signal(run, name, payload)`` /
      ``authorize_cancel(run)`` / ``authorize_retry(run)`` /
      ``authorize_fork(run, from_step, version)`` /
      ``authorize_schedule(schedule, action)`` — raise (e.g. :class:`HookDenied`)
      to refuse; the exception reaches the caller unchanged and nothing is written;
    * ``on_step_completed`` / ``on_step_failed`` (:class:`StepEvent`) and
      ``on_run_completed`` / ``on_run_failed`` (:class:`RunEvent`) — observers, called in
      the worker after the checkpoint is written; their exceptions are logged, never fatal.

    Hooks run in the caller's task, so they can read the host's request context
    (current user, organisation) from its own contextvars.

    Example::

        class OrgHooks(FlowHooks):
            async def attach_metadata(self, request):
                return {"org_id": current_org.get()}

            async def authorize_signal(self, run, name, payload):
                if run.metadata.get("org_id") != current_org.get():
                    raise HookDenied("this run belongs to another organisation")

        flow = Flow(database_url=url, hooks=[OrgHooks()])
    """

    async def attach_metadata(self, request: StartRequest) -> Mapping[str, Any] | None:
        """Metadata to merge into a new run's metadata (None for nothing)."""
        return None

    async def authorize_start(self, request: StartRequest) -> None:
        """Raise to refuse ``flow.start`` (metadata is already attached)."""

    async def authorize_signal(self, run: RunInfo, name: str, payload: Any) -> None:
        """Raise to refuse ``flow.send_signal``."""

    async def authorize_cancel(self, run: RunInfo) -> None:
        """Raise to refuse ``flow.cancel``."""

    async def authorize_retry(self, run: RunInfo) -> None:
        """Raise to refuse ``flow.retry``."""

    async def authorize_fork(self, run: RunInfo, from_step: int, version: int | None) -> None:
        """Raise to refuse ``flow.fork`` of ``run`` (the original) from ``from_step``."""

    async def authorize_schedule(self, schedule: ScheduleInfo, action: str) -> None:
        """Raise to refuse a control of the stored ``schedule``: ``action`` is ``"pause"``,
        ``"resume"``, ``"trigger"``, ``"backfill"`` or ``"delete"`` (``flow.pause_schedule``
        and so on; the operator console's buttons call the same methods).

        Example::

            async def authorize_schedule(self, schedule, action):
                if not schedule.name.startswith(f"tenant-{current_org.get()}."):
                    raise HookDenied(f"{schedule.name} belongs to another organisation")
        """

    async def on_step_completed(self, event: StepEvent) -> None:
        """Observe a completed step."""

    async def on_step_failed(self, event: StepEvent) -> None:
        """Observe a step that failed for good."""

    async def on_run_completed(self, event: RunEvent) -> None:
        """Observe a run that succeeded."""

    async def on_run_failed(self, event: RunEvent) -> None:
        """Observe a run that failed."""


METHODS = (
    "attach_metadata",
    "authorize_start",
    "authorize_signal",
    "authorize_cancel",
    "authorize_retry",
    "authorize_fork",
    "authorize_schedule",
    "on_step_completed",
    "on_step_failed",
    "on_run_completed",
    "on_run_failed",
)

# the methods that make a hook set "observe" (checkpoints then build events for them)
_OBSERVERS = frozenset(("on_step_completed", "on_step_failed", "on_run_completed", "on_run_failed"))


class HookSet:
    """The hooks registered on one Flow, indexed by the methods they really implement."""

    def __init__(self, hooks: Iterable[object] = ()) -> None:
        self._by_method: dict[str, list[Any]] = {m: [] for m in METHODS}
        self._observes = False
        for h in hooks:
            self.add(h)

    def add(self, hooks: object) -> None:
        found = False
        for method in METHODS:
            impl = getattr(type(hooks), method, None)
            if impl is None or impl is getattr(FlowHooks, method):
                continue
            self._by_method[method].append(getattr(hooks, method))
            found = True
            self._observes = self._observes or method in _OBSERVERS
        if not found:
            raise InvalidArgument(
                f"{hooks!r} implements none of the FlowHooks methods ({', '.join(METHODS)})"
            )

    def has(self, method: str) -> bool:
        return bool(self._by_method[method])

    @property
    def observes(self) -> bool:
        """Whether any hook observes steps or runs (asked at every checkpoint: kept, not
        computed)."""
        return self._observes

    async def start(self, request: StartRequest) -> None:
        for fn in self._by_method["attach_metadata"]:
            extra = await fn(request)
            if extra is not None:
                if not isinstance(extra, Mapping):
                    raise InvalidArgument(
                        f"attach_metadata of {fn!r} must return a mapping or None, got {extra!r}"
                    )
                request.metadata.update(extra)
        for fn in self._by_method["authorize_start"]:
            await fn(request)

    async def authorize(self, method: str, *args: Any) -> None:
        for fn in self._by_method[method]:
            await fn(*args)

    async def observe(self, method: str, event: StepEvent | RunEvent) -> None:
        for fn in self._by_method[method]:
            try:
                await fn(event)
            except Exception:
                log.exception("flow: hook %s failed for run %s (ignored)", method, event.run_id)
