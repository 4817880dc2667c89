# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""All of flow's persistence: one :class:`Store` per :class:`Flow`.

The store owns the database settings and every connection (:mod:`._connections`), and
has one method per operation; the statements are in :mod:`._sql`. ``Flow``, the worker,
the leader, the heartbeat thread and the run driver call these methods and never see a
DSN. Methods of executions are fenced on the execution id (see :mod:`._sql`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from . import _signals as signals
from . import _sql as sql
from ._claim import ClaimedRun, EagerSlot, claim, claim_queued, claimed_runs
from ._connections import Connections
from ._db import TRANSIENT, log, retry_read
from ._errors import (
    FlowError,
    ResultTimeout,
    RunFinished,
    RunNotFound,
    RunNotRetryable,
)
from ._listener import Listener
from ._queues import Placement
from ._records import FINISHED_VALUES
from ._schema import LOCK_CLASS, LOCK_LEADER
from ._settings import Settings
from ._store_children import ChildStore
from ._store_leader import LeaderStore
from ._store_lineage import LineageStore
from ._store_queues import QueueStore
from ._store_schedules import ScheduleStore
from ._store_views import ViewStore
from ._unavailable import Target

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

FORGET_WITHIN = 2.0  # a stopping worker deletes its row within this, or leaves it to expire

Marks = Sequence[tuple[int, str, str]]  # (seq, name, kind) of markers riding along


def _marked(plain: str, one: str, many: str, marks: Marks) -> tuple[str, tuple[Any, ...]]:
    """The statement for ``marks`` (none, one, several) and the markers' parameters."""
    if not marks:
        return plain, ()
    if len(marks) == 1:
        return one, tuple(marks[0])
    return many, ([m[0] for m in marks], [m[1] for m in marks], [m[2] for m in marks])


class Store:
    """Flow's tables, behind one method per operation.

    Example::

        store = Store(Settings("postgresql+asyncpg://user:pass@host/db"))
        run_id = await store.insert_run(uuid.uuid4(), "cloud.deploy", 1, "{}", None, None, "{}")
        row = await store.run(run_id)
        await store.close()
    """

    def __init__(self, settings: Settings) -> None:
        self._connections = Connections(
            settings.database_url, settings.connect_timeout, settings.command_timeout
        )
        stale = settings.stale_after
        self._get_run = sql.get_run(stale)
        self._list_runs = sql.list_runs(stale, by_metadata=False)
        self._list_runs_by_metadata = sql.list_runs(stale, by_metadata=True)
        self._stale = stale
        self.queues = QueueStore(self._connections)
        self.views = ViewStore(self._connections, stale)
        self.leadership = LeaderStore()
        self.lineage = LineageStore(self._connections)
        self.children = ChildStore(self._connections, stale)
        self.schedules = ScheduleStore(self._connections)
        self._identity: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        return f"Store({self._connections.masked_url!r})"

    @property
    def dsn(self) -> str:
        """The libpq DSN (for tools that open a connection of their own)."""
        return self._connections.dsn

    @property
    def masked_url(self) -> str:
        """The database URL, password masked."""
        return self._connections.masked_url

    @property
    def target(self) -> Target:
        """The server (address, database, user, timeouts), as error messages name it."""
        return self._connections.target

    def check_open(self) -> None:
        """Raise :class:`FlowClosed` once the store was closed."""
        self._connections.check_open()

    async def connect(self) -> None:
        """Create or migrate the schema and open the client pool now."""
        await self._connections.client()

    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine of the running event loop (transactional steps)."""
        return self._connections.engine()

    async def dedicated(self, **server_settings: str) -> asyncpg.Connection:
        """A connection of its own, for a session that must not be shared."""
        return await self._connections.dedicated(**server_settings)

    def work_listener(
        self, on_work: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> Listener:
        """A LISTEN connection on the work channel (new or woken runs, cancellations)."""
        return self._connections.listener({sql.WORK_CHANNEL: on_work}, on_reconnect)

    async def close(self) -> None:
        """Close every connection of client calls. Idempotent."""
        await self._connections.close()

    # -- clients ----------------------------------------------------------------------------

    async def insert_run(
        self,
        run_id: uuid.UUID,
        workflow: str,
        version: int,
        input: str,
        idempotency_key: str | None,
        timeout: float | None,  # noqa: ASYNC109 - the run's workflow timeout, stored
        metadata: str,
        place: Placement = Placement(),  # noqa: B008 - frozen, shared safely
        dedup_key: str | None = None,
        delay: float | None = None,
        not_before: datetime | None = None,
        conn: asyncpg.Connection | None = None,
        slot: EagerSlot | None = None,
    ) -> uuid.UUID:
        """Insert a pending run and wake the workers; the existing run for a reused
        idempotency key or a live dedup key. ``conn`` runs it in the caller's transaction.
        ``slot`` (for a due run without keys, outside a caller's transaction: this
        process's worker has a free slot for it) claims it in the same call (see
        :class:`~._claim.EagerSlot`)."""
        args = (
            run_id,
            workflow,
            version,
            input,
            idempotency_key,
            timeout,
            metadata,
            place.queue,
            place.priority,
            place.partition_key,
            dedup_key,
            delay,
            not_before,
        )
        db: Any = conn if conn is not None else await self._connections.client()
        if slot is not None and await self._start_claimed(db, args, slot):
            return run_id
        for _ in range(10):
            row = await db.fetchrow(sql.START, *args)
            if row is not None:
                return uuid.UUID(str(row[0]))
            if idempotency_key is not None:
                existing = await db.fetchval(sql.IDEMPOTENT_RUN, workflow, idempotency_key)
                if existing is not None:
                    return uuid.UUID(str(existing))
            if dedup_key is not None:
                existing = await db.fetchval(sql.DEDUP_RUN, workflow, dedup_key)
                if existing is not None:
                    return uuid.UUID(str(existing))
            # the run holding the key finished (or was pruned) in between: insert again
        raise FlowError("start kept racing with the run holding its key; retry the call")

    async def _start_claimed(
        self, pool: asyncpg.Pool, args: tuple[Any, ...], slot: EagerSlot
    ) -> bool:
        """Insert run ``args`` (the arguments of ``sql.START``) and claim for ``slot`` in one
        call; False when the call failed on the server (nothing was written: the caller
        starts the run the ordinary way)."""
        runs: list[ClaimedRun] = []
        try:
            # START's id, workflow, version, input, then (no idempotency key) timeout,
            # metadata, queue, priority, partition key
            claim = slot.claim_args()
            rows = await pool.fetch(sql.START_CLAIMED, *args[:4], *args[5:10], *claim)
            runs = claimed_runs(rows)
            return True
        except asyncpg.PostgresError as exc:
            # e.g. a deadlock of the claim's queue lock: it was rolled back with the insert
            log.info("flow: an eager start fell back to a plain one (%s)", type(exc).__name__)
            return False
        finally:
            slot.take(runs)

    async def database_identity(self, *, fresh: bool = False) -> tuple[Any, ...]:
        """Which database flow's connections are on (name, OID, server start time; see
        ``sql.DATABASE_IDENTITY``), read once and kept, or read again with ``fresh``."""
        if fresh or self._identity is None:
            pool = await self._connections.client()
            row = await retry_read(
                lambda: pool.fetchrow(sql.DATABASE_IDENTITY), what="database identity"
            )
            self._identity = tuple(row)
        return self._identity

    async def latest_version(self, workflow: str) -> int | None:
        """The newest version of ``workflow`` a worker announces (or a run has), if any."""
        pool = await self._connections.client()
        value = await pool.fetchval(sql.LATEST_VERSION, workflow)
        return None if value is None else int(value)

    async def run(self, run_id: uuid.UUID) -> asyncpg.Record | None:
        """The row of one run (JSON columns as text), or None."""
        pool = await self._connections.client()
        return await retry_read(lambda: pool.fetchrow(self._get_run, run_id), what="get_run")

    async def runs(
        self,
        workflow: str | None,
        statuses: list[str] | None,
        created_after: datetime | None,
        created_before: datetime | None,
        limit: int,
        offset: int,
        metadata: str | None,
        queue: str | None = None,
    ) -> list[asyncpg.Record]:
        """Rows of runs, newest first; ``metadata`` (JSON text) filters by containment."""
        statement = self._list_runs if metadata is None else self._list_runs_by_metadata
        extra = () if metadata is None else (metadata,)
        pool = await self._connections.client()
        args = (workflow, statuses, created_after, created_before, limit, offset, queue, *extra)
        rows: list[asyncpg.Record] = await retry_read(
            lambda: pool.fetch(statement, *args), what="list_runs"
        )
        return rows

    async def history(self, run_id: uuid.UUID) -> list[asyncpg.Record] | None:
        """The step rows of a run in order, or None when there is no such run."""
        pool = await self._connections.client()

        async def read() -> tuple[Any, list[asyncpg.Record]]:
            async with pool.acquire() as conn:
                exists = await conn.fetchval(sql.RUN_EXISTS, run_id)
                steps = await conn.fetch(sql.HISTORY, run_id)
                return exists, steps

        exists, rows = await retry_read(read, what="history")
        return None if exists is None else rows

    async def wait_finished(self, run_id: uuid.UUID, limit: float | None) -> asyncpg.Record:
        """Wait (woken by NOTIFY) until the run has finished; its status, output, error.

        Raises :class:`RunNotFound` and, after ``limit`` seconds, :class:`ResultTimeout`.
        """
        pool = await self._connections.client()
        await self._connections.watch_finished()
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            fut = self._connections.expect_finished(run_id)
            try:
                row = await retry_read(
                    lambda: pool.fetchrow(sql.OUTCOME, run_id),
                    what="result read",
                )
                if row is None:
                    raise RunNotFound(run_id)
                if row["status"] in FINISHED_VALUES:
                    return row
                wait = 5.0
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        raise ResultTimeout(f"run {run_id} did not finish within {limit} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, wait)
            finally:
                self._connections.forget_finished(run_id, fut)

    async def send_signal(self, run_id: uuid.UUID, name: str, payload: str) -> int:
        """Store a signal for a run and wake it if it waits; the signal id."""
        return await signals.send(await self._connections.client(), run_id, name, payload)

    async def cancel(self, run_id: uuid.UUID) -> None:
        """Cancel a run, then its live children that follow their parent (down the tree);
        :class:`RunNotFound` / :class:`RunFinished` otherwise."""
        pool = await self._connections.client()
        if await pool.fetchrow(sql.CANCEL, run_id) is not None:
            await self.children.cancel_tree(run_id)
            return
        status = await pool.fetchval(sql.RUN_STATUS, run_id)
        if status is None:
            raise RunNotFound(run_id)
        raise RunFinished(run_id, status, "cancel it")

    async def retry(self, run_id: uuid.UUID) -> None:
        """Put a failed, dead or cancelled run back to work, re-running its ending failure."""
        pool = await self._connections.client()
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(sql.LOCK_FOR_RETRY, run_id)
            if row is None:
                raise RunNotFound(run_id)
            if row["status"] not in ("failed", "dead", "cancelled"):
                raise RunNotRetryable(
                    f"run {run_id} is {row['status']}; only failed, dead or cancelled runs can "
                    "be retried"
                )
            await conn.execute(sql.FORGET_ENDING_FAILURE, run_id, row["error"] or "{}")
            await conn.fetchrow(sql.RETRY, run_id)

    async def leader(self) -> str | None:
        """The id of the worker holding the leader lock, if any."""
        pool = await self._connections.client()
        value = await pool.fetchval(sql.LEADER_OF, LOCK_CLASS, LOCK_LEADER)
        return None if value is None else str(value)

    # -- the worker -------------------------------------------------------------------------

    async def open_worker(self, max_size: int) -> None:
        """Schema and the worker's pool (safe to repeat after a failed start)."""
        await self._connections.ensure_schema()
        await self._connections.open_workers(max_size)

    async def register_worker(
        self, worker_id: str, hostname: str, pid: int, keys: list[str]
    ) -> float:
        """Insert or refresh the worker's row; the database's time (epoch seconds)."""
        value = await self._connections.workers.fetchval(
            sql.REGISTER_WORKER, worker_id, hostname, pid, json.dumps(keys)
        )
        return float(value)

    async def close_worker(self, worker_id: str) -> None:
        """Delete the worker's row (best effort) and close the worker's pool."""
        if self._connections.workers_open:
            with contextlib.suppress(*TRANSIENT, asyncpg.PostgresError, TimeoutError):
                await asyncio.wait_for(
                    self._connections.workers.execute(sql.FORGET_WORKER, worker_id), FORGET_WITHIN
                )
        await self._connections.close_workers()

    async def claim(
        self,
        limit: int,
        worker: str,
        keys: list[str],
        lease: float,
        exclude: list[uuid.UUID],
        timeouts: list[float | None] | None = None,
    ) -> list[ClaimedRun]:
        """Claim up to ``limit`` runnable runs of ``keys``, except the runs in ``exclude``
        (``timeouts``: the keys' workflow timeouts, for runs started without one)."""
        return await claim(self._connections.workers, limit, worker, keys, lease, exclude, timeouts)

    async def claim_queued(
        self,
        limit: int,
        worker: str,
        keys: list[str],
        lease: float,
        exclude: list[uuid.UUID],
        active: dict[str, int],
        timeouts: list[float | None] | None = None,
    ) -> list[ClaimedRun]:
        """:meth:`claim`, plus admissions to queues; ``active`` counts this worker's runs
        per queue (its ``worker_concurrency`` applies to them)."""
        return await claim_queued(
            self._connections.workers, limit, worker, keys, lease, exclude, active, timeouts
        )

    async def heartbeat(
        self,
        conn: asyncpg.Connection,
        worker_id: str,
        lease: float,
        held: list[tuple[uuid.UUID, uuid.UUID]],
        hostname: str,
        pid: int,
        versions: str,
        within: float,
    ) -> tuple[float, set[uuid.UUID]]:
        """Refresh the worker's row, renew the leases of ``held`` (run id, execution id).

        Returns the database's time and the runs whose lease was renewed.
        """
        row = await asyncio.wait_for(
            conn.fetchrow(
                sql.HEARTBEAT,
                worker_id,
                lease,
                [r for r, _ in held],
                [e for _, e in held],
                hostname,
                pid,
                versions,
            ),
            within,
        )
        return row["db_now"], set(row["renewed"])

    async def held(
        self, conn: asyncpg.Connection, asked: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> set[uuid.UUID]:
        """The runs of ``asked`` (run id, execution id) still held by that execution."""
        rows = await conn.fetch(sql.HELD, [k[0] for k in asked], [k[1] for k in asked])
        return {row["id"] for row in rows}

    # -- executions (all fenced on the execution) -------------------------------------------

    async def recorded(
        self, run_id: uuid.UUID, execution: uuid.UUID, seq: int
    ) -> asyncpg.Record | None:
        """The checkpoint at ``seq`` (status, output) and whether ``execution`` holds the run."""
        row: asyncpg.Record | None = await self._connections.workers.fetchrow(
            sql.RECORDED, run_id, seq, execution
        )
        return row

    async def record_step(
        self,
        run_id: uuid.UUID,
        execution: uuid.UUID,
        values: tuple[int, str, str, str, int, str | None, str | None, float],
        marks: Marks,
    ) -> bool:
        """Upsert a checkpoint (seq, name, kind, status, attempt, output, error, duration)
        with the pending ``marks``; False when nothing was written (run not held, or the
        position already holds a final entry)."""
        statement, extra = _marked(
            sql.RECORD_STEP, sql.RECORD_STEP_MARK1, sql.RECORD_STEP_MARKED, marks
        )
        res = await self._connections.workers.execute(statement, run_id, *values, execution, *extra)
        return str(res).endswith(" 1")

    async def flush_marks(self, run_id: uuid.UUID, execution: uuid.UUID, marks: Marks) -> None:
        """Write pending markers now."""
        await self._flush_marks_on(self._connections.workers, run_id, execution, marks)

    async def complete(
        self, run_id: uuid.UUID, execution: uuid.UUID, output: str, marks: Marks
    ) -> bool:
        """Mark the run succeeded with ``output`` (and write ``marks``); False if not held."""
        statement, extra = _marked(sql.COMPLETE, sql.COMPLETE_MARK1, sql.COMPLETE_MARKED, marks)
        row = await self._connections.workers.fetchrow(statement, run_id, output, execution, *extra)
        return row is not None

    async def fail(self, run_id: uuid.UUID, execution: uuid.UUID, error: str) -> bool:
        """Mark the run failed with the ``error`` document; False if not held."""
        row = await self._connections.workers.fetchrow(sql.FAIL, run_id, error, execution)
        return row is not None

    async def suspend(
        self,
        run_id: uuid.UUID,
        execution: uuid.UUID,
        wake: float | None,
        signals: list[str],
        marks: Marks,
    ) -> bool:
        """Put the run aside until ``wake`` (epoch s) or one of ``signals``; False if not held.

        A signal that arrived meanwhile wakes it at once (same transaction, no lost wake-up;
        waiting for children, it takes the parent's child lock first, see ``_sql.children``).
        """
        async with self._connections.workers.acquire() as conn, conn.transaction():
            if marks:
                await self._flush_marks_on(conn, run_id, execution, marks)
            if await conn.fetchval(sql.SUSPEND, run_id, wake, execution) is None:
                return False
            if any(name.startswith(sql.CHILD_SIGNAL) for name in signals):
                await conn.execute(sql.CHILD_LOCK, run_id)
            if signals and await conn.fetchval(sql.SIGNAL_PENDING, run_id, signals):
                await conn.fetchval(sql.WAKE_NOW, run_id)
        return True

    async def hand_back(
        self, run_id: uuid.UUID, execution: uuid.UUID, penalise: bool, max_attempts: int
    ) -> str | None:
        """Give the run back for another execution; its new status, None if not held."""
        row = await self._connections.workers.fetchrow(
            sql.HAND_BACK, run_id, execution, penalise, max_attempts
        )
        return None if row is None else str(row["status"])

    async def consume_signal(
        self, run_id: uuid.UUID, execution: uuid.UUID, seq: int, name: str, step_name: str
    ) -> tuple[bool, str | None]:
        """Consume the oldest ``name`` signal into checkpoint ``seq``; idempotent per position.

        ``(False, None)`` when there is none (or ``execution`` lost the run).
        """
        workers = self._connections.workers
        return await signals.consume(workers, run_id, name, seq, step_name, execution)

    async def send_recorded(
        self,
        run_id: uuid.UUID,
        execution: uuid.UUID,
        seq: int,
        target: uuid.UUID,
        name: str,
        payload: str,
    ) -> tuple[str, str] | None:
        """Send ``name`` to ``target`` and checkpoint it at ``seq``, atomically.

        ``("completed", signal id)`` or ``("failed", error document)``, or None when
        ``execution`` no longer holds the run (nothing was sent).
        """
        workers = self._connections.workers
        return await signals.send_recorded(workers, run_id, execution, seq, target, name, payload)

    async def record_transaction(
        self,
        conn: AsyncConnection,
        run_id: uuid.UUID,
        execution: uuid.UUID,
        seq: int,
        name: str,
        attempt: int,
        output: str,
        duration: float,
    ) -> bool:
        """Checkpoint a transactional step inside its own transaction ``conn``."""
        from sqlalchemy import text

        res = await conn.execute(
            text(sql.RECORD_TRANSACTION),
            {
                "run": run_id,
                "seq": seq,
                "name": name,
                "attempt": attempt,
                "output": output,
                "dur": duration,
                "execution": execution,
            },
        )
        return bool(res.rowcount == 1)

    async def _flush_marks_on(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        run_id: uuid.UUID,
        execution: uuid.UUID,
        marks: Marks,
    ) -> None:
        seqs, names, kinds = [m[0] for m in marks], [m[1] for m in marks], [m[2] for m in marks]
        await conn.execute(sql.FLUSH_MARKS, run_id, execution, seqs, names, kinds)

    # -- run events and forks ---------------------------------------------------------------

    async def wait_event(
        self, run_id: uuid.UUID, name: str, limit: float | None
    ) -> asyncpg.Record | None:
        """Wait (woken by NOTIFY) until event ``name`` of the run is set or the run finished.

        The row (status, found, value), or None after ``limit`` seconds; raises
        :class:`RunNotFound`. Waiters share the LISTEN connection of :meth:`wait_finished`.
        """
        pool = await self._connections.client()
        await self._connections.watch_finished()
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            fut = self._connections.expect_finished(run_id)
            try:
                row: asyncpg.Record | None = await retry_read(
                    lambda: pool.fetchrow(sql.EVENT_OF, run_id, name),
                    what="event read",
                )
                if row is None:
                    raise RunNotFound(run_id)
                if row["found"] or row["status"] in FINISHED_VALUES:
                    return row
                wait = 5.0
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, wait)
            finally:
                self._connections.forget_finished(run_id, fut)
