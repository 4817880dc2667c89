# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Schedules: their definition and checks, what a stored one looks like, and which ticks
fire when the leader finds some due (the catch-up policy).

Every tick of a schedule is started as a run whose idempotency key is
``schedule:NAME:TICK`` (the tick in UTC, ISO 8601), so a tick runs once whoever fires it
and however often. A tick is *on time* while it is at most ``grace`` seconds overdue and
always fires; ticks overdue by more (nobody was leading: every worker was down) are
*missed*, and the catch-up policy decides which of them still run: ``"skip"`` none,
``"latest"`` the most recent one, ``"all"`` each of them, at most ``max_catch_up`` (the most
recent ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ._cron import Cron, zone
from ._defs import positive_int, seconds, storable_text
from ._errors import InvalidSchedule

CATCH_UP = ("skip", "latest", "all")
KEY_PREFIX = "schedule:"
MAX_BACKFILL = 10_000  # ticks one backfill may start


def tick_key(name: str, tick: datetime) -> str:
    """The idempotency key of ``tick`` of schedule ``name``.

    Example::

        tick_key("reports", datetime(2026, 1, 1, tzinfo=UTC))
        # 'schedule:reports:2026-01-01T00:00:00Z'
    """
    return f"{KEY_PREFIX}{name}:{tick_text(tick)}"


def tick_text(tick: datetime) -> str:
    """``tick`` in UTC as ISO 8601 with a ``Z`` (whole seconds)."""
    return tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A checked schedule definition: which workflow runs, when, with what input.

    ``version`` None runs the newest version of the workflow at each tick. ``input`` is the
    encoded JSON text every run gets.

    Example::

        Schedule.check("reports.daily", "reports.build", "0 6 * * *", tz="Europe/Vienna")
    """

    name: str
    workflow: str
    cron: Cron
    tz: ZoneInfo
    input: str = "null"
    version: int | None = None
    queue: str | None = None
    catch_up: str = "latest"
    max_catch_up: int = 10
    grace: float = 60.0

    @classmethod
    def check(
        cls,
        name: object,
        workflow: object,
        cron: object,
        *,
        tz: object = "UTC",
        input: str = "null",
        version: object = None,
        queue: object = None,
        catch_up: object = "latest",
        max_catch_up: object = 10,
        grace: object = 60.0,
    ) -> Schedule:
        """A definition from a caller's values; :class:`InvalidSchedule` names a bad one."""
        try:
            sname = storable_text(name, "schedule name")
            wname = storable_text(workflow, "workflow")
            ver = None if version is None else positive_int(version, "version")
            qname = None if queue is None else storable_text(queue, "queue")
            limit = positive_int(max_catch_up, "max_catch_up")
            late = seconds(grace, "grace")
        except InvalidSchedule:
            raise
        except ValueError as exc:  # InvalidArgument of the shared checks
            raise InvalidSchedule(f"schedule {name!r}: {exc}") from None
        if catch_up not in CATCH_UP:
            raise InvalidSchedule(
                f"schedule {name!r}: catch_up must be one of {', '.join(map(repr, CATCH_UP))}, "
                f"got {catch_up!r}"
            )
        assert late is not None
        return cls(
            sname,
            wname,
            Cron.parse(cron),
            zone(tz),
            input,
            ver,
            qname,
            str(catch_up),
            limit,
            late,
        )

    def args(self) -> tuple[Any, ...]:
        """The stored columns after the name (workflow .. grace), in statement order."""
        return (
            self.workflow,
            self.version,
            self.cron.expression,
            self.tz.key,
            self.input,
            self.queue,
            self.catch_up,
            self.max_catch_up,
            self.grace,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Schedule:
        """The definition of a stored schedule row."""
        return cls(
            row["name"],
            row["workflow"],
            Cron.parse(row["cron"]),
            zone(row["tz"]),
            row["input"],
            row["version"],
            row["queue"],
            row["catch_up"],
            row["max_catch_up"],
            row["grace"],
        )

    def next_tick(self, after: datetime) -> datetime:
        """The first tick strictly after ``after``."""
        return self.cron.next_after(after, self.tz)

    def ticks(self, start: datetime, end: datetime) -> list[datetime]:
        """Every tick with ``start <= tick < end`` (for a backfill), at most MAX_BACKFILL."""
        found: list[datetime] = []
        for tick in self.cron.ticks(start, end, self.tz):
            if len(found) == MAX_BACKFILL:
                raise InvalidSchedule(
                    f"schedule {self.name!r}: {start.isoformat()} .. {end.isoformat()} holds "
                    f"more than {MAX_BACKFILL} ticks; backfill a shorter range at a time"
                )
            found.append(tick)
        return found


@dataclass(frozen=True, slots=True)
class Plan:
    """What the leader does with a due schedule: the ticks to start, the next tick to wait
    for, the latest tick handled, how many missed ticks it left out."""

    fire: list[datetime]
    next_at: datetime
    last: datetime | None
    skipped: int


def plan(schedule: Schedule, next_at: datetime, now: datetime) -> Plan:
    """The ticks from ``next_at`` up to ``now`` that fire under the catch-up policy.

    Example::

        p = plan(schedule, row["next_at"], row["now"])   # p.fire: the ticks to start
    """
    on_time: list[datetime] = []
    missed: list[datetime] = []
    keep = {"skip": 0, "latest": 1, "all": schedule.max_catch_up}[schedule.catch_up]
    late = now - timedelta(seconds=schedule.grace)
    skipped = 0
    last: datetime | None = None
    tick = next_at
    while tick <= now:
        if tick >= late:
            on_time.append(tick)
        else:
            missed.append(tick)
            if len(missed) > keep:  # only the most recent `keep` missed ticks run
                missed.pop(0)
                skipped += 1
        last = tick
        tick = schedule.next_tick(tick)
    return Plan(missed + on_time, tick, last, skipped)


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A stored schedule and its state: the next tick due, the last one handled, paused.

    ``declared`` is True for a schedule declared in code (``@flow.schedule``; each worker
    start stores the definition again), False for one made by :meth:`Flow.create_schedule`.

    Example::

        for s in await flow.schedules():
            print(s.name, s.cron, s.tz, s.next_tick, s.last_tick, s.paused)
    """

    name: str
    workflow: str
    version: int | None
    cron: str
    tz: str
    input: Any
    queue: str | None
    catch_up: str
    max_catch_up: int
    grace: float
    paused: bool
    next_tick: datetime
    last_tick: datetime | None
    declared: bool
    created_at: datetime
