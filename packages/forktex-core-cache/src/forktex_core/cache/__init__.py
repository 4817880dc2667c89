# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.cache: Redis for async services.

A hiredis-backed client (standalone or cluster), ``@cached`` with stampede protection and
fail-open behaviour, typed JSON ops, validated namespaces and an exact sliding-window rate
limiter. Every command is bounded by ``command_timeout`` (default 5 s) and every Redis
failure becomes :class:`CacheUnavailable` or :class:`CacheCommandError` naming the server.
Library code reads no environment variables: pass the URL to :func:`init`.

Example::

    from forktex_core.cache import init, close, cached, rate_limit

    await init("redis://localhost:6379/0", prefix="billing:")

    @cached(ttl=300, namespace="user:profile")
    async def get_profile(user_id: str) -> dict: ...

    ok, retry_after = await rate_limit("login", key=ip, limit=5, window_seconds=60)
    await close()
"""

from ._cached import CachedFunction, cached
from ._client import close, full_key, get_client, init
from ._errors import (
    CacheAlreadyInitialised,
    CacheCommandError,
    CacheError,
    CacheNotInitialised,
    CacheUnavailable,
    InvalidArgument,
    InvalidKey,
    InvalidNamespace,
    RateLimitUnavailable,
    SerializationError,
    UnencodableArgument,
)
from ._namespace import Namespace
from ._ops import delete, delete_pattern, get_json, incr, mget, set_json
from ._ratelimit import RateLimitDecision, RateLimitState, peek, rate_limit, reset
from ._serializers import JsonSerializer, Serializer

__all__ = [
    "CacheAlreadyInitialised",
    "CacheCommandError",
    "CacheError",
    "CacheNotInitialised",
    "CacheUnavailable",
    "CachedFunction",
    "InvalidArgument",
    "InvalidKey",
    "InvalidNamespace",
    "JsonSerializer",
    "Namespace",
    "RateLimitDecision",
    "RateLimitState",
    "RateLimitUnavailable",
    "SerializationError",
    "Serializer",
    "UnencodableArgument",
    "cached",
    "close",
    "delete",
    "delete_pattern",
    "full_key",
    "get_client",
    "get_json",
    "incr",
    "init",
    "mget",
    "peek",
    "rate_limit",
    "reset",
    "set_json",
]
