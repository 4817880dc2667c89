# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Transactional steps: the step's writes and its checkpoint commit in one transaction.

Two kinds of failure are not the step's fault and run it again in a new transaction:

* a serialisation failure or a deadlock (SQLSTATE 40001 / 40P01): Postgres rolled the
  transaction back and asks for a retry; up to :data:`SERIALISATION_ATTEMPTS` transactions,
  with jittered backoff, before the step fails like any other error (one step attempt);
* a lost connection: the transaction rolled back or, if the commit itself was cut, may have
  committed, and the checkpoint tells which (for up to one lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import TYPE_CHECKING, Any

from ._checkpoint import Checkpoints
from ._db import connection_lost, log
from ._defs import StepDef
from ._lease import LeaseLost
from ._runtime import COMPLETED
from ._serde import encode

if TYPE_CHECKING:
    from ._store import Store

SERIALISATION_ATTEMPTS = 10
_RETRYABLE = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


async def run_transaction(
    writes: Checkpoints,
    sdef: StepDef,
    seq: int,
    attempt: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run a transactional step to its committed result (or its own error)."""
    run_id = writes.run.id
    deadline = time.monotonic() + writes.lease
    delay = 0.05
    conflicts = 0
    while True:
        try:
            return await _once(writes, sdef, seq, attempt, args, kwargs)
        except Exception as exc:
            if _sqlstate(exc) in _RETRYABLE:
                conflicts += 1
                if conflicts >= SERIALISATION_ATTEMPTS:
                    raise
                log.info(
                    "flow: run %s: step %r hit %s; running it again in a new transaction",
                    run_id,
                    sdef.name,
                    _sqlstate(exc),
                )
                await asyncio.sleep(min(0.5, 0.005 * 2**conflicts) * (0.5 + random.random() / 2))
                await writes.check_held()
                continue
            if not connection_lost(exc):
                raise
            if time.monotonic() + delay > deadline:
                log.warning("flow: run %s: step %r lost its connection", run_id, sdef.name)
                raise LeaseLost() from exc
            log.warning(
                "flow: run %s: step %r lost its connection (%s); retrying",
                run_id,
                sdef.name,
                type(exc).__name__,
            )
        await asyncio.sleep(delay * (0.5 + random.random() / 2))
        delay = min(delay * 2, 1.0)
        row = await writes.recorded(seq)
        if row is None or not row["held"]:
            raise LeaseLost()
        if row["status"] == COMPLETED:  # the cut commit went through
            out = row["output"]
            return None if out is None else writes.serializer.loads(out)


async def _once(
    writes: Checkpoints,
    sdef: StepDef,
    seq: int,
    attempt: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    from sqlalchemy.ext.asyncio import AsyncSession

    await writes.flush_marks()
    store = writes.store
    run = writes.run
    engine = store.engine()
    started = time.monotonic()
    out_text: str | None = None
    async with engine.connect() as conn:
        try:
            if sdef.isolation_level is not None:
                await conn.execution_options(isolation_level=sdef.isolation_level)
            async with conn.begin():
                session = AsyncSession(bind=conn, expire_on_commit=False)
                try:
                    call = sdef.fn(*args[:1], session, *args[1:], **kwargs)
                    if sdef.timeout is not None:
                        async with asyncio.timeout(sdef.timeout):
                            result = await call
                    else:
                        result = await call
                    await session.flush()
                    out_text = encode(
                        writes.serializer, result, f"the result of step {sdef.name!r}"
                    )
                    written = await store.record_transaction(
                        conn,
                        run.id,
                        run.execution,
                        seq,
                        sdef.name,
                        attempt,
                        out_text,
                        time.monotonic() - started,
                    )
                    if not written:
                        raise LeaseLost()
                finally:
                    await session.close()
        except Exception as exc:
            # A connection cut mid-operation may go back to the pool in a broken state.
            if connection_lost(exc) and not conn.invalidated:
                with contextlib.suppress(Exception):
                    await conn.invalidate()
            raise
    return writes.serializer.loads(out_text)


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE behind a SQLAlchemy error (or asyncpg's own), if any."""
    for err in (exc, getattr(exc, "orig", None)):
        while err is not None:
            state = getattr(err, "sqlstate", None)
            if isinstance(state, str):
                return state
            err = err.__cause__
    return None


async def run_plain(
    store: Store, sdef: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """A transactional step called outside a workflow: its own transaction, no checkpoint."""
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession(store.engine(), expire_on_commit=False) as session:
        async with session.begin():
            return await sdef.fn(*args[:1], session, *args[1:], **kwargs)
