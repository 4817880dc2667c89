# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The process-wide Redis client: ``init`` / ``close`` / ``get_client``, outage tracking."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

import redis.asyncio
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.utils import HIREDIS_AVAILABLE

from ._errors import (
    CacheAlreadyInitialised,
    CacheCommandError,
    CacheError,
    CacheNotInitialised,
    CacheUnavailable,
    InvalidArgument,
)
from ._redact import mask_url

log: Final = logging.getLogger("forktex_core.cache")

#: The client type :func:`get_client` returns: a standalone or a cluster client.
Client: TypeAlias = "redis.asyncio.Redis | RedisCluster"

#: Errors that mean "Redis is not reachable right now" (as opposed to "Redis said no").
UNAVAILABLE: Final[tuple[type[BaseException], ...]] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.RedisClusterException,
    OSError,
    asyncio.TimeoutError,
)

_SCHEMES: Final = ("redis", "rediss", "unix")
#: Connect timeout only: redis-py 5 wraps every read in a timer when ``socket_timeout`` is set,
#: which costs about as much as the GET itself on a local Redis. Pass ``socket_timeout=`` to
#: bound reads from a server that accepts connections but stops answering.
_DEFAULTS: Final[dict[str, Any]] = {
    "socket_connect_timeout": 2.0,
    "health_check_interval": 30,
}


class Health:
    """Tracks Redis outages: one warning when one starts, one info line when it ends.

    While an outage lasts, callers that can degrade (``@cached``, ``rate_limit``) skip Redis
    for ``retry_seconds`` after each failure instead of paying a connect timeout per call.
    """

    __slots__ = ("down_since", "next_probe", "retry_seconds")

    def __init__(self, retry_seconds: float) -> None:
        self.retry_seconds = retry_seconds
        self.down_since: float | None = None
        self.next_probe = 0.0

    def skip(self) -> bool:
        """True while in an outage and the next probe is not due yet."""
        return self.down_since is not None and time.monotonic() < self.next_probe

    def failed(self, exc: BaseException, what: str) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            log.warning(
                "Redis is unreachable (%s during %s): @cached calls functions directly and "
                "rate_limit applies its on_error policy until Redis answers again",
                type(exc).__name__,
                what,
            )
        self.next_probe = now + self.retry_seconds

    def ok(self) -> None:
        if self.down_since is not None:
            log.info("Redis is reachable again after %.1f s", time.monotonic() - self.down_since)
            self.down_since = None


@dataclass(eq=False)
class State:
    """Everything ``init`` set up; replaced as a whole, never mutated field by field."""

    client: Any  # redis.asyncio.Redis | RedisCluster (Any: redis-py's stubs are partial)
    prefix: str
    cluster: bool
    health: Health
    description: str
    inflight: dict[str, asyncio.Future[Any]] = field(default_factory=dict)


_state: State | None = None


def state() -> State:
    """The current state, or :class:`CacheNotInitialised`."""
    current = _state
    if current is None:
        raise CacheNotInitialised(
            "forktex_core.cache is not initialised: call `await init(url)` at start-up "
            "(and `await close()` at shutdown)"
        )
    return current


def translate(exc: BaseException, what: str) -> CacheError:
    """Map a redis-py error to this module's hierarchy (the original stays as ``__cause__``)."""
    if isinstance(exc, UNAVAILABLE):
        return CacheUnavailable(f"Redis is unreachable ({type(exc).__name__}: {exc}) during {what}")
    return CacheCommandError(f"Redis rejected {what}: {type(exc).__name__}: {exc}")


def _check_positive(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidArgument(f"{name} must be a positive number of seconds, got {value!r}")


def _parse_node(node: object) -> ClusterNode:
    if isinstance(node, str):
        host, sep, port = node.rpartition(":")
        if sep and host and port.isdigit():
            return ClusterNode(host, int(port))
    elif (
        isinstance(node, tuple | list)
        and len(node) == 2
        and isinstance(node[0], str)
        and isinstance(node[1], int)
        and not isinstance(node[1], bool)
    ):
        return ClusterNode(node[0], node[1])
    raise InvalidArgument(f"cluster node must be 'host:port' or (host, port), got {node!r}")


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:
        return ""


def _client_from_url(url: str, cluster: bool, options: dict[str, Any]) -> Any:
    """redis-py's client for ``url``; a URL or an option it cannot use raises
    :class:`InvalidArgument` naming the masked URL."""
    try:
        if cluster:
            return RedisCluster.from_url(url, **options)
        client = redis.asyncio.Redis.from_url(url, **options)
        # Connections are made lazily: build one now (no I/O) so that an option redis-py does
        # not know - e.g. from the URL's query - fails here, not at the first command.
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)
        return client
    except TypeError as exc:  # an unknown keyword option: the message names it, no values
        problem = f"an option was refused: {exc}"
    except ValueError:  # a bad port, database number or query value: its message may quote it
        problem = "check its host, port, database number and query parameters"
    except redis.exceptions.RedisClusterException as exc:  # e.g. a unix socket in cluster mode
        problem = f"the cluster client refused it: {exc}"
    # Raised outside the except block: nothing from redis-py's parsing is chained onto it.
    raise InvalidArgument(f"cannot use Redis URL {mask_url(url)!r}: {problem}")


