# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Durations given by callers (``ttl=``, ``lock_ttl=``): seconds or a timedelta, checked once."""

from __future__ import annotations

import datetime as dt
import math

from ._errors import InvalidArgument


def seconds_to_ms(name: str, value: object) -> int:
    """A positive duration (seconds as int/float, or a timedelta) in whole milliseconds.

    Anything else - a bool, NaN, infinity, zero or less - raises :class:`InvalidArgument`
    naming ``name`` and the value.

    Example::

        seconds_to_ms("ttl", 1.5)                          # 1500
        seconds_to_ms("ttl", dt.timedelta(minutes=5))     # 300000
    """
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidArgument(
            f"{name} must be a positive number of seconds or a timedelta, got {value!r}"
        )
    return max(1, round(value * 1000))
