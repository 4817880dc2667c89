# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``@cached``: transparent caching of async functions with stampede protection."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, ParamSpec, TypeVar

from opentelemetry.trace import SpanKind

from . import _telemetry as tm
from ._client import State, command, log, state
from ._durations import seconds_to_ms
from ._errors import CacheError, InvalidArgument
from ._glob import glob_escape
from ._keys import KeyBuilder
from ._namespace import canonical_namespace
from ._scan import delete_raw_pattern
from ._serializers import JSON, Serializer, dumps, loads
from ._singleflight import coalesce, fill_across_processes

P = ParamSpec("P")
R = TypeVar("R")


class CachedFunction(Generic[P, R]):
    """An async function wrapped by :func:`cached`; call it like the original.

    Example::

        @cached(ttl=300, namespace="user:profile")
        async def get_profile(user_id: str) -> dict: ...

        await get_profile("42")             # computed, then cached for 300 s
        await get_profile(user_id="42")     # same key: served from Redis
        get_profile.key_for("42")           # the Redis key
        await get_profile.invalidate("42")  # drop that entry
    """

    def __init__(
        self,
        func: Callable[P, Awaitable[R]],
        *,
        ttl_ms: int,
        namespace: str,
        serializer: Serializer,
        cache_none: bool,
        ignore: Iterable[str],
        lock_ttl_ms: int,
        single_flight: bool,
    ) -> None:
        self._func = func
        self._keys = KeyBuilder(func, ignore)
        self._qualname = f"{func.__module__}.{func.__qualname__}"
        self._base = f"{namespace}:{self._qualname}:"
        self._ttl_ms = ttl_ms
        self._serializer = serializer
        self._cache_none = cache_none
        self._lock_ttl_ms = lock_ttl_ms
        self._single_flight = single_flight
        self.namespace = namespace
        self._span_name = f"cache.cached {namespace}"
        self._fill_name = f"cache.cached.fill {namespace}"
        self._counted = {
            result: {tm.NAMESPACE: namespace, tm.RESULT: result}
            for result in ("hit", "miss", "bypass")
        }
        self._span_state: State | None = None
        self._span_attributes: dict[str, Any] = {}
        functools.update_wrapper(self, func)

    def _attributes(self, current: State) -> dict[str, Any]:
        """The span attributes of calls on ``current`` (built once per ``init``)."""
        if self._span_state is not current:
            self._span_attributes = {
                **current.attributes,
                tm.NAMESPACE: self.namespace,
                tm.FUNCTION: self._qualname,
            }
            self._span_state = current
        return self._span_attributes

    def key_for(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The full Redis key (``init`` prefix included) a call with these arguments uses.

        Example::

            get_profile.key_for("42")   # 'svc:user:profile:app.users.get_profile:{3f1c...}'
        """
        return state().prefix + self._base + "{" + self._keys.digest(args, kwargs) + "}"

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the entry for these arguments; True if one existed.

        Raises :class:`CacheUnavailable` when Redis is down (a silent no-op would leave
        stale data behind).

        Example::

            await get_profile.invalidate("42")
        """
        current = state()
        key = self.key_for(*args, **kwargs)
        attributes = {**self._attributes(current), tm.DB_OPERATION: "UNLINK"}
        with tm.operation(f"cache.invalidate {self.namespace}", SpanKind.CLIENT, attributes):
            return bool(
                await command(current, f"invalidate {self._qualname}", current.client.unlink(key))
            )

    async def invalidate_all(self) -> int:
        """Delete every cached entry of this function (SCAN + UNLINK); returns how many.

        Example::

            await get_profile.invalidate_all()
        """
        current = state()
        name = f"cache.invalidate_all {self.namespace}"
        with tm.operation(name, SpanKind.CLIENT, self._attributes(current)) as span:
            deleted = await delete_raw_pattern(glob_escape(current.prefix + self._base) + "*")
            if span.is_recording():
                span.set_attribute(tm.COUNT, deleted)
            return deleted

    def _load(self, raw: bytes) -> tuple[bool, Any]:
        try:
            return True, loads(self._serializer, raw, f"cached value of {self._qualname}")
        except Exception as exc:  # a corrupt or foreign entry: recompute and overwrite it
            log.warning("discarding undecodable cache entry of %s: %s", self._qualname, exc)
            return False, None

    def _dump(self, value: Any) -> bytes | None:
        if value is None and not self._cache_none:
            return None
        return dumps(self._serializer, value, f"the result of {self._qualname}")

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        current = state()
        key = current.prefix + self._base + "{" + self._keys.digest(args, kwargs) + "}"
        with tm.operation(self._span_name, SpanKind.INTERNAL, self._attributes(current)) as span:
            if current.health.skip():
                return await self._bypass(span, args, kwargs)
            try:
                raw = await command(current, "@cached GET", current.client.get(key), degrade=True)
            except CacheError:  # any Redis failure (logged by command): fail open
                return await self._bypass(span, args, kwargs)
            if raw is not None:
                ok, value = self._load(raw)
                if ok:
                    tm.lookups.add(1, self._counted["hit"])
                    if span.is_recording():
                        span.set_attribute(tm.RESULT, "hit")
                    return value  # type: ignore[no-any-return]
            tm.lookups.add(1, self._counted["miss"])
            if span.is_recording():
                span.set_attribute(tm.RESULT, "miss")
            return await self._fill(current, key, span, args, kwargs)

    async def _bypass(self, span: Any, args: Any, kwargs: Any) -> R:
        """Redis cannot be used: call the function directly."""
        tm.lookups.add(1, self._counted["bypass"])
        if span.is_recording():
            span.set_attribute(tm.RESULT, "bypass")
        return await self._func(*args, **kwargs)

    async def _fill(self, current: State, key: str, span: Any, args: Any, kwargs: Any) -> R:
        """A miss: compute the value once (per process and across processes) and store it."""
        computed = filled = False

        async def compute() -> R:
            nonlocal computed
            computed = True
            return await self._func(*args, **kwargs)

        async def fill() -> R:
            nonlocal filled
            filled = True
            with tm.operation(
                self._fill_name, SpanKind.INTERNAL, self._attributes(current)
            ) as fill_span:
                value = await self._fill_once(current, key, compute)
                if fill_span.is_recording():
                    fill_span.set_attribute(tm.COMPUTED, computed)
                return value

        value: R = await coalesce(current, key, fill)
        if not filled and span.is_recording():
            span.set_attribute(tm.COALESCED, True)
        return value

    async def _fill_once(self, current: State, key: str, compute: Callable[[], Awaitable[R]]) -> R:
        if not self._single_flight:
            value = await compute()
            data = self._dump(value)
            if data is not None:
                try:
                    await command(
                        current,
                        "@cached SET",
                        current.client.set(key, data, px=self._ttl_ms),
                        degrade=True,
                    )
                except CacheError:
                    pass  # logged by command; the value is returned all the same
            return value
        return await fill_across_processes(  # type: ignore[no-any-return]
            current, key, self._lock_ttl_ms, self._load, compute, self._dump, self._ttl_ms
        )

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _BoundCached(self, instance)

    def __repr__(self) -> str:
        return f"<cached {self._func.__module__}.{self._func.__qualname__} ns={self.namespace!r}>"


class _BoundCached:
    """``@cached`` on a method: binds the instance like a bound method does."""

    __slots__ = ("_cached", "_instance")

    def __init__(self, wrapped: CachedFunction[Any, Any], instance: object) -> None:
        self._cached = wrapped
        self._instance = instance

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self._cached(self._instance, *args, **kwargs)

    def key_for(self, *args: Any, **kwargs: Any) -> str:
        return self._cached.key_for(self._instance, *args, **kwargs)

    async def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        return await self._cached.invalidate(self._instance, *args, **kwargs)

    async def invalidate_all(self) -> int:
        return await self._cached.invalidate_all()


def cached(
    *,
    ttl: float | dt.timedelta,
    namespace: str | None = None,
    serializer: Serializer = JSON,
    cache_none: bool = False,
    ignore: Iterable[str] = (),
    lock_ttl: float | dt.timedelta = 10.0,
    single_flight: bool = True,
) -> Callable[[Callable[P, Awaitable[R]]], CachedFunction[P, R]]:
    """Cache an async function's results in Redis for ``ttl`` seconds.

    The key is ``<init prefix><namespace>:<module>.<qualname>:{<digest>}`` where the digest
    hashes a canonical encoding of the call's arguments, bound to the signature (keyword
    order, positional-vs-keyword spelling and omitted defaults give the same key). An
    argument with no stable encoding raises :class:`UnencodableArgument` at call time; leave
    such parameters (``self``, a DB session) out of the key with ``ignore=("session",)`` or
    give the type a ``__cache_key__()`` method.

    - ``namespace``: ``"user:profile"`` or ``"user.profile"`` (equivalent); defaults to the
      function's module.
    - ``serializer``: JSON by default; any :class:`Serializer` (never pickle).
    - ``cache_none``: ``None`` results are not cached unless this is true.
    - Stampede protection (``single_flight``, on by default): concurrent misses of one key run
      the function once per process, and once across processes under a Redis lock that
      expires after ``lock_ttl`` seconds if its holder dies.
    - Fail-open: whatever goes wrong with Redis (unreachable, silent past
      ``command_timeout``, an error reply such as ``READONLY`` or ``OOM``), the function is
      called directly and its result returned; one warning is logged per outage (per minute
      and operation for error replies). Exceptions of the function itself propagate.

    Example::

        @cached(ttl=300, namespace="user:profile")
        async def get_profile(user_id: str) -> dict:
            return await db.fetch_profile(user_id)

        profile = await get_profile("42")
        await get_profile.invalidate("42")
    """
    ttl_ms = seconds_to_ms("ttl", ttl)
    lock_ttl_ms = seconds_to_ms("lock_ttl", lock_ttl)
    if not isinstance(serializer, Serializer):
        raise InvalidArgument(
            f"serializer must have dumps(value) -> bytes and loads(bytes) methods, "
            f"got {serializer!r}"
        )
    if not isinstance(cache_none, bool):
        raise InvalidArgument(f"cache_none must be True or False, got {cache_none!r}")
    if not isinstance(single_flight, bool):
        raise InvalidArgument(f"single_flight must be True or False, got {single_flight!r}")
    if isinstance(ignore, str) or not all(isinstance(n, str) for n in ignore):
        raise InvalidArgument(f"ignore must be a list or tuple of parameter names, got {ignore!r}")
    ignored = tuple(ignore)
    ns = None if namespace is None else canonical_namespace(namespace)

    def decorate(func: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]:
        if not inspect.iscoroutinefunction(func):
            raise InvalidArgument(
                f"@cached decorates async functions (async def); "
                f"{getattr(func, '__qualname__', func)!r} is not one"
            )
        if ns is None:
            resolved = canonical_namespace(
                func.__module__.strip("_") or "main",
                what=f"default namespace (module of {func.__qualname__}); pass namespace=",
            )
        else:
            resolved = ns
        return CachedFunction(
            func,
            ttl_ms=ttl_ms,
            namespace=resolved,
            serializer=serializer,
            cache_none=cache_none,
            ignore=ignored,
            lock_ttl_ms=lock_ttl_ms,
            single_flight=single_flight,
        )

    return decorate
