# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Replay-or-execute: steps, recorded values, durable sleeps, signal waits and signals sent.

Each durable action takes its position in the run's log synchronously, when it is called
(so ``asyncio.gather(a(ctx), b(ctx))`` numbers ``a`` then ``b`` on every execution), then
either returns what the log recorded at that position or executes and records it. Everything
here works on the execution's :class:`~forktex_core.flow._runtime.Runtime`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from . import _telemetry as tm
from ._defs import StepDef
from ._errors import NotSerialisable, SignalTimeout, StepFailed
from ._race import park
from ._runtime import COMPLETED, FAILED, IN_STEP, RETRYING, WAITING, LogEntry, Runtime
from ._serde import encode, error_text, sent_error

INLINE_SLEEP = 0.25  # sleeps shorter than this stay in-process (still durable)


def step(
    rt: Runtime, sdef: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Coroutine[Any, Any, Any]:
    """A call of step ``sdef`` in a workflow: its recorded outcome, or its execution."""
    seq, entry = rt.take_position(sdef.name, "transaction" if sdef.transactional else "step")
    if entry is not None and entry.status in (COMPLETED, FAILED):
        return _replayed(rt, sdef, seq, entry)
    attempt = entry.attempt + 1 if entry is not None else 1
    return tm.step(sdef.name, attempt, execute_step(rt, sdef, seq, entry, args, kwargs))


def recorded_now(rt: Runtime) -> datetime:
    """``ctx.now()``: the database's time, recorded once (written before the next write)."""
    seq, entry = rt.take_position("now", "now")
    if entry is not None and entry.output is not None:
        value = float(rt.serializer.loads(entry.output))
    else:
        value = rt.clock()
        rt.defer(seq, "now", repr(value))
    return datetime.fromtimestamp(value, UTC)


def recorded_uuid(rt: Runtime) -> uuid.UUID:
    """``ctx.uuid()``: a random UUID, recorded once (written before the next write)."""
    seq, entry = rt.take_position("uuid", "uuid")
    if entry is not None and entry.output is not None:
        return uuid.UUID(str(rt.serializer.loads(entry.output)))
    value = uuid.uuid4()
    rt.defer(seq, "uuid", f'"{value}"')
    return value


def sleep(rt: Runtime, seconds: float) -> Coroutine[Any, Any, None]:
    """``ctx.sleep``: takes its position now; the coroutine sleeps durably."""
    seq, entry = rt.take_position("sleep", "sleep")
    return durable_sleep(rt, seq, entry, seconds)


def wait_for_signal(rt: Runtime, name: str, timeout: float | None) -> Coroutine[Any, Any, Any]:
    """``ctx.wait_for_signal``: takes its position now; the coroutine waits durably."""
    seq, entry = rt.take_position(f"signal:{name}", "signal")
    return wait_signal(rt, seq, entry, name, timeout)


def send_signal(
    rt: Runtime, target: uuid.UUID, name: str, payload: str
) -> Coroutine[Any, Any, int]:
    """``ctx.send_signal``: takes its position now; the coroutine sends exactly once."""
    seq, entry = rt.take_position(f"send:{name}", "send")
    return durable_send(rt, seq, entry, target, name, payload)


async def _replayed(rt: Runtime, sdef: StepDef, seq: int, entry: LogEntry) -> Any:
    if entry.status == COMPLETED:
        return None if entry.output is None else rt.serializer.loads(entry.output)
    raise recorded_failure(rt, sdef.name, seq, entry)


def recorded_failure(rt: Runtime, name: str, seq: int, entry: LogEntry) -> StepFailed:
    """Rebuild the :class:`StepFailed` recorded for a step."""
    doc: Any = rt.serializer.loads(entry.error) if entry.error else {}
    if not isinstance(doc, dict):
        doc = {}
    return StepFailed(
        name, str(doc.get("type", "Error")), str(doc.get("message", "")), entry.attempt, seq
    )


async def execute_step(
    rt: Runtime,
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
    serializer = rt.serializer
    attempt = entry.attempt + 1 if entry is not None else 1
    kind = "transaction" if sdef.transactional else "step"
    rt.begin(sdef.name)
    token = IN_STEP.set(True)
    try:
        # writing deferred values is a fenced write: it confirms the lease too
        confirmed = await rt.flush_pending()
        while True:
            if not confirmed:
                await rt.check_held()
            confirmed = False
            started = time.monotonic()
            try:
                if sdef.transactional:
                    return await rt.run_transaction(sdef, seq, attempt, args, kwargs)
                if sdef.timeout is not None:
                    async with asyncio.timeout(sdef.timeout):
                        result = await sdef.fn(*args, **kwargs)
                else:
                    result = await sdef.fn(*args, **kwargs)
            except SystemExit as exc:
                rt.exited(exc)
                raise
            except sdef.retry_on as exc:
                if isinstance(exc, NotSerialisable | asyncio.CancelledError):
                    raise
                duration = time.monotonic() - started
                if attempt < sdef.max_attempts:
                    await rt.record_step(
                        seq,
                        sdef.name,
                        kind,
                        RETRYING,
                        attempt,
                        None,
                        error_text(exc, attempt),
                        duration,
                    )
                    tm.retried(exc, attempt)
                    await asyncio.sleep(sdef.delay(attempt, random.random()))
                    attempt += 1
                    continue
                await rt.record_step(
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
                await rt.record_step(
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
            await rt.record_step(
                seq, sdef.name, kind, COMPLETED, attempt, text, None, time.monotonic() - started
            )
            return serializer.loads(text)
    finally:
        IN_STEP.reset(token)
        rt.end()


async def durable_sleep(rt: Runtime, seq: int, entry: LogEntry | None, seconds: float) -> None:
    """``ctx.sleep``: record the wake-up time once (database clock); suspend until then."""
    if entry is not None and entry.output is not None:
        wake = float(rt.serializer.loads(entry.output))
    else:
        wake = rt.clock() + seconds
        rt.begin("sleep")
        try:
            await rt.flush_pending()
            await rt.record_step(seq, "sleep", "sleep", COMPLETED, 1, repr(wake), None, 0.0)
        finally:
            rt.end()
    remaining = wake - rt.clock()
    if remaining <= 0:
        return
    if remaining <= INLINE_SLEEP:
        rt.begin("sleep")
        try:
            await asyncio.sleep(remaining)
        finally:
            rt.end()
        return
    await park(rt, wake, None)


async def wait_signal(
    rt: Runtime,
    seq: int,
    entry: LogEntry | None,
    name: str,
    timeout: float | None,  # noqa: ASYNC109
) -> Any:
    """``ctx.wait_for_signal``: replay, consume a stored signal, or suspend until one comes."""
    serializer = rt.serializer
    step_name = f"signal:{name}"
    if entry is not None and entry.status == COMPLETED:
        return None if entry.output is None else serializer.loads(entry.output)
    if entry is not None and entry.status == FAILED:
        raise SignalTimeout(f"no signal {name!r} arrived before the timeout (recorded)", seq)
    rt.begin(step_name)
    try:
        await rt.flush_pending()
        if entry is not None and entry.status == WAITING and entry.output is not None:
            deadline = serializer.loads(entry.output).get("deadline")
        else:
            deadline = None if timeout is None else rt.clock() + timeout
        found, payload = await rt.consume_signal(seq, name, step_name)
        if found:
            return None if payload is None else serializer.loads(payload)
        if deadline is not None and rt.clock() >= deadline:
            await rt.record_step(
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
            await rt.record_step(
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
        rt.end()
    return await park(rt, deadline, name)


async def durable_send(
    rt: Runtime,
    seq: int,
    entry: LogEntry | None,
    target: uuid.UUID,
    name: str,
    payload: str,
) -> int:
    """``ctx.send_signal``: the recorded outcome on replay, else send and record at once."""
    if entry is None or entry.status not in (COMPLETED, FAILED):
        rt.begin(f"send:{name}")
        try:
            await rt.flush_pending()
            status, text = await rt.send_recorded(seq, target, name, payload)
        finally:
            rt.end()
    else:
        status = entry.status
        text = (entry.output if status == COMPLETED else entry.error) or "null"
    if status == COMPLETED:
        return int(json.loads(text))
    doc = json.loads(text)
    raise sent_error(doc if isinstance(doc, dict) else {}, name)
