# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The seam between workflow code and the execution running it.

:class:`Runtime` is what a :class:`FlowContext` and replay (``_replay``) ask of the
execution; the run driver implements it and owns the run's state: the position in the
log, the log preloaded at claim time, the values waiting to be written (``ctx.now()`` /
``ctx.uuid()`` values, markers) and the requests to suspend. New durable primitives extend
this Protocol and its implementation, nothing else (child workflows: ``child_id`` and
``start_child``, with :class:`ChildRequest` the value that crosses it).
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._defs import StepDef
    from ._serde import Serializer

COMPLETED = "completed"
FAILED = "failed"
RETRYING = "retrying"
WAITING = "waiting"

IN_STEP: ContextVar[bool] = ContextVar("forktex_flow_in_step", default=False)


class LogEntry:
    """One recorded checkpoint as loaded at claim time (JSON kept as text until needed)."""

    __slots__ = ("attempt", "error", "kind", "name", "output", "status")

    def __init__(
        self,
        name: str,
        kind: str,
        status: str,
        attempt: int,
        output: str | None,
        error: str | None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.status = status
        self.attempt = attempt
        self.output = output
        self.error = error


class Suspend:
    """Why a branch of the workflow wants the run to be put aside."""

    __slots__ = ("signal", "wake_at")

    def __init__(self, wake_at: float | None, signal: str | None) -> None:
        self.wake_at = wake_at
        self.signal = signal


@dataclass(frozen=True, slots=True)
class ChildRequest:
    """What ``ctx.start_child`` was asked: the workflow, its input and the start's options."""

    workflow: object
    name: str
    input: Any = None
    version: int | None = None
    idempotency_key: str | None = None
    metadata: dict[str, Any] | None = None
    queue: str | None = None
    priority: int = 0
    partition_key: str | None = None
    cancel_with_parent: bool = True


class Runtime(Protocol):
    """What workflow code needs from the execution running it (the run driver).

    Positions are taken synchronously, in program order, so parallel branches number their
    steps the same way on every execution. ``begin``/``end`` bracket every durable action,
    so a suspension waits until no branch is in the middle of one.
    """

    @property
    def serializer(self) -> Serializer:
        """The Flow's serializer (values are stored as its JSON text)."""
        ...

    # -- the position in the log ----------------------------------------------------------

    def replaying(self) -> bool:
        """True while the next position is already in the recorded log."""
        ...

    def take_position(self, name: str, kind: str) -> tuple[int, LogEntry | None]:
        """The next position and its recorded entry (``NonDeterminismError`` on mismatch)."""
        ...

    def patched(self, name: str) -> bool:
        """Whether the run takes the branch of patch ``name`` (recorded on first pass)."""
        ...

    def mark(self, name: str, kind: str) -> bool:
        """Record a marker (graph state); True while markers wait to be written."""
        ...

    def preview_marks(self) -> None:
        """Write waiting markers soon, without waiting for the next checkpoint."""
        ...

    def defer(self, seq: int, kind: str, text: str) -> None:
        """A recorded value (``ctx.now()``, ``ctx.uuid()``) written before the next write."""
        ...

    # -- time and branches ----------------------------------------------------------------

    def clock(self) -> float:
        """The database's clock (epoch seconds)."""
        ...

    def begin(self, name: str) -> None:
        """A branch enters step (or durable primitive) ``name``."""
        ...

    def end(self) -> None:
        """The branch left it."""
        ...

    async def suspend(self, wake_at: float | None, signal: str | None) -> Any:
        """Put the run aside until ``wake_at`` or ``signal``; this branch never resumes."""
        ...

    def exited(self, exc: BaseException) -> None:
        """A step raised ``SystemExit``: the process exits because of this run."""
        ...

    # -- durable writes (fenced on the execution) -----------------------------------------

    async def flush_pending(self) -> bool:
        """Write the deferred values now; True when there were any."""
        ...

    async def check_held(self) -> None:
        """Raise ``LeaseLost`` unless the run is still this execution's."""
        ...

    async def record_step(
        self,
        seq: int,
        name: str,
        kind: str,
        status: str,
        attempt: int,
        output: str | None,
        error: str | None,
        duration: float,
    ) -> None:
        """Write checkpoint ``seq``."""
        ...

    async def run_transaction(
        self,
        sdef: StepDef,
        seq: int,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Run a transactional step: its writes and its checkpoint commit together."""
        ...

    async def consume_signal(self, seq: int, name: str, step_name: str) -> tuple[bool, str | None]:
        """Consume the next ``name`` signal into checkpoint ``seq``, if one is stored."""
        ...

    async def send_recorded(
        self, seq: int, target: uuid.UUID, name: str, payload: str
    ) -> tuple[str, str]:
        """Send a signal and checkpoint it at ``seq`` in one transaction."""
        ...

    # -- child workflows ------------------------------------------------------------------

    def child_id(self, seq: int) -> uuid.UUID:
        """The id of the child started at position ``seq`` (the same on every execution)."""
        ...

    async def start_child(self, seq: int, request: ChildRequest) -> str:
        """Start the child of position ``seq`` (once) and checkpoint it; the checkpoint's
        JSON text (the child's ``id``, ``workflow`` and ``version``)."""
        ...
