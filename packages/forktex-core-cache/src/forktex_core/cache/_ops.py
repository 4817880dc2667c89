# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Typed ops on logical keys (the ``init`` prefix is prepended): JSON values, counters, SCAN."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from . import _telemetry as tm
from ._client import Script, command, state
from ._durations import seconds_to_ms
from ._errors import InvalidArgument, InvalidKey
from ._glob import glob_escape, literal_head
from ._namespace import check_key
from ._scan import delete_raw_pattern
from ._serializers import JSON, dumps, loads

#: INCRBY, and set the TTL only when this increment created the key.
_INCR = Script(
    """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"""
)


async def _run(name: str, operation: str, keys: Sequence[str], what: str, call: Any) -> Any:
    """``call(state)`` as one command: within ``command_timeout``, failures translated, in a
    span ``name`` recording ``operation`` (the Redis command) and the keys' namespace."""
    current = state()
    with tm.operation(name, SpanKind.CLIENT, current.operation_attributes(operation)) as span:
        if span.is_recording():
            _record_keys(span, keys)
        return await command(current, what, call(current))


def _record_keys(span: Any, keys: Sequence[str]) -> None:
    """The namespace the keys share (never the keys themselves), and how many there are."""
    namespaces = {tm.key_namespace(k) for k in keys}
    if len(namespaces) == 1 and None not in namespaces:
        span.set_attribute(tm.NAMESPACE, namespaces.pop())
    if len(keys) > 1:
        span.set_attribute(tm.COUNT, len(keys))


async def get_json(key: str, default: Any = None) -> Any:
    """The JSON value stored at ``key``, or ``default`` when the key does not exist.

    Example::

        await set_json("user:profile:42", {"name": "Ada"})
        await get_json("user:profile:42")            # {'name': 'Ada'}
        await get_json("missing", default={})        # {}
    """
    check_key(key)

    async def call(current: Any) -> Any:
        raw = await current.client.get(current.prefix + key)
        if raw is None:
            return default
        return loads(JSON, raw, f"the value at {key!r}")

    return await _run("cache.get_json", "GET", (key,), f"get_json({key!r})", call)


async def set_json(
    key: str,
    value: Any,
    *,
    ttl: float | dt.timedelta | None = None,
    nx: bool = False,
) -> bool:
    """Store ``value`` as JSON at ``key``, expiring after ``ttl`` seconds (``None``: never).

    With ``nx=True`` the value is only written when the key does not exist. Returns whether
    it was written.

    Example::

        await set_json("user:profile:42", {"name": "Ada"}, ttl=300)
        await set_json("lock:report", {"by": "worker-1"}, ttl=30, nx=True)   # False if held
    """
    check_key(key)
    px = None if ttl is None else seconds_to_ms("ttl", ttl)
    if not isinstance(nx, bool):
        raise InvalidArgument(f"nx must be True or False, got {nx!r}")
    data = dumps(JSON, value, f"the value for {key!r}")

    async def call(current: Any) -> bool:
        return bool(await current.client.set(current.prefix + key, data, px=px, nx=nx))

    return bool(await _run("cache.set_json", "SET", (key,), f"set_json({key!r})", call))


async def incr(key: str, amount: int = 1, *, ttl: float | dt.timedelta | None = None) -> int:
    """Atomically add ``amount`` (may be negative) to the integer at ``key``; returns the new value.

    With ``ttl``, the expiry is set atomically when this increment creates the key (a fixed
    window counter); later increments leave it alone. The counter reads back with
    ``get_json`` as an int.

    Example::

        await incr("stats:signups")                  # 1
        await incr("stats:signups", 5)               # 6
        await incr("quota:org:7", ttl=3600)          # expires an hour after the first call
    """
    check_key(key)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidArgument(f"amount must be an int, got {type(amount).__name__} {amount!r}")
    px = 0 if ttl is None else seconds_to_ms("ttl", ttl)

    async def call(current: Any) -> int:
        return int(await _INCR(current.client, [current.prefix + key], [amount, px]))

    return int(await _run("cache.incr", "EVALSHA", (key,), f"incr({key!r})", call))


