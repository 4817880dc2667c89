# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Replay-or-execute for steps, durable sleeps, signal waits and signals sent by workflows."""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from ._context import (
    COMPLETED,
    CURRENT,
    FAILED,
    IN_STEP,
    RETRYING,
    WAITING,
    FlowContext,
    LogEntry,
)
from ._defs import StepDef
from ._errors import NotSerialisable, SignalTimeout, StepFailed
from ._serde import encode, error_text
from ._signals import sent_error

INLINE_SLEEP = 0.25  # sleeps shorter than this stay in-process (still durable)


PlainTx = Callable[[StepDef, tuple[Any, ...], dict[str, Any]], Coroutine[Any, Any, Any]]


def make_step_wrapper(sdef: StepDef, plain_tx: PlainTx) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The function that replaces a ``@flow.step``-decorated coroutine function.

    The position in the log is taken synchronously at call time, before the coroutine is
    first awaited, so ``asyncio.gather(a(ctx), b(ctx))`` numbers ``a`` then ``b`` on every
    execution.
    """
    fn = sdef.fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        ctx = CURRENT.get()
        if args and isinstance(args[0], FlowContext):
            ctx = args[0]
        if ctx is None or IN_STEP.get():
            if sdef.transactional:
                return plain_tx(sdef, args, kwargs)
            return sdef.fn(*args, **kwargs)
        seq, entry = ctx._next(sdef.name, "transaction" if sdef.transactional else "step")
        if entry is not None and entry.status in (COMPLETED, FAILED):
            return _replayed(ctx, sdef, seq, entry)
        return execute_step(ctx, sdef, seq, entry, args, kwargs)

    wrapper.__forktex_step__ = sdef  # type: ignore[attr-defined]
    return wrapper


async def _replayed(ctx: FlowContext, sdef: StepDef, seq: int, entry: LogEntry) -> Any:
    if entry.status == COMPLETED:
        return None if entry.output is None else ctx._driver.serializer.loads(entry.output)
    raise recorded_failure(ctx, sdef.name, seq, entry)


def recorded_failure(ctx: FlowContext, name: str, seq: int, entry: LogEntry) -> StepFailed:
    """Rebuild the :class:`StepFailed` recorded for a step."""
    doc: Any = ctx._driver.serializer.loads(entry.error) if entry.error else {}
    if not isinstance(doc, dict):
        doc = {}
    return StepFailed(
        name, str(doc.get("type", "Error")), str(doc.get("message", "")), entry.attempt, seq
    )


async def execute_step(
    ctx: FlowContext,
    sdef: StepDef,
    seq: int,
    entry: LogEntry | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run a step not yet completed: retries with backoff, checkpoint, return the JSON value.

    Before each attempt the execution confirms it still holds the run (one indexed read),
    so no step starts after ``flow.cancel()`` returned, even if its notification is lost.
    """
    driver = ctx._driver
    serializer = driver.serializer
    attempt = entry.attempt + 1 if entry is not None else 1
    kind = "transaction" if sdef.transactional else "step"
    ctx._begin(sdef.name)
    token = IN_STEP.set(True)
    try:
        confirmed = False
        if ctx._pending:
            await driver.flush_pending(ctx)  # a fenced write: it confirms the lease too
            confirmed = True
        while True:
            if not confirmed:
                await driver.check_held()
            confirmed = False
            started = time.monotonic()
            try:
                if sdef.transactional:
                    return await driver.run_transaction(ctx, sdef, seq, attempt, args, kwargs)
                if sdef.timeout is not None:
                    async with asyncio.timeout(sdef.timeout):
                        result = await sdef.fn(*args, **kwargs)
                else:
                    result = await sdef.fn(*args, **kwargs)
            except SystemExit as exc:
                driver.exited(exc)
                raise
            except sdef.retry_on as exc:
                if isinstance(exc, NotSerialisable | asyncio.CancelledError):
                    raise
                duration = time.monotonic() - started
                if attempt < sdef.max_attempts:
                    await driver.record_step(
                        seq,
                        sdef.name,
                        kind,
                        RETRYING,
                        attempt,
                        None,
                        error_text(exc, attempt),
                        duration,
                    )
                    await asyncio.sleep(sdef.delay(attempt, random.random()))
                    attempt += 1
                    continue
                await driver.record_step(
                    seq,
                    sdef.name,
                    kind,
                    FAILED,
                    attempt,
                    None,
                    error_text(exc, attempt),
                    duration,
                )
                raise StepFailed(sdef.name, type(exc).__name__, str(exc), attempt, seq) from exc
            except Exception as exc:
                if isinstance(exc, NotSerialisable):
                    raise
                await driver.record_step(
                    seq,
                    sdef.name,
                    kind,
                    FAILED,
                    attempt,
                    None,
                    error_text(exc, attempt),
                    time.monotonic() - started,
                )
                raise StepFailed(sdef.name, type(exc).__name__, str(exc), attempt, seq) from exc
            text = encode(serializer, result, f"the result of step {sdef.name!r}")
            await driver.record_step(
                seq, sdef.name, kind, COMPLETED, attempt, text, None, time.monotonic() - started
            )
            return serializer.loads(text)
    finally:
        IN_STEP.reset(token)
        ctx._end()


