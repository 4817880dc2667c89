# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The exception hierarchy of ``forktex_core.cache``, rooted in :class:`CacheError`."""

from __future__ import annotations


class CacheError(Exception):
    """Base class of every error raised by ``forktex_core.cache``.

    Example::

        try:
            await set_json("k", {1, 2})
        except CacheError as exc:
            log.error("cache failed: %s", exc)
    """


class CacheNotInitialised(CacheError, RuntimeError):
    """The module was used before ``await init(...)`` (or after ``await close()``).

    Example::

        await get_json("k")   # raises CacheNotInitialised: call `await init(url)` first
    """


class CacheAlreadyInitialised(CacheError, RuntimeError):
    """``init`` was called while a client is already open; call ``await close()`` first.

    Example::

        await init("redis://localhost:6379/0")
        await init("redis://other:6379/0")   # raises CacheAlreadyInitialised
    """


class InvalidArgument(CacheError, ValueError):
    """A public function got a value it does not accept; the message names it and what is allowed.

    Example::

        await rate_limit("login", key="1.2.3.4", limit=0, window_seconds=60)  # limit must be >= 1
    """


class InvalidNamespace(InvalidArgument):
    """A namespace (or rate-limit name) does not match the allowed charset.

    Example::

        Namespace("user profile")   # raises InvalidNamespace (spaces are not allowed)
    """


class InvalidKey(InvalidArgument):
    """A key is empty or not a string.

    Example::

        await get_json("")   # raises InvalidKey
    """


class UnencodableArgument(CacheError, TypeError):
    """An argument of a ``@cached`` function has no stable cache-key encoding.

    Example::

        @cached(ttl=60, namespace="demo")
        async def f(conn): ...

        await f(object())  # raises UnencodableArgument naming `conn`; use ignore=("conn",)
    """


class SerializationError(CacheError, ValueError):
    """A value could not be serialised for Redis (or a stored value could not be decoded).

    Example::

        await set_json("k", {1, 2})   # raises SerializationError: a set is not JSON
    """


class CacheUnavailable(CacheError, ConnectionError):
    """Redis cannot serve the command now; the message names ``host:port db N`` (never a
    password) and the operation.

    Raised when the server refuses or resets connections, does not answer within
    ``command_timeout``, cannot be resolved, does not speak the Redis protocol, refuses the
    credentials or the database number, has no reachable cluster node - or answers with an
    error meaning "not now": ``READONLY`` (a replica after a failover), ``OOM``, ``LOADING``,
    ``BUSY``, ``MISCONF``, ``NOREPLICAS``, ``MASTERDOWN``, ``CLUSTERDOWN``, ``TRYAGAIN``.
    The redis-py error, if any, is its ``__cause__``.

    Example::

        try:
            await get_json("k")
        except CacheUnavailable:
            ...  # degrade gracefully
    """


class RateLimitUnavailable(CacheUnavailable):
    """The rate limiter could not get an answer from Redis (any failure: unreachable, silent,
    an error reply) and the caller chose ``on_error="raise"``; the message says which.

    Example::

        try:
            ok, retry_after = await rate_limit("login", key=ip, limit=5, window_seconds=60,
                                               on_error="raise")
        except RateLimitUnavailable:
            ...
    """


class CacheCommandError(CacheError):
    """Redis answered a command with an error that retrying will not cure (e.g.
    ``WRONGTYPE``: the key holds another type; ``NOPERM``); the message names the server,
    the operation and the reply.

    Example::

        await client.lpush(prefix + "k", "x")
        await incr("k")   # raises CacheCommandError (WRONGTYPE)
    """
