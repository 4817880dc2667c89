# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Registered definitions: steps and workflows (pure data, no I/O)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidArgument

StepFn = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True, slots=True)
class StepDef:
    """How one step runs: retry policy, timeout, transactional or not."""

    name: str
    fn: StepFn
    max_attempts: int
    backoff: float
    max_backoff: float
    retry_on: tuple[type[BaseException], ...]
    timeout: float | None
    transactional: bool

    def delay(self, attempt: int, jitter: float) -> float:
        """Backoff before attempt ``attempt + 1``: exponential, capped, with jitter in [0.5, 1]."""
        base: float = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return base * (0.5 + 0.5 * jitter)


@dataclass(frozen=True, slots=True)
class WorkflowDef:
    """A registered workflow body."""

    name: str
    version: int
    fn: StepFn
    timeout: float | None
    takes_input: bool

    @property
    def key(self) -> str:
        return f"{self.name}:{self.version}"


def check_async(fn: object, what: str) -> StepFn:
    """Reject anything that is not an ``async def`` function."""
    if not callable(fn) or not inspect.iscoroutinefunction(fn):
        raise InvalidArgument(f"{what} must decorate an 'async def' function, got {fn!r}")
    return fn


def positional_count(fn: StepFn) -> int:
    """How many positional parameters ``fn`` accepts (a large number for ``*args``)."""
    count = 0
    for param in inspect.signature(fn).parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return 1 << 16
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def positive_number(value: object, name: str, *, allow_none: bool = False) -> float | None:
    """Validate a positive finite number of seconds (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        allowed = "a positive number of seconds" + (" or None" if allow_none else "")
        raise InvalidArgument(f"{name} must be {allowed}, got {value!r}")
    if value == float("inf"):
        raise InvalidArgument(f"{name} must be finite, got {value!r}")
    return float(value)