async def durable_sleep(ctx: FlowContext, seq: int, entry: LogEntry | None, seconds: float) -> None:
    """``ctx.sleep``: record the wake-up time once (database clock); suspend until then."""
    driver = ctx._driver
    if entry is not None and entry.output is not None:
        wake = float(driver.serializer.loads(entry.output))
    else:
        wake = driver.now() + seconds
        ctx._begin("sleep")
        try:
            if ctx._pending:
                await driver.flush_pending(ctx)
            await driver.record_step(seq, "sleep", "sleep", COMPLETED, 1, repr(wake), None, 0.0)
        finally:
            ctx._end()
    remaining = wake - driver.now()
    if remaining <= 0:
        return
    if remaining <= INLINE_SLEEP:
        ctx._begin("sleep")
        try:
            await asyncio.sleep(remaining)
        finally:
            ctx._end()
        return
    await ctx._suspend(wake, None)


async def wait_signal(
    ctx: FlowContext,
    seq: int,
    entry: LogEntry | None,
    name: str,
    timeout: float | None,  # noqa: ASYNC109
) -> Any:
    """``ctx.wait_for_signal``: replay, consume a stored signal, or suspend until one comes."""
    driver = ctx._driver
    serializer = driver.serializer
    step_name = f"signal:{name}"
    if entry is not None and entry.status == COMPLETED:
        return None if entry.output is None else serializer.loads(entry.output)
    if entry is not None and entry.status == FAILED:
        raise SignalTimeout(f"no signal {name!r} arrived before the timeout (recorded)", seq)
    ctx._begin(step_name)
    try:
        if ctx._pending:
            await driver.flush_pending(ctx)
        if entry is not None and entry.status == WAITING and entry.output is not None:
            deadline = serializer.loads(entry.output).get("deadline")
        else:
            deadline = None if timeout is None else driver.now() + timeout
        found, payload = await driver.consume_signal(seq, name, step_name)
        if found:
            return None if payload is None else serializer.loads(payload)
        if deadline is not None and driver.now() >= deadline:
            await driver.record_step(
                seq,
                step_name,
                "signal",
                FAILED,
                1,
                None,
                '{"type":"SignalTimeout","message":"no signal before the timeout"}',
                0.0,
            )
            raise SignalTimeout(f"no signal {name!r} arrived within {timeout} s", seq)
        if entry is None:
            await driver.record_step(
                seq,
                step_name,
                "signal",
                WAITING,
                1,
                serializer.dumps({"deadline": deadline}),
                None,
                0.0,
            )
    finally:
        ctx._end()
    return await ctx._suspend(deadline, name)


async def durable_send(
    ctx: FlowContext,
    seq: int,
    entry: LogEntry | None,
    target: uuid.UUID,
    name: str,
    payload: str,
) -> int:
    """``ctx.send_signal``: the recorded outcome on replay, else send and record at once."""
    driver = ctx._driver
    if entry is None or entry.status not in (COMPLETED, FAILED):
        ctx._begin(f"send:{name}")
        try:
            if ctx._pending:
                await driver.flush_pending(ctx)
            status, text = await driver.send_signal(seq, target, name, payload)
        finally:
            ctx._end()
    else:
        status = entry.status
        text = (entry.output if status == COMPLETED else entry.error) or "null"
    if status == COMPLETED:
        return int(json.loads(text))
    doc = json.loads(text)
    raise sent_error(doc if isinstance(doc, dict) else {}, name)