async def mget(keys: Iterable[str], default: Any = None) -> list[Any]:
    """The JSON values of ``keys`` in order; ``default`` where a key does not exist.

    On a cluster the keys may live on different nodes (one round trip per slot).

    Example::

        await mget(["user:profile:1", "user:profile:2"])   # [{'name': 'Ada'}, None]
    """
    if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
        raise InvalidArgument(
            f"mget takes a list of keys, got {type(keys).__name__} {keys!r}; "
            "write mget([key]) for one key"
        )
    names = [check_key(k) for k in keys]
    if not names:
        return []

    async def call(current: Any) -> list[Any]:
        full = [current.prefix + k for k in names]
        if current.cluster:
            raws = await current.client.mget_nonatomic(full)
        else:
            raws = await current.client.mget(full)
        return [
            default if raw is None else loads(JSON, raw, f"the value at {k!r}")
            for k, raw in zip(names, raws, strict=True)
        ]

    result: list[Any] = await _run("cache.mget", "MGET", names, "mget", call)
    return result


async def delete(*keys: str) -> int:
    """Delete ``keys`` (UNLINK: memory is reclaimed in the background); returns how many existed.

    Example::

        await delete("user:profile:42", "user:profile:43")
    """
    if not keys:
        raise InvalidArgument("delete needs at least one key")
    names = [check_key(k) for k in keys]

    async def call(current: Any) -> int:
        return int(await current.client.unlink(*(current.prefix + k for k in names)))

    return int(await _run("cache.delete", "UNLINK", names, "delete", call))


async def delete_pattern(pattern: str, *, batch_size: int = 500) -> int:
    r"""Delete every key matching the glob ``pattern`` under the ``init`` prefix.

    Walks the keyspace with SCAN (never KEYS) and deletes with UNLINK in batches of
    ``batch_size``; on a cluster it walks every primary. Returns how many keys were deleted.
    Not atomic: keys written while it runs may survive. The prefix is matched literally (its
    glob characters are escaped), so the pattern can never reach another service's keys.

    A pattern that could match every key is refused with :class:`InvalidArgument`: the full
    pattern (escaped prefix + ``pattern``) must start with literal text. With a prefix that
    always holds; with an empty prefix ``pattern`` itself must start with a literal character,
    so ``*``, ``?*``, ``*?*``, ``[a-z]*`` or ``[^x]*`` (anything starting with ``*``, ``?`` or
    ``[``) is refused, while ``user:*`` or ``\*literal`` is allowed.

    Example::

        await delete_pattern("user:profile:*")
        await delete_pattern(Namespace("user.profile").pattern())
    """
    if not isinstance(pattern, str) or not pattern:
        raise InvalidKey(f"pattern must be a non-empty glob str, got {pattern!r}")
    check_key(pattern, what="pattern")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size must be a positive int, got {batch_size!r}")
    current = state()
    if not literal_head(glob_escape(current.prefix) + pattern):
        raise InvalidArgument(
            f"delete_pattern({pattern!r}) with no init prefix could match every key in the "
            "database: without a prefix the pattern must start with literal text, not with *, ? "
            "or [...] (e.g. 'user:profile:*', or Namespace('user.profile').pattern())"
        )
    with tm.operation("cache.delete_pattern", SpanKind.CLIENT, current.attributes) as span:
        if span.is_recording():
            namespace = tm.pattern_namespace(pattern)
            if namespace is not None:
                span.set_attribute(tm.NAMESPACE, namespace)
        deleted = await delete_raw_pattern(glob_escape(current.prefix) + pattern, batch_size)
        if span.is_recording():
            span.set_attribute(tm.COUNT, deleted)
        return deleted
