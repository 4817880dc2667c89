# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Redis URL checking, and the masked forms of a URL shown in errors, logs and reprs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import parse_url

from ._errors import InvalidArgument

#: Query/fragment parameter names containing one of these (case-insensitive) are masked.
_SENSITIVE_PARAMS = (
    "user",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "sig",
    "credential",
    "session",
    "cookie",
)
_MAX_SHOWN = 200


def _mask_params(text: str) -> str:
    out = []
    for part in re.split(r"([&;])", text):
        name, eq, _value = part.partition("=")
        if eq and any(s in unquote_plus(name).lower() for s in _SENSITIVE_PARAMS):
            part = f"{name}=***"
        out.append(part)
    return "".join(out)


def mask_url(value: object) -> str:
    """``value`` as it may appear in an error, log line or repr: every credential-bearing part
    masked, at most 200 characters.

    Masked: the userinfo (everything before the last ``@``, since an unencoded password may
    itself hold ``/``, ``?``, ``#`` or ``@``) and the value of every query or fragment
    parameter whose name contains ``user``, ``pass``, ``pwd``, ``secret``, ``token``, ``key``,
    ``auth``, ``sig``, ``credential``, ``session`` or ``cookie``. A value that is not a
    ``str`` is shown by its type only.

    Example::

        >>> mask_url("redis://user:pw@cache:6379/0?password=pw&socket_timeout=5")
        'redis://***@cache:6379/0?password=***&socket_timeout=5'
    """
    if not isinstance(value, str):
        return f"<a {type(value).__name__}>"
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    head, qsep, query = rest.partition("?")
    if qsep:
        query, fsep, fragment = query.partition("#")
    else:
        head, fsep, fragment = head.partition("#")
    shown = scheme + sep + head + qsep + _mask_params(query) + fsep + _mask_params(fragment)
    return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."


def redis_location(url: object, options: Mapping[str, Any]) -> str:
    """Check a Redis URL and the extra client ``options``; return where the URL points, for
    messages: ``host:port/db`` or ``unix:/path/db`` — never a username, password or query
    option.

    Raises :class:`InvalidArgument` (showing the URL masked) for anything redis-py would
    refuse only at the first command: a malformed URL, an unknown option.

    Example::

        >>> redis_location("redis://:secret@cache.internal:6380/2", {})
        'cache.internal:6380/2'
    """
    if not isinstance(url, str) or not url.lower().startswith(("redis://", "rediss://", "unix://")):
        raise InvalidArgument(
            f"redis_url={mask_url(url)!r}: must be a redis://, rediss:// or unix:// URL string"
        )
    # redis-py's own messages may quote parts of the URL (a password holding '/' is parsed
    # as the port), so they are not passed on.
    try:
        parsed = parse_url(url)
    except (ValueError, TypeError, UnicodeError):
        raise InvalidArgument(
            f"redis_url={mask_url(url)!r} is not a valid Redis URL: expected "
            "redis://[user:password@]host[:port][/db][?option=value] with a port of 1-65535, "
            "a database number and options redis-py knows (percent-encode '/', '?', '#' and "
            "'@' in a password)"
        ) from None
    try:
        pool = ConnectionPool.from_url(url, **options)
        pool.connection_class(**pool.connection_kwargs)  # checks the options, does not connect
    except (TypeError, ValueError) as exc:
        named = re.search(r"argument '(\w+)'", str(exc))
        which = (
            f"the client option {named.group(1)!r}"
            if named and named.group(1) in options
            else "a client option or a query option of the URL"
        )
        raise InvalidArgument(
            f"redis_url={mask_url(url)!r}: {which} is not accepted by redis-py"
        ) from None
    if "path" not in parsed and "db" not in parsed:
        # redis-py silently falls back to database 0 for a path that is not a number
        path = unquote(urlsplit(url).path).strip("/")
        if path:
            raise InvalidArgument(
                f"redis_url={mask_url(url)!r}: the database (the URL's path) is not a number; "
                "write redis://host:port/<db number>, e.g. redis://localhost:6379/0"
            )
    db = parsed.get("db", 0)
    if "path" in parsed:
        return f"unix:{parsed['path']}/{db}"
    host = parsed.get("host") or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parsed.get('port') or 6379}/{db}"
