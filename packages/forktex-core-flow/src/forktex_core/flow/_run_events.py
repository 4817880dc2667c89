# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Run events: key/value progress a workflow publishes and clients wait for.

``ctx.set_event(key, value)`` is a checkpoint of kind ``event`` named ``event:<key>``: it
takes its position like a step, is written once (replay returns without writing) and its
insert NOTIFYs the channel ``flow.result`` listens on, so ``flow.get_event`` wakes within
milliseconds and never polls. The latest value (highest position) of a key wins; the
entries stay in ``flow.history``.
"""

from __future__ import annotations

import uuid
from collections.abc import Coroutine
from typing import Any

from ._defs import duration, storable_text
from ._errors import EventNotSet
from ._runtime import COMPLETED, LogEntry, Runtime
from ._serde import Serializer
from ._store import Store

KIND = "event"
MAX_KEY = 200


def event_key(key: object) -> str:
    """Validate an event key (non-empty text of at most 200 characters).

    Example::

        event_key("progress")  # 'progress'
        event_key("")          # InvalidArgument
    """
    return storable_text(key, "event key", max_length=MAX_KEY)


def step_name(key: str) -> str:
    """The checkpoint name of event ``key``.

    Example::

        step_name("progress")  # 'event:progress'
    """
    return f"event:{key}"


def set_event(rt: Runtime, key: str, text: str) -> Coroutine[Any, Any, None]:
    """``ctx.set_event``: takes its position now; the coroutine records the value once."""
    seq, entry = rt.take_position(step_name(key), KIND)
    return _record(rt, seq, entry, key, text)


async def _record(rt: Runtime, seq: int, entry: LogEntry | None, key: str, text: str) -> None:
    if entry is not None and entry.status == COMPLETED:
        return
    name = step_name(key)
    rt.begin(name)
    try:
        await rt.flush_pending()
        await rt.record_step(seq, name, KIND, COMPLETED, 1, text, None, 0.0)
    finally:
        rt.end()


async def get_event(
    store: Store,
    serializer: Serializer,
    run_id: uuid.UUID,
    key: object,
    timeout: object,  # noqa: ASYNC109
) -> Any:
    """The latest value of event ``key`` of the run, waiting (NOTIFY) until it is set.

    Example::

        progress = await get_event(store, serializer, run_id, "progress", 10)
    """
    text = event_key(key)
    limit = duration(timeout, "timeout", allow_none=True)
    row = await store.wait_event(run_id, step_name(text), limit)
    if row is None:
        raise EventNotSet(run_id, text, False, f"not set within {limit} s")
    if not row["found"]:
        raise EventNotSet(run_id, text, True, f"the run is {row['status']} without setting it")
    return None if row["value"] is None else serializer.loads(row["value"])
