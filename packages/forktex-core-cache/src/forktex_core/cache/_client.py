# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The process-wide Redis client: ``init`` / ``close`` / ``get_client``, outage tracking."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeVar
from urllib.parse import urlsplit

import redis.asyncio
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.utils import HIREDIS_AVAILABLE

from ._deadline import Watchdog
from ._errors import (
    CacheAlreadyInitialised,
    CacheError,
    CacheNotInitialised,
    InvalidArgument,
)
from ._faults import REDIS_FAILURES, Health, Target, failure, kind_of, timed_out
from ._redact import mask_url
from ._telemetry import DB_OPERATION, server_attributes
from ._telemetry import degraded as _degraded

log: Final = logging.getLogger("forktex_core.cache")

T = TypeVar("T")

#: The client type :func:`get_client` returns: a standalone or a cluster client.
Client: TypeAlias = "redis.asyncio.Redis | RedisCluster"

_SCHEMES: Final = ("redis", "rediss", "unix")
#: Seconds to open a TCP connection (redis-py's ``socket_connect_timeout``).
DEFAULT_CONNECT_TIMEOUT: Final = 2.0
#: Seconds one command may take, connecting and its set-up (AUTH, SELECT) included.
DEFAULT_COMMAND_TIMEOUT: Final = 5.0
_POOL_DEFAULTS: Final[dict[str, Any]] = {"health_check_interval": 30}


@dataclass(eq=False)
class State:
    """Everything ``init`` set up; replaced as a whole, never mutated field by field."""

    client: Any  # redis.asyncio.Redis | RedisCluster (Any: redis-py's stubs are partial)
    prefix: str
    cluster: bool
    health: Health
    description: str
    target: Target
    watchdog: Watchdog
    #: What every span of this client carries (``db.system.name``, ``server.*``, ...).
    attributes: dict[str, Any] = field(default_factory=dict)
    inflight: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    _operations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def operation_attributes(self, operation: str) -> dict[str, Any]:
        """``attributes`` plus ``db.operation.name`` (the Redis command), built once each."""
        found = self._operations.get(operation)
        if found is None:
            found = self._operations[operation] = {**self.attributes, DB_OPERATION: operation}
        return found


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


async def command(
    current: State, what: str, pending: Awaitable[T], *, degrade: bool = False, track: bool = True
) -> T:
    """Await ``pending`` (redis-py calls) within ``command_timeout``.

    Every failure becomes :class:`CacheUnavailable` or :class:`CacheCommandError` naming the
    server and ``what`` (the redis-py error stays as ``__cause__``). ``track``: outages start
    and end here (one warning each). ``degrade``: the caller goes on without Redis
    (``@cached``, ``rate_limit``), so error replies are logged here, at most once a minute
    per ``what``, and every failure is an event on the current span (the caller's
    operation goes on, so it is not an error status); other callers get them raised and
    nothing is logged.
    """
    watchdog = current.watchdog
    task = watchdog.arm()
    try:
        result = await pending
    except asyncio.CancelledError:
        if not watchdog.expired(task):
            raise
        error: CacheError = timed_out(current.target, what)
        if track:
            current.health.failed(error)
        if degrade:
            _degraded(error)
        raise error from None
    except REDIS_FAILURES as exc:
        kind = kind_of(exc)
        error = failure(current.target, exc, what, kind)
        if kind == "down":
            if track:
                current.health.failed(error)
        elif degrade:
            current.health.rejected(error, what)
        if degrade:
            _degraded(error)
        if isinstance(exc, redis.exceptions.ReadOnlyError):
            watchdog.disarm(task)  # what follows is bounded by connect_timeout
            await _drop_idle_connections(current)
        raise error from exc
    finally:
        watchdog.disarm(task)
    if track and current.health.down_since is not None:
        current.health.ok()
    return result


async def _drop_idle_connections(current: State) -> None:
    """After a ``READONLY`` reply: the server is a replica now, typically a primary demoted by
    a failover while our connections stayed open. Close the idle ones so that the next
    commands connect afresh - resolving the host name again, which then names the new
    primary. (A cluster client follows the cluster's own redirections instead.)"""
    pool = getattr(current.client, "connection_pool", None)
    if pool is not None:
        with contextlib.suppress(*REDIS_FAILURES):
            await pool.disconnect(inuse_connections=False)