def _check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or any(c.isspace() or not c.isprintable() for c in prefix):
        raise InvalidArgument(
            f"prefix must be a str without whitespace or control characters, got {prefix!r} "
            "(e.g. 'billing:' to keep this service's keys apart)"
        )
    if len(prefix) > 200:
        raise InvalidArgument(f"prefix must be at most 200 characters, got {len(prefix)}")
    return prefix


async def init(
    url: str | None = None,
    *,
    nodes: Sequence[str | tuple[str, int]] | None = None,
    cluster: bool = False,
    prefix: str = "",
    verify: bool = True,
    outage_retry_seconds: float = 1.0,
    **pool_options: Any,
) -> None:
    """Open the process-wide Redis client (hiredis-backed). Call once at start-up.

    ``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL. For a Redis Cluster pass
    ``cluster=True`` with the URL of any node, or ``nodes=[("host", port), ...]`` (or
    ``"host:port"`` strings) instead of a URL; the cluster client then routes every command.
    ``prefix`` is prepended to every key this module touches (``@cached``, the ops,
    ``rate_limit``), isolating services that share one Redis; end it with ``:``.
    ``verify`` pings Redis now and raises :class:`CacheUnavailable` when it does not answer;
    pass ``verify=False`` to start anyway (``@cached`` and ``rate_limit`` then degrade per
    their policies until Redis answers). ``outage_retry_seconds``: during an outage, how long
    degraded callers skip Redis before probing it again. Other keyword arguments go to
    redis-py's client (``max_connections``, ``socket_connect_timeout`` (default 2 s),
    ``socket_timeout`` (default none: it costs a timer per command in redis-py 5),
    ``password``, ``ssl_*``, ...).

    Example::

        await init("redis://localhost:6379/0", prefix="billing:", max_connections=50)
        await init(nodes=[("10.0.0.1", 7000), ("10.0.0.2", 7000)], prefix="billing:")
        ...
        await close()
    """
    global _state
    if _state is not None:
        raise CacheAlreadyInitialised(
            f"forktex_core.cache is already initialised ({_state.description}); "
            "call `await close()` before initialising again"
        )
    prefix = _check_prefix(prefix)
    _check_positive("outage_retry_seconds", outage_retry_seconds)
    if not isinstance(cluster, bool):
        raise InvalidArgument(f"cluster must be True or False, got {cluster!r}")
    if pool_options.get("decode_responses"):
        raise InvalidArgument(
            "decode_responses=True is not supported: forktex_core.cache decodes values itself"
        )
    options = {**_DEFAULTS, **pool_options, "decode_responses": False}
    client: Any
    if nodes is not None:
        if url is not None:
            raise InvalidArgument("pass either url or nodes, not both")
        if isinstance(nodes, str) or not isinstance(nodes, Sequence) or not nodes:
            raise InvalidArgument(
                f"nodes must be a non-empty list of 'host:port' or (host, port), got {nodes!r}"
            )
        startup = [_parse_node(n) for n in nodes]
        options.pop("health_check_interval", None)
        client = RedisCluster(startup_nodes=startup, **options)
        description = "cluster " + ",".join(f"{n.host}:{n.port}" for n in startup)
        is_cluster = True
    else:
        if not isinstance(url, str):
            # Not echoed: we cannot tell which part of an arbitrary object is a password.
            raise InvalidArgument(
                f"url must be a redis://, rediss:// or unix:// URL (a str), got "
                f"{type(url).__name__}"
            )
        if _scheme(url) not in _SCHEMES:
            raise InvalidArgument(
                f"url must be a redis://, rediss:// or unix:// URL, got {mask_url(url)!r}"
            )
        description = ("cluster " if cluster else "") + mask_url(url)
        if cluster:
            options.pop("health_check_interval", None)
        client = _client_from_url(url, cluster, options)
        is_cluster = cluster
    if verify:
        try:
            if is_cluster:
                await client.initialize()
            await client.ping()
        except UNAVAILABLE as exc:
            await client.aclose()
            raise CacheUnavailable(
                f"cannot reach Redis at {description}: {type(exc).__name__}: {exc} "
                "(pass verify=False to start without it)"
            ) from exc
        except BaseException:
            await client.aclose()
            raise
    _state = State(client, prefix, is_cluster, Health(outage_retry_seconds), description)
    log.debug(
        "forktex_core.cache initialised: %s, prefix=%r, parser=%s",
        description,
        prefix,
        "hiredis" if HIREDIS_AVAILABLE else "python",
    )


async def close() -> None:
    """Close the client and its connection pool. Safe to call twice or before ``init``.

    Example::

        await close()
    """
    global _state
    current, _state = _state, None
    if current is not None:
        for future in current.inflight.values():
            future.cancel()
        await current.client.aclose()


def get_client() -> Client:
    """The underlying redis-py client (``redis.asyncio.Redis`` or ``RedisCluster``).

    Keys you write through it are *not* prefixed automatically: use :func:`full_key`.

    Example::

        client = get_client()
        await client.zadd(full_key("leaderboard"), {"ada": 42})
    """
    return state().client  # type: ignore[no-any-return]


def full_key(key: str) -> str:
    """The Redis key for logical ``key``: the ``init`` prefix + ``key``.

    Example::

        await init(url, prefix="billing:")
        full_key("user:profile:42")   # 'billing:user:profile:42'
    """
    from ._namespace import check_key

    return state().prefix + check_key(key)


class Script:
    """A Lua script run with EVALSHA, falling back to EVAL when the server lacks it."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, client: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)
