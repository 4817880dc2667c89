# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Cron expressions: the parsing matrix (good and bad), next-tick math, and the DST days
of Europe/Vienna (spring forward 2026-03-29 02:00 -> 03:00, fall back 2026-10-25
03:00 -> 02:00)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from forktex_core.flow import InvalidSchedule
from forktex_core.flow._cron import Cron, resolve, zone

VIENNA = ZoneInfo("Europe/Vienna")


@pytest.mark.parametrize(
    ("expression", "field", "values"),
    [
        ("* * * * *", "minutes", set(range(60))),
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("5,10-12,50-59/4 * * * *", "minutes", {5, 10, 11, 12, 50, 54, 58}),
        ("0 9-17/2 * * *", "hours", {9, 11, 13, 15, 17}),
        ("0 0 1,15 * *", "days", {1, 15}),
        ("0 0 * jan,jul-sep *", "months", {1, 7, 8, 9}),
        ("0 0 * * mon-fri", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * 0,7", "weekdays", {0}),
        ("0 0 * * SUN", "weekdays", {0}),
        ("0 0 * * 5/1", "weekdays", {5, 6, 0}),
        ("*/10 * * * * *", "seconds", {0, 10, 20, 30, 40, 50}),
        ("* * * * *", "seconds", {0}),
        ("@hourly", "minutes", {0}),
        ("@weekly", "weekdays", {0}),
        ("@yearly", "months", {1}),
    ],
)
def test_parse_matrix(expression: str, field: str, values: set[int]) -> None:
    assert set(getattr(Cron.parse(expression), field)) == values


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "non-empty string"),
        ("   ", "non-empty string"),
        (None, "non-empty string"),
        ("* * * *", "has 4 fields"),
        ("* * * * * * *", "has 7 fields"),
        ("60 * * * *", "minute field '60': 60 is outside 0-59"),
        ("* 24 * * *", "hour field '24': 24 is outside 0-23"),
        ("* * 0 * *", "day-of-month field '0': 0 is outside 1-31"),
        ("* * * 13 *", "month field '13': 13 is outside 1-12"),
        ("* * * * 8", "day-of-week field '8': 8 is outside 0-7"),
        ("60 * * * * *", "second field '60'"),
        ("*/0 * * * *", "minute field '\\*/0': step must be at least 1"),
        ("*/x * * * *", "step must be at least 1"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("1,,2 * * * *", "empty list item"),
        ("a * * * *", "'a' is not a number 0-59"),
        ("* * * foo *", "month field 'foo'.*or a name \\(jan"),
        ("* * * * funday", "day-of-week field 'funday'"),
        ("-1 * * * *", "minute field '-1'"),
        ("0 0 30 2 *", "day-of-month field '30': no month of the expression has it"),
        ("0 0 31 4,6,9,11 *", "no month of the expression has it"),
        ("@often", "unknown macro"),
    ],
)
def test_bad_expressions_name_the_expression_and_the_field(
    expression: object, message: str
) -> None:
    with pytest.raises(InvalidSchedule, match=message) as info:
        Cron.parse(expression)
    if isinstance(expression, str) and expression.strip():
        assert repr(expression) in str(info.value)


def test_bad_time_zones() -> None:
    for tz in ("Mars/Olympus", "", 3, None):
        with pytest.raises(InvalidSchedule, match="time zone"):
            zone(tz)
    assert zone("Europe/Vienna") == VIENNA


def _next(expression: str, after: datetime, tz: ZoneInfo = VIENNA, n: int = 1) -> list[str]:
    cron, out, t = Cron.parse(expression), [], after
    for _ in range(n):
        t = cron.next_after(t, tz)
        out.append(t.astimezone(tz).isoformat())
    return out


