# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``Period``: date ranges relative to the query's clock (today, the last N days, this
month), for ``where(field__during=Period...)``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal

from ._errors import InvalidQuery, show

_MAX_DAYS = 100_000


@dataclass(frozen=True)
class Period:
    """A range of whole days relative to "today" in the query's time zone (the clock and
    zone are ``RowQuery(source, clock=..., timezone=...)``). Build one with
    :meth:`today`, :meth:`yesterday`, :meth:`last_days`, :meth:`next_days`,
    :meth:`this_month` or :meth:`last_month`.

    Example::

        RowQuery(invoices).where(issued_at__during=Period.last_days(7))
    """

    unit: Literal["day", "month"]
    offset: int
    """First day (or month) relative to today's (0 is today or this month)."""
    length: int
    """How many days (or months)."""

    @classmethod
    def today(cls) -> Period:
        """Today.

        Example::

            q.where(due__during=Period.today())
        """
        return cls("day", 0, 1)

    @classmethod
    def yesterday(cls) -> Period:
        """Yesterday."""
        return cls("day", -1, 1)

    @classmethod
    def last_days(cls, days: int) -> Period:
        """The last ``days`` days, today included (``last_days(7)`` is today and the six
        days before).

        Example::

            q.where(issued_at__during=Period.last_days(30))
        """
        return cls("day", 1 - _days(days, "last_days"), _days(days, "last_days"))

    @classmethod
    def next_days(cls, days: int) -> Period:
        """The next ``days`` days, today included."""
        return cls("day", 0, _days(days, "next_days"))

    @classmethod
    def this_month(cls) -> Period:
        """The calendar month of today."""
        return cls("month", 0, 1)

    @classmethod
    def last_month(cls) -> Period:
        """The calendar month before this one."""
        return cls("month", -1, 1)

    def days(self, today: date) -> tuple[date, date]:
        """``(first day, day after the last)`` of this period when it is ``today``.

        Example::

            Period.this_month().days(date(2026, 2, 10))  # (2026-02-01, 2026-03-01)
        """
        try:
            if self.unit == "day":
                start = today + timedelta(days=self.offset)
                return start, start + timedelta(days=self.length)
            first = _add_months(today.replace(day=1), self.offset)
            return first, _add_months(first, self.length)
        except OverflowError:
            raise InvalidQuery(f"{self!r} falls outside the years 1-9999 from {today}") from None

    def __repr__(self) -> str:
        return f"Period({self.unit}, offset={self.offset}, length={self.length})"


def _days(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_DAYS:
        raise InvalidQuery(
            f"Period.{what}() takes a number of days from 1 to {_MAX_DAYS:,}, got {show(value)}"
        )
    return value


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise OverflowError
    return date(year, month + 1, 1)


def local_today(now: datetime, zone: tzinfo) -> date:
    """The date of ``now`` in ``zone``."""
    return now.astimezone(zone).date()
