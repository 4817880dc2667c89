# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The registry of a queue: its tasks (function and retry/timeout policy), cron jobs and
failure hooks, and the checks of the options that define them."""

from __future__ import annotations

import inspect
import math
import random
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ._context import FailedJob
from ._cron import CronSchedule
from ._errors import MAX_SECONDS, DuplicateTask, InvalidArgument, show

FailureHook = Callable[[FailedJob], Awaitable[None]]

_NAME = re.compile(r"[A-Za-z0-9_.:\-<>]{1,200}")


def check_seconds(name: str, value: object, *, minimum: float = 0.0, strict: bool = False) -> float:
    """Validate a duration in seconds (int, float or timedelta, finite, at most 10 years);
    return it as float.

    Example::

        check_seconds("timeout", timedelta(minutes=5))  # 300.0
    """
    seconds: float
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{name}={show(value)}: must be a number of seconds or a timedelta")
    else:
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise InvalidArgument(
            f"{name}={show(value)}: must be a finite number of seconds, at most {MAX_SECONDS} "
            "(10 years)"
        )
    if seconds < minimum or (strict and seconds <= minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise InvalidArgument(f"{name}={show(value)}: must be {bound} seconds")
    return seconds


def check_int(name: str, value: object, minimum: int) -> int:
    """Validate an int option that has a lower bound.

    Example::

        check_int("retries", 3, 0)  # 3
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name}={show(value)}: must be an int >= {minimum}")
    return value


def check_hook(name: str, hook: object) -> None:
    """Validate an ``on_failure`` hook: an async function or None."""
    if hook is not None and not inspect.iscoroutinefunction(hook):
        raise InvalidArgument(
            f"{name}={show(hook)}: must be an async function taking one FailedJob argument"
        )


@dataclass(frozen=True)
class TaskSpec:
    """How the worker runs one task: its function and its retry/timeout policy."""

    name: str
    fn: Callable[..., Coroutine[Any, Any, Any]]
    signature: inspect.Signature
    retries: int
    timeout: float
    backoff: float
    backoff_max: float
    keep_result: float
    on_failure: FailureHook | None = None
    cron: CronSchedule | None = None

    @property
    def max_tries(self) -> int:
        return self.retries + 1

    def backoff_delay(self, try_number: int) -> float:
        """Seconds to wait before try ``try_number + 1``: doubling from ``backoff``, capped,
        plus up to 10 % jitter so a burst of failures does not retry in lockstep."""
        # the exponent is capped: 2.0 ** 1024 overflows, and 2 ** 64 x backoff > backoff_max
        base = min(self.backoff_max, self.backoff * 2.0 ** min(try_number - 1, 64))
        return float(base * (1 + random.random() * 0.1))


@dataclass
class Registry:
    """The tasks, cron jobs and failure hooks of one queue."""

    queue_name: str
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    on_failure: list[FailureHook] = field(default_factory=list)

    def add(self, spec: TaskSpec) -> None:
        if not _NAME.fullmatch(spec.name):
            raise InvalidArgument(
                f"task name {show(spec.name)}: use 1-200 characters of letters, digits, '_.:-<>'"
            )
        if spec.name in self.tasks:
            raise DuplicateTask(
                f"queue {self.queue_name!r} already has a task named {spec.name!r} "
                f"({self.tasks[spec.name].fn.__module__}); pass name=... to one of them"
            )
        self.tasks[spec.name] = spec

    @property
    def crons(self) -> list[TaskSpec]:
        return [t for t in self.tasks.values() if t.cron is not None]
