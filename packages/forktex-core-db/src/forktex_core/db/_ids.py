# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Time-ordered UUIDv7 generation (RFC 9562) and UUID argument checking."""

from __future__ import annotations

import os
import threading
import time
import uuid

from ._errors import InvalidArgument

_COUNTER_BITS = 42  # 12 bits of rand_a + the top 30 bits of rand_b
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def _fresh_counter() -> int:
    # Random start with the top bit clear leaves >= 2**41 increments before overflow.
    return int.from_bytes(os.urandom(6), "big") & ((1 << (_COUNTER_BITS - 1)) - 1)


def uuid7() -> uuid.UUID:
    """A new time-ordered UUID version 7 (RFC 9562, method 1: 42-bit monotonic counter).

    48 bits of Unix milliseconds, then a counter seeded randomly each millisecond and
    incremented within it, then 32 random bits. Values from one process are strictly
    increasing, even within a millisecond or when the wall clock steps back, so B-tree inserts
    stay at the right edge of the index.

    Example::

        >>> u = uuid7()
        >>> u.version
        7
    """
    with _lock:
        layout = _next_layout(time.time_ns() // 1_000_000)
    return uuid.UUID(int=layout | int.from_bytes(os.urandom(4), "big"))


def _next_layout(now_ms: int) -> int:
    """The next UUIDv7 of the sequence, its 32 random bits zero (the caller holds
    ``_lock``): a later millisecond starts a fresh counter, else the counter goes on."""
    global _last_ms, _counter
    if now_ms > _last_ms:
        _last_ms = now_ms
        _counter = _fresh_counter()
    else:
        _counter += 1
        if _counter > _COUNTER_MAX:  # pragma: no cover - needs 2**41 ids in one ms
            _last_ms += 1
            _counter = _fresh_counter()
    return (
        (_last_ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | (_counter >> 30) << 64
        | 0b10 << 62
        | (_counter & 0x3FFF_FFFF) << 32
    )


def uuid7_many(count: int) -> list[uuid.UUID]:
    """``count`` new UUIDv7s, in increasing order, as ``count`` calls of :func:`uuid7`
    would give them (the same monotonic sequence), made with one lock and one read of the
    random source: bulk writes need an id per row.

    Example::

        >>> ids = uuid7_many(3)
        >>> ids == sorted(ids) and len(set(ids)) == 3
        True
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidArgument(f"count must be an int >= 0, got {count!r}")
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        layouts = [_next_layout(now_ms) for _ in range(count)]
    tails = os.urandom(4 * count)
    return [
        uuid.UUID(int=layout | int.from_bytes(tails[4 * i : 4 * i + 4], "big"))
        for i, layout in enumerate(layouts)
    ]


def as_uuid(value: object, what: str) -> uuid.UUID:
    """``value`` as a :class:`uuid.UUID` (accepts a UUID or its string form) or InvalidArgument."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidArgument(
        f"{what} must be a UUID (uuid.UUID or its string form like "
        f"'0190f5c4-8d2e-7c1a-9b3e-5f2a1c0d4e6f'), got {value!r}"
    )
