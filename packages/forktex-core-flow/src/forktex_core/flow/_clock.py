# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The database's clock, read in-process without a round trip.

Every timer of a run is compared by Postgres (``wake_at <= now()``, ``deadline``), so the
worker must compute wake-up times, deadlines and ``ctx.now()`` on the same clock, whatever
its own wall clock says. The worker observes ``now()`` in statements it sends anyway (the
claim, the heartbeat) and keeps the offset to its monotonic clock; the estimate is off by
at most half a round trip, and a jump of the machine's wall clock changes nothing.
"""

from __future__ import annotations

import time


class DbClock:
    """Seconds since the epoch on the database server's clock, estimated locally.

    Example::

        clock = DbClock()
        sent = time.monotonic()
        db_now = await conn.fetchval("SELECT extract(epoch FROM now())::float8")
        clock.observe(db_now, sent, time.monotonic())
        wake_at = clock.now() + 30
    """

    __slots__ = ("_offset",)

    def __init__(self) -> None:
        # Until the first observation: the local wall clock (used only before any claim).
        self._offset = time.time() - time.monotonic()

    def observe(self, db_epoch: float, sent: float, received: float) -> None:
        """Record that the server read ``db_epoch`` between monotonic ``sent`` and ``received``."""
        self._offset = db_epoch - (sent + received) / 2

    def now(self) -> float:
        """The database's current time (epoch seconds)."""
        return time.monotonic() + self._offset