def _check_positive(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidArgument(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _parse_node(node: object) -> ClusterNode:
    if isinstance(node, str):
        host, sep, port = node.rpartition(":")
        if sep and host and port.isdigit() and 0 < int(port) < 65536:
            return ClusterNode(host.strip("[]"), int(port))
    elif (
        isinstance(node, tuple | list)
        and len(node) == 2
        and isinstance(node[0], str)
        and node[0]
        and isinstance(node[1], int)
        and not isinstance(node[1], bool)
        and 0 < node[1] < 65536
    ):
        return ClusterNode(node[0], node[1])
    raise InvalidArgument(
        f"cluster node must be 'host:port' or (host, port) with a port from 1 to 65535, "
        f"got {node!r}"
    )


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:
        return ""


def _url_problem(url: str) -> str | None:
    """What is wrong with the host, port or database of ``url``, if we can tell."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "it cannot be parsed as a URL"
    if parts.scheme == "unix":
        return None
    try:
        port = parts.port
    except ValueError:  # its message may quote the port text: say it ourselves
        return "its port must be a number from 1 to 65535"
    if port == 0:
        return "its port must be a number from 1 to 65535"
    db = parts.path.strip("/")
    if db and not db.isdigit():
        return f"its path must be a database number such as /0, got /{db}"
    return None


def _client_from_url(url: str, cluster: bool, options: dict[str, Any]) -> Any:
    """redis-py's client for ``url``; a URL or an option it cannot use raises
    :class:`InvalidArgument` naming the masked URL."""
    problem = _url_problem(url)
    if problem is None:
        try:
            if cluster:
                return RedisCluster.from_url(url, **options)
            client = redis.asyncio.Redis.from_url(url, **options)
            # Connections are made lazily: build one now (no I/O) so that an option redis-py
            # does not know - e.g. from the URL's query - fails here, not at the first command.
            pool = client.connection_pool
            pool.connection_class(**pool.connection_kwargs)
            return client
        except TypeError as exc:  # an unknown keyword option: the message names it, no values
            problem = f"an option was refused: {exc}"
        except ValueError:  # a bad database number or query value: its message may quote it
            problem = "check its host, port, database number and query parameters"
        except redis.exceptions.RedisClusterException as exc:  # e.g. a unix socket in cluster
            problem = f"the cluster client refused it: {exc}"
    # Raised outside the except block: nothing from redis-py's parsing is chained onto it.
    raise InvalidArgument(f"cannot use Redis URL {mask_url(url)!r}: {problem}")


def _host_port(host: str, port: object) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _endpoint(client: Any, cluster: bool) -> str:
    """``host:port db N`` (or the unix socket, or the cluster's start-up nodes) for messages."""
    if cluster:
        nodes = client.nodes_manager.startup_nodes.values()
        return "cluster " + ",".join(_host_port(n.host, n.port) for n in nodes)
    kwargs = client.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        return f"unix:{kwargs['path']} db {db}"
    return f"{_host_port(kwargs.get('host', 'localhost'), kwargs.get('port', 6379))} db {db}"


def _telemetry_attributes(client: Any, cluster: bool) -> dict[str, Any]:
    """``server.address`` / ``server.port`` / ``db.namespace`` of a standalone client (a
    cluster routes each command to some node: only the system is known up front)."""
    if cluster:
        return server_attributes(None, None, None)
    kwargs = client.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        return server_attributes(kwargs["path"], None, db)
    return server_attributes(kwargs.get("host", "localhost"), kwargs.get("port", 6379), db)


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
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    outage_retry_seconds: float = 1.0,
    **pool_options: Any,
) -> None:
    """Open the process-wide Redis client (hiredis-backed). Call once at start-up.

    ``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL. For a Redis Cluster pass
    ``cluster=True`` with the URL of any node, or ``nodes=[("host", port), ...]`` (or
    ``"host:port"`` strings) instead of a URL; the cluster client then routes every command.
    ``prefix`` is prepended to every key this module touches (``@cached``, the ops,
    ``rate_limit``), isolating services that share one Redis; end it with ``:``.

    Nothing waits forever: ``connect_timeout`` (default 2 s) bounds opening a connection and
    ``command_timeout`` (default 5 s) every command this module sends, connecting and the
    connection's set-up (AUTH, SELECT) included; past it the command is abandoned (its
    connection closed) and reported as :class:`CacheUnavailable` naming ``host:port db N``.
    The command deadline costs no timer per command (unlike redis-py's ``socket_timeout``,
    which you may still pass to also bound commands sent through :func:`get_client`).

    ``verify`` sends a PING now and raises :class:`CacheUnavailable` when it fails; pass
    ``verify=False`` to start anyway (``@cached`` and ``rate_limit`` then degrade per their
    policies until Redis answers). ``outage_retry_seconds``: during an outage, how long
    degraded callers skip Redis before one of them probes it again. Other keyword arguments
    go to redis-py's client (``max_connections``, ``password``, ``ssl_*``, ...).

    Example::

        await init("redis://localhost:6379/0", prefix="billing:", max_connections=50)
        await init(url, command_timeout=0.5)   # a cache that answers fast or not at all
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
    retry_seconds = _check_positive("outage_retry_seconds", outage_retry_seconds)
    connect_timeout = _check_positive("connect_timeout", connect_timeout)
    command_timeout = _check_positive("command_timeout", command_timeout)
    if not isinstance(cluster, bool):
        raise InvalidArgument(f"cluster must be True or False, got {cluster!r}")
    if not isinstance(verify, bool):
        raise InvalidArgument(f"verify must be True or False, got {verify!r}")
    if pool_options.get("decode_responses"):
        raise InvalidArgument(
            "decode_responses=True is not supported: forktex_core.cache decodes values itself"
        )
    if "socket_connect_timeout" in pool_options:
        raise InvalidArgument("pass connect_timeout= (seconds) instead of socket_connect_timeout=")
    options = {
        **_POOL_DEFAULTS,
        **pool_options,
        "socket_connect_timeout": connect_timeout,
        "decode_responses": False,
    }
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
        description = "cluster " + ",".join(_host_port(n.host, n.port) for n in startup)
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
    target = Target(_endpoint(client, is_cluster), connect_timeout, command_timeout)
    new = State(
        client,
        prefix,
        is_cluster,
        Health(retry_seconds, command_timeout),
        description,
        target,
        Watchdog(command_timeout),
        _telemetry_attributes(client, is_cluster),
    )
    if verify:
        try:
            if is_cluster:
                await command(new, "init (cluster discovery)", client.initialize(), track=False)
            await command(new, "init (PING)", client.ping(), track=False)
        except CacheError as exc:
            await _close_client(new)
            # Same class, the hint added; the redis-py error stays the cause.
            raise type(exc)(f"{exc}; pass verify=False to start without it") from exc.__cause__
        except BaseException:
            await _close_client(new)
            raise
    _state = new
    log.debug(
        "forktex_core.cache initialised: %s (%s), prefix=%r, parser=%s, connect_timeout=%g s, "
        "command_timeout=%g s",
        target.endpoint,
        description,
        prefix,
        "hiredis" if HIREDIS_AVAILABLE else "python",
        connect_timeout,
        command_timeout,
    )


async def _close_client(current: State) -> None:
    """Close the client's connections, within ``command_timeout`` (a silent server cannot
    hold up shutdown)."""
    try:
        await command(current, "close", current.client.aclose(), track=False)
    except CacheError as exc:
        log.debug("closing the Redis client: %s", exc)


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
        await _close_client(current)


def get_client() -> Client:
    """The underlying redis-py client (``redis.asyncio.Redis`` or ``RedisCluster``).

    Keys you write through it are *not* prefixed automatically: use :func:`full_key`.
    Commands sent through it are redis-py's own: ``command_timeout`` does not bound them
    (pass ``socket_timeout=`` to :func:`init` for that).

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
