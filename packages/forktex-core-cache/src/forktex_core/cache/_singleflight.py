# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Stampede protection: one computation per key, in this process and across processes.

In-process, concurrent misses of one key share a single future. Across processes, the one
caller that wins ``SET <key>:lock <token> NX PX <lock_ttl>`` computes; the others poll for the
value (5 ms doubling to 50 ms) until it appears, or until the lock disappears (the holder
failed or its lock expired because it died), in which case they compete for the lock again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._client import Script, State, command
from ._errors import CacheError

_MISSING: Any = object()

#: SET the value with its TTL and release the lock if we still own it, in one round trip.
STORE = Script(
    """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""
)
#: Release the lock only if we still own it (it may have expired and been re-taken).
RELEASE = Script(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
)


async def coalesce(state: State, key: str, fill: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``fill`` once for all concurrent callers of ``key`` in this process."""
    while True:
        future = state.inflight.get(key)
        if future is None:
            break
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The leader was cancelled (not us): compete again. Our own cancellation propagates.
            task = asyncio.current_task()
            if not future.cancelled() or (task is not None and task.cancelling()):
                raise
    future = asyncio.get_running_loop().create_future()
    future.add_done_callback(_consume)
    state.inflight[key] = future
    try:
        result = await fill()
    except asyncio.CancelledError:
        future.cancel()
        raise
    except BaseException as exc:
        future.set_exception(exc)
        raise
    else:
        future.set_result(result)
        return result
    finally:
        if state.inflight.get(key) is future:
            del state.inflight[key]


def _consume(future: asyncio.Future[Any]) -> None:
    # Mark an exception as retrieved even when no other caller was waiting for it.
    if not future.cancelled():
        future.exception()


async def fill_across_processes(
    state: State,
    key: str,
    lock_ttl_ms: int,
    load: Callable[[bytes], tuple[bool, Any]],
    compute: Callable[[], Awaitable[Any]],
    store: Callable[[Any], bytes | None],
    ttl_ms: int,
) -> Any:
    """Compute the value under a Redis lock, or wait for the process that holds it.

    ``load(raw)`` returns ``(ok, value)`` (``ok`` false for an undecodable entry);
    ``store(value)`` returns the bytes to cache, or ``None`` to cache nothing.
    """
    client = state.client
    lock_key = key + ":lock"
    token = secrets.token_hex(8)
    deadline = time.monotonic() + lock_ttl_ms / 1000 + 5
    while True:
        try:
            acquired = await command(
                state,
                "@cached lock",
                client.set(lock_key, token, nx=True, px=lock_ttl_ms),
                degrade=True,
            )
        except CacheError:  # logged by command: compute without the lock
            return await compute()
        if acquired:
            return await _compute_and_store(
                state, key, lock_key, token, load, compute, store, ttl_ms
            )
        delay = 0.005
        while True:
            if time.monotonic() > deadline:
                # The lock keeps being re-taken without a value appearing: stop waiting.
                return await compute()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            try:
                raw, holder = await command(
                    state, "@cached wait", client.mget(key, lock_key), degrade=True
                )
            except CacheError:
                return await compute()
            if raw is not None:
                ok, value = load(raw)
                if ok:
                    return value
            if holder is None:
                break  # released without a value, or expired: compete for the lock again


async def _compute_and_store(
    state: State,
    key: str,
    lock_key: str,
    token: str,
    load: Callable[[bytes], tuple[bool, Any]],
    compute: Callable[[], Awaitable[Any]],
    store: Callable[[Any], bytes | None],
    ttl_ms: int,
) -> Any:
    client = state.client
    try:
        # Another process may have filled the key between our miss and our lock.
        raw = await command(state, "@cached GET", client.get(key), degrade=True)
    except CacheError:
        raw = None
    if raw is not None:
        ok, value = load(raw)
        if ok:
            await _release(state, lock_key, token)
            return value
    try:
        value = await compute()
        data = store(value)
    except BaseException:
        await asyncio.shield(_release(state, lock_key, token))
        raise
    if data is None:
        await _release(state, lock_key, token)
        return value
    try:
        await command(
            state,
            "@cached SET",
            STORE(client, [key, lock_key], [data, ttl_ms, token]),
            degrade=True,
        )
    except CacheError:
        pass  # logged by command; the value is returned all the same
    return value


async def _release(state: State, lock_key: str, token: str) -> None:
    try:
        await command(
            state, "@cached unlock", RELEASE(state.client, [lock_key], [token]), degrade=True
        )
    except CacheError:
        pass  # logged by command; the lock expires after lock_ttl
