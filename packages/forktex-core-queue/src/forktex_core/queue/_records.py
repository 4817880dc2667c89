# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Strict decoding of what Redis holds for a job: its payload, its result record and the
workers' health records.

Anything may sit under a key (another program's value, a truncated write, a hand edit), so
every field is checked here, once, and a bad value becomes :class:`InvalidJob` naming what
is wrong — never a raw ``KeyError`` / ``TypeError`` / ``UnicodeDecodeError`` / ``OverflowError``
further down.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidJob, show
from ._telemetry import carrier_of

MAX_TIMESTAMP_MS = 253_402_300_799_999
"""The last millisecond of the year 9999: the latest time a ``datetime`` can show."""

STATES = ("complete", "failed", "aborted")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: object, what: str) -> Any:
    """Strict JSON from Redis bytes: UTF-8, no ``NaN``/``Infinity``, no int past Python's
    digit limit, not nested past the parser's recursion limit; else :class:`InvalidJob`.

    Example::

        loads(b'{"s": "complete"}', "the result of job 'x'")  # {'s': 'complete'}
    """
    if not isinstance(raw, bytes | str):
        raise InvalidJob(f"{what} is a {type(raw).__name__}, not JSON text")
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise InvalidJob(f"{what} is not UTF-8 text: {show(raw, 60)}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        reason = str(exc)[:200] if isinstance(exc, ValueError) else "nested too deeply"
        raise InvalidJob(f"{what} is not valid JSON ({reason})") from None


def is_timestamp_ms(value: object) -> bool:
    """True for a finite number of unix milliseconds between 1970 and the year 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return (not isinstance(value, float) or math.isfinite(value)) and (
        0 <= value <= MAX_TIMESTAMP_MS
    )


@dataclass(frozen=True)
class StoredJob:
    """A job payload as enqueued: ``{"f": task, "a": args, "k": kwargs, "et": enqueued_ms}``
    and, when the caller had a span, ``"tc"``: its trace context (``traceparent`` and
    ``tracestate``); a malformed one is dropped (the job runs, its span is a root)."""

    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_ms: float
    trace: dict[str, str] | None = None


def decode_job(raw: object, job_id: str) -> StoredJob:
    """The payload of job ``job_id``, checked field by field; :class:`InvalidJob` if it is
    not one.

    Example::

        decode_job(b'{"f":"add","a":[1],"k":{},"et":1700000000000}', "42").task  # 'add'
    """
    what = f"the stored payload of job {job_id!r}"
    data = loads(raw, what)
    if not isinstance(data, dict):
        raise InvalidJob(f"{what} is a JSON {type(data).__name__}, not an object")
    missing = [k for k in ("f", "a", "k", "et") if k not in data]
    if missing:
        raise InvalidJob(f"{what} lacks the field(s) {', '.join(missing)}")
    task, args, kwargs, enqueued = data["f"], data["a"], data["k"], data["et"]
    if not isinstance(task, str) or not 0 < len(task) <= 200:
        raise InvalidJob(f"{what}: the task name 'f' is {show(task)}, not a task name")
    if not isinstance(args, list):
        raise InvalidJob(f"{what}: 'a' (the arguments) is {show(args)}, not a list")
    if not isinstance(kwargs, dict):
        raise InvalidJob(f"{what}: 'k' (the keyword arguments) is {show(kwargs)}, not an object")
    if not is_timestamp_ms(enqueued):
        raise InvalidJob(
            f"{what}: 'et' (enqueue time) is {show(enqueued)}, not unix milliseconds between "
            "1970 and 9999"
        )
    return StoredJob(task, args, kwargs, float(enqueued), carrier_of(data.get("tc")))


def decode_result(raw: object, job_id: str) -> dict[str, Any]:
    """A stored result record, checked: ``s`` one of :data:`STATES`, ``t`` (tries) an int
    >= 0, and for a failure ``e``/``m`` (and ``tb`` if present) strings.

    Example::

        decode_result(b'{"s":"complete","t":1,"r":3}', "42")["r"]  # 3
    """
    what = f"the stored result of job {job_id!r}"
    data = loads(raw, what)
    if not isinstance(data, dict):
        raise InvalidJob(f"{what} is a JSON {type(data).__name__}, not an object")
    state, tries = data.get("s"), data.get("t")
    if state not in STATES:
        raise InvalidJob(f"{what}: state {show(state)} is not one of {', '.join(STATES)}")
    if isinstance(tries, bool) or not isinstance(tries, int) or tries < 0:
        raise InvalidJob(f"{what}: tries {show(tries)} is not an int >= 0")
    if state != "complete":
        for key in ("e", "m", "tb"):
            if key in data and not isinstance(data[key], str):
                raise InvalidJob(f"{what}: {key!r} is {show(data[key])}, not a string")
    return data


_WORKER_FIELDS: dict[str, type | tuple[type, ...]] = {
    "worker_id": str,
    "host": str,
    "pid": int,
    "concurrency": int,
    "jobs_complete": int,
    "jobs_failed": int,
    "jobs_retried": int,
    "jobs_ongoing": int,
    "started_at": (int, float),
    "last_heartbeat": (int, float),
    "heartbeat_interval": (int, float),
}


def decode_worker(raw: object) -> dict[str, Any] | None:
    """A worker's health record, or ``None`` when it is not one (it is then left out of
    ``health()`` rather than failing it).

    Example::

        decode_worker(b"garbage")  # None
    """
    try:
        data = loads(raw, "a worker record")
    except InvalidJob:
        return None
    if not isinstance(data, dict):
        return None
    for key, kind in _WORKER_FIELDS.items():
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            return None
    for key in ("started_at", "last_heartbeat"):
        if not is_timestamp_ms(data[key] * 1000):
            return None
    if not 0 < data["heartbeat_interval"] < 1e9:
        return None
    return data
