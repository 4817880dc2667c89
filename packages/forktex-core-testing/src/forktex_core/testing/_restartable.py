# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A service on a private server that a test may stop, crash and start again."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

S = TypeVar("S")


class _Server(Protocol):
    @property
    def running(self) -> bool: ...

    def shutdown(self, *, crash: bool = False) -> None: ...

    def start(self) -> object: ...

    def restart(self, *, crash: bool = False, downtime: float = 0.0) -> object: ...


class Restartable(Generic[S]):
    """``service`` lives on a private server (never a shared one) that this object restarts:
    same port, same data, so clients only need to reconnect.

    The ``forktex_restartable_postgres`` and ``forktex_restartable_redis`` fixtures hand
    one out per test and make sure the server runs again afterwards.

    Example::

        async def test_pool_rides_out_a_restart(forktex_restartable_postgres):
            pg = forktex_restartable_postgres
            pool = await asyncpg.create_pool(pg.service.dsn)
            pg.restart(crash=True)
            assert await pool.fetchval("select 1") == 1   # after one failed attempt
    """

    def __init__(self, service: S, server: _Server) -> None:
        self.service = service
        self._server = server

    @property
    def running(self) -> bool:
        """True while the server runs."""
        return self._server.running

    def shutdown(self, *, crash: bool = False) -> None:
        """Stop the server; open connections break, new ones are refused until
        :meth:`start`. ``crash=True`` simulates a crash (Postgres: ``immediate`` shutdown
        followed by crash recovery; Redis: SIGKILL) instead of a clean stop."""
        self._server.shutdown(crash=crash)

    def start(self) -> None:
        """Start the server again on the same port with the same data (no-op if running)."""
        if not self._server.running:
            self._server.start()

    def restart(self, *, crash: bool = False, downtime: float = 0.0) -> None:
        """:meth:`shutdown`, stay down ``downtime`` seconds, :meth:`start`."""
        self._server.restart(crash=crash, downtime=downtime)

    def __repr__(self) -> str:
        state = "running" if self.running else "down"
        return f"Restartable({self.service}, {state})"
