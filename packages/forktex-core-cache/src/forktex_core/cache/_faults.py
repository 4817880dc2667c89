# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What a Redis failure means, how it is reported, and outage tracking.

Every failure of a command becomes one of this module's errors naming the server
(``host:port db N``, never a password) and the operation:

- **down** - Redis cannot be used at all right now: refused or reset connections, a silent
  server past the timeout, a name that does not resolve, a server that does not speak RESP,
  refused credentials, a database number the server lacks, a cluster without a reachable
  node. :class:`CacheUnavailable`; starts an outage (see :class:`Health`).
- **refusing** - Redis answers but temporarily refuses the command: ``READONLY`` (a replica
  after a failover), ``OOM`` (maxmemory with noeviction), ``LOADING``, ``BUSY``,
  ``MISCONF``, ``NOREPLICAS``, ``MASTERDOWN``, ``CLUSTERDOWN``, ``TRYAGAIN``.
  :class:`CacheUnavailable`.
- **rejected** - any other error reply (``WRONGTYPE``, a value that is not an integer...):
  :class:`CacheCommandError`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Final, Literal

import redis.exceptions as rex

from ._errors import CacheCommandError, CacheError, CacheUnavailable

log: Final = logging.getLogger("forktex_core.cache")

Kind = Literal["down", "refusing", "rejected"]

#: Exceptions that can come out of a redis-py command (``TimeoutError`` is an ``OSError``).
REDIS_FAILURES: Final[tuple[type[BaseException], ...]] = (
    rex.RedisError,
    rex.RedisClusterException,
    OSError,
)
_DOWN: Final[tuple[type[BaseException], ...]] = (
    rex.ConnectionError,  # also AuthenticationError, BusyLoadingError, MaxConnectionsError
    rex.TimeoutError,
    rex.InvalidResponse,
    rex.ClusterError,  # also ClusterDownError, MasterDownError
    rex.RedisClusterException,
    OSError,
)
#: Error-reply codes meaning "not now" rather than "not this command".
_REFUSING_CODES: Final = frozenset(
    {
        "READONLY",
        "OOM",
        "LOADING",
        "BUSY",
        "MISCONF",
        "NOREPLICAS",
        "MASTERDOWN",
        "CLUSTERDOWN",
        "TRYAGAIN",
    }
)
#: redis-py strips the code from the errors it has a class for; put it back for the message.
_CODES: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (rex.ReadOnlyError, "READONLY"),
    (rex.OutOfMemoryError, "OOM"),
    (rex.NoPermissionError, "NOPERM"),
    (rex.ExecAbortError, "EXECABORT"),
    (rex.TryAgainError, "TRYAGAIN"),
)
#: A rejected command is logged at most this often per operation (it may repeat per call).
_REJECTION_LOG_INTERVAL: Final = 60.0
#: Where :func:`failure` and :func:`timed_out` leave the error's class for telemetry.
_CLASS_ATTR: Final = "_forktex_error_class"
_CODE: Final = re.compile(r"[A-Z][A-Z_-]+")


@dataclass(frozen=True)
class Target:
    """Where commands go and how long they may take, for error messages."""

    endpoint: str  # '127.0.0.1:6379 db 0', 'unix:/run/redis.sock db 0', 'cluster h:p,h:p'
    connect_timeout: float
    command_timeout: float


def reply_text(exc: BaseException) -> str:
    """An error reply as Redis sent it (``READONLY You can't write...``), code included."""
    text = str(exc)
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return f"{code} {text}".rstrip()
    return text


def kind_of(exc: BaseException) -> Kind:
    """Which of the three kinds of failure ``exc`` (raised by redis-py) is."""
    if isinstance(exc, _DOWN):
        return "down"
    if isinstance(exc, rex.ResponseError):
        text = reply_text(exc)
        if text.split(" ", 1)[0] in _REFUSING_CODES:
            return "refusing"
        if text.startswith("DB index is out of range"):  # SELECT while connecting
            return "down"
    return "rejected"


def reply_code(exc: BaseException) -> str:
    """The code of an error reply (``WRONGTYPE``, ``READONLY``; ``ERR`` when it has none)."""
    first = reply_text(exc).split(" ", 1)[0]
    return first if _CODE.fullmatch(first) else "ERR"


