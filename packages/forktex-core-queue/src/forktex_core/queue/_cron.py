# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Cron schedules: crontab strings or arq-style keyword sets, and their next fire time."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from ._errors import InvalidCron, show

_MONTHS = {
    name: i
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_CRON_DAYS = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# arq's weekday names (Monday = 0), accepted by the keyword form.
_ARQ_DAYS = {
    "mon": 0,
    "tues": 1,
    "tue": 1,
    "wed": 2,
    "thurs": 3,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}

# (name, low, high) of the 6 fields, seconds first.
_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("weekday", 0, 7),
)
CRON_ID_PREFIX = "cron:"
"""Job ids of cron ticks start with this; user job ids may not (the id space is reserved)."""

_MAX_DAYS = 366 * 8
_NUMBER = re.compile(r"[0-9]{1,4}")  # ASCII digits only: str.isdigit() also takes '²' and '٣'


def _check_tz(tz: object) -> tzinfo:
    if not isinstance(tz, tzinfo):
        raise InvalidCron(f"tz={show(tz)}: must be a tzinfo (e.g. ZoneInfo('Europe/Vienna'))")
    return tz  # a schedule that matches nothing in 8 years matches nothing (e.g. Feb 30)


@dataclass(frozen=True)
class CronSchedule:
    """When a cron job fires: sets of allowed values per field, in ``tz`` wall-clock time.

    ``weekdays`` uses Python's numbering (Monday = 0). When both ``days`` and ``weekdays`` are
    restricted a day matches if either does (standard cron); otherwise both must.

    Example::

        CronSchedule.parse("*/5 * * * *").next_after(datetime(2026, 1, 1, 12, 3, tzinfo=UTC))
        # datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    """

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool
    tz: tzinfo = UTC
    text: str = ""

    @classmethod
    def parse(cls, spec: str, tz: tzinfo = UTC) -> CronSchedule:
        """Parse ``"m h dom mon dow"`` (5 fields) or ``"s m h dom mon dow"`` (6 fields)."""
        if not isinstance(spec, str):
            raise InvalidCron(f"cron spec {show(spec)} must be a string like '*/5 * * * *'")
        _check_tz(tz)
        parts = spec.split()
        if len(parts) == 5:
            parts = ["0", *parts]
        elif len(parts) != 6:
            raise InvalidCron(
                f"cron spec {show(spec)} has {len(parts)} fields; expected 5 "
                "(minute hour day month weekday) or 6 (second first)"
            )
        sets = [
            _parse_field(text, name, lo, hi, spec)
            for text, (name, lo, hi) in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset((d - 1) % 7 for d in sets[5])  # cron Sunday=0/7 -> Python Monday=0
        return cls(
            seconds=sets[0],
            minutes=sets[1],
            hours=sets[2],
            days=sets[3],
            months=sets[4],
            weekdays=weekdays,
            days_restricted=parts[3] != "*",
            weekdays_restricted=parts[5] != "*",
            tz=tz,
            text=spec,
        )

    @classmethod
    def from_fields(
        cls,
        *,
        month: int | Iterable[int] | None = None,
        day: int | Iterable[int] | None = None,
        weekday: int | str | Iterable[int] | None = None,
        hour: int | Iterable[int] | None = None,
        minute: int | Iterable[int] | None = None,
        second: int | Iterable[int] | None = 0,
        tz: tzinfo = UTC,
    ) -> CronSchedule:
        """arq's keyword form: each field an int, a set of ints or ``None`` (= every value).

        ``weekday`` is 0-6 with Monday = 0, or a name (``"mon"`` ... ``"sun"``), as in arq.
        """
        _check_tz(tz)
        if isinstance(weekday, str):
            if weekday.lower() not in _ARQ_DAYS:
                raise InvalidCron(f"weekday={show(weekday)}: allowed names are {sorted(_ARQ_DAYS)}")
            weekday = _ARQ_DAYS[weekday.lower()]
        values = {
            "second": _field_set("second", second, 0, 59),
            "minute": _field_set("minute", minute, 0, 59),
            "hour": _field_set("hour", hour, 0, 23),
            "day": _field_set("day", day, 1, 31),
            "month": _field_set("month", month, 1, 12),
            "weekday": _field_set("weekday", weekday, 0, 6),
        }
        text = " ".join(f"{k}={sorted(v)}" for k, v in values.items() if v is not None)
        full = {
            "second": range(60),
            "minute": range(60),
            "hour": range(24),
            "day": range(1, 32),
            "month": range(1, 13),
            "weekday": range(7),
        }
        sets = {k: frozenset(full[k] if v is None else v) for k, v in values.items()}
        return cls(
            seconds=sets["second"],
            minutes=sets["minute"],
            hours=sets["hour"],
            days=sets["day"],
            months=sets["month"],
            weekdays=sets["weekday"],
            days_restricted=False,  # arq semantics: every given field must match
            weekdays_restricted=False,
            tz=tz,
            text=text or "every second",
        )

    def _day_matches(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        in_days = d.day in self.days
        in_weekdays = d.weekday() in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment`` (an aware datetime), in ``tz``."""
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise InvalidCron(f"next_after({show(moment)}): give a timezone-aware datetime")
        try:
            return self._next_after(moment)
        except OverflowError:  # ran past datetime.max (year 9999)
            raise InvalidCron(
                f"cron schedule {show(self.text)} does not fire after {moment.isoformat()} "
                "before the year 9999"
            ) from None

    def _next_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.tz).replace(microsecond=0, tzinfo=None)
        start = local + timedelta(seconds=1)
        hours = sorted(self.hours)
        minutes = sorted(self.minutes)
        seconds = sorted(self.seconds)
        day = start.date()
        for offset in range(_MAX_DAYS):
            d = day + timedelta(days=offset)
            if not self._day_matches(d):
                continue
            first = offset == 0
            for h in hours:
                if first and h < start.hour:
                    continue
                for m in minutes:
                    if first and h == start.hour and m < start.minute:
                        continue
                    for s in seconds:
                        candidate = datetime(d.year, d.month, d.day, h, m, s)
                        if candidate >= start:
                            return candidate.replace(tzinfo=self.tz)
        raise InvalidCron(f"cron schedule {show(self.text)} never fires")


def cron_job_id(task: str, tick_ms: int) -> str:
    """The job id of one tick of a cron task: ``cron:<task>:<tick unix ms>``."""
    return f"{CRON_ID_PREFIX}{task}:{tick_ms}"


def _field_set(name: str, value: int | Iterable[int] | None, lo: int, hi: int) -> set[int] | None:
    if value is None:
        return None
    try:
        items = [value] if isinstance(value, int) else list(value)
    except TypeError:
        raise InvalidCron(f"{name}={show(value)}: give an int, a set of ints or None") from None
    if not items:
        raise InvalidCron(f"{name}={show(value)}: give at least one value ({lo}-{hi}) or None")
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise InvalidCron(f"{name}={show(value)}: {show(v)} is not an int in {lo}-{hi}")
    return set(items)


def _parse_field(text: str, name: str, lo: int, hi: int, spec: str) -> frozenset[int]:
    names = _MONTHS if name == "month" else _CRON_DAYS if name == "weekday" else {}
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        rng = part
        if "/" in part:
            rng, _, step_text = part.partition("/")
            if not _NUMBER.fullmatch(step_text) or int(step_text) < 1:
                raise InvalidCron(
                    f"cron spec {show(spec)}: bad step {show(part)} in the {name} field"
                )
            step = int(step_text)
        if rng == "*":
            first, last = lo, (6 if name == "weekday" else hi)
        elif "-" in rng:
            a, _, b = rng.partition("-")
            first, last = _value(a, names, name, lo, hi, spec), _value(b, names, name, lo, hi, spec)
            if first > last:
                raise InvalidCron(
                    f"cron spec {show(spec)}: range {show(rng)} of {name} runs backwards"
                )
        else:
            first = _value(rng, names, name, lo, hi, spec)
            last = hi if "/" in part else first
        out.update(range(first, last + 1, step))
    return frozenset(out)


def _value(text: str, names: dict[str, int], name: str, lo: int, hi: int, spec: str) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not _NUMBER.fullmatch(text) or not lo <= int(text) <= hi:
        raise InvalidCron(
            f"cron spec {show(spec)}: {show(text)} is not a valid {name} ({lo}-{hi}"
            + (", or a name like " + next(iter(names)) if names else "")
            + ")"
        )
    return int(text)
