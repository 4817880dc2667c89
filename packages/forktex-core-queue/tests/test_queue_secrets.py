# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""No credential of a Redis URL ever shows: a matrix of URL forms (userinfo, credential-like
query parameters, unparsable and non-str URLs) through the constructor's errors, reprs, every
"Redis unreachable" error (enqueue, job status, abort, health, worker) and the log."""

from __future__ import annotations

import itertools
import logging
import socket
import traceback
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import pytest

from forktex_core.queue import InvalidArgument, Queue, QueueError, QueueUnavailable

S = "Hunter2sEcReT"  # the credential that must never show


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_USERINFO = [
    "",
    f":{S}@",
    f"user:{S}@",
    f"{S}@",
    f"user:{quote(S + '@/?#:', safe='')}@",
    f"user:{S}/?#x@",  # unencoded '/', '?', '#' in the password
    f"user:p@ss{S}@",  # unencoded '@' in the password
]
_QUERY = [
    "",
    f"?password={S}",
    f"?Password={S}",
    f"?username={S}&password={S}",
    f"?socket_timeout=1&password={S}",
    f"?token={S}",
    f"?api_key={S}",
    f"?a=1&pass%77ord={S}",
    f"#auth={S}",
]
_BASES = [  # {port}: a port nothing listens on, chosen when the test runs
    "redis://{u}127.0.0.1:{{port}}/0{q}",
    "rediss://{u}127.0.0.1:{{port}}/1{q}",
    "REDIS://{u}127.0.0.1:{{port}}{q}",
    "unix://{u}/nonexistent/redis.sock{q}",
    "redis://{u}[::1{q}",  # unparsable IPv6 literal
    "redis://{u}127.0.0.1:99999/0{q}",  # port out of range
    "redis://{u}127.0.0.1:port/0{q}",  # port not a number
    "http://{u}127.0.0.1:6379/0{q}",  # wrong scheme
    "{u}127.0.0.1:6379{q}",  # no scheme
]
URL_FORMS = sorted(
    {base.format(u=u, q=q) for base, u, q in itertools.product(_BASES, _USERINFO, _QUERY) if u or q}
)


def _shown(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


async def _unreachable_errors(queue: Queue) -> list[tuple[str, str]]:
    """What every Redis-touching call of ``queue`` shows when Redis is unreachable."""

    @queue.task(name="t")
    async def t() -> None: ...

    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("enqueue", lambda: t.enqueue()),
        ("status", lambda: queue.job("x").status()),
        ("abort", lambda: queue.job("x").abort()),
        ("health", lambda: queue.health()),
        ("worker", lambda: queue.run_worker(burst=True, handle_signals=False)),
    ]
    shown: list[tuple[str, str]] = []
    for what, call in calls:
        try:
            await call()
        except QueueUnavailable as exc:
            shown.append((what, _shown(exc)))
    return shown


def test_url_matrix_is_large() -> None:
    assert len(URL_FORMS) > 300


async def test_no_url_credential_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    leaked: list[tuple[str, str]] = []
    reached = 0
    port = _dead_port()
    for form in URL_FORMS:
        url = form.replace("{port}", str(port))
        try:
            queue = Queue(url, "q", socket_connect_timeout=1, socket_timeout=2)
        except QueueError as exc:
            if S in _shown(exc):
                leaked.append(("constructor", url))
            continue
        if S in repr(queue) or S in str(queue):
            leaked.append(("repr", url))

        for what, shown in await _unreachable_errors(queue):
            reached += 1
            if S in shown:
                leaked.append((what, url))
        await queue.close()
    assert leaked == []
    assert reached > 100  # the unreachable-server errors were really produced
    assert S not in caplog.text


def test_non_string_urls_are_not_echoed() -> None:
    for bad in (f"redis://:{S}@h/0".encode(), [f"redis://:{S}@h/0"], 10**5000):
        with pytest.raises(InvalidArgument) as info:
            Queue(bad, "q")  # type: ignore[arg-type]
        assert S not in _shown(info.value)


def test_queue_shows_where_it_points_without_credentials() -> None:
    from forktex_core.queue._urls import mask_url

    assert repr(Queue(f"redis://u:{S}@cache.internal:6380/2", "q")) == (
        "<Queue 'q' on redis cache.internal:6380/2>"
    )
    assert "unix:/run/redis.sock/3" in repr(Queue(f"unix:///run/redis.sock?db=3&password={S}"))
    assert mask_url(f"redis://u:{S}@h:1/0?password={S}&db=1") == (
        "redis://***@h:1/0?password=***&db=1"
    )


def test_unknown_client_options_are_refused_up_front() -> None:
    with pytest.raises(InvalidArgument, match="bogus"):
        Queue("redis://localhost/0", "q", bogus=1)
