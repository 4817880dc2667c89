# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Exact sliding-window rate limiter: one Lua script, one round trip, Redis server time.

Each ``(name, key)`` owns one sorted set of the microsecond timestamps of its admitted calls.
A call at time ``t`` (the Redis server's ``TIME``, so the clocks of the calling processes do
not matter) drops timestamps ``<= t - window``, admits the call if fewer than ``limit``
remain and records it; a denied call is not recorded. Hence no window ``(t - W, t]`` ever
holds more than ``limit`` admitted calls, whatever the concurrency. When denied,
``retry_after`` is when the ``(count - limit + 1)``-th oldest timestamp leaves the window:
exactly when the next call will be admitted (if nobody else takes the slot first).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal, NamedTuple

from opentelemetry.trace import SpanKind

from . import _telemetry as tm
from ._client import Script, State, command, state
from ._errors import CacheError, InvalidArgument, InvalidKey, RateLimitUnavailable
from ._namespace import canonical_namespace, check_key

OnError = Literal["fail_open", "fail_closed", "raise"]
_POLICIES = ("fail_open", "fail_closed", "raise")

#: ARGV: limit, window in µs, mode ('1' = take a slot, '0' = peek). Returns
#: {allowed 0/1, µs until the next call is allowed, calls in the window, µs until it empties}.
_SCRIPT = Script(
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local key = KEYS[1]
local floor = string.format('%.0f', now - window)
local count
if ARGV[3] == '1' then
  redis.call('ZREMRANGEBYSCORE', key, '-inf', floor)
  count = redis.call('ZCARD', key)
  if count < limit then
    local score = string.format('%.0f', now)
    local member = t[1] .. '.' .. t[2]
    if redis.call('ZADD', key, 'NX', score, member) == 0 then
      -- Two calls in one microsecond: give the second a unique member.
      local n = 1
      while redis.call('ZADD', key, 'NX', score, member .. '-' .. n) == 0 do n = n + 1 end
    end
    redis.call('PEXPIRE', key, math.ceil(window / 1000))
    return {1, 0, count + 1, window}
  end
else
  count = redis.call('ZCOUNT', key, '(' .. floor, '+inf')
end
local wait = 0
local empty = 0
if count > 0 then
  local newest = redis.call('ZRANGEBYSCORE', key, '(' .. floor, '+inf', 'WITHSCORES',
                            'LIMIT', count - 1, 1)
  empty = tonumber(newest[2]) + window - now
end
if count >= limit then
  local entry = redis.call('ZRANGEBYSCORE', key, '(' .. floor, '+inf', 'WITHSCORES',
                           'LIMIT', count - limit, 1)
  wait = tonumber(entry[2]) + window - now
end
if count < limit then return {1, 0, count, empty} end
return {0, wait, count, empty}
"""
)


class RateLimitDecision(NamedTuple):
    """The result of :func:`rate_limit`: unpack it as ``ok, retry_after``.

    ``retry_after`` is 0.0 when allowed, else the seconds until the next call is admitted.

    Example::

        ok, retry_after = await rate_limit("login", key=ip, limit=5, window_seconds=60)
        if not ok:
            raise HTTPException(429, headers={"Retry-After": str(math.ceil(retry_after))})
    """

    allowed: bool
    retry_after: float


class RateLimitState(NamedTuple):
    """What :func:`peek` reports about one ``(name, key)`` without consuming a call.

    Example::

        state = await peek("login", key=ip, limit=5, window_seconds=60)
        state.used, state.remaining, state.retry_after, state.reset_after
    """

    allowed: bool
    """Whether a call now would be admitted."""
    used: int
    """Admitted calls inside the current window."""
    remaining: int
    """How many more calls would be admitted now."""
    retry_after: float
    """Seconds until a call would be admitted (0.0 when one would be now)."""
    reset_after: float
    """Seconds until the window is empty again."""


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument(f"limit must be an int >= 1, got {limit!r}")
    return limit


def _window_us(window_seconds: object) -> int:
    value = window_seconds
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0.001
    ):
        raise InvalidArgument(
            f"window_seconds must be a number of seconds >= 0.001 (or a timedelta), "
            f"got {window_seconds!r}"
        )
    return round(value * 1_000_000)


def _check_key(key: object) -> str:
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise InvalidKey(f"rate-limit key must be a non-empty str or an int, got {key!r}")
    text = str(key)
    if not text:
        raise InvalidKey("rate-limit key must be a non-empty str (e.g. the client IP), got ''")
    return check_key(text, what="rate-limit key")


def limiter_key(current: State, name: str, key: str) -> str:
    """``<prefix>ratelimit:<name>:{<key>}``: the hash tag keeps one key's data on one slot."""
    return f"{current.prefix}ratelimit:{name}:{{{key}}}"


def _check_policy(on_error: object) -> OnError:
    if on_error not in _POLICIES:
        raise InvalidArgument(f"on_error must be one of {_POLICIES}, got {on_error!r}")
    return on_error  # type: ignore[return-value]


async def rate_limit(
    name: str,
    key: str | int,
    *,
    limit: int,
    window_seconds: float | dt.timedelta,
    on_error: OnError = "fail_open",
) -> RateLimitDecision:
    """Admit at most ``limit`` calls per ``key`` in any sliding window of ``window_seconds``.

    Returns ``(allowed, retry_after)``; ``retry_after`` is the exact number of seconds until
    the next call would be admitted (0.0 when allowed). Atomic (one Lua script, one round
    trip) and exact under any concurrency from any number of processes. ``name`` follows the
    namespace charset (``"login"``, ``"api.search"``); ``key`` is the client identity (IP,
    user id). ``on_error`` decides what happens when Redis cannot decide - unreachable,
    silent past ``command_timeout``, or answering with an error (``READONLY``, ``OOM``...):
    ``"fail_open"`` (default: allow, ``retry_after`` 0.0), ``"fail_closed"`` (deny;
    ``retry_after`` is the outage probe interval) or ``"raise"``
    (:class:`RateLimitUnavailable`). One warning is logged per outage (per minute for
    error replies).

    Example::

        ok, retry_after = await rate_limit("login", key=ip, limit=5, window_seconds=60)
        ok, _ = await rate_limit("payments", key=user_id, limit=3, window_seconds=1,
                                 on_error="fail_closed")
    """
    name = canonical_namespace(name, what="rate-limit name")
    key = _check_key(key)
    limit = _check_limit(limit)
    window = _window_us(window_seconds)
    policy = _check_policy(on_error)
    current = state()
    attributes = current.operation_attributes("EVALSHA")
    with tm.operation(f"cache.rate_limit {name}", SpanKind.CLIENT, attributes) as span:
        if current.health.skip():
            decision = _degraded(current, policy, window, None)
            degraded = True
        else:
            keys = [limiter_key(current, name, key)]
            try:
                result = await command(
                    current,
                    "rate_limit",
                    _SCRIPT(current.client, keys, [limit, window, 1]),
                    degrade=True,
                )
            except CacheError as exc:  # any Redis failure (logged by command)
                decision = _degraded(current, policy, window, exc)
                degraded = True
            else:
                decision = RateLimitDecision(bool(result[0]), int(result[1]) / 1_000_000)
                degraded = False
        _count(span, name, decision, degraded)
        return decision


def _count(span: Any, name: str, decision: RateLimitDecision, degraded: bool) -> None:
    """One ``forktex.cache.rate_limit.decisions`` count; the decision on the span."""
    result = "allowed" if decision.allowed else "denied"
    counted: dict[str, Any] = {tm.LIMITER: name, tm.DECISION: result}
    if degraded:
        counted[tm.DEGRADED] = True
    tm.decisions.add(1, counted)
    if span.is_recording():
        span.set_attributes(counted)


def _degraded(
    current: State, policy: OnError, window_us: int, exc: CacheError | None
) -> RateLimitDecision:
    if policy == "fail_open":
        return RateLimitDecision(True, 0.0)
    if policy == "fail_closed":
        return RateLimitDecision(False, min(window_us / 1_000_000, current.health.retry_seconds))
    reason = (
        str(exc)
        if exc is not None
        else f"Redis at {current.target.endpoint} is down (outage in progress)"
    )
    raise RateLimitUnavailable(
        f"rate_limit cannot decide: {reason}; choose on_error='fail_open' or 'fail_closed' "
        "to decide without Redis"
    ) from exc


async def peek(
    name: str, key: str | int, *, limit: int, window_seconds: float | dt.timedelta
) -> RateLimitState:
    """Inspect a limiter without consuming a call (for admin pages and debugging).

    Raises :class:`CacheUnavailable` when Redis is unreachable.

    Example::

        s = await peek("login", key=ip, limit=5, window_seconds=60)
        print(f"{s.used}/5 used, next in {s.retry_after:.1f}s")
    """
    name = canonical_namespace(name, what="rate-limit name")
    key = _check_key(key)
    limit = _check_limit(limit)
    window = _window_us(window_seconds)
    current = state()
    keys = [limiter_key(current, name, key)]
    attributes = current.operation_attributes("EVALSHA")
    with tm.operation(f"cache.rate_limit.peek {name}", SpanKind.CLIENT, attributes) as span:
        if span.is_recording():
            span.set_attribute(tm.LIMITER, name)
        result = await command(
            current, "rate-limit peek", _SCRIPT(current.client, keys, [limit, window, 0])
        )
    used = int(result[2])
    return RateLimitState(
        allowed=bool(result[0]),
        used=used,
        remaining=max(0, limit - used),
        retry_after=int(result[1]) / 1_000_000,
        reset_after=int(result[3]) / 1_000_000,
    )


async def reset(name: str, key: str | int) -> bool:
    """Forget every recorded call of ``(name, key)``; True if there were any.

    Example::

        await reset("login", key=ip)   # e.g. after a successful password reset
    """
    name = canonical_namespace(name, what="rate-limit name")
    key = _check_key(key)
    current = state()
    attributes = current.operation_attributes("UNLINK")
    with tm.operation(f"cache.rate_limit.reset {name}", SpanKind.CLIENT, attributes) as span:
        if span.is_recording():
            span.set_attribute(tm.LIMITER, name)
        pending = current.client.unlink(limiter_key(current, name, key))
        return bool(await command(current, "rate-limit reset", pending))
