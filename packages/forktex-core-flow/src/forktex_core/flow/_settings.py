# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The settings of a :class:`Flow`: one frozen value, checked when it is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from ._db import asyncpg_dsn
from ._defs import positive_int, required_seconds, seconds, storable_text
from ._errors import InvalidArgument
from ._serde import JsonSerializer, Serializer
from ._unavailable import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_OUTAGE,
    describe_target,
)

DEFAULT_RETENTION = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True, init=False)
class Settings:
    """Everything a :class:`Flow` is configured with (seconds unless noted).

    The constructor takes ``Flow``'s parameters and checks each, in that order; a bad one
    raises :class:`InvalidArgument` naming it. ``retention`` may be a ``timedelta``; every
    duration is stored as float seconds. The database URL is never shown (it may hold a
    password); a port in it that is not a number is refused here. ``connect_timeout``,
    ``command_timeout`` (``None``: no limit) and ``max_outage`` bound the waits on the
    database (see :class:`FlowUnavailable`).

    Example::

        settings = Settings("postgresql+asyncpg://user:pass@host/db", lease=10, heartbeat=2)
        settings.stale_after  # 20.0: a worker silent this long is presumed dead
    """

    database_url: str = field(repr=False)
    serializer: Serializer
    lease: float
    heartbeat: float
    reaper_interval: float
    poll_interval: float
    max_recovery_attempts: int
    retention: float
    prune_batch: int
    shutdown_grace: float
    pool_size: int | None
    worker_id: str | None
    connect_timeout: float
    command_timeout: float | None
    max_outage: float

    def __init__(
        self,
        database_url: str,
        *,
        serializer: Serializer | None = None,
        lease: float = 5.0,
        heartbeat: float = 1.0,
        reaper_interval: float = 1.0,
        poll_interval: float = 1.0,
        max_recovery_attempts: int = 5,
        retention: float | timedelta = DEFAULT_RETENTION,
        prune_batch: int = 500,
        shutdown_grace: float = 10.0,
        pool_size: int | None = None,
        worker_id: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
        max_outage: float = DEFAULT_MAX_OUTAGE,
    ) -> None:
        asyncpg_dsn(database_url)
        checked_connect = required_seconds(connect_timeout, "connect_timeout")
        checked_command = seconds(command_timeout, "command_timeout", allow_none=True)
        describe_target(database_url, checked_connect, checked_command)  # a bad port
        if serializer is None:
            serializer = JsonSerializer()
        elif not isinstance(serializer, Serializer):
            raise InvalidArgument(
                f"serializer must have dumps(value) -> str and loads(text), got {serializer!r}"
            )
        checked_lease = required_seconds(lease, "lease")
        checked_heartbeat = required_seconds(heartbeat, "heartbeat")
        if checked_heartbeat * 2 > checked_lease:
            raise InvalidArgument(
                f"heartbeat ({heartbeat}) must be at most half the lease ({lease}) so a live "
                "worker never loses its runs"
            )
        values: dict[str, object] = {
            "database_url": database_url,
            "serializer": serializer,
            "lease": checked_lease,
            "heartbeat": checked_heartbeat,
            "reaper_interval": required_seconds(reaper_interval, "reaper_interval"),
            "poll_interval": required_seconds(poll_interval, "poll_interval"),
            "max_recovery_attempts": positive_int(
                max_recovery_attempts, "max_recovery_attempts", 0
            ),
            "retention": required_seconds(retention, "retention"),
            "prune_batch": positive_int(prune_batch, "prune_batch"),
            "shutdown_grace": float(
                0.0 if shutdown_grace == 0 else required_seconds(shutdown_grace, "shutdown_grace")
            ),
            "pool_size": None if pool_size is None else positive_int(pool_size, "pool_size"),
            "worker_id": None if worker_id is None else storable_text(worker_id, "worker_id"),
            "connect_timeout": checked_connect,
            "command_timeout": checked_command,
            "max_outage": required_seconds(max_outage, "max_outage"),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    @property
    def stale_after(self) -> float:
        """Seconds after which a worker whose heartbeat stopped is presumed dead."""
        return float(self.lease * 2)