def qualified_name(cls: type) -> str:
    """``redis.exceptions.ConnectionError``, ``forktex_core.cache.CacheUnavailable``,
    ``ConnectionRefusedError``: the class's public dotted name (private modules left out)."""
    module = ".".join(p for p in cls.__module__.split(".") if not p.startswith("_"))
    if module in ("", "builtins"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def classify(exc: BaseException) -> tuple[str, str | None]:
    """``(error.type, db.response.status_code)`` for telemetry: the Redis reply code for an
    error reply, ``timeout`` for our command deadline, else the class of the original
    (redis-py / OS) error, else the class of ``exc``. Never the message."""
    seen: BaseException | None = exc
    while seen is not None:
        marked = getattr(seen, _CLASS_ATTR, None)
        if marked is not None:
            return marked  # type: ignore[no-any-return]
        seen = seen.__cause__
    return qualified_name(type(exc)), None


def _marked(error: CacheError, error_type: str, code: str | None = None) -> CacheError:
    setattr(error, _CLASS_ATTR, (error_type, code))
    return error


def failure(target: Target, exc: BaseException, what: str, kind: Kind) -> CacheError:
    """This module's error for ``exc`` (of ``kind``) raised by redis-py during ``what``."""
    at = f"Redis at {target.endpoint}"
    if kind == "rejected":
        code = reply_code(exc) if isinstance(exc, rex.ResponseError) else None
        return _marked(
            CacheCommandError(f"{at} rejected {what}: {type(exc).__name__}: {exc}"),
            code or qualified_name(type(exc)),
            code,
        )
    if kind == "refusing":
        code = reply_code(exc)
        return _marked(CacheUnavailable(f"{at} refused {what}: {reply_text(exc)}"), code, code)
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, rex.InvalidResponse):
        hint = "the server does not speak the Redis protocol: check the URL's host and port"
    elif isinstance(exc, rex.AuthenticationError):
        hint = "it refused the credentials: check the password (and user name)"
    elif isinstance(exc, rex.ResponseError):
        hint = "it has no such database: use a db number below its `databases` setting"
    elif isinstance(exc, rex.MaxConnectionsError) or "Too many connections" in str(exc):
        hint = "every connection of the pool is in use: raise max_connections"
    elif isinstance(exc, rex.RedisClusterException):
        hint = "the cluster client cannot use it"
    elif isinstance(exc, rex.TimeoutError):
        hint = (
            f"no connection within connect_timeout={target.connect_timeout:g} s"
            if "connect" in str(exc).lower()
            else "timed out"
        )
    else:
        hint = "unreachable"
    error = CacheUnavailable(f"{at}: {hint} ({detail}) during {what}")
    return _marked(error, qualified_name(type(exc)))


def timed_out(target: Target, what: str) -> CacheUnavailable:
    """The error for a command that outlived ``command_timeout``."""
    error = CacheUnavailable(
        f"Redis at {target.endpoint} did not answer {what} within "
        f"command_timeout={target.command_timeout:g} s (it accepts connections but does not "
        "reply: overloaded, stopped, or not Redis)"
    )
    _marked(error, "timeout")
    return error


class Health:
    """Tracks Redis outages: one warning when one starts, one info line when it ends.

    While an outage lasts, callers that can degrade (``@cached``, ``rate_limit``) skip Redis
    for ``retry_seconds`` after each failure instead of paying a timeout per call; then one
    caller at a time probes it (the others keep skipping until that probe has an answer).
    """

    __slots__ = ("_rejections", "down_since", "next_probe", "probe_seconds", "retry_seconds")

    def __init__(self, retry_seconds: float, probe_seconds: float) -> None:
        self.retry_seconds = retry_seconds
        self.probe_seconds = probe_seconds
        self.down_since: float | None = None
        self.next_probe = 0.0
        self._rejections: dict[str, float] = {}

    def skip(self) -> bool:
        """True while in an outage, unless this caller is the one to probe Redis now."""
        if self.down_since is None:
            return False
        now = time.monotonic()
        if now < self.next_probe:
            return True
        # This caller probes; until it fails (``failed``) or succeeds (``ok``), others skip.
        self.next_probe = now + self.probe_seconds + self.retry_seconds
        return False

    def failed(self, error: CacheError) -> None:
        """Redis could not be used (a *down* failure): start or extend the outage."""
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            log.warning(
                "%s; until Redis answers again @cached calls functions directly and "
                "rate_limit applies its on_error policy",
                error,
            )
        self.next_probe = now + self.retry_seconds

    def ok(self) -> None:
        """A command succeeded: the outage, if any, is over."""
        if self.down_since is not None:
            log.info("Redis is reachable again after %.1f s", time.monotonic() - self.down_since)
            self.down_since = None

    def rejected(self, error: CacheError, what: str) -> None:
        """Redis answered a degrading caller's command with an error reply: warn, at most
        once a minute per ``what`` (a fixed operation name, never a key)."""
        now = time.monotonic()
        if now >= self._rejections.get(what, 0.0):
            self._rejections[what] = now + _REJECTION_LOG_INTERVAL
            log.warning(
                "%s; @cached calls functions directly and rate_limit applies its on_error "
                "policy (logged at most once a minute per operation)",
                error,
            )
