# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Cron expressions: a small parser and the next-tick math, in a time zone, across DST.

Five fields (``minute hour day-of-month month day-of-week``) or six with a leading
``second``; each a ``*``, a value, a range ``a-b``, a step ``*/n``, ``a/n`` or ``a-b/n``, or a
comma-separated list of those; months and weekdays also by name (``jan``, ``mon``; weekday
``0`` and ``7`` are Sunday); the macros ``@yearly``, ``@monthly``, ``@weekly``, ``@daily``,
``@hourly``. When both day fields are restricted (neither starts with ``*``), a day matches
if either does (Vixie cron's rule); otherwise both must.

Ticks are wall-clock times in the schedule's zone. Daylight saving time:

- a wall time that does not exist (the spring-forward gap) fires at the first instant after
  the gap (``02:30`` on the last Sunday of March in ``Europe/Vienna`` fires at ``03:00``);
  several ticks in the gap fire once; time never moves backwards;
- a wall time that occurs twice (fall back) fires once, at its first occurrence.

Expressions are matched on naive wall times (local arithmetic), then resolved to instants;
a tick is always strictly later than the one before it.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._errors import InvalidSchedule

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

# (field name, lowest, highest, names from the lowest value on)
_SECOND = ("second", 0, 59, ())
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_SEARCH_YEARS = 30  # an expression without a matching time in this many years never fires
_ONE_SECOND = timedelta(seconds=1)


def _bad(expression: str, field: str | None, text: str, problem: str) -> InvalidSchedule:
    where = f" {field} field {text!r}:" if field else ""
    return InvalidSchedule(f"invalid cron expression {expression!r}:{where} {problem}")


def _value(
    expression: str, field: tuple[str, int, int, tuple[str, ...]], whole: str, text: str
) -> int:
    name, lo, hi, names = field
    low = text.lower()
    if names and low in names:
        return names.index(low) + lo
    if not text.isdigit():
        allowed = f"{lo}-{hi}" + (f" or a name ({', '.join(names)})" if names else "")
        raise _bad(expression, name, whole, f"{text!r} is not a number {allowed}")
    value = int(text)
    if not lo <= value <= hi:
        raise _bad(expression, name, whole, f"{value} is outside {lo}-{hi}")
    return value


def _field(expression: str, field: tuple[str, int, int, tuple[str, ...]], text: str) -> set[int]:
    """The values of one field (a list of ``*``, values, ranges and steps)."""
    name, lo, hi, _ = field
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _bad(expression, name, text, "empty list item")
        body, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise _bad(expression, name, text, "step must be at least 1")
            step = int(step_text)
        if body == "*":
            first, last = lo, hi
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _value(expression, field, text, a), _value(expression, field, text, b)
            if first > last:
                raise _bad(expression, name, text, f"range {body!r} runs backwards")
        else:
            first = _value(expression, field, text, body)
            last = hi if slash else first
        values.update(range(first, last + 1, step))
    return values


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron expression; ``next_after`` is the next tick in a time zone.

    Example::

        cron = Cron.parse("*/15 9-17 * * mon-fri")
        cron.next_after(datetime(2026, 3, 27, 17, 50, tzinfo=UTC), ZoneInfo("Europe/Vienna"))
    """

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day-of-month starts with '*'
    any_weekday: bool  # day-of-week starts with '*'

    @classmethod
    def parse(cls, expression: object) -> Cron:
        """Parse ``expression``; :class:`InvalidSchedule` names the field that is wrong."""
        if not isinstance(expression, str) or not expression.strip():
            raise InvalidSchedule(
                f"a cron expression must be a non-empty string like '*/5 * * * *', "
                f"got {expression!r}"
            )
        text = MACROS.get(expression.strip().lower(), expression)
        if text.startswith("@"):
            raise _bad(expression, None, text, f"unknown macro; known: {', '.join(MACROS)}")
        parts = text.split()
        if len(parts) not in (5, 6):
            raise _bad(
                expression,
                None,
                text,
                f"has {len(parts)} fields; give 5 (minute hour day-of-month month "
                "day-of-week) or 6 (a leading second)",
            )
        seconds = _field(expression, _SECOND, parts.pop(0)) if len(parts) == 6 else {0}
        sets = [_field(expression, f, p) for f, p in zip(_FIELDS, parts, strict=True)]
        weekdays = {d % 7 for d in sets[4]}
        cron = cls(
            expression,
            frozenset(seconds),
            frozenset(sets[0]),
            frozenset(sets[1]),
            frozenset(sets[2]),
            frozenset(sets[3]),
            frozenset(weekdays),
            parts[2].startswith("*"),
            parts[4].startswith("*"),
        )
        if cron.any_weekday and not cron.any_day:
            longest = max(calendar.monthrange(2024, m)[1] for m in cron.months)  # 2024: leap
            if min(cron.days) > longest:
                raise _bad(
                    expression, "day-of-month", parts[2], "no month of the expression has it"
                )
        return cron

    def _day(self, d: date) -> bool:
        in_month = d.day in self.days
        in_week = (d.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_wall(self, after: datetime) -> datetime:
        """The first matching naive wall time strictly after naive ``after``."""
        t = after.replace(microsecond=0) + _ONE_SECOND
        limit = after.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = datetime(year, month, 1)
            elif not self._day(t.date()):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += _ONE_SECOND
            else:
                return t
        raise _bad(self.expression, None, "", f"matches no time within {_SEARCH_YEARS} years")

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime:
        """The first tick strictly after the instant ``after`` (aware), in UTC.

        Example::

            cron.next_after(datetime.now(UTC), ZoneInfo("Europe/Vienna"))
        """
        wall = after.astimezone(tz).replace(tzinfo=None)
        while True:
            wall = self.next_wall(wall)
            instant = resolve(wall, tz)
            if instant > after:  # a wall time of a fall-back's first pass may lie behind
                return instant

    def ticks(self, start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """Every tick with ``start <= tick < end`` (aware instants), in UTC, in order.

        Example::

            list(cron.ticks(monday, tuesday, ZoneInfo("UTC")))
        """
        tick = self.next_after(start - timedelta(microseconds=1), tz)
        while tick < end:
            yield tick
            tick = self.next_after(tick, tz)


def resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant (UTC) of naive wall time ``wall`` in ``tz``: its first occurrence when
    it occurs twice, the end of the gap when it does not exist.

    Example::

        resolve(datetime(2026, 3, 29, 2, 30), ZoneInfo("Europe/Vienna"))  # 01:00 UTC
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # in a gap: fold=0 and fold=1 read it with the offsets before and after the change;
    # the change lies between them, found to the second
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = sorted((first, other))
    after = hi.astimezone(tz).utcoffset()
    while hi - lo > _ONE_SECOND:
        mid = lo + timedelta(seconds=((hi - lo) // _ONE_SECOND) // 2)
        if mid.astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi


def zone(tz: object) -> ZoneInfo:
    """The time zone named ``tz`` (an IANA name like ``"Europe/Vienna"``).

    Example::

        zone("Europe/Vienna")
    """
    if isinstance(tz, ZoneInfo):
        return tz
    if not isinstance(tz, str) or not tz:
        raise InvalidSchedule(f"tz must be an IANA time zone name like 'Europe/Vienna', got {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            f"unknown time zone {tz!r}; give an IANA name like 'Europe/Vienna' or 'UTC'"
        ) from None
