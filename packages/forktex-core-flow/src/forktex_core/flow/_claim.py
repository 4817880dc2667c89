# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Claiming: what a worker gets when it claims runs.

One statement (:data:`._sql.CLAIM`, which :func:`claim` sends; the store runs it on the
worker's pool) claims up to ``n`` runs with ``FOR UPDATE SKIP LOCKED``, starts one
*execution* per run (a fresh id in ``runs.execution``), sets its lease and returns each run
together with its whole checkpoint log, so replay needs no further reads. Every later write
of that execution is fenced on its execution id: a zombie execution (reaped, cancelled, or
re-claimed) can never checkpoint again, even on the same worker. Heartbeats renew the leases
of the executions a worker is really driving, by (run id, execution id), and nothing else. A
worker only claims runs whose (workflow, version) it has registered: the claim probes the
``(workflow, version, wake_at)`` index once per registered pair, so runs of versions this
worker lacks are never scanned, however many pile up. A claim of another shape (by queue,
say) is a new statement in :mod:`._sql` and a new function here.

An *eager* start (:class:`EagerSlot`) inserts its run and claims in the same call: a run
started in a process whose worker has a free slot for it begins there at once, without the
round trip through the work notification and another connection's claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from . import _sql as sql
from ._runtime import LogEntry


@dataclass(slots=True)
class ClaimedRun:
    """A run this worker now holds through a new execution, with its preloaded log."""

    id: uuid.UUID
    execution: uuid.UUID
    workflow: str
    version: int
    input: str | None
    recovery_attempts: int
    deadline: float | None
    log: dict[int, LogEntry]
    metadata: str | None = None
    db_now: float = 0.0
    queue: str | None = None


def claimed_runs(rows: Iterable[asyncpg.Record]) -> list[ClaimedRun]:
    """The runs of the rows a claim returned, each with its checkpoint log."""
    claimed: list[ClaimedRun] = []
    for row in rows:
        log: dict[int, LogEntry] = {}
        seqs = row["seqs"]
        if seqs:
            names, kinds, statuses = row["names"], row["kinds"], row["statuses"]
            attempts, outputs, errors = row["attempts"], row["outputs"], row["errors"]
            for i, seq in enumerate(seqs):
                log[seq] = LogEntry(
                    names[i], kinds[i], statuses[i], attempts[i], outputs[i], errors[i]
                )
        claimed.append(
            ClaimedRun(
                row["id"],
                row["execution"],
                row["workflow"],
                row["version"],
                row["input"],
                row["recovery_attempts"],
                row["deadline"],
                log,
                row["metadata"],
                row["db_now"],
                row["queue"],
            )
        )
    return claimed


async def claim(
    conn: asyncpg.Connection | asyncpg.Pool,
    limit: int,
    worker: str,
    keys: list[str],
    lease: float,
    exclude: list[uuid.UUID],
    timeouts: list[float | None] | None = None,
) -> list[ClaimedRun]:
    """Claim up to ``limit`` runnable runs of ``keys``, except the runs in ``exclude``;
    ``timeouts`` are the keys' workflow timeouts (for runs started without one).

    Example::

        runs = await claim(pool, 16, "host-a:4242:9f3c1e", ["cloud.deploy:1"], 5.0, [])
    """
    return claimed_runs(
        await conn.fetch(sql.CLAIM, *sql.claim_args(limit, worker, keys, lease, exclude, timeouts))
    )


async def claim_queued(
    conn: asyncpg.Connection | asyncpg.Pool,
    limit: int,
    worker: str,
    keys: list[str],
    lease: float,
    exclude: list[uuid.UUID],
    active: dict[str, int],
    timeouts: list[float | None] | None = None,
) -> list[ClaimedRun]:
    """:func:`claim` once queues exist: plain runs, then admissions to each queue under its
    row lock (exact global, partition and rate limits); ``active`` is this worker's running
    runs per queue, held to each queue's ``worker_concurrency``.

    Example::

        runs = await claim_queued(pool, 16, "host-a:4242:9f3c1e", ["send.email:1"], 5.0, [],
                                  {"emails": 2})
    """
    names = list(active)
    counts = [active[n] for n in names]
    args = sql.claim_args(limit, worker, keys, lease, exclude, timeouts)
    return claimed_runs(await conn.fetch(sql.CLAIM_QUEUED, *args, names, counts))


class EagerSlot(Protocol):
    """A free slot of this process's worker, reserved for one run being started here.

    The start inserts the run and, when its queue admits it at once (the same counts as
    :func:`claim_queued`, under the queue's lock; only a run first in its queue's admission
    order), claims it for the worker in the same call (schema migration 11); otherwise the
    run stays pending and the workers are notified. :meth:`take` is called exactly once,
    after the call: with the run claimed, else with ``[]``; it frees the reservation.

    Example::

        slot = worker.slot("send.email", 1)
        if slot is not None:
            worker_id, lease, queues, active = slot.claim_args()
    """

    def claim_args(self) -> tuple[str, float, list[str], list[int]]:
        """The claim's worker id and lease, and this worker's running runs per queue."""
        ...

    def take(self, runs: list[ClaimedRun]) -> None:
        """Hand the runs claimed to the worker (``[]``: none, or the start failed); free
        the slot."""
        ...


class SlotHost(Protocol):
    """What can lend an eager start a slot: the worker running in this process.

    Example::

        slot = worker.slot("send.email", 1)  # None: no free slot, or that version not served
    """

    def slot(self, workflow: str, version: int) -> EagerSlot | None:
        """A reserved slot for a run of ``workflow`` ``version``, or None when this worker
        cannot take it now."""
        ...
