# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Registered definitions (steps and workflows, pure data) and the checks of every value a
caller passes in: seconds, counts, names, run ids, isolation levels."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
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
    isolation_level: str | None = None

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
    queue: str | None = None  # the queue its runs go through unless start() names one

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


# The longest duration accepted anywhere (timeouts, sleeps, leases, retention): added to
# now() it stays far inside Postgres's timestamp range, and it is finite.
MAX_SECONDS = 100 * 365.25 * 86400.0
_MAX_TEXT = "100 years"

ISOLATION_LEVELS = {
    "read committed": "READ COMMITTED",
    "repeatable read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}


def positive_number(value: object, name: str, *, allow_none: bool = False) -> float | None:
    """Validate a positive, finite number of seconds (or None when allowed).

    Example::

        positive_number(30, "timeout")          # 30.0
        positive_number(float("inf"), "lease")  # InvalidArgument
    """
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_SECONDS
    ):
        allowed = f"a positive number of seconds up to {_MAX_TEXT}" + (
            " or None" if allow_none else ""
        )
        raise InvalidArgument(f"{name} must be {allowed}, got {value!r}")
    return float(value)


def seconds(value: object, name: str, *, allow_none: bool = False) -> float | None:
    """:func:`positive_number`, also accepting a :class:`~datetime.timedelta`.

    Example::

        seconds(timedelta(days=7), "retention")  # 604800.0
    """
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return positive_number(value, name, allow_none=allow_none)


def required_seconds(value: object, name: str) -> float:
    """:func:`seconds` where None is not allowed.

    Example::

        required_seconds(5, "lease")  # 5.0
    """
    result = seconds(value, name)
    assert result is not None
    return result


def positive_int(value: object, name: str, minimum: int = 1) -> int:
    """Validate an integer of at least ``minimum`` (``bool`` is refused).

    Example::

        positive_int(16, "concurrency")  # 16
        positive_int(0, "limit")         # InvalidArgument
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def step_policy(
    max_attempts: object,
    backoff: object,
    max_backoff: object,
    retry_on: object,
    timeout: object,
) -> tuple[int, float, float, tuple[type[BaseException], ...], float | None]:
    """The validated retry policy of a step: attempts, backoff, cap, retryable types, timeout.

    Example::

        step_policy(3, 0.5, 60, (ConnectionError,), None)
    """
    attempts = positive_int(max_attempts, "max_attempts")
    back = required_seconds(backoff, "backoff")
    cap = required_seconds(max_backoff, "max_backoff")
    kinds = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    if not kinds or not all(isinstance(k, type) and issubclass(k, Exception) for k in kinds):
        raise InvalidArgument(
            f"retry_on must be an Exception subclass or a tuple of them, got {retry_on!r}"
        )
    limit = seconds(timeout, "timeout", allow_none=True)
    return attempts, back, cap, kinds, limit


def duration(value: object, name: str, *, allow_none: bool = False) -> float | None:
    """Validate a finite number of seconds >= 0 (a sleep, a signal timeout).

    Example::

        duration(0, "sleep seconds")             # 0.0
        duration(float("nan"), "sleep seconds")  # InvalidArgument
    """
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_SECONDS
    ):
        allowed = f"a number of seconds from 0 to {_MAX_TEXT}" + (" or None" if allow_none else "")
        raise InvalidArgument(f"{name} must be {allowed}, got {value!r}")
    return float(value)


def storable_text(value: object, name: str, *, max_length: int = 200) -> str:
    """Validate a name stored as Postgres ``text``: non-empty, no NUL, valid UTF-8.

    Example::

        storable_text("advance", "signal name")  # 'advance'
        storable_text("a\\x00", "signal name")    # InvalidArgument
    """
    ok = isinstance(value, str) and 0 < len(value) <= max_length and "\x00" not in value
    if isinstance(value, str) and ok:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            ok = False
    if not ok or not isinstance(value, str):
        raise InvalidArgument(
            f"{name} must be a non-empty string of at most {max_length} characters without "
            f"NUL characters or lone surrogates, got {value!r}"
        )
    return value


CHILD_SIGNAL_PREFIX = "flow.child:"
"""Signals named ``flow.child:<child id>`` carry a child run's outcome to its parent; they
are sent by the database alone (see ``_children``)."""


def signal_name(value: object) -> str:
    """Validate a signal name a caller sends or waits for: storable text (as
    :func:`storable_text`) outside the reserved ``flow.child:`` names.

    Example::

        signal_name("advance")  # 'advance'
        signal_name("flow.child:0193...")  # InvalidArgument: reserved for child outcomes
    """
    name = storable_text(value, "signal name")
    if name.startswith(CHILD_SIGNAL_PREFIX):
        raise InvalidArgument(
            f"signal name {name!r} is reserved: names starting {CHILD_SIGNAL_PREFIX!r} carry "
            "a child run's outcome to its parent (await the child's handle instead)"
        )
    return name


def isolation_level_value(value: object) -> str | None:
    """Validate a transaction isolation level name (case-insensitive), or None.

    Example::

        isolation_level_value("serializable")  # 'SERIALIZABLE'
    """
    if value is None:
        return None
    level = ISOLATION_LEVELS.get(value.lower()) if isinstance(value, str) else None
    if level is None:
        raise InvalidArgument(
            f"isolation_level must be one of {sorted(ISOLATION_LEVELS)} or None, got {value!r}"
        )
    return level


def run_id_value(value: object) -> uuid.UUID:
    """A run id from a UUID or its string form.

    Example::

        run_id_value("9f3c1e8a-...")  # UUID('9f3c1e8a-...')
    """
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidArgument(f"run_id must be a UUID (or its string form), got {value!r}")
