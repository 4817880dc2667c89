# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Flow-control queues: their definitions (:class:`Queue`), the checks of a start that names
one, and what :meth:`Flow.queues` reports (:class:`QueueInfo`).

A queue is declared in code and stored in ``forktex_flow.queues`` (the latest declaration
wins), so every worker and client agrees on it. Admission is enforced by the workers' claim
(``claim_queued`` of migration 5): under the queue row's lock, a run is admitted only while
the queue has a free global slot, a free slot of its partition key and rate budget, and the
claiming worker a free slot of its own. A run holds its slot from admission until it
finishes (sleeping and waiting for signals included), like DBOS.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ._defs import positive_int, seconds, storable_text
from ._errors import InvalidArgument

_INT4 = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Queue:
    """A named queue with flow control; declare it with :meth:`Flow.queue`.

    ``concurrency``: runs of the queue at once across all workers (exact).
    ``worker_concurrency``: runs of the queue at once on one worker.
    ``limit`` starts per ``period`` seconds, over any sliding window (exact).
    ``priorities``: runs may be started with ``priority=`` (higher runs first).
    ``partition_concurrency``: runs at once per ``partition_key`` (1: one at a time per key,
    in start order); runs of a partitioned queue must name a key.
    Every limit is optional; ``None`` means unlimited.

    Example::

        emails = flow.queue("emails", concurrency=10, limit=100, period=60)
        await flow.start("send.email", input={...}, queue="emails")
    """

    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    limit: int | None = None
    period: float | None = None
    priorities: bool = False
    partition_concurrency: int | None = None

    def __post_init__(self) -> None:
        storable_text(self.name, "queue name")
        for label in ("concurrency", "worker_concurrency", "limit", "partition_concurrency"):
            value = getattr(self, label)
            if value is not None and positive_int(value, f"queue {label}") > _INT4:
                raise InvalidArgument(f"queue {label} must be at most {_INT4}, got {value!r}")
        if (self.limit is None) != (self.period is None):
            raise InvalidArgument(
                f"queue {self.name!r}: limit and period go together (limit starts per period "
                f"seconds), got limit={self.limit!r}, period={self.period!r}"
            )
        if self.period is not None:
            object.__setattr__(self, "period", seconds(self.period, "queue period"))
        if not isinstance(self.priorities, bool):
            raise InvalidArgument(
                f"queue priorities must be True or False, got {self.priorities!r}"
            )
        if (
            self.concurrency is not None
            and self.worker_concurrency is not None
            and self.worker_concurrency > self.concurrency
        ):
            raise InvalidArgument(
                f"queue {self.name!r}: worker_concurrency ({self.worker_concurrency}) must not "
                f"exceed concurrency ({self.concurrency})"
            )

    def args(self) -> tuple[Any, ...]:
        """The stored columns, in the order of ``queues`` (after the name)."""
        return (
            self.concurrency,
            self.worker_concurrency,
            self.limit,
            self.period,
            self.priorities,
            self.partition_concurrency,
        )

    @classmethod
    def from_row(cls, row: Any) -> Queue:
        """The definition stored in a ``queues`` row."""
        return cls(
            row["name"],
            row["concurrency"],
            row["worker_concurrency"],
            row["rate_limit"],
            row["rate_period"],
            row["priorities"],
            row["partition_concurrency"],
        )


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """One queue as :meth:`Flow.queues` reports it.

    ``depth``: runs started on it and not admitted yet (``delayed`` of those not due yet);
    ``active``: runs holding a slot (admitted, not finished); ``running``: of those, the ones
    a worker executes now; ``window_starts``: admissions in the current rate window (None
    without a rate limit); ``partitions``: slots held per partition key.

    Example::

        for q in await flow.queues():
            print(q.name, q.depth, q.active, q.window_starts, q.partitions)
    """

    queue: Queue
    depth: int
    delayed: int
    active: int
    running: int
    window_starts: int | None
    partitions: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The queue's name."""
        return self.queue.name


def queue_info(row: Any) -> QueueInfo:
    """The :class:`QueueInfo` of a row of :data:`._sql.QUEUES`."""
    return QueueInfo(
        Queue.from_row(row),
        row["depth"],
        row["delayed"],
        row["active"],
        row["running"],
        row["window_starts"],
        json.loads(row["partitions"]),
    )


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a start puts its run: queue, priority and partition key (checked)."""

    queue: str | None = None
    priority: int = 0
    partition_key: str | None = None


def placement(
    queue: Queue | None, name: str | None, priority: object, partition_key: object
) -> Placement:
    """Check a start's ``priority`` and ``partition_key`` against its queue's definition.

    ``queue`` is the stored definition of the queue called ``name`` (None without a queue).

    Example::

        placement(Queue("emails", priorities=True), "emails", 5, None)
    """
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > _INT4:
        raise InvalidArgument(f"priority must be an integer, got {priority!r}")
    if partition_key is not None:
        storable_text(partition_key, "partition_key", max_length=1000)
    if queue is None:
        if priority:
            raise InvalidArgument(f"priority={priority!r} needs a queue with priorities=True")
        if partition_key is not None:
            raise InvalidArgument(
                "partition_key needs a queue with partition_concurrency (queue=...)"
            )
        return Placement()
    if priority and not queue.priorities:
        raise InvalidArgument(
            f"queue {name!r} was declared without priorities; priority={priority!r} needs "
            "flow.queue(..., priorities=True)"
        )
    if (partition_key is None) != (queue.partition_concurrency is None):
        if partition_key is None:
            raise InvalidArgument(f"queue {name!r} is partitioned: start needs partition_key=")
        raise InvalidArgument(
            f"queue {name!r} is not partitioned (no partition_concurrency); "
            f"partition_key={partition_key!r} is not allowed"
        )
    assert isinstance(priority, int)
    return Placement(name, priority, partition_key if isinstance(partition_key, str) else None)


def delay_seconds(delay: object) -> float | None:
    """A start delay in seconds (a number or ``timedelta``, >= 0), or None.

    Example::

        delay_seconds(timedelta(minutes=5))  # 300.0
    """
    if delay is None:
        return None
    if delay == 0 and not isinstance(delay, bool):
        return 0.0
    value = seconds(delay, "delay")
    assert value is not None and math.isfinite(value)
    return value