def test_next_tick_math() -> None:
    at = datetime(2026, 1, 31, 23, 59, 30, tzinfo=VIENNA)
    assert _next("* * * * *", at) == ["2026-02-01T00:00:00+01:00"]
    assert _next("*/20 * * * * *", at, n=2) == [
        "2026-01-31T23:59:40+01:00",
        "2026-02-01T00:00:00+01:00",
    ]
    # the last day of February in a leap year and the next
    assert _next("0 12 29 2 *", at, n=2) == [
        "2028-02-29T12:00:00+01:00",
        "2032-02-29T12:00:00+01:00",
    ]
    # both day fields restricted: either matches (1st of the month OR a Monday)
    assert _next("0 0 1 * mon", at, n=3) == [
        "2026-02-01T00:00:00+01:00",
        "2026-02-02T00:00:00+01:00",
        "2026-02-09T00:00:00+01:00",
    ]
    # one of them '*'-led: both must match (a Monday that is in days 1-7)
    assert _next("0 0 1-7 * */1", at, n=2) == [
        "2026-02-01T00:00:00+01:00",
        "2026-02-02T00:00:00+01:00",
    ]
    assert _next("0 0 * * mon", at) == ["2026-02-02T00:00:00+01:00"]
    # strictly after: a tick at the instant itself is not the next one
    on_tick = datetime(2026, 2, 2, 0, 0, tzinfo=VIENNA)
    assert _next("0 0 * * mon", on_tick) == ["2026-02-09T00:00:00+01:00"]
    # a time zone without DST
    assert _next("0 9 * * *", datetime(2026, 3, 29, tzinfo=UTC), ZoneInfo("UTC")) == [
        "2026-03-29T09:00:00+00:00"
    ]


def _hourly_ticks_on(day: int, month: int) -> int:
    start = datetime(2026, month, day, tzinfo=VIENNA)
    return len(list(Cron.parse("0 * * * *").ticks(start, start + timedelta(days=1), VIENNA)))


def test_spring_forward_in_vienna_skips_the_gap_and_never_goes_back() -> None:
    before = datetime(2026, 3, 29, 0, 40, tzinfo=VIENNA)
    # every 30 minutes: 02:00 and 02:30 do not exist; they fire once, at 03:00 CEST
    assert _next("*/30 * * * *", before, n=5) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]
    # a daily job at 02:30 runs at the end of the gap that day, at 02:30 the days around it
    assert _next("30 2 * * *", datetime(2026, 3, 28, tzinfo=VIENNA), n=3) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    # hourly: 23 ticks on that day
    assert _hourly_ticks_on(29, 3) == 23
    assert resolve(datetime(2026, 3, 29, 2, 30), VIENNA) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_fall_back_in_vienna_fires_a_repeated_wall_time_once() -> None:
    before = datetime(2026, 10, 25, 1, 40, tzinfo=VIENNA)
    # 02:00 and 02:30 occur twice (CEST, then CET): each fires once, at its first occurrence
    assert _next("*/30 * * * *", before, n=5) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:30:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]
    assert _next("30 2 * * *", datetime(2026, 10, 24, 12, tzinfo=VIENNA), n=2) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    # asked from inside the second 02:xx hour, the next tick is 03:00, not a repeat
    second_pass = datetime(2026, 10, 25, 2, 10, tzinfo=VIENNA, fold=1)
    assert _next("*/30 * * * *", second_pass) == ["2026-10-25T03:00:00+01:00"]
    # hourly: 24 ticks on that 25-hour day (02:00 once)
    assert _hourly_ticks_on(25, 10) == 24


@pytest.mark.parametrize("seed", range(5))
def test_ticks_always_move_forward_and_match(seed: int) -> None:
    rnd = random.Random(seed)
    expression = " ".join(
        [
            rnd.choice(["*", "*/7", "0,30", "15-45/10"]),
            rnd.choice(["*", "1-3", "*/5", "2"]),
            rnd.choice(["*", "1-10", "*/3"]),
            rnd.choice(["*", "3,10", "mar-oct"]),
            rnd.choice(["*", "sun", "1-5"]),
        ]
    )
    cron = Cron.parse(expression)
    t = datetime(2026, 3, 1, tzinfo=UTC)
    for _ in range(300):
        nxt = cron.next_after(t, VIENNA)
        assert nxt > t, expression
        wall = nxt.astimezone(VIENNA)
        # a tick is a matching wall time, or the end of a DST gap (03:00 on a change day)
        matches = (
            wall.minute in cron.minutes
            and wall.month in cron.months
            and (wall.hour in cron.hours or wall.dst() != (wall - timedelta(hours=1)).dst())
        )
        assert matches, (expression, wall)
        t = nxt
